//! close: halts the flow, and runs the probes.
//!
//! - Trip (from the processor or an operator): `Flowing → Halted` with a conditional write,
//!   so of many concurrent callers exactly one wins and the others do nothing; the winner
//!   disables the event source mapping, emits `FlowHalted`, and starts the backoff chain at
//!   attempt 0.
//! - Probe (from a timer on the `timers` queue): `Halted → Probing` only for the epoch and
//!   attempt the gate waits for, so a duplicate or stale timer is a no-op; then the target is
//!   checked: healthy → `open`, still sick → `Halted` at attempt + 1 and `backoff`.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde_json::Value;
use steadfast_domain::ports::*;
use steadfast_domain::{CloseRequest, FlowEvent, Outcome, ProbeRequest, Refused, TripRequest};
use tracing::{info, warn};

pub struct Ports<G, S, E, I, T> {
    pub gates: G,
    pub switch: S,
    pub events: E,
    pub invoker: I,
    pub target: T,
}

/// What one request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Halted {
        epoch: u64,
    },
    Resuming {
        epoch: u64,
        attempt: u32,
    },
    StillSick {
        epoch: u64,
        next_attempt: u32,
    },
    /// Someone else did it, or the request is out of date: nothing was changed.
    NoOp(String),
}

use steadfast_aws::now_ms;

impl<G: GateStore, S: FlowSwitch, E: EventBus, I: Invoker, T: Target> Ports<G, S, E, I, T> {
    /// Entry point: a direct request, or an SQS event from the timers queue.
    pub async fn handle_value(&self, event: Value) -> Result<Value, PortError> {
        if event.get("Records").is_some() {
            let sqs: SqsEvent =
                serde_json::from_value(event).map_err(|e| PortError::new("decode SQS event", e))?;
            return Ok(serde_json::to_value(self.handle_timers(sqs).await).unwrap_or(Value::Null));
        }
        let request: CloseRequest = serde_json::from_value(event).map_err(|e| {
            PortError::new(
                "decode close request",
                format!("{e}; expected {{\"kind\":\"trip\"|\"probe\", ...}}"),
            )
        })?;
        let done = self.handle(request).await?;
        Ok(serde_json::json!({ "done": format!("{done:?}") }))
    }

    /// Timer messages. A malformed timer is logged and dropped (it can never become valid);
    /// one that failed on an AWS error is handed back to be retried.
    pub async fn handle_timers(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in event.records {
            let id = record.message_id.clone().unwrap_or_default();
            let probe: ProbeRequest = match serde_json::from_str(
                record.body.as_deref().unwrap_or(""),
            ) {
                Ok(p) => p,
                Err(e) => {
                    warn!(message_id = id, error = %e, outcome = "dropped", "timer message is not a probe request");
                    continue;
                }
            };
            if let Err(e) = self.handle(CloseRequest::Probe(probe)).await {
                warn!(message_id = id, error = %e, "probe failed on an AWS error; timer handed back");
                let mut f = BatchItemFailure::default();
                f.item_identifier = id;
                response.batch_item_failures.push(f);
            }
        }
        response
    }

    pub async fn handle(&self, request: CloseRequest) -> Result<Done, PortError> {
        match request {
            CloseRequest::Trip(trip) => self.trip(trip).await,
            CloseRequest::Probe(probe) => self.probe(probe).await,
        }
    }

    async fn trip(&self, trip: TripRequest) -> Result<Done, PortError> {
        let gate = self.gates.load(&trip.target).await?;
        let next = match gate.trip(now_ms(), &trip.reason) {
            Ok(n) => n,
            Err(refused) => return Ok(no_op(refused)),
        };
        if !self.gates.save(&next).await? {
            return Ok(Done::NoOp("another trip won".into()));
        }
        warn!(target_api = %trip.target, epoch = next.epoch, reason = %trip.reason, outcome = "halted", "flow halted");
        // The gate already stops deliveries; disabling the mapping only saves the polling. A
        // failure here must not keep the probe chain from starting.
        if let Err(e) = self.switch.set_enabled(false).await {
            warn!(target_api = %trip.target, error = %e, "mapping not disabled; the gate still holds deliveries back");
        }
        let halted = FlowEvent::FlowHalted {
            target: trip.target.clone(),
            epoch: next.epoch,
            reason: trip.reason.clone(),
        };
        if let Err(e) = self.events.emit(&halted).await {
            warn!(error = %e, "FlowHalted event not emitted");
        }
        self.invoker
            .backoff(&ProbeRequest {
                target: trip.target,
                epoch: next.epoch,
                attempt: 0,
            })
            .await?;
        Ok(Done::Halted { epoch: next.epoch })
    }

    async fn probe(&self, probe: ProbeRequest) -> Result<Done, PortError> {
        let gate = self.gates.load(&probe.target).await?;
        let probing = match gate.begin_probe(probe.epoch, probe.attempt, now_ms()) {
            Ok(n) => n,
            Err(refused) => return Ok(no_op(refused)),
        };
        if !self.gates.save(&probing).await? {
            return Ok(Done::NoOp("a concurrent probe won".into()));
        }
        let outcome = self.target.check().await;
        if outcome.is_delivered() {
            info!(target_api = %probe.target, epoch = probe.epoch, attempt = probe.attempt, outcome = "healthy", "probe: target is up");
            self.invoker.open(&probe).await?;
            return Ok(Done::Resuming {
                epoch: probe.epoch,
                attempt: probe.attempt,
            });
        }
        let reason = match &outcome {
            Outcome::Delivered { .. } => unreachable!("handled above"),
            other => other.reason(),
        };
        let halted = probing
            .probe_failed(probe.epoch, probe.attempt, now_ms(), &reason)
            .map_err(|r| PortError::new("probe_failed", r))?;
        if !self.gates.save(&halted).await? {
            return Ok(Done::NoOp("the gate changed during the probe".into()));
        }
        info!(target_api = %probe.target, epoch = probe.epoch, attempt = probe.attempt, reason, outcome = "still_sick", "probe: target still down");
        steadfast_aws::metrics::gate_halted_seconds(
            &probe.target,
            now_ms().saturating_sub(halted.halted_at_ms) / 1000,
        );
        let event = FlowEvent::ProbeFailed {
            target: probe.target.clone(),
            epoch: probe.epoch,
            attempt: probe.attempt,
            reason,
        };
        if let Err(e) = self.events.emit(&event).await {
            warn!(error = %e, "ProbeFailed event not emitted");
        }
        let next = ProbeRequest {
            attempt: halted.attempt,
            ..probe
        };
        self.invoker.backoff(&next).await?;
        Ok(Done::StillSick {
            epoch: next.epoch,
            next_attempt: next.attempt,
        })
    }
}

fn no_op(refused: Refused) -> Done {
    info!(reason = %refused, outcome = "no_op", "nothing to do");
    Done::NoOp(refused.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use steadfast_domain::fakes::*;
    use steadfast_domain::GateState;

    fn ports(
        target: ScriptedTarget,
    ) -> Ports<MemGates, MemSwitch, MemBus, MemInvoker, ScriptedTarget> {
        Ports {
            gates: MemGates::default(),
            switch: MemSwitch::default(),
            events: MemBus::default(),
            invoker: MemInvoker::default(),
            target,
        }
    }

    fn trip() -> CloseRequest {
        CloseRequest::Trip(TripRequest {
            target: "portal".into(),
            reason: "5 failures".into(),
        })
    }

    fn probe(epoch: u64, attempt: u32) -> CloseRequest {
        CloseRequest::Probe(ProbeRequest {
            target: "portal".into(),
            epoch,
            attempt,
        })
    }

    #[tokio::test]
    async fn the_first_trip_halts_disables_and_starts_the_chain_the_second_does_nothing() {
        let p = ports(ScriptedTarget::always(Outcome::Transient("503".into())));
        assert_eq!(p.handle(trip()).await.unwrap(), Done::Halted { epoch: 1 });
        assert!(matches!(p.handle(trip()).await.unwrap(), Done::NoOp(_)));
        assert!(!p.switch.enabled());
        assert_eq!(p.events.types(), vec!["FlowHalted"]);
        assert_eq!(
            p.invoker.all(),
            vec![Invoked::Backoff(ProbeRequest {
                target: "portal".into(),
                epoch: 1,
                attempt: 0
            })]
        );
    }

    #[tokio::test]
    async fn a_sick_probe_schedules_the_next_attempt_and_a_duplicate_timer_is_a_no_op() {
        let p = ports(ScriptedTarget::always(Outcome::Transient(
            "HTTP 503".into(),
        )));
        p.handle(trip()).await.unwrap();
        assert_eq!(
            p.handle(probe(1, 0)).await.unwrap(),
            Done::StillSick {
                epoch: 1,
                next_attempt: 1
            }
        );
        assert!(
            matches!(p.handle(probe(1, 0)).await.unwrap(), Done::NoOp(_)),
            "duplicate timer"
        );
        assert!(
            matches!(p.handle(probe(0, 1)).await.unwrap(), Done::NoOp(_)),
            "stale epoch"
        );
        assert_eq!(p.target.calls().len(), 1, "one probe");
        let g = p.gates.get("portal").unwrap();
        assert_eq!((g.state, g.attempt), (GateState::Halted, 1));
    }

    #[tokio::test]
    async fn the_probe_chain_starts_even_when_the_mapping_cannot_be_disabled() {
        let p = ports(ScriptedTarget::always(Outcome::Transient("503".into())));
        *p.switch.1.lock().unwrap() = 1;
        assert_eq!(p.handle(trip()).await.unwrap(), Done::Halted { epoch: 1 });
        assert!(matches!(p.invoker.all().as_slice(), [Invoked::Backoff(_)]));
    }

    #[tokio::test]
    async fn a_healthy_probe_asks_open_to_resume() {
        let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 200 }));
        p.handle(trip()).await.unwrap();
        assert_eq!(
            p.handle(probe(1, 0)).await.unwrap(),
            Done::Resuming {
                epoch: 1,
                attempt: 0
            }
        );
        assert_eq!(
            p.invoker.all().last(),
            Some(&Invoked::Open(ProbeRequest {
                target: "portal".into(),
                epoch: 1,
                attempt: 0
            }))
        );
    }

    #[tokio::test]
    async fn timer_events_from_sqs_are_understood_and_garbage_is_dropped() {
        let p = ports(ScriptedTarget::always(Outcome::Transient("503".into())));
        p.handle(trip()).await.unwrap();
        let ev = serde_json::json!({"Records": [
            {"messageId": "a", "body": r#"{"target":"portal","epoch":1,"attempt":0}"#},
            {"messageId": "b", "body": "garbage"}
        ]});
        let out = p.handle_value(ev).await.unwrap();
        assert_eq!(out["batchItemFailures"], serde_json::json!([]));
        assert_eq!(p.target.calls().len(), 1);
    }
}
