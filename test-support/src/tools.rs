//! The external programs the workspace's tests drive, each with the Debian
//! package that provides it. A missing program fails the test at once with
//! a line naming the package (`scripts/test.sh` installs them all): never a
//! skip.

use std::path::Path;
use std::process::Command;

/// An external program and the Debian package that provides it.
pub struct Tool {
    /// The command run by the tests.
    pub program: &'static str,
    /// The Debian package holding it.
    pub package: &'static str,
}

pub const ARIA2C: Tool = Tool {
    program: "aria2c",
    package: "aria2",
};
pub const CHROMIUM: Tool = Tool {
    program: "chromium",
    package: "chromium",
};
pub const CHROMEDRIVER: Tool = Tool {
    program: "chromedriver",
    package: "chromium-driver",
};
pub const FFMPEG: Tool = Tool {
    program: "ffmpeg",
    package: "ffmpeg",
};
pub const FFPROBE: Tool = Tool {
    program: "ffprobe",
    package: "ffmpeg",
};
pub const OPENTRACKER: Tool = Tool {
    program: "opentracker",
    package: "opentracker",
};
pub const MKTORRENT: Tool = Tool {
    program: "mktorrent",
    package: "mktorrent",
};
pub const TRANSMISSION_CREATE: Tool = Tool {
    program: "transmission-create",
    package: "transmission-cli",
};
pub const TRANSMISSION_SHOW: Tool = Tool {
    program: "transmission-show",
    package: "transmission-cli",
};
pub const TRANSMISSION_DAEMON: Tool = Tool {
    program: "transmission-daemon",
    package: "transmission-daemon",
};
pub const TRANSMISSION_REMOTE: Tool = Tool {
    program: "transmission-remote",
    package: "transmission-daemon",
};

/// Panics, naming the package to install, unless `tool` is on the `PATH`
/// (or, for an absolute program path, exists).
pub fn require(tool: &Tool) {
    let found = if Path::new(tool.program).is_absolute() {
        Path::new(tool.program).is_file()
    } else {
        std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| dir.join(tool.program).is_file())
        })
    };
    assert!(found, "{}", missing(tool.program, tool.package));
}

/// Panics, naming the package to install, unless python3 can import
/// libtorrent (Debian package python3-libtorrent).
pub fn require_libtorrent() {
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import libtorrent"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{}",
        missing("python3 -c 'import libtorrent'", "python3-libtorrent")
    );
}

fn missing(program: &str, package: &str) -> String {
    format!(
        "`{program}` is missing: install the Debian package {package} \
         (`apt-get install -y --no-install-recommends {package}`; scripts/test.sh does it)"
    )
}
