//! open: resumes the flow. `Halted | Probing → Flowing` with a conditional write, only for the
//! halt the request belongs to (an operator's resume names no epoch); then the event source
//! mapping is enabled, any pending probe schedule deleted, and `FlowResumed` emitted.

use serde::Deserialize;
use steadfast_domain::ports::*;
use steadfast_domain::{FlowEvent, ProbeRequest};
use tracing::{info, warn};

pub struct Ports<G, S, E, M> {
    pub gates: G,
    pub switch: S,
    pub events: E,
    pub timers: M,
}

/// From `close` after a healthy probe (with epoch and attempt), or from an operator (target
/// only).
#[derive(Debug, Clone, Deserialize)]
pub struct OpenRequest {
    pub target: String,
    pub epoch: Option<u64>,
    pub attempt: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Resumed { epoch: u64 },
    NoOp(String),
}

use steadfast_aws::now_ms;

impl<G: GateStore, S: FlowSwitch, E: EventBus, M: Timers> Ports<G, S, E, M> {
    pub async fn handle(&self, request: OpenRequest) -> Result<Done, PortError> {
        let gate = self.gates.load(&request.target).await?;
        let now = now_ms();
        let next = match gate.resume(request.epoch, now, "resumed") {
            Ok(n) => n,
            Err(refused) => {
                if gate.is_flowing() {
                    // A retry of an open whose mapping update failed: make sure the flow runs.
                    self.switch.set_enabled(true).await?;
                }
                info!(reason = %refused, outcome = "no_op", "nothing to resume");
                return Ok(Done::NoOp(refused.to_string()));
            }
        };
        if !self.gates.save(&next).await? {
            return Ok(Done::NoOp("the gate changed concurrently".into()));
        }
        self.switch.set_enabled(true).await?;
        // The timer the gate was waiting for, if it is a schedule, is now pointless.
        let pending = ProbeRequest {
            target: gate.target.clone(),
            epoch: gate.epoch,
            attempt: gate.attempt,
        };
        if let Err(e) = self.timers.cancel(&pending).await {
            warn!(error = %e, "pending schedule not deleted; it will fire stale and be ignored");
        }
        let probes = request.attempt.map(|a| a + 1).unwrap_or(gate.attempt);
        let halted_for_ms = now.saturating_sub(gate.halted_at_ms);
        info!(target_api = %gate.target, epoch = gate.epoch, probes, halted_for_ms, outcome = "resumed", "flow resumed");
        steadfast_aws::metrics::gate_halted_seconds(&gate.target, 0);
        let event = FlowEvent::FlowResumed {
            target: gate.target.clone(),
            epoch: gate.epoch,
            probes,
            halted_for_ms,
        };
        if let Err(e) = self.events.emit(&event).await {
            warn!(error = %e, "FlowResumed event not emitted");
        }
        Ok(Done::Resumed { epoch: gate.epoch })
    }
}

impl From<ProbeRequest> for OpenRequest {
    fn from(p: ProbeRequest) -> Self {
        OpenRequest {
            target: p.target,
            epoch: Some(p.epoch),
            attempt: Some(p.attempt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steadfast_domain::fakes::*;
    use steadfast_domain::Gate;

    #[tokio::test]
    async fn resumes_once_for_the_current_halt_only() {
        let p = Ports {
            gates: MemGates::default(),
            switch: MemSwitch::default(),
            events: MemBus::default(),
            timers: MemTimers::default(),
        };
        let halted = Gate::new("portal").trip(0, "x").unwrap();
        p.gates.save(&halted).await.unwrap();
        p.switch.set_enabled(false).await.unwrap();
        let stale = OpenRequest {
            target: "portal".into(),
            epoch: Some(7),
            attempt: Some(0),
        };
        assert!(matches!(p.handle(stale).await.unwrap(), Done::NoOp(_)));
        let req = OpenRequest {
            target: "portal".into(),
            epoch: Some(1),
            attempt: Some(2),
        };
        assert_eq!(
            p.handle(req.clone()).await.unwrap(),
            Done::Resumed { epoch: 1 }
        );
        assert!(matches!(p.handle(req).await.unwrap(), Done::NoOp(_)));
        assert!(p.switch.enabled());
        assert_eq!(p.events.types(), vec!["FlowResumed"]);
        assert_eq!(
            p.timers.cancelled.lock().unwrap().len(),
            1,
            "pending schedule removed"
        );
    }

    #[tokio::test]
    async fn a_retried_open_enables_the_mapping_that_a_failed_first_try_left_disabled() {
        let p = Ports {
            gates: MemGates::default(),
            switch: MemSwitch::default(),
            events: MemBus::default(),
            timers: MemTimers::default(),
        };
        p.gates
            .save(&Gate::new("portal").trip(0, "x").unwrap())
            .await
            .unwrap();
        p.switch.set_enabled(false).await.unwrap();
        *p.switch.1.lock().unwrap() = 1;
        let req = OpenRequest {
            target: "portal".into(),
            epoch: Some(1),
            attempt: Some(0),
        };
        assert!(
            p.handle(req.clone()).await.is_err(),
            "first try: gate flowing, mapping update failed"
        );
        assert!(!p.switch.enabled());
        assert!(matches!(p.handle(req).await.unwrap(), Done::NoOp(_)));
        assert!(p.switch.enabled(), "the retry enabled it");
    }
}
