//! processor: wiring only. Configuration (read once, failing with the variable's name),
//! adapters, and the Lambda runtime loop. The logic is in `lib.rs`.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use processor::{deadline_from, Config, Ports};
use steadfast_aws::{
    clients::identity_rule, events::EventBridgeBus, gates::DynamoGates, http::HttpTarget,
    invoke::LambdaInvoker, ledger::DynamoLedger, parking::SqsParking, Clients, ConfigError, Env,
};
use steadfast_domain::RetryPolicy;

type Live = Ports<DynamoGates, DynamoLedger, SqsParking, EventBridgeBus, LambdaInvoker, HttpTarget>;

fn config(env: &Env) -> Result<Config, ConfigError> {
    let d = RetryPolicy::default();
    Ok(Config {
        target: env
            .optional("TARGET_NAME")
            .unwrap_or_else(|| "portal".into()),
        identity: identity_rule(env)?,
        retry: RetryPolicy {
            max_attempts: env.whole_in("MAX_ATTEMPTS", u64::from(d.max_attempts), 2, 20)? as u32,
            base: env.seconds("RETRY_BASE_SECONDS", d.base)?,
            cap: env.seconds("RETRY_CAP_SECONDS", d.cap)?,
            ..d
        },
        source: env
            .optional("SOURCE_NAME")
            .unwrap_or_else(|| "orders".into()),
        poison_receive_count: env.whole_in("POISON_RECEIVE_COUNT", 5, 1, 1000)? as u32,
        ramp_up_successes: env.whole_in("RAMP_UP_SUCCESSES", 20, 1, 100_000)?,
    })
}

async fn ports(env: &Env) -> Result<Live, ConfigError> {
    let clients = Clients::load(env).await;
    Ok(Ports {
        gates: clients.gates(env)?,
        ledger: clients.ledger(env)?,
        parking: clients.parking(env)?,
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
