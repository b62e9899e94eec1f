//! The AWS adapters behind the ports, built once at cold start.

use steadfast_aws::events::EventBridgeBus;
use steadfast_aws::gates::DynamoGates;
use steadfast_aws::http::HttpTarget;
use steadfast_aws::invoke::LambdaInvoker;
use steadfast_aws::ledger::DynamoLedger;
use steadfast_aws::parking::SqsParking;
use steadfast_aws::probe::SqsProbeSource;
use steadfast_aws::switch::EsmSwitch;
use steadfast_aws::{Clients, ConfigError, Env};
use steadfast_domain::ProbeMode;

use crate::{MessageProbe, Ports};

/// The ports as deployed.
pub type AwsPorts = Ports<
    DynamoGates,
    EventBridgeBus,
    LambdaInvoker,
    EsmSwitch,
    HttpTarget,
    SqsProbeSource,
    DynamoLedger,
    SqsParking,
>;

/// Builds every adapter from the environment; an error names the variable at fault.
pub async fn ports(env: &Env, clients: &Clients) -> Result<AwsPorts, ConfigError> {
    let probes = clients.probes(env, clients.target_token(env).await?)?;
    // The queue, ledger and parking only where a target is probed by a real message.
    let messages = if probes.values().any(|p| p.mode == ProbeMode::Message) {
        Some(MessageProbe {
            source: clients.probe_source(env)?,
            ledger: clients.ledger(env)?,
            parking: clients.parking(env)?,
        })
    } else {
        None
    };
    Ok(Ports {
        gates: clients.gates(env)?,
        events: clients.bus(env)?,
        invoker: clients.invoker(env)?,
        switches: clients.switches(env)?,
        probes,
        messages,
    })
}
