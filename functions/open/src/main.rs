//! open: wiring only; the logic is in `lib.rs`.

use open::{Config, Ports};
use steadfast_domain::OpenRequest;
use steadfast_runtime::serve::{serve, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (env, clients) = steadfast_aws::start().await;
    let cfg = &Config::from_env(&env)?;
    let ports = &Ports {
        gates: clients.gates(&env)?,
        switches: clients.switches(&env)?,
        events: clients.bus(&env)?,
        timers: clients.timers(&env)?,
    };
    serve(move |event: LambdaEvent<OpenRequest>| async move {
        let done = ports.handle(cfg, event.payload).await?;
        Ok(serde_json::json!({ "done": format!("{done:?}") }))
    })
    .await
}
