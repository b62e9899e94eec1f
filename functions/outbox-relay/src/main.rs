//! outbox-relay: wiring only. Configuration (read once, failing with the variable's name),
//! adapters, and the Lambda runtime loop. The logic is in `lib.rs`.

use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use outbox_relay::{Config, Ports, Tally, Trigger};
use serde_json::Value;
use steadfast_aws::{
    events::EventBridgePublisher, outbox::DynamoOutbox, Clients, ConfigError, Env,
};
use steadfast_domain::backoff::Backoff;
use steadfast_domain::RelayPolicy;

fn config(env: &Env) -> Result<Config, ConfigError> {
    let d = RelayPolicy::default();
    Ok(Config {
        policy: RelayPolicy {
            max_attempts: env.whole_in("OUTBOX_MAX_ATTEMPTS", u64::from(d.max_attempts), 1, 100)?
                as u32,
            retry: Backoff {
                base: env.seconds("OUTBOX_RETRY_BASE_SECONDS", d.retry.base)?,
                cap: env.seconds("OUTBOX_RETRY_CAP_SECONDS", d.retry.cap)?,
                ..d.retry
            },
            lease: Duration::from_secs(env.whole_in(
                "OUTBOX_LEASE_SECONDS",
                d.lease.as_secs(),
                1,
                3600,
            )?),
            retention: Duration::from_secs(
                86_400 * env.whole_in("OUTBOX_RETENTION_DAYS", 7, 1, 365)?,
            ),
        },
        shards: steadfast_aws::outbox::shards_from(env)?,
        sweep_limit: env.whole_in("OUTBOX_SWEEP_LIMIT", 1000, 1, 100_000)? as usize,
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    steadfast_aws::logging::init();
    let env = Env::process();
    let cfg = config(&env)?;
    let clients = Clients::load(&env).await;
    let ports = Ports {
        outbox: DynamoOutbox {
            client: clients.dynamodb.clone(),
            table: env.required("OUTBOX_TABLE")?,
        },
        bus: EventBridgePublisher {
            client: clients.events_quick_retry(),
            bus: env.required("EVENT_BUS_NAME")?,
            source: env
                .optional("OUTBOX_EVENT_SOURCE")
                .unwrap_or_else(|| "steadfast.outbox".into()),
        },
    };
    let (cfg, ports) = (&cfg, &ports);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let token = format!(
            "{}-{:016x}",
            event.context.request_id,
            rand::random::<u64>()
        );
        let trigger = Trigger::of(&event.payload);
        let tally: Tally = ports.run(cfg, trigger, steadfast_aws::now_ms, &token).await;
        Ok::<Tally, Error>(tally)
    }))
    .await
}
