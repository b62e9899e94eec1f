//! processor: wiring only; the logic is in `lib.rs`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use processor::{deadline_from, Config, Ports};
use steadfast_aws::{http::HttpTarget, Clients, Env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    steadfast_aws::logging::init();
    let env = Env::process();
    let cfg = Config::from_env(&env)?;
    let clients = Clients::load(&env).await;
    let ports = Ports {
        gates: clients.gates(&env)?,
        ledger: clients.ledger(&env)?,
        parking: clients.parking(&env)?,
        events: clients.bus(&env)?,
        invoker: clients.invoker(&env)?,
        target: HttpTarget::from_env(&env, clients.target_token(&env).await?)?,
    };
    let (cfg, ports) = (&cfg, &ports);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = deadline_from(event.context.deadline, cfg.invocation_timeout);
        Ok::<SqsBatchResponse, Error>(ports.handle(cfg, event.payload, deadline).await.0)
    }))
    .await
}
