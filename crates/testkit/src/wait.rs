use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::PATIENCE;

const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Calls `attempt` until it returns `Ok`, for up to [`PATIENCE`]; then fails with `what` and the last
/// `Err`, which describes what was seen instead.
pub async fn eventually<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => {
                panic!("{what}: not within {PATIENCE:?}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}

/// Calls `attempt` until `done` accepts what it returns, for up to [`PATIENCE`], and returns that.
pub async fn poll<T, F, Fut>(what: &str, mut attempt: F, done: impl Fn(&T) -> bool) -> T
where
    T: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    eventually(what, || {
        let next = attempt();
        let done = &done;
        async move {
            let value = next.await;
            if done(&value) {
                Ok(value)
            } else {
                Err(format!("{value:?}"))
            }
        }
    })
    .await
}
