//! close: wiring only; the logic is in `lib.rs`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use steadfast_aws::Env;

#[tokio::main]
async fn main() -> Result<(), Error> {
    steadfast_aws::logging::init();
    let env = Env::process();
    let cfg = close::config(&env)?;
    let ports = close::ports(&env).await?;
    let (cfg, ports) = (&cfg, &ports);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        ports
            .handle_value(cfg, event.payload)
            .await
            .map_err(Error::from)
    }))
    .await
}
