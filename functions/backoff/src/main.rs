//! backoff: wiring only; the logic is in `lib.rs`.

use steadfast_aws::{clients::backoff_schedule, now_ms};
use steadfast_domain::ProbeRequest;
use steadfast_runtime::serve::{serve, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (env, clients) = steadfast_aws::start().await;
    let backoff = &backoff_schedule(&env)?;
    let timers = &clients.timers(&env)?;
    serve(move |event: LambdaEvent<ProbeRequest>| async move {
        let unit = rand::random::<f64>();
        let route = backoff::handle(timers, backoff, &event.payload, now_ms(), unit).await?;
        Ok(serde_json::json!({ "route": format!("{route:?}") }))
    })
    .await
}
