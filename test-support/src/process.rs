//! Child processes the tests start: output captured line by line, waits
//! bounded in time, and killed by pid when dropped.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(200);

/// A child process killed (SIGKILL to its own pid only) and reaped when
/// dropped, so a failed assertion leaves no process behind.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        // `Child::kill` signals exactly this pid.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child process this test started, its output captured. Dropping it
/// kills it (SIGKILL to its own pid only) and reaps it.
pub struct Proc {
    name: String,
    child: Killed,
    output: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Starts `command` with stdout and stderr captured; `name` labels it
    /// in failure messages.
    pub fn spawn(name: &str, mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        let output = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        collect(stdout, Arc::clone(&output));
        collect(stderr, Arc::clone(&output));
        Self {
            name: name.to_owned(),
            child: Killed(child),
            output,
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.0.id()
    }

    /// Every line printed so far (stdout and stderr interleaved).
    pub fn lines(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for a printed line that `parse` accepts.
    pub fn wait_line<T>(&self, timeout: Duration, parse: impl Fn(&str) -> Option<T>) -> T {
        wait_until(timeout, &format!("a line from {}", self.name), || {
            self.lines().iter().find_map(|l| parse(l))
        })
        .unwrap_or_else(|| self.fail("no matching line"))
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let name = self.name.clone();
        let status = wait_until(timeout, &format!("{name} to exit"), || {
            self.child.0.try_wait().expect("try_wait")
        });
        status.unwrap_or_else(|| self.fail("did not exit"))
    }

    /// Panics with `why` and everything the process printed.
    pub fn fail(&self, why: &str) -> ! {
        panic!(
            "{}: {why}; its output:\n{}",
            self.name,
            self.lines().join("\n")
        )
    }
}

fn collect(stream: impl Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            into.lock().unwrap().push(line);
        }
    });
}

/// Polls `check` until it returns `Some`, for at most `timeout`; `None`
/// when time ran out (after printing what was awaited).
pub fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            eprintln!("timed out after {timeout:?} waiting for {what}");
            return None;
        }
        thread::sleep(POLL);
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// Runs `command` to completion and returns its stdout; panics on failure.
pub fn run(mut command: Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sends signal `name` (`INT`, `TERM`, `HUP`, `STOP`, `CONT`, ...) to
/// process `pid` with `kill -NAME PID`; panics when `kill` fails.
pub fn signal(pid: u32, name: &str) {
    let mut command = Command::new("kill");
    command.arg(format!("-{name}")).arg(pid.to_string());
    run(command);
}

/// The first line `child` prints on its stdout (piped; taken here), after
/// `prefix` and trimmed: a program's `... listening on ADDRESS` line.
///
/// # Panics
/// When stdout is not piped or cannot be read, or the line does not start
/// with `prefix` (the message shows the line).
pub fn first_line_after(child: &mut Child, prefix: &str) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned()
}
