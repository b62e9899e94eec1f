//! outbox-writer: wiring only; the logic is in `lib.rs`.

use aws_lambda_events::event::sqs::SqsEvent;
use outbox_writer::{Config, Ports};
use steadfast_runtime::serve::{serve, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (env, clients) = steadfast_aws::start().await;
    let cfg = &Config::from_env(&env)?;
    let ports = &Ports {
        store: clients.applications(&env)?,
        parking: clients.parking(&env)?,
        events: clients.bus(&env)?,
    };
    serve(move |event: LambdaEvent<SqsEvent>| async move {
        Ok(ports
            .handle(cfg, event.payload, steadfast_aws::now_ms)
            .await
            .0)
    })
    .await
}
