//! close: wiring only; the logic is in `lib.rs`.

use std::time::Duration;

use close::{Config, MessageProbe, Ports};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use steadfast_aws::clients::{backoff_schedule, identity_rule};
use steadfast_aws::{Clients, ConfigError, Env};
use steadfast_domain::ProbeMode;

fn config(env: &Env) -> Result<Config, ConfigError> {
    Ok(Config {
        backoff: backoff_schedule(env)?,
        relapse: Duration::from_secs(env.whole_in("RELAPSE_WINDOW_SECONDS", 600, 0, 86_400)?),
        grace: Duration::from_secs(env.whole_in("WATCHDOG_GRACE_SECONDS", 120, 1, 86_400)?),
        ramp: Duration::from_secs(env.whole_in("RAMP_UP_SECONDS", 60, 0, 86_400)?),
        full_concurrency: env.whole_in("DELIVERY_CONCURRENCY", 5, 2, 1000)? as u32,
        identity: identity_rule(env)?,
        source: env
            .optional("SOURCE_NAME")
            .unwrap_or_else(|| "orders".into()),
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    steadfast_aws::logging::init();
    let env = Env::process();
    let cfg = config(&env)?;
    let clients = Clients::load(&env).await;
    let probes = clients.probes(&env, clients.target_token(&env).await?)?;
    // The queue, ledger and parking only where a target is probed by a real message.
    let messages = if probes.values().any(|p| p.mode == ProbeMode::Message) {
        Some(MessageProbe {
            source: clients.probe_source(&env)?,
            ledger: clients.ledger(&env)?,
            parking: clients.parking(&env)?,
        })
    } else {
        None
    };
    let ports = Ports {
        gates: clients.gates(&env)?,
        events: clients.bus(&env)?,
        invoker: clients.invoker(&env)?,
        switches: clients.switches(&env)?,
        probes,
        messages,
    };
    let (cfg, ports) = (&cfg, &ports);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        ports
            .handle_value(cfg, event.payload)
            .await
            .map_err(Error::from)
    }))
    .await
}
