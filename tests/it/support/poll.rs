//! The one polling helper: every "wait until" in the tests goes through it.

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` every 20 ms until it returns true or `timeout` passes;
/// returns whether it did.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
