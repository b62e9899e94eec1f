//! backoff: wiring only; the logic is in `lib.rs`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use steadfast_aws::{now_ms, Clients, ConfigError, Env};
use steadfast_domain::{Backoff, Jitter, ProbeRequest};

fn schedule(env: &Env) -> Result<Backoff, ConfigError> {
    let d = Backoff::default();
    let jitter: f64 = env.parsed("BACKOFF_JITTER", 0.0, "a fraction between 0 and 1")?;
    if !(0.0..=1.0).contains(&jitter) {
        return Err(env.invalid(
            "BACKOFF_JITTER",
            &jitter.to_string(),
            "a fraction between 0 and 1",
        ));
    }
    let base = env.seconds("BACKOFF_BASE_SECONDS", d.base)?;
    let cap = env.seconds("BACKOFF_CAP_SECONDS", d.cap)?;
    if base.is_zero() || cap < base {
        return Err(env.invalid(
            "BACKOFF_CAP_SECONDS",
            &format!("{cap:?}"),
            "at least BACKOFF_BASE_SECONDS, which must be > 0",
        ));
    }
    Ok(Backoff {
        base,
        cap,
        jitter: if jitter > 0.0 {
            Jitter::Proportion(jitter)
        } else {
            Jitter::None
        },
        queue_limit: env
            .seconds("TIMER_QUEUE_LIMIT_SECONDS", d.queue_limit)?
            .min(d.queue_limit),
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    steadfast_aws::logging::init();
    let env = Env::process();
    let backoff = schedule(&env)?;
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
