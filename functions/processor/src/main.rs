//! processor: wiring only; the logic is in `lib.rs`.

use aws_lambda_events::event::sqs::SqsEvent;
use processor::{Config, Ports};
use steadfast_aws::{deadline_from, http::HttpTarget};
use steadfast_runtime::serve::{serve, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (env, clients) = steadfast_aws::start().await;
    let cfg = &Config::from_env(&env)?;
    let ports = &Ports {
        gates: clients.gates(&env)?,
        ledger: clients.ledger(&env)?,
        parking: clients.parking(&env)?,
        events: clients.bus(&env)?,
        invoker: clients.invoker(&env)?,
        target: HttpTarget::from_env(&env, clients.target_token(&env).await?)?,
    };
    serve(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = deadline_from(event.context.deadline, cfg.invocation_timeout);
        Ok(ports.handle(cfg, event.payload, deadline).await.0)
    })
    .await
}
