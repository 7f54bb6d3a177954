//! Bounded waits in async tests: poll until something shows up, or fail
//! naming what never did.

use std::time::{Duration, Instant};

/// Polls `find` every 100 ms until it gives `Some`, for at most `within`.
///
/// # Panics
/// When `within` passes first: "timed out waiting for WHAT".
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut find: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = find().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
