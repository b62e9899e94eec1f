//! processor: delivers a batch of queued orders to the target API, guarded by the gate.
//!
//! Per batch: read the gate once (no gate writes while healthy); if it is not `Flowing`, hand
//! every message back untouched. Otherwise:
//! 1. validate every message; a bad one (invalid JSON, no identity, an identity over 1 024
//!    bytes) is parked with the reason before any table call;
//! 2. ask the ledger once for the batch; identities it holds are not sent again, and an
//!    identity it cannot read affects only its own message (parked if it can never be read,
//!    handed back if the read may work later);
//! 3. deliver the rest as [`BatchRun`] decides (`shared/domain/src/judge.rs`): retries with
//!    short pauses, a witness for a message that keeps failing, a halt when the target is
//!    broken for everyone, poison parking when one message keeps failing while others go
//!    through, and no call that cannot end before the deadline;
//! 4. park what the target refused, hand back the rest; on a halt emit `DeliveryFailed` and
//!    ask `close` to halt the flow with the longest Retry-After seen.
//!
//! While the flow ramps up after a resume, the batch's deliveries are counted on the gate
//! (the only gate write of the processor); the batch that reaches `RAMP_UP_SUCCESSES` asks
//! `open` to raise the mapping to its full concurrency.

use std::collections::HashMap;
use std::time::Instant;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use steadfast_domain::ports::*;
use steadfast_domain::{
    is_poison, Action, BatchRun, CloseRequest, Fate, FlowEvent, Gate, IdentityRule, OpenRequest,
    OrderMessage, Outcome, RetryPolicy, TripRequest,
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
    /// A message that has failed on its own (while others were delivered) on more receives
    /// than this is parked. `POISON_RECEIVE_COUNT`, default 5.
    pub poison_receive_count: u32,
    /// Deliveries after a resume before the flow runs at full concurrency.
    /// `RAMP_UP_SUCCESSES`, default 20.
    pub ramp_up_successes: u64,
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

/// A message of the batch that will be tried.
struct Candidate<'a> {
    msg: &'a SqsMessage,
    order: OrderMessage,
    receive_count: u32,
    /// Receives on which it failed on its own before.
    strikes: u32,
}

fn message_id(msg: &SqsMessage) -> String {
    msg.message_id.clone().unwrap_or_default()
}

fn receive_count(msg: &SqsMessage) -> u32 {
    msg.attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
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
        let observed_at_ms = now_ms();
        let gate = match self.gates.load(&cfg.target).await {
            Ok(g) if g.is_flowing() => g,
            Ok(g) => {
                info!(target_api = %cfg.target, state = ?g.state, epoch = g.epoch, count = messages.len(), "gate not flowing; batch handed back");
                return hand_back_all(&messages, tally);
            }
            Err(e) => {
                warn!(target_api = %cfg.target, error = %e, "gate unreadable; handing the batch back");
                return hand_back_all(&messages, tally);
            }
        };
        let mut failures: Vec<String> = Vec::new();

        // 1. Validate everything first, so the ledger is asked once per batch.
        let mut valid = Vec::new();
        for msg in &messages {
            match OrderMessage::parse(msg.body.as_deref().unwrap_or(""), &cfg.identity) {
                Ok(order) => valid.push(Candidate {
                    msg,
                    order,
                    receive_count: receive_count(msg),
                    strikes: 0,
                }),
                Err(e) => {
                    self.park(cfg, msg, None, &e.to_string(), &mut tally, &mut failures)
                        .await
                }
            }
        }

        // 2. The ledger: delivered identities are not sent again; a read error concerns only
        //    its own message.
        let identities: Vec<String> = valid.iter().map(|c| c.order.identity.clone()).collect();
        let read = self.ledger.delivered(&identities).await;
        let mut candidates: Vec<Candidate> = Vec::new();
        // Copies of one identity in one batch follow the first copy's fate.
        let mut copies: HashMap<String, Vec<&SqsMessage>> = HashMap::new();
        for mut c in valid {
            c.strikes = read.strikes.get(&c.order.identity).copied().unwrap_or(0);
            let id = &c.order.identity;
            if read.delivered.contains(id) {
                info!(message_id = %message_id(c.msg), identity = %id, outcome = "duplicate_skipped", "already delivered");
                tally.duplicates_skipped += 1;
            } else if let Some(e) = read.unreadable.get(id) {
                if e.is_invalid() {
                    let reason = format!("the ledger cannot hold this identity: {e}");
                    self.park(cfg, c.msg, Some(id), &reason, &mut tally, &mut failures)
                        .await;
                } else {
                    warn!(message_id = %message_id(c.msg), identity = %id, error = %e, outcome = "handed_back", "ledger unreadable for this identity");
                    failures.push(message_id(c.msg));
                }
            } else if let Some(first) = copies.get_mut(id) {
                first.push(c.msg);
            } else {
                copies.insert(id.clone(), vec![]);
                candidates.push(c);
            }
        }

        // 3. Deliver as the judge decides.
        let run = self
            .deliver_all(cfg, &candidates, deadline, &mut tally)
            .await;

        // 4. Carry out the fates.
        for (c, fate) in candidates.iter().zip(run.fates()) {
            let id = &c.order.identity;
            let same = copies.remove(id).unwrap_or_default();
            match fate {
                Fate::Delivered => {
                    tally.duplicates_skipped += same.len() as u32;
                    continue;
                }
                Fate::Refused(reason) => {
                    self.park(cfg, c.msg, Some(id), reason, &mut tally, &mut failures)
                        .await
                }
                Fate::Own(reason) => match self.poison(cfg, c, reason).await {
                    Some(why) => {
                        self.park(cfg, c.msg, Some(id), &why, &mut tally, &mut failures)
                            .await
                    }
                    None => failures.push(message_id(c.msg)),
                },
                Fate::HandBack | Fate::Open => failures.push(message_id(c.msg)),
            }
            failures.extend(same.iter().map(|m| message_id(m)));
        }
        if let Some(trip) = run.trip() {
            tally.tripped = true;
            let c = &candidates[trip.index];
            self.trip(cfg, c, trip, observed_at_ms).await;
        }
        if gate.ramping && tally.delivered > 0 {
            self.count_ramp(cfg, &gate, tally.delivered).await;
        }
        tally.handed_back = failures.len() as u32;
        info!(target_api = %cfg.target, delivered = tally.delivered, duplicates = tally.duplicates_skipped, parked = tally.parked, handed_back = tally.handed_back, api_calls = tally.api_calls, tripped = tally.tripped, "batch done");
        (response(failures), tally)
    }

    /// Runs the batch judge over `candidates`, calling the target as it says.
    async fn deliver_all(
        &self,
        cfg: &Config,
        candidates: &[Candidate<'_>],
        deadline: Instant,
        tally: &mut Tally,
    ) -> BatchRun {
        let receives: Vec<u32> = candidates.iter().map(|c| c.receive_count).collect();
        let strikes: Vec<u32> = candidates.iter().map(|c| c.strikes).collect();
        let mut run =
            BatchRun::new(cfg.retry, self.target.timeout(), &receives).with_strikes(&strikes);
        let remaining = || deadline.saturating_duration_since(Instant::now());
        loop {
            match run.next(remaining()) {
                Action::Done => return run,
                Action::Wait(pause) => tokio::time::sleep(pause).await,
                Action::Call {
                    index,
                    attempt,
                    timeout,
                } => {
                    let c = &candidates[index];
                    let message_id = message_id(c.msg);
                    let identity = &c.order.identity;
                    tally.api_calls += 1;
                    let outcome = self.target.deliver(identity, &c.order.body, timeout).await;
                    match &outcome {
                        Outcome::Delivered { status } => {
                            info!(message_id, identity = %identity, status, attempt, outcome = "delivered", "delivered");
                            tally.delivered += 1;
                            if let Err(e) = self.ledger.record(identity, &message_id).await {
                                // Delivered all the same; a redelivery meets the target's own
                                // idempotency check through the same Idempotency-Key.
                                warn!(identity = %identity, error = %e, "ledger write failed");
                            }
                        }
                        Outcome::Refused(reason) => {
                            info!(message_id, identity = %identity, attempt, reason, outcome = "refused", "refused by the target");
                        }
                        Outcome::Unavailable {
                            reason,
                            retry_after,
                        } => {
                            info!(message_id, identity = %identity, attempt, reason, retry_after_ms = retry_after.map(|d| d.as_millis() as u64), receive_count = c.receive_count, outcome = "target_failed", "target-level failure");
                        }
                    }
                    run.answer(&outcome, remaining(), rand::random::<f64>());
                }
            }
        }
    }

    async fn park(
        &self,
        cfg: &Config,
        msg: &SqsMessage,
        identity: Option<&str>,
        reason: &str,
        tally: &mut Tally,
        failures: &mut Vec<String>,
    ) {
        let message_id = message_id(msg);
        let parked = ParkedMessage {
            source: cfg.source.clone(),
            source_arn: msg.event_source_arn.clone(),
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
            }
            Err(e) => {
                // Not parked, so not deleted: it comes back and is parked next time.
                warn!(message_id, reason, error = %e, "parking failed; message handed back");
                failures.push(message_id);
            }
        }
    }

    /// A message that failed on its own: one more strike in the ledger; the reason to park it
    /// once it has failed on its own on more than `POISON_RECEIVE_COUNT` receives.
    async fn poison(&self, cfg: &Config, c: &Candidate<'_>, last: &str) -> Option<String> {
        let id = &c.order.identity;
        match self.ledger.strike(id).await {
            Ok(strikes) if is_poison(strikes, cfg.poison_receive_count) => Some(format!(
                "failed on its own on {strikes} receives while other orders were delivered; last: {last}"
            )),
            Ok(strikes) => {
                info!(message_id = %message_id(c.msg), identity = %id, strikes, outcome = "failed_on_its_own", "handed back; the target works for other orders");
                None
            }
            Err(e) => {
                warn!(identity = %id, error = %e, "strike not counted; handed back");
                None
            }
        }
    }

    /// Tells the error service, and asks `close` to halt the flow.
    async fn trip(
        &self,
        cfg: &Config,
        c: &Candidate<'_>,
        trip: &steadfast_domain::Trip,
        observed_at_ms: u64,
    ) {
        let message_id = message_id(c.msg);
        warn!(message_id, identity = %c.order.identity, attempts = trip.attempts, failures = trip.failures, reason = %trip.reason, outcome = "halt_requested", "the target is failing; asking close to halt the flow");
        let failed = FlowEvent::DeliveryFailed {
            target: cfg.target.clone(),
            identity: c.order.identity.clone(),
            message_id,
            attempts: trip.attempts,
            reason: trip.reason.clone(),
        };
        if let Err(e) = self.events.emit(&failed).await {
            warn!(error = %e, "DeliveryFailed event not emitted");
        }
        let request = CloseRequest::Trip(TripRequest {
            target: cfg.target.clone(),
            reason: format!(
                "{} target-level failures in a row, last: {}",
                trip.failures, trip.reason
            ),
            wait_hint_ms: trip.wait_hint.map(|d| d.as_millis() as u64),
            manual: false,
            observed_at_ms: Some(observed_at_ms),
        });
        if let Err(e) = self.invoker.close(&request).await {
            warn!(error = %e, "trip request not sent; the next batch will try again");
        }
    }

    /// Counts this batch's deliveries towards the ramp-up; the batch that reaches the goal
    /// asks `open` to raise the concurrency.
    async fn count_ramp(&self, cfg: &Config, gate: &Gate, delivered: u32) {
        let n = u64::from(delivered);
        match self.gates.count_ramp(&cfg.target, gate.epoch, n).await {
            Ok(Some(total))
                if total >= cfg.ramp_up_successes && total - n < cfg.ramp_up_successes =>
            {
                info!(target_api = %cfg.target, epoch = gate.epoch, delivered = total, "ramp-up goal reached; asking open to raise the concurrency");
                let request = OpenRequest {
                    target: cfg.target.clone(),
                    epoch: Some(gate.epoch),
                    attempt: None,
                    ramp_up: true,
                };
                if let Err(e) = self.invoker.open(&request).await {
                    warn!(error = %e, "ramp-up request not sent; the watchdog raises it in time");
                }
            }
            Ok(_) => {}
            Err(e) => {
                warn!(error = %e, "ramp-up count not written; the watchdog raises it in time")
            }
        }
    }
}

fn hand_back_all(messages: &[SqsMessage], mut tally: Tally) -> (SqsBatchResponse, Tally) {
    let failures: Vec<String> = messages.iter().map(message_id).collect();
    tally.handed_back = failures.len() as u32;
    (response(failures), tally)
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
                min_call: Duration::from_millis(10),
            },
            source: "orders".into(),
            poison_receive_count: 5,
            ramp_up_successes: 3,
        }
    }

    fn event_with(bodies: &[(&str, u32)]) -> SqsEvent {
        let records: Vec<serde_json::Value> = bodies
            .iter()
            .enumerate()
            .map(|(i, (b, rc))| {
                serde_json::json!({"messageId": format!("m{i}"), "body": b,
                    "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:orders",
                    "attributes": {"ApproximateReceiveCount": rc.to_string()}})
            })
            .collect();
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
    }

    fn event(bodies: &[&str]) -> SqsEvent {
        let with: Vec<(&str, u32)> = bodies.iter().map(|b| (*b, 1)).collect();
        event_with(&with)
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

    fn down() -> Outcome {
        Outcome::unavailable("HTTP 503")
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
        let halted = Gate::new("portal").trip(0, "x", false, 0).unwrap();
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
    async fn a_failing_target_halts_the_flow_and_the_rest_is_handed_back_unattempted() {
        // GIVEN a target that fails everything
        let p = ports(ScriptedTarget::always(down()));
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
        // THEN order 1 is tried twice, order 2 witnesses once, and order 3 is untouched
        assert_eq!(failed(&r), vec!["m0", "m1", "m2"]);
        assert!(tally.tripped);
        assert_eq!(p.target.calls(), vec!["orders/1", "orders/1", "orders/2"]);
        assert_eq!(p.events.types(), vec!["DeliveryFailed"]);
        assert!(matches!(
            p.invoker.all().as_slice(),
            [Invoked::Close(CloseRequest::Trip(_))]
        ));
        assert!(
            p.parking.all().is_empty(),
            "nothing parked while the target is down"
        );
        assert!(
            p.ledger.2.lock().unwrap().is_empty(),
            "no strikes: the target's fault"
        );
    }

    #[tokio::test]
    async fn an_outage_that_begins_mid_batch_costs_a_bounded_number_of_calls() {
        let p = ports(ScriptedTarget::new(
            vec![Outcome::Delivered { status: 201 }],
            down(),
        ));
        let bodies: Vec<String> = (0..10).map(|i| format!(r#"{{"orderId":"{i}"}}"#)).collect();
        let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
        let (r, tally) = p.handle(&cfg(3), event(&refs), later()).await;
        assert!(tally.tripped);
        assert_eq!(tally.api_calls, 1 + 3 + 3 + 2 + 1);
        assert_eq!(failed(&r).len(), 9);
    }

    #[tokio::test]
    async fn an_expired_token_halts_instead_of_parking_every_order() {
        let p = ports(ScriptedTarget::always(Outcome::unavailable(
            "HTTP 401: Unauthorized",
        )));
        let bodies: Vec<String> = (0..10).map(|i| format!(r#"{{"orderId":"{i}"}}"#)).collect();
        let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
        let (r, tally) = p.handle(&cfg(5), event(&refs), later()).await;
        assert!(tally.tripped);
        assert_eq!(tally.api_calls, 5);
        assert_eq!(failed(&r).len(), 10);
        assert!(p.parking.all().is_empty());
    }

    #[tokio::test]
    async fn a_long_retry_after_halts_at_once_and_carries_the_wait_to_close() {
        let p = ports(ScriptedTarget::always(Outcome::Unavailable {
            reason: "HTTP 503".into(),
            retry_after: Some(Duration::from_secs(120)),
        }));
        let (_, tally) = p
            .handle(
                &cfg(5),
                event(&[r#"{"orderId":"1"}"#, r#"{"orderId":"2"}"#]),
                later(),
            )
            .await;
        assert_eq!((tally.api_calls, tally.tripped), (1, true));
        match p.invoker.all().as_slice() {
            [Invoked::Close(CloseRequest::Trip(t))] => {
                assert_eq!(t.wait_hint_ms, Some(120_000))
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn refusals_bad_input_and_over_long_identities_are_parked_and_the_batch_goes_on() {
        let p = ports(ScriptedTarget::new(
            vec![Outcome::Refused("HTTP 400: Bad Request".into())],
            Outcome::Delivered { status: 201 },
        ));
        let long = format!(r#"{{"orderId":"{}"}}"#, "x".repeat(5000));
        let (r, tally) = p
            .handle(
                &cfg(5),
                event(&[
                    r#"{"orderId":"1"}"#,
                    "nope",
                    r#"{"x":1}"#,
                    &long,
                    r#"{"orderId":"4"}"#,
                ]),
                later(),
            )
            .await;
        assert!(failed(&r).is_empty(), "parked messages count as handled");
        assert_eq!((tally.parked, tally.delivered), (4, 1));
        let parked = p.parking.all();
        let reasons: Vec<&str> = parked.iter().map(|m| m.reason.as_str()).collect();
        assert!(reasons[0].starts_with("body is not valid JSON"));
        assert_eq!(reasons[1], "identity field /orderId is missing");
        assert!(reasons[2].contains("over the limit of 1024"));
        assert_eq!(reasons[3], "HTTP 400: Bad Request");
        assert_eq!(parked[0].body, "nope", "parked as it came");
        assert_eq!(
            parked[0].source_arn.as_deref(),
            Some("arn:aws:sqs:us-east-1:000000000000:orders")
        );
        assert_eq!(p.target.calls(), vec!["orders/1", "orders/4"]);
    }

    #[tokio::test]
    async fn an_identity_the_ledger_cannot_read_is_parked_and_only_that_one() {
        let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 201 }));
        p.ledger.1.lock().unwrap().insert("orders/2".into());
        let (r, tally) = p
            .handle(
                &cfg(5),
                event(&[
                    r#"{"orderId":"1"}"#,
                    r#"{"orderId":"2"}"#,
                    r#"{"orderId":"3"}"#,
                ]),
                later(),
            )
            .await;
        assert!(failed(&r).is_empty());
        assert_eq!((tally.delivered, tally.parked), (2, 1));
        assert!(p.parking.all()[0].reason.contains("ledger cannot hold"));
    }

    #[tokio::test]
    async fn a_poison_order_is_handed_back_while_others_go_through_then_parked() {
        // GIVEN the target fails order 1 (a payload-specific 500) and takes the others
        let p = ports(ScriptedTarget::new(
            vec![
                down(),
                down(),
                down(),
                down(),
                Outcome::Delivered { status: 201 },
            ],
            down(),
        ));
        let c = cfg(5);
        let (r, tally) = p
            .handle(
                &c,
                event(&[r#"{"orderId":"1"}"#, r#"{"orderId":"2"}"#]),
                later(),
            )
            .await;
        // THEN it goes back to the queue without halting the flow, one strike counted
        assert_eq!(failed(&r), vec!["m0"]);
        assert!(!tally.tripped && p.invoker.all().is_empty());
        assert_eq!(p.ledger.2.lock().unwrap()["orders/1"], 1);
        // AND on the sixth receive on which it fails on its own, it is parked with its last
        // error (a fresh order, tried first, is delivered each time)
        for round in 0..5 {
            *p.target.script.lock().unwrap() = vec![Outcome::Delivered { status: 201 }].into();
            let fresh = format!(r#"{{"orderId":"f{round}"}}"#);
            let (_, t) = p
                .handle(
                    &c,
                    event_with(&[(r#"{"orderId":"1"}"#, 9), (&fresh, 1)]),
                    later(),
                )
                .await;
            assert!(!t.tripped);
        }
        let parked = p.parking.all();
        assert_eq!(parked.len(), 1);
        assert!(
            parked[0].reason.contains("6 receives"),
            "{}",
            parked[0].reason
        );
        assert_eq!(parked[0].identity.as_deref(), Some("orders/1"));
    }

    #[tokio::test]
    async fn an_order_that_failed_on_its_own_before_does_not_halt_the_flow_alone() {
        let p = ports(ScriptedTarget::always(down()));
        p.ledger.strike("orders/1").await.unwrap();
        let (r, tally) = p
            .handle(&cfg(5), event_with(&[(r#"{"orderId":"1"}"#, 3)]), later())
            .await;
        assert!(
            !tally.tripped,
            "a known poison order alone is its own problem"
        );
        assert_eq!(failed(&r), vec!["m0"]);
        assert_eq!(p.ledger.2.lock().unwrap()["orders/1"], 2);
        // while a fresh order failing alone still halts the flow
        let (_, tally) = p
            .handle(&cfg(5), event(&[r#"{"orderId":"2"}"#]), later())
            .await;
        assert!(tally.tripped);
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
    async fn without_time_for_a_call_everything_goes_back_and_nothing_halts() {
        let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 201 }));
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
        assert!(p.target.calls().is_empty());
        assert!(p.invoker.all().is_empty());
    }

    #[tokio::test]
    async fn during_a_ramp_up_deliveries_are_counted_and_the_goal_asks_open_to_raise() {
        let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 201 }));
        let resumed = Gate::new("portal")
            .trip(0, "x", false, 0)
            .unwrap()
            .resume(Some(1), 1, "healthy", true)
            .unwrap();
        p.gates.0.lock().unwrap().insert("portal".into(), resumed);
        p.handle(
            &cfg(5),
            event(&[r#"{"orderId":"1"}"#, r#"{"orderId":"2"}"#]),
            later(),
        )
        .await;
        assert!(p.invoker.all().is_empty(), "2 of 3");
        p.handle(
            &cfg(5),
            event(&[r#"{"orderId":"3"}"#, r#"{"orderId":"4"}"#]),
            later(),
        )
        .await;
        p.handle(&cfg(5), event(&[r#"{"orderId":"5"}"#]), later())
            .await;
        assert_eq!(
            p.invoker.all(),
            vec![Invoked::Open(OpenRequest {
                target: "portal".into(),
                epoch: Some(1),
                attempt: None,
                ramp_up: true
            })],
            "asked once, by the batch that reached the goal"
        );
    }
}
