//! open: wiring only; the logic is in `lib.rs`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use open::{Config, Ports};
use steadfast_aws::{Clients, ConfigError, Env};
use steadfast_domain::OpenRequest;

fn config(env: &Env) -> Result<Config, ConfigError> {
    let full = env.whole_in("DELIVERY_CONCURRENCY", 5, 2, 1000)? as u32;
    Ok(Config {
        ramp_concurrency: env.whole_in("RAMP_UP_CONCURRENCY", 2, 2, u64::from(full))? as u32,
        full_concurrency: full,
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    steadfast_aws::logging::init();
    let env = Env::process();
    let cfg = config(&env)?;
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
