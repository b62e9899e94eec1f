//! inbox-processor: wiring only; the logic is in `lib.rs`.

use inbox_processor::{trigger, Config, Ports, Tally};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use steadfast_aws::{deadline_from, Clients, Env};
use steadfast_runtime::sweep::claim_token;

#[tokio::main]
async fn main() -> Result<(), Error> {
    steadfast_aws::logging::init();
    let env = Env::process();
    let cfg = Config::from_env(&env)?;
    let clients = Clients::load(&env).await;
    let ports = Ports::from_env(&env, &clients).await?;
    let (cfg, ports) = (&cfg, &ports);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let token = claim_token(&event.context.request_id);
        let deadline = deadline_from(event.context.deadline, cfg.invocation_timeout);
        let run = ports.run(
            cfg,
            trigger(&event.payload),
            steadfast_aws::now_ms,
            &token,
            deadline,
        );
        Ok::<Tally, Error>(run.await)
    }))
    .await
}
