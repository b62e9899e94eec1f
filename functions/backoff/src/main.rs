//! backoff: wiring only; the logic is in `lib.rs`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use steadfast_aws::{clients::backoff_schedule, now_ms, Clients, Env};
use steadfast_domain::ProbeRequest;

#[tokio::main]
async fn main() -> Result<(), Error> {
    steadfast_aws::logging::init();
    let env = Env::process();
    let backoff = backoff_schedule(&env)?;
    let clients = Clients::load(&env).await;
    let timers = clients.timers(&env)?;
    let (timers, backoff) = (&timers, &backoff);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ProbeRequest>| async move {
            let route = backoff::handle(
                timers,
                backoff,
                &event.payload,
                now_ms(),
                rand::random::<f64>(),
            )
            .await?;
            Ok::<_, Error>(serde_json::json!({ "route": format!("{route:?}") }))
        },
    ))
    .await
}
