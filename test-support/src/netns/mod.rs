//! Network namespaces for the tests and benches that need them (root; see
//! [`crate::root`]): one namespace per peer on a bridge ([`Net`]),
//! entered by a thread with [`Net::run_in`] or
//! by a program with [`Net::command`], and the lock that keeps one test
//! binary's namespaces apart. Traffic stays inside them (10.77.0.0/16
//! exists only there).

use std::sync::{Mutex, MutexGuard, PoisonError};

mod bridge;

pub use bridge::{Link, Net, sweep};

/// Fast links (1 Gbit/s up, down not capped): for tests that are not about
/// shaping.
pub const FAST: Link = Link {
    up_bps: 1_000_000_000,
    down_bps: None,
};

/// Serializes a test binary's namespaces: [`Net`] names them after the
/// process, so its tests make them one at a time. Hold the guard while the
/// [`Net`] lives (a test that panicked holding it does not block the next).
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    static NETS: Mutex<()> = Mutex::new(());
    NETS.lock().unwrap_or_else(PoisonError::into_inner)
}
