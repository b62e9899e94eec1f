//! close: wiring only; the logic is in `lib.rs`.

use close::Ports;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use steadfast_aws::{
    events::EventBridgeBus, gates::DynamoGates, http::HttpTarget, invoke::LambdaInvoker,
    switch::EsmSwitch, Clients, Env,
};

#[tokio::main]
async fn main() -> Result<(), Error> {
    steadfast_aws::logging::init();
    let env = Env::process();
    let clients = Clients::load(&env).await;
    let ports = Ports {
        gates: DynamoGates {
            client: clients.dynamodb.clone(),
            table: env.required("GATE_TABLE")?,
        },
        switch: EsmSwitch::new(
            clients.lambda.clone(),
            env.required("PROCESSOR_FUNCTION")?,
            env.required("ORDERS_QUEUE_ARN")?,
        ),
        events: EventBridgeBus {
            client: clients.events.clone(),
            bus: env.required("EVENT_BUS_NAME")?,
        },
        invoker: LambdaInvoker {
            client: clients.invoke.clone(),
            close_function: env.required("CLOSE_FUNCTION")?,
            backoff_function: env.required("BACKOFF_FUNCTION")?,
            open_function: env.required("OPEN_FUNCTION")?,
        },
        target: HttpTarget::from_env(&env)?,
    };
    let ports = &ports;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        ports.handle_value(event.payload).await.map_err(Error::from)
    }))
    .await
}
