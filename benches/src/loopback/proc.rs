//! Child processes watched through `/proc`: CPU time (user + system, from
//! `/proc/PID/stat`, read while the child is a zombie so nothing is lost)
//! and peak resident set (`VmHWM` in `/proc/PID/status`, polled while it
//! runs). Dropping a [`Watched`] kills exactly its pid and reaps it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How often a running child is sampled.
pub const POLL: Duration = Duration::from_millis(10);

/// A child process with its resource usage.
pub struct Watched {
    name: String,
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
    /// Largest `VmHWM` seen, bytes.
    peak_rss: u64,
    /// User + system CPU seconds, final once the child exited.
    cpu_s: f64,
    status: Option<ExitStatus>,
}

impl Watched {
    /// Starts `command` with stdout and stderr captured line by line.
    ///
    /// # Errors
    /// When the program cannot be started.
    pub fn spawn(name: &str, mut command: Command) -> Result<Self> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {name} ({command:?})"))?;
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let into = Arc::clone(&output);
            thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    into.lock().expect("output lock").push(line);
                }
            });
        }
        Ok(Self {
            name: name.to_owned(),
            child,
            output,
            peak_rss: 0,
            cpu_s: 0.0,
            status: None,
        })
    }

    /// Every line printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.output.lock().expect("output lock").clone()
    }

    /// Waits up to `timeout` for a printed line that `parse` accepts.
    ///
    /// # Errors
    /// On timeout or when the process exits first (with its output).
    pub fn wait_line<T>(
        &mut self,
        timeout: Duration,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.lines().iter().find_map(|l| parse(l)) {
                return Ok(found);
            }
            if self.sample()?.is_some() {
                bail!(
                    "{} exited early; output:\n{}",
                    self.name,
                    self.lines().join("\n")
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{}: no expected line within {timeout:?}; output:\n{}",
                    self.name,
                    self.lines().join("\n")
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Samples the child: updates its peak RSS and CPU time; once it has
    /// exited, takes its final CPU time, reaps it and returns its status.
    ///
    /// # Errors
    /// When `/proc` or `wait` fails.
    pub fn sample(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_some() {
            return Ok(self.status);
        }
        let pid = self.child.id();
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(hwm) = vm_hwm(&status) {
                self.peak_rss = self.peak_rss.max(hwm);
            }
        }
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            if let Some((state, cpu)) = parse_stat(&stat) {
                self.cpu_s = cpu;
                if state != 'Z' {
                    return Ok(None);
                }
            }
        }
        // A zombie (its times are final) or gone: reap it.
        self.status = Some(self.child.wait().context("wait")?);
        Ok(self.status)
    }

    /// Kills the child (SIGKILL to its pid), records its final usage, reaps it.
    ///
    /// # Errors
    /// When `/proc` or `wait` fails.
    pub fn stop(&mut self) -> Result<()> {
        if self.status.is_none() {
            let _ = self.child.kill();
            while self.sample()?.is_none() {
                thread::sleep(Duration::from_millis(1));
            }
        }
        Ok(())
    }

    /// Peak resident set seen, bytes.
    pub const fn peak_rss(&self) -> u64 {
        self.peak_rss
    }

    /// CPU seconds (user + system) used so far, final once it exited.
    pub const fn cpu_s(&self) -> f64 {
        self.cpu_s
    }

    /// Its label.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `VmHWM` from `/proc/PID/status`, bytes.
fn vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// State letter and utime + stime (seconds) from `/proc/PID/stat`.
fn parse_stat(stat: &str) -> Option<(char, f64)> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?.chars().next()?;
    // Fields 14 and 15 of the stat line (utime, stime) are 11 and 12 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    #[allow(clippy::cast_precision_loss)]
    Some((state, (utime + stime) as f64 / clock_ticks()))
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 when unknown).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> Result<u16> {
    Ok(
        std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_name_with_spaces() {
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 1 0 5 1000 10";
        let (state, cpu) = parse_stat(stat).unwrap();
        assert_eq!(state, 'S');
        assert!((cpu - 300.0 / clock_ticks()).abs() < 1e-9);
    }

    #[test]
    fn hwm_in_bytes() {
        assert_eq!(
            vm_hwm("Name:\tx\nVmHWM:\t   1234 kB\nVmRSS:\t 1 kB\n"),
            Some(1234 * 1024)
        );
        assert_eq!(vm_hwm("Name:\tx\n"), None);
    }

    #[test]
    fn a_child_is_measured_and_reaped() {
        let mut command = Command::new("sh");
        command.args([
            "-c",
            "echo hi; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done",
        ]);
        let mut child = Watched::spawn("sh", command).unwrap();
        child
            .wait_line(Duration::from_secs(10), |l| (l == "hi").then_some(()))
            .unwrap();
        let status = loop {
            if let Some(status) = child.sample().unwrap() {
                break status;
            }
            thread::sleep(POLL);
        };
        assert!(status.success());
        assert!(child.peak_rss() > 0);
        assert!(child.cpu_s() > 0.0);
    }
}
