//! The Lambda runtime loop every function runs: events in, answers out.

use std::future::Future;

pub use lambda_runtime::{Error, LambdaEvent};
use serde::{Deserialize, Serialize};

/// Runs the runtime loop until the environment ends; `handle` answers each event.
pub async fn serve<A, R, H, Fut>(handle: H) -> Result<(), Error>
where
    A: for<'de> Deserialize<'de>,
    R: Serialize,
    H: Fn(LambdaEvent<A>) -> Fut,
    Fut: Future<Output = Result<R, Error>>,
{
    lambda_runtime::run(lambda_runtime::service_fn(handle)).await
}
