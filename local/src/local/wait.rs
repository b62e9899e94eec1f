//! Waiting on a local stack: polling a check until it holds, or failing after a limit with
//! where the functions' logs are.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::{lambda_log_dir, Local};

impl Local {
    /// Waits until `check` holds, polling every 200 ms; fails with `what` after `limit`.
    pub async fn wait_for<F, Fut>(&self, what: &str, limit: Duration, check: F) -> Result<Duration>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<bool>>,
    {
        self.wait_for_every(what, limit, Duration::from_millis(200), check)
            .await
    }

    /// Waits until `check` holds, polling every `every`; fails with `what` after `limit`.
    pub async fn wait_for_every<F, Fut>(
        &self,
        what: &str,
        limit: Duration,
        every: Duration,
        mut check: F,
    ) -> Result<Duration>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<bool>>,
    {
        let start = Instant::now();
        loop {
            if check().await? {
                // Test output keeps it (shown for a failing test): where the time went.
                eprintln!("waited {:.1?} for: {what}", start.elapsed());
                return Ok(start.elapsed());
            }
            if start.elapsed() > limit {
                bail!(
                    "timed out after {limit:?} waiting for: {what}; function logs: {}/{}-*.log",
                    lambda_log_dir().display(),
                    self.stack.name
                );
            }
            tokio::time::sleep(every).await;
        }
    }
}
