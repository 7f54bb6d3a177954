//! One network namespace per peer on a bridge, each uplink (and optionally
//! downlink) shaped with `tc tbf`. Everything lives in namespaces this
//! module creates (the bridge in one of its own), with addresses in
//! 10.77.0.0/16 that exist only there: no traffic reaches the host's
//! interfaces. Names start with `mbwan-PID-`; [`Net`] deletes its
//! namespaces (and so their links and processes' sockets) on drop, and
//! [`sweep`] removes those of runs whose process is gone.

use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

/// Prefix of every namespace name.
const PREFIX: &str = "mbwan-";

/// Shaping of one peer's links, bits/s.
#[derive(Copy, Clone, Debug)]
pub struct Link {
    /// Upload rate (egress of the peer's namespace).
    pub up_bps: u64,
    /// Download rate (egress of the bridge towards the peer), `None`: not capped.
    pub down_bps: Option<u64>,
}

/// The namespaces of one run: peer `i` lives in [`Net::ns`]`(i)` with
/// address [`Net::ip`]`(i)` on its `eth0`.
pub struct Net {
    bridge: String,
    peers: Vec<String>,
}

impl Net {
    /// Creates one namespace per link (peer `i` gets `links[i]`) on a
    /// bridge; `queue_ms` is the longest a packet waits in a `tbf` queue.
    ///
    /// # Errors
    /// When `ip` or `tc` fails (not root, no `iproute2`, no `sch_tbf`).
    pub fn create(links: &[Link], queue_ms: u32) -> Result<Self> {
        ensure!(links.len() < 250 * 250, "at most {} peers", 250 * 250 - 1);
        let run = format!("{PREFIX}{}-", std::process::id());
        let mut net = Self {
            bridge: format!("{run}br"),
            peers: vec![],
        };
        ip(&["netns", "add", &net.bridge])?;
        ip(&["-n", &net.bridge, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &net.bridge, "link", "set", "br0", "up"])?;
        for (i, link) in links.iter().enumerate() {
            let ns = format!("{run}{i}");
            ip(&["netns", "add", &ns])?;
            net.peers.push(ns.clone());
            let port = format!("v{i}");
            ip(&[
                "-n",
                &net.bridge,
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &ns,
            ])?;
            ip(&[
                "-n",
                &net.bridge,
                "link",
                "set",
                &port,
                "master",
                "br0",
                "up",
            ])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/16", Self::ip(i)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            shape(&ns, "eth0", link.up_bps, queue_ms)?;
            if let Some(down) = link.down_bps {
                shape(&net.bridge, &port, down, queue_ms)?;
            }
        }
        Ok(net)
    }

    /// Name of peer `i`'s namespace.
    pub fn ns(&self, i: usize) -> &str {
        &self.peers[i]
    }

    /// Address of peer `i` (10.77.0.1 for peer 0).
    pub fn ip(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, (i / 250) as u8, (i % 250) as u8 + 1)
    }

    /// `command` run inside peer `i`'s namespace (`ip netns exec`, which
    /// execs it: the child's pid is the program's).
    pub fn command(&self, i: usize, command: &Command) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.ns(i)])
            .arg(command.get_program())
            .args(command.get_args());
        if let Some(dir) = command.get_current_dir() {
            c.current_dir(dir);
        }
        c
    }

    /// Runs `f` on a thread that entered peer `i`'s namespace and returns
    /// its result: the sockets it makes and the threads it starts live
    /// there (for in-process nodes, such as a `mainline::Testnet`).
    ///
    /// # Panics
    /// When the namespace cannot be entered (not root).
    pub fn run_in<T: Send>(&self, i: usize, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.ns(i));
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                    rustix::thread::move_into_link_name_space(
                        std::os::fd::AsFd::as_fd(&file),
                        Some(rustix::thread::LinkNameSpaceType::Network),
                    )
                    .unwrap_or_else(|e| panic!("setns into {path}: {e}"));
                    f()
                })
                .join()
                .expect("namespace thread")
        })
    }

    /// Bytes peer `i` has sent on its link so far (Ethernet frames).
    ///
    /// # Errors
    /// When `ip` fails or prints something unexpected.
    pub fn tx_bytes(&self, i: usize) -> Result<u64> {
        let out = run(Command::new("ip").args([
            "-n",
            self.ns(i),
            "-s",
            "-j",
            "link",
            "show",
            "dev",
            "eth0",
        ]))?;
        let json: serde_json::Value = serde_json::from_str(&out).context("ip -j output")?;
        json[0]["stats64"]["tx"]["bytes"]
            .as_u64()
            .with_context(|| format!("no tx bytes in {out}"))
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.peers.iter().chain(std::iter::once(&self.bridge)) {
            remove(ns);
        }
    }
}

/// Removes the namespaces of earlier runs whose process is gone or a
/// zombie (after a crash or `kill -9`), killing what still runs in them; returns how many.
///
/// # Errors
/// When the namespaces cannot be listed.
pub fn sweep() -> Result<usize> {
    let list = run(Command::new("ip").args(["netns", "list"]))?;
    let mut removed = 0;
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if running(pid) {
            continue;
        }
        remove(name);
        removed += 1;
    }
    Ok(removed)
}

/// Whether process `pid` exists and is not a zombie (a run killed with
/// `kill -9` whose parent is gone may stay a zombie when nothing reaps it).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|end| stat[end + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// Kills every process in namespace `ns` (by pid) and deletes it.
fn remove(ns: &str) {
    if let Ok(pids) = run(Command::new("ip").args(["netns", "pids", ns])) {
        for pid in pids.split_whitespace() {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
    let _ = ip(&["netns", "del", ns]);
}

/// A `tbf` of `bps` bits/s as the root qdisc of `dev` in `ns`, holding at
/// most `queue_ms` of traffic, with a burst of 10 ms (at least 2 frames).
fn shape(ns: &str, dev: &str, bps: u64, queue_ms: u32) -> Result<()> {
    let burst = (bps / 8 / 100).max(2 * 1514);
    run(Command::new("tc").args([
        "-n",
        ns,
        "qdisc",
        "add",
        "dev",
        dev,
        "root",
        "tbf",
        "rate",
        &format!("{bps}bit"),
        "burst",
        &burst.to_string(),
        "latency",
        &format!("{queue_ms}ms"),
    ]))?;
    Ok(())
}

fn ip(args: &[&str]) -> Result<String> {
    run(Command::new("ip").args(args))
}

/// Runs `command`, returning its stdout, or an error with its stderr.
fn run(command: &mut Command) -> Result<String> {
    let out = command
        .output()
        .with_context(|| format!("cannot run {command:?} (Debian package iproute2; needs root)"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_and_a_free_pid_does_not() {
        assert!(running(std::process::id()));
        assert!(!running(u32::MAX));
    }

    #[test]
    fn addresses_are_distinct_and_in_the_private_range() {
        let all: std::collections::HashSet<Ipv4Addr> = (0..1000).map(Net::ip).collect();
        assert_eq!(all.len(), 1000);
        assert_eq!(Net::ip(0), Ipv4Addr::new(10, 77, 0, 1));
        for a in all {
            let [a0, a1, _, last] = a.octets();
            assert_eq!((a0, a1), (10, 77));
            assert!(last != 0 && last != 255, "{a}");
        }
    }
}
