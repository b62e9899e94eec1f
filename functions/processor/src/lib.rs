//! processor: delivers a batch of queued orders to the target API, guarded by the gate.
//!
//! Per batch: read the gate once (no gate writes while healthy); if it is not `Flowing`, hand
//! every message back untouched. Otherwise per message: validate (bad ones are parked with the
//! reason), skip identities the ledger already holds, deliver with retries per the
//! [`RetryPolicy`]. A permanent refusal parks the message. When a message exhausts its
//! attempts it goes back to the queue, a `DeliveryFailed` event is emitted, `close` is asked to
//! halt the flow, and the rest of the batch is handed back unattempted.

use std::collections::HashSet;
use std::time::Instant;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use steadfast_domain::ports::*;
use steadfast_domain::{
    CloseRequest, FlowEvent, IdentityRule, OrderMessage, Outcome, RetryDecision, RetryPolicy,
    TripRequest,
};
use tracing::{info, warn};

pub struct Config {
    /// Name of the guarded target (the gate's key). `TARGET_NAME`, default `portal`.
    pub target: String,
    /// Where the business identity sits. `IDENTITY_NAMESPACE` (default `orders`),
    /// `IDENTITY_POINTERS` (default `/orderId`).
    pub identity: IdentityRule,
    /// `MAX_ATTEMPTS` (default 5) and the in-process pauses.
    pub retry: RetryPolicy,
    /// Name of the source, recorded on parked messages. `SOURCE_NAME`, default `orders`.
    pub source: String,
}

pub struct Ports<G, L, P, E, I, T> {
    pub gates: G,
    pub ledger: L,
    pub parking: P,
    pub events: E,
    pub invoker: I,
    pub target: T,
}

/// What happened to one batch, for the log line and the tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub delivered: u32,
    pub duplicates_skipped: u32,
    pub parked: u32,
    pub handed_back: u32,
    pub api_calls: u32,
    pub tripped: bool,
}

use steadfast_aws::now_ms;

enum Fate {
    Handled,
    HandBack,
    /// Hand this one and all after it back.
    Stop,
}

impl<G, L, P, E, I, T> Ports<G, L, P, E, I, T>
where
    G: GateStore,
    L: Ledger,
    P: Parking,
    E: EventBus,
    I: Invoker,
    T: Target,
{
    /// Handles one SQS batch; `deadline` is when this invocation must have answered.
    pub async fn handle(
        &self,
        cfg: &Config,
        event: SqsEvent,
        deadline: Instant,
    ) -> (SqsBatchResponse, Tally) {
        let mut tally = Tally::default();
        let messages = event.records;
        let mut failures: Vec<String> = Vec::new();
        let hand_back_all = |msgs: &[SqsMessage], failures: &mut Vec<String>| {
            failures.extend(msgs.iter().filter_map(|m| m.message_id.clone()));
        };

        let gate = match self.gates.load(&cfg.target).await {
            Ok(g) => g,
            Err(e) => {
                warn!(target_api = %cfg.target, error = %e, "gate unreadable; handing the batch back");
                hand_back_all(&messages, &mut failures);
                tally.handed_back = failures.len() as u32;
                return (response(failures), tally);
            }
        };
        if !gate.is_flowing() {
            info!(target_api = %cfg.target, state = ?gate.state, epoch = gate.epoch, count = messages.len(), "gate not flowing; batch handed back");
            hand_back_all(&messages, &mut failures);
            tally.handed_back = failures.len() as u32;
            return (response(failures), tally);
        }

        // Validate everything first, so the ledger is asked once per batch.
        let parsed: Vec<(usize, Result<OrderMessage, String>)> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                (
                    i,
                    OrderMessage::parse(m.body.as_deref().unwrap_or(""), &cfg.identity)
                        .map_err(|e| e.to_string()),
                )
            })
            .collect();
        let identities: Vec<String> = parsed
            .iter()
            .filter_map(|(_, p)| p.as_ref().ok().map(|o| o.identity.clone()))
            .collect();
        let mut delivered: HashSet<String> = match self.ledger.delivered(&identities).await {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "ledger unreadable; handing the batch back");
                hand_back_all(&messages, &mut failures);
                tally.handed_back = failures.len() as u32;
                return (response(failures), tally);
            }
        };

        for (index, result) in parsed {
            let msg = &messages[index];
            let message_id = msg.message_id.clone().unwrap_or_default();
            let fate = match result {
                Err(reason) => self.park(cfg, msg, None, &reason, &mut tally).await,
                Ok(order) if delivered.contains(&order.identity) => {
                    info!(message_id, identity = %order.identity, outcome = "duplicate_skipped", "already delivered");
                    tally.duplicates_skipped += 1;
                    Fate::Handled
                }
                Ok(order) => {
                    let fate = self.deliver(cfg, msg, &order, deadline, &mut tally).await;
                    if matches!(fate, Fate::Handled) {
                        delivered.insert(order.identity);
                    }
                    fate
                }
            };
            match fate {
                Fate::Handled => {}
                Fate::HandBack => failures.push(message_id),
                Fate::Stop => {
                    hand_back_all(&messages[index..], &mut failures);
                    break;
                }
            }
        }
        tally.handed_back = failures.len() as u32;
        info!(target_api = %cfg.target, delivered = tally.delivered, duplicates = tally.duplicates_skipped, parked = tally.parked, handed_back = tally.handed_back, tripped = tally.tripped, "batch done");
        (response(failures), tally)
    }

    async fn park(
        &self,
        cfg: &Config,
        msg: &SqsMessage,
        identity: Option<&str>,
        reason: &str,
        tally: &mut Tally,
    ) -> Fate {
        let message_id = msg.message_id.clone().unwrap_or_default();
        let parked = ParkedMessage {
            source: cfg.source.clone(),
            message_id: message_id.clone(),
            identity: identity.map(str::to_owned),
            reason: reason.to_owned(),
            parked_at_ms: now_ms(),
            body: msg.body.clone().unwrap_or_default(),
        };
        match self.parking.park(&parked).await {
            Ok(()) => {
                warn!(
                    message_id,
                    identity,
                    reason,
                    outcome = "parked",
                    "message parked"
                );
                tally.parked += 1;
                let event = FlowEvent::MessageParked {
                    target: cfg.target.clone(),
                    identity: identity.unwrap_or("").to_owned(),
                    message_id,
                    reason: reason.to_owned(),
                };
                if let Err(e) = self.events.emit(&event).await {
                    warn!(error = %e, "MessageParked event not emitted");
                }
                Fate::Handled
            }
            Err(e) => {
                // Not parked, so not deleted: it comes back and is parked next time.
                warn!(message_id, reason, error = %e, "parking failed; message handed back");
                Fate::HandBack
            }
        }
    }

    async fn deliver(
        &self,
        cfg: &Config,
        msg: &SqsMessage,
        order: &OrderMessage,
        deadline: Instant,
        tally: &mut Tally,
    ) -> Fate {
        let message_id = msg.message_id.clone().unwrap_or_default();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            tally.api_calls += 1;
            let outcome = self.target.deliver(&order.identity, &order.body).await;
            if let Outcome::Delivered { status } = outcome {
                info!(message_id, identity = %order.identity, status, attempt, outcome = "delivered", "delivered");
                tally.delivered += 1;
                if let Err(e) = self.ledger.record(&order.identity, &message_id).await {
                    // Delivered all the same; a redelivery would meet the target's own
                    // idempotency check through the same Idempotency-Key.
                    warn!(identity = %order.identity, error = %e, "ledger write failed");
                }
                return Fate::Handled;
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            match cfg
                .retry
                .decide(attempt, &outcome, remaining, rand::random::<f64>())
            {
                RetryDecision::Wait(pause) => {
                    info!(message_id, identity = %order.identity, attempt, reason = %outcome.reason(), pause_ms = pause.as_millis() as u64, outcome = "retrying", "transient failure");
                    tokio::time::sleep(pause).await;
                }
                RetryDecision::Park(reason) => {
                    return self
                        .park(cfg, msg, Some(&order.identity), &reason, tally)
                        .await
                }
                RetryDecision::GiveUp {
                    reason,
                    exhausted: false,
                } => {
                    warn!(message_id, identity = %order.identity, attempt, reason, outcome = "out_of_time", "invocation out of time; rest of batch handed back");
                    return Fate::Stop;
                }
                RetryDecision::GiveUp {
                    reason,
                    exhausted: true,
                } => {
                    warn!(message_id, identity = %order.identity, attempt, reason, outcome = "exhausted", "giving up; asking close to halt the flow");
                    tally.tripped = true;
                    let failed = FlowEvent::DeliveryFailed {
                        target: cfg.target.clone(),
                        identity: order.identity.clone(),
                        message_id: message_id.clone(),
                        attempts: attempt,
                        reason: reason.clone(),
                    };
                    if let Err(e) = self.events.emit(&failed).await {
                        warn!(error = %e, "DeliveryFailed event not emitted");
                    }
                    let trip = CloseRequest::Trip(TripRequest {
                        target: cfg.target.clone(),
                        reason: format!("{attempt} failed attempts, last: {reason}"),
                    });
                    if let Err(e) = self.invoker.close(&trip).await {
                        warn!(error = %e, "trip request not sent; the next batch will try again");
                    }
                    return Fate::Stop;
                }
            }
        }
    }
}

fn response(failures: Vec<String>) -> SqsBatchResponse {
    let mut r = SqsBatchResponse::default();
    r.batch_item_failures = failures
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    r
}

pub use steadfast_aws::deadline_from;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use steadfast_domain::fakes::*;
    use steadfast_domain::Gate;

    type Fake = Ports<MemGates, MemLedger, MemParking, MemBus, MemInvoker, ScriptedTarget>;

    fn ports(target: ScriptedTarget) -> Fake {
        Ports {
            gates: MemGates::default(),
            ledger: MemLedger::default(),
            parking: MemParking::default(),
            events: MemBus::default(),
            invoker: MemInvoker::default(),
            target,
        }
    }

    fn cfg(max_attempts: u32) -> Config {
        Config {
            target: "portal".into(),
            identity: IdentityRule::parse("orders", "/orderId").unwrap(),
            retry: RetryPolicy {
                max_attempts,
                base: Duration::from_millis(1),
                cap: Duration::from_millis(2),
                reserve: Duration::ZERO,
            },
            source: "orders".into(),
        }
    }

    fn event(bodies: &[&str]) -> SqsEvent {
        let records: Vec<serde_json::Value> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| serde_json::json!({"messageId": format!("m{i}"), "body": b}))
            .collect();
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
    }

    fn failed(r: &SqsBatchResponse) -> Vec<String> {
        r.batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect()
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[tokio::test]
    async fn a_healthy_batch_is_delivered_without_any_gate_write() {
        let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 201 }));
        let (r, tally) = p
            .handle(
                &cfg(5),
                event(&[r#"{"orderId":"1"}"#, r#"{"orderId":"2"}"#]),
                later(),
            )
            .await;
        assert!(failed(&r).is_empty());
        assert_eq!(tally.delivered, 2);
        assert!(
            p.gates.get("portal").is_none(),
            "no gate write while healthy"
        );
        assert_eq!(p.target.calls(), vec!["orders/1", "orders/2"]);
    }

    #[tokio::test]
    async fn a_halted_gate_hands_everything_back_without_calling_the_api() {
        let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 201 }));
        let halted = Gate::new("portal").trip(0, "x").unwrap();
        assert!(p.gates.save(&halted).await.unwrap());
        let (r, _) = p
            .handle(
                &cfg(5),
                event(&[r#"{"orderId":"1"}"#, r#"{"orderId":"2"}"#]),
                later(),
            )
            .await;
        assert_eq!(failed(&r), vec!["m0", "m1"]);
        assert!(p.target.calls().is_empty());
    }

    #[tokio::test]
    async fn exhausted_retries_trip_the_gate_and_hand_back_the_rest_unattempted() {
        let p = ports(ScriptedTarget::new(
            vec![Outcome::Delivered { status: 201 }],
            Outcome::Transient("HTTP 503".into()),
        ));
        let (r, tally) = p
            .handle(
                &cfg(3),
                event(&[
                    r#"{"orderId":"1"}"#,
                    r#"{"orderId":"2"}"#,
                    r#"{"orderId":"3"}"#,
                ]),
                later(),
            )
            .await;
        assert_eq!(failed(&r), vec!["m1", "m2"]);
        assert!(tally.tripped);
        assert_eq!(
            p.target.calls(),
            vec!["orders/1", "orders/2", "orders/2", "orders/2"],
            "3 attempts, order 3 untouched"
        );
        assert_eq!(p.events.types(), vec!["DeliveryFailed"]);
        assert!(matches!(
            p.invoker.all().as_slice(),
            [Invoked::Close(CloseRequest::Trip(_))]
        ));
    }

    #[tokio::test]
    async fn permanent_refusals_and_bad_input_are_parked_and_the_batch_goes_on() {
        let p = ports(ScriptedTarget::new(
            vec![Outcome::Permanent("HTTP 400: Bad Request".into())],
            Outcome::Delivered { status: 201 },
        ));
        let (r, tally) = p
            .handle(
                &cfg(5),
                event(&[
                    r#"{"orderId":"1"}"#,
                    "nope",
                    r#"{"x":1}"#,
                    r#"{"orderId":"4"}"#,
                ]),
                later(),
            )
            .await;
        assert!(failed(&r).is_empty(), "parked messages count as handled");
        assert_eq!((tally.parked, tally.delivered), (3, 1));
        let reasons: Vec<String> = p.parking.all().into_iter().map(|m| m.reason).collect();
        assert_eq!(reasons[0], "HTTP 400: Bad Request");
        assert!(reasons[1].starts_with("body is not valid JSON"));
        assert_eq!(reasons[2], "identity field /orderId is missing");
        assert_eq!(p.parking.all()[1].body, "nope", "parked whole");
    }

    #[tokio::test]
    async fn identities_in_the_ledger_or_earlier_in_the_batch_are_not_sent_again() {
        let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 201 }));
        p.ledger.record("orders/1", "old").await.unwrap();
        let (r, tally) = p
            .handle(
                &cfg(5),
                event(&[
                    r#"{"orderId":"1"}"#,
                    r#"{"orderId":"2"}"#,
                    r#"{"orderId":"2","messageId":"resent"}"#,
                ]),
                later(),
            )
            .await;
        assert!(failed(&r).is_empty());
        assert_eq!(tally.duplicates_skipped, 2);
        assert_eq!(p.target.calls(), vec!["orders/2"]);
    }

    #[tokio::test]
    async fn running_out_of_time_hands_back_without_tripping() {
        let p = ports(ScriptedTarget::always(Outcome::Transient("timeout".into())));
        let mut c = cfg(5);
        c.retry.reserve = Duration::from_secs(5);
        let (r, tally) = p
            .handle(
                &c,
                event(&[r#"{"orderId":"1"}"#, r#"{"orderId":"2"}"#]),
                Instant::now() + Duration::from_secs(1),
            )
            .await;
        assert_eq!(failed(&r), vec!["m0", "m1"]);
        assert!(!tally.tripped);
        assert!(p.invoker.all().is_empty());
    }
}
