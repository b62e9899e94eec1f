//! processor: wiring only. Configuration (read once, failing with the variable's name),
//! adapters, and the Lambda runtime loop. The logic is in `lib.rs`.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use processor::{deadline_from, Config, Ports};
use steadfast_aws::{
    events::EventBridgeBus, gates::DynamoGates, http::HttpTarget, invoke::LambdaInvoker,
    ledger::DynamoLedger, parking::SqsParking, Clients, ConfigError, Env,
};
use steadfast_domain::{IdentityRule, RetryPolicy};

type Live = Ports<DynamoGates, DynamoLedger, SqsParking, EventBridgeBus, LambdaInvoker, HttpTarget>;

fn config(env: &Env) -> Result<Config, ConfigError> {
    let pointers = env
        .optional("IDENTITY_POINTERS")
        .unwrap_or_else(|| "/orderId".into());
    let namespace = env
        .optional("IDENTITY_NAMESPACE")
        .unwrap_or_else(|| "orders".into());
    let identity = IdentityRule::parse(&namespace, &pointers)
        .map_err(|why| env.invalid("IDENTITY_POINTERS", &pointers, why))?;
    let defaults = RetryPolicy::default();
    let max_attempts: u32 =
        env.parsed("MAX_ATTEMPTS", defaults.max_attempts, "a whole number >= 1")?;
    if max_attempts == 0 {
        return Err(env.invalid("MAX_ATTEMPTS", "0", "a whole number >= 1"));
    }
    Ok(Config {
        target: env
            .optional("TARGET_NAME")
            .unwrap_or_else(|| "portal".into()),
        identity,
        retry: RetryPolicy {
            max_attempts,
            base: env.seconds("RETRY_BASE_SECONDS", defaults.base)?,
            cap: env.seconds("RETRY_CAP_SECONDS", defaults.cap)?,
            reserve: Duration::from_secs(2),
        },
        source: env
            .optional("SOURCE_NAME")
            .unwrap_or_else(|| "orders".into()),
    })
}

async fn ports(env: &Env) -> Result<Live, ConfigError> {
    let clients = Clients::load(env).await;
    Ok(Ports {
        gates: clients.gates(env)?,
        ledger: DynamoLedger {
            client: clients.dynamodb.clone(),
            table: env.required("LEDGER_TABLE")?,
            window: Duration::from_secs(
                env.parsed("DEDUP_WINDOW_DAYS", 7u64, "a whole number of days")? * 86_400,
            ),
        },
        parking: SqsParking {
            client: clients.sqs.clone(),
            queue_url: env.required("PARKING_QUEUE_URL")?,
        },
        events: clients.bus(env)?,
        invoker: clients.invoker(env)?,
        target: HttpTarget::from_env(env, clients.target_token(env).await?)?,
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    steadfast_aws::logging::init();
    let env = Env::process();
    let cfg = config(&env)?;
    let ports = ports(&env).await?;
    // Used only when the runtime gives no usable deadline (local Runtime API servers).
    let fallback_timeout = env.seconds("INVOCATION_TIMEOUT_SECONDS", Duration::from_secs(30))?;
    let (cfg, ports) = (&cfg, &ports);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = deadline_from(event.context.deadline, fallback_timeout);
        let (response, _tally) = ports.handle(cfg, event.payload, deadline).await;
        Ok::<SqsBatchResponse, Error>(response)
    }))
    .await
}
