//! inbox-receiver: wiring only; the logic is in `lib.rs`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use inbox_receiver::{Config, Ports};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use steadfast_aws::{Clients, Env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    steadfast_aws::logging::init();
    let env = Env::process();
    let cfg = Config::from_env(&env)?;
    let clients = Clients::load(&env).await;
    let ports = Ports {
        store: clients.inbox(&env)?,
        parking: clients.parking(&env)?,
        events: clients.bus(&env)?,
    };
    let (cfg, ports) = (&cfg, &ports);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let handled = ports
            .handle(cfg, event.payload, steadfast_aws::now_ms)
            .await;
        Ok::<SqsBatchResponse, Error>(handled.0)
    }))
    .await
}
