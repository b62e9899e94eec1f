//! inbox-processor: wiring only. Configuration (read once, failing with the variable's name),
//! adapters, and the Lambda runtime loop. The logic is in `lib.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use inbox_processor::{Config, Ports, Tally, Trigger};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use steadfast_aws::{http::HttpTarget, inbox::DynamoInbox, Clients, ConfigError, Env};
use steadfast_domain::backoff::Backoff;
use steadfast_domain::inbox::InboxPolicy;
use steadfast_domain::RetryPolicy;

fn config(env: &Env) -> Result<Config, ConfigError> {
    let d = InboxPolicy::default();
    let r = RetryPolicy::default();
    Ok(Config {
        target: env
            .optional("INBOX_TARGET_NAME")
            .unwrap_or_else(|| "portal-inbox".into()),
        policy: InboxPolicy {
            max_claims: env.whole_in("INBOX_MAX_CLAIMS", u64::from(d.max_claims), 1, 100)? as u32,
            retry: Backoff {
                base: env.seconds("INBOX_RETRY_BASE_SECONDS", d.retry.base)?,
                cap: env.seconds("INBOX_RETRY_CAP_SECONDS", d.retry.cap)?,
                ..d.retry
            },
            lease: Duration::from_secs(env.whole_in(
                "INBOX_LEASE_SECONDS",
                d.lease.as_secs(),
                1,
                3600,
            )?),
        },
        retry: RetryPolicy {
            max_attempts: env.whole_in("MAX_ATTEMPTS", u64::from(r.max_attempts), 1, 20)? as u32,
            base: env.seconds("RETRY_BASE_SECONDS", r.base)?,
            cap: env.seconds("RETRY_CAP_SECONDS", r.cap)?,
            ..r
        },
        shards: steadfast_aws::inbox::shards_from(env)?,
        sweep_limit: env.whole_in("INBOX_SWEEP_LIMIT", 500, 1, 100_000)? as usize,
        concurrency: env.whole_in("INBOX_DELIVERY_CONCURRENCY", 8, 1, 64)? as usize,
    })
}

/// One HTTP target per entity type, from `INBOX_ENTITIES` and `INBOX_PORTAL_URL`.
fn targets(
    env: &Env,
    token: std::sync::Arc<steadfast_aws::token::Token>,
) -> Result<BTreeMap<String, HttpTarget>, ConfigError> {
    let inbox = steadfast_aws::inbox::config_from(env)?;
    let base = env.optional("INBOX_PORTAL_URL");
    let urls = inbox
        .endpoints(base.as_deref())
        .map_err(|why| env.invalid("INBOX_PORTAL_URL", base.as_deref().unwrap_or(""), why))?;
    urls.into_iter()
        .map(|(entity, url)| {
            let target = HttpTarget::at(env, "INBOX_ENTITIES endpoint", url, None, token.clone())?;
            Ok((entity, target))
        })
        .collect()
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    steadfast_aws::logging::init();
    let env = Env::process();
    let cfg = config(&env)?;
    let clients = Clients::load(&env).await;
    let ports = Ports {
        store: DynamoInbox {
            client: clients.dynamodb.clone(),
            table: env.required("INBOX_TABLE")?,
        },
        gates: clients.gates(&env)?,
        events: clients.bus(&env)?,
        invoker: clients.tripper(&env)?,
        targets: targets(&env, clients.target_token(&env).await?)?,
    };
    // Used only when the runtime gives no usable deadline (local Runtime API servers).
    let fallback_timeout =
        env.seconds("INBOX_INVOCATION_TIMEOUT_SECONDS", Duration::from_secs(60))?;
    let (cfg, ports) = (&cfg, &ports);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let token = format!(
            "{}-{:016x}",
            event.context.request_id,
            rand::random::<u64>()
        );
        let deadline = steadfast_aws::deadline_from(event.context.deadline, fallback_timeout);
        let trigger = Trigger::of(&event.payload);
        let tally: Tally = ports
            .run(cfg, trigger, steadfast_aws::now_ms, &token, deadline)
            .await;
        Ok::<Tally, Error>(tally)
    }))
    .await
}
