//! The entry points (a direct request, or timer messages from the `timers` queue) and what
//! every path shares: the target check, the next timer and when it is due.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde_json::Value;
use steadfast_aws::metrics::{Document, Metric};
use steadfast_domain::ports::*;
use steadfast_domain::{CloseRequest, Gate, ProbeRequest, Refused};
use steadfast_runtime::batch::{correlation_id, Fate};
use tracing::{info, warn};

use crate::{Config, Done, Ports};

impl<G, E, I, S, T, Q, L, P> Ports<G, E, I, S, T, Q, L, P>
where
    G: GateStore,
    E: EventBus,
    I: Invoker,
    S: FlowSwitch,
    T: Target,
    Q: ProbeSource,
    L: Ledger,
    P: Parking,
{
    /// Entry point: a direct request, or an SQS event from the timers queue.
    pub async fn handle_value(&self, cfg: &Config, event: Value) -> Result<Value, PortError> {
        if event.get("Records").is_some() {
            let sqs: SqsEvent =
                serde_json::from_value(event).map_err(|e| PortError::new("decode SQS event", e))?;
            let response = self.handle_timers(cfg, sqs).await;
            return Ok(serde_json::to_value(response).unwrap_or(Value::Null));
        }
        let request: CloseRequest = serde_json::from_value(event).map_err(|e| {
            PortError::invalid(
                "decode close request",
                format!("{e}; expected {{\"kind\":\"trip\"|\"probe\"|\"watchdog\", ...}}"),
            )
        })?;
        let done = self.handle(cfg, request).await?;
        Ok(serde_json::json!({ "done": format!("{done:?}") }))
    }

    /// Timer messages. A malformed timer is logged and dropped (it can never become valid);
    /// one that failed on an AWS error is handed back to be retried.
    pub async fn handle_timers(&self, cfg: &Config, event: SqsEvent) -> SqsBatchResponse {
        steadfast_runtime::batch::each(&event.records, |record| async move {
            let id = record.message_id.as_deref().unwrap_or_default();
            let correlation_id = correlation_id(record);
            let probe: ProbeRequest = match serde_json::from_str(record.body.as_deref().unwrap_or("")) {
                Ok(p) => p,
                Err(e) => {
                    warn!(message_id = id, correlation_id, error = %e, outcome = "dropped", "timer message is not a probe request");
                    return Fate::Done("dropped");
                }
            };
            match self.handle(cfg, CloseRequest::Probe(probe)).await {
                Ok(_) => Fate::Done("probed"),
                Err(e) => {
                    warn!(message_id = id, correlation_id, error = %e, "probe failed on an AWS error; timer handed back");
                    Fate::HandBack
                }
            }
        })
        .await
    }

    /// One request, by its kind. A trip or probe writes its metrics (the watchdog writes its
    /// own, per gate).
    pub async fn handle(&self, cfg: &Config, request: CloseRequest) -> Result<Done, PortError> {
        let target = match &request {
            CloseRequest::Trip(trip) => Some(trip.target.clone()),
            CloseRequest::Probe(probe) => Some(probe.target.clone()),
            CloseRequest::Watchdog {} => None,
        };
        let done = match request {
            CloseRequest::Trip(trip) => self.trip(cfg, trip).await,
            CloseRequest::Probe(probe) => self.probe(cfg, probe).await,
            CloseRequest::Watchdog {} => self.watch(cfg).await,
        }?;
        if let Some(target) = target {
            metrics(cfg, &target, &done).emit();
        }
        Ok(done)
    }
}

impl<G, E, I, S, T, Q, L, P> Ports<G, E, I, S, T, Q, L, P> {
    /// `target` is guarded here; otherwise an invalid request naming the known ones.
    pub(crate) fn known(&self, target: &str) -> Result<(), PortError> {
        if self.switches.contains_key(target) {
            Ok(())
        } else {
            Err(PortError::invalid(
                "find the target",
                format!(
                    "`{target}` is not a guarded target here (known: {})",
                    self.switches.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ))
        }
    }

    /// The probe request for `gate`'s next timer.
    pub(crate) fn timer_of(gate: &Gate) -> ProbeRequest {
        ProbeRequest {
            target: gate.target.clone(),
            epoch: gate.epoch,
            attempt: gate.attempt,
            at_ms: Some(gate.next_probe_at_ms),
        }
    }

    /// When the timer of `gate`'s current attempt is due, from `now`.
    pub(crate) fn due(cfg: &Config, gate: &Gate, announced: Option<Duration>, now: u64) -> u64 {
        let delay = cfg
            .backoff
            .delay_after(gate.step, announced, rand::random::<f64>());
        now.saturating_add(delay.as_millis() as u64)
    }
}

/// The metrics of a trip or probe on `target` that came to `done`: a halt, or a probe run
/// (whatever it found); nothing for a request that changed nothing.
pub(crate) fn metrics(cfg: &Config, target: &str, done: &Done) -> Document {
    let d = Document::new(cfg.pipelines.of(target), target);
    match done {
        Done::Halted { .. } => d.count(Metric::Halts, 1u32),
        Done::Resuming { .. } | Done::StillSick { .. } => d.count(Metric::Probes, 1u32),
        Done::Watched { .. } | Done::NoOp(_) => d,
    }
}

/// A request that changes nothing, logged with why (and, for a trip, the correlation id of
/// the message whose failures asked for it).
pub(crate) fn no_op(refused: Refused, correlation_id: Option<&str>) -> Done {
    info!(reason = %refused, correlation_id, outcome = "no_op", "nothing to do");
    Done::NoOp(refused.to_string())
}

#[cfg(test)]
mod tests {
    use crate::fixtures::*;
    use steadfast_aws::metrics::{Document, Metric, Pipelines};

    #[test]
    fn a_halt_and_a_probe_are_counted_for_their_gates_pipeline() {
        // GIVEN close guarding the orders target and the inbox portal
        let mut c = cfg();
        c.pipelines = Pipelines::of_guarded(&["portal".into(), "portal-inbox".into()]);
        // THEN a halt of the orders gate counts for orders, a probe of the inbox's for inbox
        assert_eq!(
            super::metrics(&c, "portal", &Done::Halted { epoch: 1 }),
            Document::new("orders", "portal").count(Metric::Halts, 1u32)
        );
        let still_sick = Done::StillSick {
            epoch: 1,
            next_attempt: 2,
        };
        assert_eq!(
            super::metrics(&c, "portal-inbox", &still_sick),
            Document::new("inbox", "portal-inbox").count(Metric::Probes, 1u32)
        );
        // AND a request that changed nothing counts nothing
        let no_op = super::metrics(&c, "portal", &Done::NoOp("stale".into()));
        assert!(no_op.lines(0).is_empty());
    }

    #[tokio::test]
    async fn timer_events_from_sqs_are_understood_and_garbage_is_dropped() {
        let p = ports(ScriptedTarget::always(sick()));
        let c = cfg();
        p.handle(&c, trip()).await.unwrap();
        let ev = serde_json::json!({"Records": [
            {"messageId": "a", "body": r#"{"target":"portal","epoch":1,"attempt":0}"#},
            {"messageId": "b", "body": "garbage"}
        ]});
        let out = p.handle_value(&c, ev).await.unwrap();
        assert_eq!(out["batchItemFailures"], serde_json::json!([]));
        assert_eq!(p.probes["portal"].target.calls().len(), 1);
    }

    #[tokio::test]
    async fn an_unknown_target_is_refused_with_the_known_ones_named() {
        let p = ports(ScriptedTarget::always(sick()));
        let e = p
            .handle(
                &cfg(),
                CloseRequest::Trip(TripRequest {
                    target: "nope".into(),
                    reason: "x".into(),
                    wait_hint_ms: None,
                    manual: false,
                    observed_at_ms: None,
                    correlation_id: None,
                }),
            )
            .await
            .unwrap_err();
        assert!(e.is_invalid() && e.message.contains("portal"), "{e}");
    }
}
