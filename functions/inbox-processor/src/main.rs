//! inbox-processor: wiring only; the logic is in `lib.rs`.

use inbox_processor::{trigger, Config, Ports};
use serde_json::Value;
use steadfast_aws::deadline_from;
use steadfast_runtime::serve::{serve, Error, LambdaEvent};
use steadfast_runtime::sweep::claim_token;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (env, clients) = steadfast_aws::start().await;
    let cfg = &Config::from_env(&env)?;
    let ports = &Ports::from_env(&env, &clients).await?;
    serve(move |event: LambdaEvent<Value>| async move {
        let token = claim_token(&event.context.request_id);
        let deadline = deadline_from(event.context.deadline, cfg.invocation_timeout);
        let trigger = trigger(&event.payload);
        Ok(ports
            .run(cfg, trigger, steadfast_aws::now_ms, &token, deadline)
            .await)
    })
    .await
}
