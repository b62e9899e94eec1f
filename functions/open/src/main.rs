//! open: wiring only; the logic is in `lib.rs`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use open::{OpenRequest, Ports};
use steadfast_aws::{
    events::EventBridgeBus, gates::DynamoGates, switch::EsmSwitch, timers::QueueAndScheduleTimers,
    Clients, Env,
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
        timers: QueueAndScheduleTimers {
            sqs: clients.sqs.clone(),
            scheduler: clients.scheduler.clone(),
            queue_url: env.required("TIMERS_QUEUE_URL")?,
            queue_arn: env.required("TIMERS_QUEUE_ARN")?,
            scheduler_role_arn: env.required("SCHEDULER_ROLE_ARN")?,
            group: env
                .optional("SCHEDULE_GROUP")
                .unwrap_or_else(|| "default".into()),
        },
    };
    let ports = &ports;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<OpenRequest>| async move {
            let done = ports.handle(event.payload).await?;
            Ok::<_, Error>(serde_json::json!({ "done": format!("{done:?}") }))
        },
    ))
    .await
}
