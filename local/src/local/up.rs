//! Bringing a local stack up (the fake portal, the bus proxy, the deployed template, the
//! observer of the stack's bus, the Scheduler) and down again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Result};

use super::{Local, Options};
use crate::aws::{describe, Emulator};
use crate::faults::FaultProxy;
use crate::portal::Portal;
use crate::schedules::Scheduler;
use crate::stack::deploy;

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

/// The template parameters of a local stack: the local defaults (short timeouts and
/// backoffs), the fake portal's URLs when it serves the stack, then the caller's.
fn parameters(
    name: &str,
    portal: Option<&Portal>,
    own: HashMap<String, String>,
) -> BTreeMap<String, String> {
    let mut params: BTreeMap<String, String> = BTreeMap::from([
        ("TargetName".into(), name.to_owned()),
        ("AllowInsecureHttp".into(), "true".into()),
        ("OrdersVisibilityTimeout".into(), "5".into()),
        ("BackoffBaseSeconds".into(), "1".into()),
        ("BackoffCapSeconds".into(), "8".into()),
        ("ApplicationsVisibilityTimeout".into(), "10".into()),
        ("OutboxLeaseSeconds".into(), "10".into()),
        ("OutboxRetryBaseSeconds".into(), "1".into()),
        ("OutboxRetryCapSeconds".into(), "4".into()),
        ("OutboxRetryWindowSeconds".into(), "86400".into()),
        ("ErpRecordsVisibilityTimeout".into(), "10".into()),
        ("InboxLeaseSeconds".into(), "10".into()),
    ]);
    if let Some(portal) = portal {
        params.insert("TargetUrl".into(), portal.orders_url());
        params.insert("ProbeUrl".into(), portal.health_url());
        params.insert("PortalUrl".into(), portal.inbox_url());
        params.insert("PortalProbeUrl".into(), portal.health_url());
    }
    params.extend(own);
    params
}

/// The SDK's per-service endpoint variables of every service the functions call.
const SERVICE_ENDPOINTS: [&str; 6] = [
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_EVENTBRIDGE",
    "AWS_ENDPOINT_URL_SCHEDULER",
    "AWS_ENDPOINT_URL_LAMBDA",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
];

/// The functions' environment on top of the template's: every AWS service through the fault
/// proxy, their log level, a short target timeout, then the caller's.
fn function_env(proxy: &FaultProxy, own: Vec<(String, String)>) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = SERVICE_ENDPOINTS
        .iter()
        .map(|v| (v.to_string(), proxy.endpoint()))
        .collect();
    env.extend([
        (
            "RUST_LOG".into(),
            std::env::var("FUNCTION_LOG").unwrap_or_else(|_| "info".into()),
        ),
        ("TARGET_TIMEOUT_SECONDS".into(), "3".into()),
    ]);
    env.extend(own);
    env
}

/// Creates the observer: a queue of its own that a rule on the stack's bus sends every
/// Steadfast event to. Returns the queue's URL.
async fn observe(emu: &Emulator, name: &str, bus: &str) -> Result<String> {
    let (observer_url, observer_arn) = emu.create_queue(&format!("{name}-observer")).await?;
    emu.events
        .put_rule()
        .name(format!("{name}-observe"))
        .event_bus_name(bus)
        .event_pattern(r#"{"source":[{"prefix":"steadfast"}]}"#)
        .send()
        .await
        .map_err(|e| anyhow!("PutRule: {}", describe(&e)))?;
    emu.events
        .put_targets()
        .rule(format!("{name}-observe"))
        .event_bus_name(bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("observer")
                .arn(&observer_arn)
                .build()?,
        )
        .send()
        .await
        .map_err(|e| anyhow!("PutTargets: {}", describe(&e)))?;
    Ok(observer_url)
}

impl Local {
    pub async fn up(opts: Options) -> Result<Local> {
        let endpoint = Emulator::endpoint_from_env();
        let emu = Emulator::connect(&endpoint).await;
        if !emu.is_localstack().await {
            bail!(
                "the local stack runs on LocalStack (its Lambda runs the functions); {endpoint} is not LocalStack"
            );
        }
        let portal = Portal::start(0).await?;
        let name = unique(&opts.prefix);
        let params = parameters(&name, opts.portal.then_some(&portal), opts.parameters);

        // Every function reaches AWS through the fault-injecting proxy.
        let proxy = FaultProxy::start(&endpoint, super::functions::pid_dir()).await?;
        let env = function_env(&proxy, opts.env);
        let stack = {
            let (name, code) = (name.clone(), opts.code);
            tokio::task::spawn_blocking(move || deploy(&name, &params, &env, code)).await??
        };
        tracing::info!(stack = %name, seconds = stack.seconds, "stack deployed");

        // Observer: every event on the stack's bus lands on a queue of its own.
        let observer_url = observe(&emu, &name, stack.reference("EventBus")?).await?;
        let scheduler = Scheduler::start(&emu, &stack, opts.rate_every);
        Ok(Local {
            emu,
            stack,
            portal,
            scheduler: Some(scheduler),
            observer_url,
            faults: proxy,
            events: Mutex::new(vec![]),
            approvals: Mutex::new(vec![]),
        })
    }

    /// Stops the local parts and deletes the stack (LocalStack then stops its functions).
    pub async fn down(mut self) {
        if let Some(s) = self.scheduler.take() {
            s.stop().await;
        }
        self.portal.stop();
        self.faults.stop();
        let name = self.stack.name.clone();
        let _ = tokio::task::spawn_blocking(move || crate::stack::delete(&name)).await;
    }
}
