//! outbox-relay: wiring only; the logic is in `lib.rs`.

// The relay's future nests the sweep's async closure in the runtime loop.
#![recursion_limit = "256"]

use outbox_relay::{trigger, Config, Ports};
use serde_json::Value;
use steadfast_runtime::serve::{serve, Error, LambdaEvent};
use steadfast_runtime::sweep::claim_token;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (env, clients) = steadfast_aws::start().await;
    let cfg = &Config::from_env(&env)?;
    let ports = &Ports {
        outbox: clients.outbox(&env)?,
        bus: clients.publisher(&env)?,
    };
    serve(move |event: LambdaEvent<Value>| async move {
        let token = claim_token(&event.context.request_id);
        let trigger = trigger(&event.payload);
        Ok(ports.run(cfg, trigger, steadfast_aws::now_ms, &token).await)
    })
    .await
}
