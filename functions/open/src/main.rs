//! open: wiring only; the logic is in `lib.rs`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use open::{OpenRequest, Ports};
use steadfast_aws::{Clients, Env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    steadfast_aws::logging::init();
    let env = Env::process();
    let clients = Clients::load(&env).await;
    let ports = Ports {
        gates: clients.gates(&env)?,
        switch: clients.flow_switch(&env)?,
        events: clients.bus(&env)?,
        timers: clients.timers(&env)?,
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
