//! outbox-relay: wiring only; the logic is in `lib.rs`.

// The relay's future nests the sweep's async closure in the runtime loop.
#![recursion_limit = "256"]

use lambda_runtime::{service_fn, Error, LambdaEvent};
use outbox_relay::{trigger, Config, Ports, Tally};
use serde_json::Value;
use steadfast_aws::{Clients, Env};
use steadfast_runtime::sweep::claim_token;

#[tokio::main]
async fn main() -> Result<(), Error> {
    steadfast_aws::logging::init();
    let env = Env::process();
    let cfg = Config::from_env(&env)?;
    let clients = Clients::load(&env).await;
    let ports = Ports {
        outbox: clients.outbox(&env)?,
        bus: clients.publisher(&env)?,
    };
    let (cfg, ports) = (&cfg, &ports);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let token = claim_token(&event.context.request_id);
        let run = ports.run(cfg, trigger(&event.payload), steadfast_aws::now_ms, &token);
        Ok::<Tally, Error>(run.await)
    }))
    .await
}
