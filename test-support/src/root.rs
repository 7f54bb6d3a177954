//! The check that a test runs as root (network namespaces, veth links, a
//! bridge, `tc`): it fails the test at once, saying what is needed, and
//! never skips it.

/// Panics unless this process's effective user id is 0, naming the test
/// (the current thread's name, which the test harness sets), `needs` (what
/// root is needed for, e.g. `"network namespaces, veth, a bridge"`) and
/// that `ip` and `tc` come with the Debian package iproute2.
pub fn require_root(needs: &str) {
    let uid = std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned));
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("this test");
    assert_eq!(
        uid.as_deref(),
        Some("0"),
        "{test} needs root ({needs}; `ip` and `tc` come with the Debian package iproute2): \
         run the tests as root"
    );
}
