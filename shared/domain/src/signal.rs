//! The messages the four breaker functions pass each other, and the events they emit.

use serde::{Deserialize, Serialize};

/// processor → close: "the target failed MAX_ATTEMPTS times, halt the flow"; or an operator's
/// halt (`manual`), which has no probes and is lifted only by an operator's resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TripRequest {
    pub target: String,
    pub reason: String,
    /// The longest wait the target announced (Retry-After), in ms: the first probe comes no
    /// earlier (up to the backoff cap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_hint_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub manual: bool,
    /// When the caller read the gate as flowing, ms since the Unix epoch: a trip request that
    /// arrives (or is retried) after the flow resumed again is out of date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at_ms: Option<u64>,
    /// The correlation id of the message (or record) whose failures halted the flow; none for
    /// an operator's halt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// close → backoff ("schedule probe `attempt`"), timer → close ("run probe `attempt`"),
/// close → open ("probe `attempt` found the target healthy").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRequest {
    pub target: String,
    pub epoch: u64,
    pub attempt: u32,
    /// When the probe is due, ms since the Unix epoch, as `close` decided it (the gate holds
    /// the same time). Without it, `backoff` computes the delay from the attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
}

impl ProbeRequest {
    /// Deterministic Scheduler schedule name: one schedule per (stack, target, epoch,
    /// attempt), so a repeated backoff call cannot create a second one, and two stacks with a
    /// target of the same name never share one. `stack` is anything unique to the stack (the
    /// timers queue's ARN); it goes in as a short hash. At most 64 characters.
    pub fn schedule_name(&self, stack: &str) -> String {
        use sha2::Digest;
        let hash = hex::encode(&sha2::Sha256::digest(stack.as_bytes())[..4]);
        let mut target: String = self
            .target
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        target.truncate(24);
        format!("probe-{hash}-{target}-e{}-a{}", self.epoch, self.attempt)
    }
}

/// What open accepts: a resume from `close` after a healthy probe (with epoch and attempt), an
/// operator's resume (target only), or the end of a ramp-up (`ramp_up` with the epoch) once
/// the processor has counted enough deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenRequest {
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ramp_up: bool,
}

impl From<&ProbeRequest> for OpenRequest {
    fn from(p: &ProbeRequest) -> Self {
        OpenRequest {
            target: p.target.clone(),
            epoch: Some(p.epoch),
            attempt: Some(p.attempt),
            ramp_up: false,
        }
    }
}

/// What close accepts: a trip from the processor or an operator, a probe from a timer, or the
/// watchdog's run from its schedule (`{"kind":"watchdog"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CloseRequest {
    Trip(TripRequest),
    Probe(ProbeRequest),
    Watchdog {},
}

/// Events on the bus (source `steadfast`), for dashboards and the error-logging/ticketing
/// service. They carry identities and reasons, never payload bodies. An event about a message
/// carries its correlation id (`correlation_id`, left out when there is none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FlowEvent {
    DeliveryFailed {
        target: String,
        identity: String,
        message_id: String,
        attempts: u32,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        correlation_id: Option<String>,
    },
    FlowHalted {
        target: String,
        epoch: u64,
        reason: String,
        /// The message whose failures halted the flow (none for an operator's halt).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        correlation_id: Option<String>,
    },
    ProbeFailed {
        target: String,
        epoch: u64,
        attempt: u32,
        reason: String,
    },
    FlowResumed {
        target: String,
        epoch: u64,
        probes: u32,
        halted_for_ms: u64,
    },
    MessageParked {
        target: String,
        identity: String,
        message_id: String,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        correlation_id: Option<String>,
    },
    /// The watchdog found the stored gate and reality apart and fixed it.
    GateRepaired {
        target: String,
        epoch: u64,
        state: String,
        repairs: Vec<String>,
    },
}

impl FlowEvent {
    /// The EventBridge `DetailType`.
    pub fn detail_type(&self) -> &'static str {
        match self {
            FlowEvent::DeliveryFailed { .. } => "DeliveryFailed",
            FlowEvent::FlowHalted { .. } => "FlowHalted",
            FlowEvent::ProbeFailed { .. } => "ProbeFailed",
            FlowEvent::FlowResumed { .. } => "FlowResumed",
            FlowEvent::MessageParked { .. } => "MessageParked",
            FlowEvent::GateRepaired { .. } => "GateRepaired",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_names_are_deterministic_and_short() {
        let p = ProbeRequest {
            target: "portal".repeat(20),
            epoch: 12,
            attempt: 14,
            at_ms: None,
        };
        assert_eq!(p.schedule_name("s"), p.clone().schedule_name("s"));
        assert!(p.schedule_name("s").len() <= 64);
        let q = ProbeRequest {
            target: "portal".into(),
            epoch: 3,
            attempt: 1,
            at_ms: Some(5),
        };
        let name = q.schedule_name("arn:aws:sqs:us-east-1:1:a-timers");
        assert!(
            name.starts_with("probe-") && name.ends_with("-portal-e3-a1"),
            "{name}"
        );
        assert_ne!(name, q.schedule_name("arn:aws:sqs:us-east-1:1:b-timers"));
    }

    #[test]
    fn close_requests_round_trip_as_tagged_json() {
        let j = r#"{"kind":"probe","target":"portal","epoch":2,"attempt":5}"#;
        let r: CloseRequest = serde_json::from_str(j).unwrap();
        assert_eq!(
            r,
            CloseRequest::Probe(ProbeRequest {
                target: "portal".into(),
                epoch: 2,
                attempt: 5,
                at_ms: None,
            })
        );
        assert_eq!(serde_json::to_string(&r).unwrap(), j);
        let w: CloseRequest =
            serde_json::from_str(r#"{"kind":"watchdog","source":"scheduler"}"#).unwrap();
        assert_eq!(w, CloseRequest::Watchdog {});
        let t: CloseRequest =
            serde_json::from_str(r#"{"kind":"trip","target":"p","reason":"r"}"#).unwrap();
        assert_eq!(
            t,
            CloseRequest::Trip(TripRequest {
                target: "p".into(),
                reason: "r".into(),
                wait_hint_ms: None,
                manual: false,
                observed_at_ms: None,
                correlation_id: None,
            })
        );
    }

    #[test]
    fn a_trip_request_and_the_halt_event_carry_the_correlation_id_only_when_there_is_one() {
        let j = r#"{"kind":"trip","target":"p","reason":"r","correlation_id":"c-1"}"#;
        let t: CloseRequest = serde_json::from_str(j).unwrap();
        assert!(
            matches!(&t, CloseRequest::Trip(t) if t.correlation_id.as_deref() == Some("c-1")),
            "{t:?}"
        );
        assert_eq!(serde_json::to_string(&t).unwrap(), j);
        let halted = |correlation_id: Option<&str>| FlowEvent::FlowHalted {
            target: "p".into(),
            epoch: 1,
            reason: "r".into(),
            correlation_id: correlation_id.map(str::to_owned),
        };
        let with = serde_json::to_value(halted(Some("c-1"))).unwrap();
        assert_eq!(with["correlation_id"], "c-1");
        let without = serde_json::to_value(halted(None)).unwrap();
        assert!(without.get("correlation_id").is_none(), "{without}");
    }
}
