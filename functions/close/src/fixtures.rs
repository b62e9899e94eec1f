//! Test fixtures shared by the paths' tests: in-memory ports around one target, `portal`,
//! and the requests the tests send.

use std::collections::BTreeMap;
use std::time::Duration;

pub(crate) use steadfast_domain::fakes::*;
pub(crate) use steadfast_domain::ports::Probe;
pub(crate) use steadfast_domain::{
    Backoff, CloseRequest, GateState, IdentityRule, Outcome, ProbeMode, ProbeRequest, TripRequest,
};

pub(crate) use crate::{Config, Done, MessageProbe, Ports};

pub(crate) type Fake = Ports<
    MemGates,
    MemBus,
    MemInvoker,
    MemSwitch,
    ScriptedTarget,
    MemProbeSource,
    MemLedger,
    MemParking,
>;

pub(crate) fn cfg() -> Config {
    Config {
        backoff: Backoff::default(),
        relapse: Duration::from_secs(600),
        grace: Duration::from_secs(120),
        ramp: Duration::from_secs(60),
        full_concurrency: 5,
        identity: IdentityRule::parse("orders", "/orderId").unwrap(),
        source: "orders".into(),
        pipelines: steadfast_aws::metrics::Pipelines::of_guarded(&["portal".into()]),
    }
}

pub(crate) fn ports_with(target: ScriptedTarget, mode: ProbeMode, queued: &[&str]) -> Fake {
    Ports {
        gates: MemGates::default(),
        events: MemBus::default(),
        invoker: MemInvoker::default(),
        switches: BTreeMap::from([("portal".to_owned(), Some(MemSwitch::default()))]),
        probes: BTreeMap::from([("portal".to_owned(), Probe { target, mode })]),
        messages: Some(MessageProbe {
            source: MemProbeSource::with(queued),
            ledger: MemLedger::default(),
            parking: MemParking::default(),
        }),
    }
}

pub(crate) fn ports(target: ScriptedTarget) -> Fake {
    ports_with(target, ProbeMode::Health, &[])
}

pub(crate) fn switch(p: &Fake) -> &MemSwitch {
    p.switches["portal"].as_ref().unwrap()
}

pub(crate) fn trip_with(wait_hint_ms: Option<u64>) -> CloseRequest {
    CloseRequest::Trip(TripRequest {
        target: "portal".into(),
        reason: "5 failures".into(),
        wait_hint_ms,
        manual: false,
        observed_at_ms: None,
        correlation_id: None,
    })
}

pub(crate) fn trip() -> CloseRequest {
    trip_with(None)
}

/// An operator's halt of `portal` for "maintenance".
pub(crate) fn manual_trip() -> CloseRequest {
    CloseRequest::Trip(TripRequest {
        target: "portal".into(),
        reason: "maintenance".into(),
        wait_hint_ms: None,
        manual: true,
        observed_at_ms: None,
        correlation_id: None,
    })
}

pub(crate) fn probe(epoch: u64, attempt: u32) -> CloseRequest {
    CloseRequest::Probe(ProbeRequest {
        target: "portal".into(),
        epoch,
        attempt,
        at_ms: None,
    })
}

pub(crate) fn sick() -> Outcome {
    Outcome::unavailable("HTTP 503")
}

pub(crate) fn backoffs(p: &Fake) -> Vec<ProbeRequest> {
    p.invoker
        .all()
        .into_iter()
        .filter_map(|i| match i {
            Invoked::Backoff(r) => Some(r),
            _ => None,
        })
        .collect()
}
