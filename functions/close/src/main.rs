//! close: wiring only; the logic is in `lib.rs`.

use serde_json::Value;
use steadfast_runtime::serve::{serve, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (env, clients) = steadfast_aws::start().await;
    let cfg = &close::config(&env)?;
    let ports = &close::ports(&env, &clients).await?;
    serve(move |event: LambdaEvent<Value>| async move {
        Ok(ports.handle_value(cfg, event.payload).await?)
    })
    .await
}
