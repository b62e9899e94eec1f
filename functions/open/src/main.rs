//! open: wiring only; the logic is in `lib.rs`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use open::{Config, Ports};
use steadfast_aws::{Clients, Env};
use steadfast_domain::OpenRequest;

#[tokio::main]
async fn main() -> Result<(), Error> {
    steadfast_aws::logging::init();
    let env = Env::process();
    let cfg = Config::from_env(&env)?;
    let clients = Clients::load(&env).await;
    let ports = Ports {
        gates: clients.gates(&env)?,
        switches: clients.switches(&env)?,
        events: clients.bus(&env)?,
        timers: clients.timers(&env)?,
    };
    let (cfg, ports) = (&cfg, &ports);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<OpenRequest>| async move {
            let done = ports.handle(cfg, event.payload).await?;
            Ok::<_, Error>(serde_json::json!({ "done": format!("{done:?}") }))
        },
    ))
    .await
}
