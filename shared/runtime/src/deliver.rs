//! The one retry-then-halt path: deliveries driven by the batch judge
//! ([`steadfast_domain::BatchRun`]) until every item has a fate, and the halt request that
//! follows when the judge says the target is broken for everyone. The order processor and the
//! inbox processor both deliver through here.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::Value;
use steadfast_domain::ports::{EventBus, Invoker, Target};
use steadfast_domain::{
    Action, BatchRun, CloseRequest, FlowEvent, Outcome, RetryPolicy, Trip, TripRequest,
};
use tracing::{info, warn};

/// One item to deliver, and where.
#[derive(Debug)]
pub struct Item<'a, T> {
    pub target: &'a T,
    /// Sent as the `Idempotency-Key` (derived from it by the target adapter).
    pub key: &'a str,
    pub body: &'a Value,
    /// Receives (or claims) so far, this one included: fresh items are tried first.
    pub receives: u32,
    /// Receives on which it failed on its own before.
    pub strikes: u32,
}

/// What the calls of one run came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Calls {
    pub made: u32,
    pub delivered: u32,
    /// Calls that repeated a failed call for the same item.
    pub retries: u32,
}

/// Delivers `items` as the judge decides; `answered(index, attempt, outcome)` runs after each
/// answer (to record a delivery at once, before the next call). No call starts that cannot end
/// by `deadline`.
pub async fn deliver_all<T, F, Fut>(
    policy: RetryPolicy,
    items: &[Item<'_, T>],
    deadline: Instant,
    mut answered: F,
) -> (BatchRun, Calls)
where
    T: Target,
    F: FnMut(usize, u32, &Outcome) -> Fut,
    Fut: Future<Output = ()>,
{
    let receives: Vec<u32> = items.iter().map(|i| i.receives).collect();
    let strikes: Vec<u32> = items.iter().map(|i| i.strikes).collect();
    let call_timeout = items
        .iter()
        .map(|i| i.target.timeout())
        .max()
        .unwrap_or_default();
    let mut run = BatchRun::new(policy, call_timeout, &receives).with_strikes(&strikes);
    let mut calls = Calls::default();
    let remaining = || deadline.saturating_duration_since(Instant::now());
    loop {
        match run.next(remaining()) {
            Action::Done => return (run, calls),
            Action::Wait(pause) => tokio::time::sleep(pause).await,
            Action::Call {
                index,
                attempt,
                timeout,
            } => {
                let item = &items[index];
                calls.made += 1;
                if attempt > 1 {
                    calls.retries += 1;
                }
                let outcome = item.target.deliver(item.key, item.body, timeout).await;
                if matches!(outcome, Outcome::Delivered { .. }) {
                    calls.delivered += 1;
                }
                answered(index, attempt, &outcome).await;
                run.answer(&outcome, remaining(), rand::random::<f64>());
            }
        }
    }
}

/// Who asks for a halt, and about what.
pub struct HaltRequest<'a> {
    pub target: &'a str,
    pub pipeline: &'a str,
    pub identity: &'a str,
    pub message_id: &'a str,
    /// The correlation id of the message (or record) whose failures decided the halt.
    pub correlation_id: Option<&'a str>,
    /// When the failures were seen (the batch's start), so a trip from before the last resume
    /// is recognised as out of date.
    pub observed_at_ms: Option<u64>,
}

/// Tells the error service (`DeliveryFailed`) and asks `close` to halt the flow, with the
/// longest wait the target announced. Failures to send are logged: the next run asks again.
pub async fn request_halt<E: EventBus, I: Invoker>(
    events: &E,
    invoker: &I,
    who: &HaltRequest<'_>,
    trip: &Trip,
) {
    let correlation_id = who.correlation_id;
    warn!(pipeline = who.pipeline, message_id = who.message_id, correlation_id, identity = who.identity, attempts = trip.attempts, failures = trip.failures, reason = %trip.reason, outcome = "halt_requested", "the target is failing; asking close to halt the flow");
    let failed = FlowEvent::DeliveryFailed {
        target: who.target.to_owned(),
        identity: who.identity.to_owned(),
        message_id: who.message_id.to_owned(),
        attempts: trip.attempts,
        reason: trip.reason.clone(),
        correlation_id: correlation_id.map(str::to_owned),
    };
    if let Err(e) = events.emit(&failed).await {
        warn!(pipeline = who.pipeline, correlation_id, error = %e, "DeliveryFailed event not emitted");
    }
    let request = CloseRequest::Trip(TripRequest {
        target: who.target.to_owned(),
        reason: format!(
            "{}: {} target-level failures in a row, last: {}",
            who.pipeline, trip.failures, trip.reason
        ),
        wait_hint_ms: trip.wait_hint.map(|d: Duration| d.as_millis() as u64),
        manual: false,
        observed_at_ms: who.observed_at_ms,
        correlation_id: correlation_id.map(str::to_owned),
    });
    if let Err(e) = invoker.close(&request).await {
        warn!(pipeline = who.pipeline, correlation_id, error = %e, "trip request not sent; the next run asks again");
    }
}

/// Logs one answer as the delivery pipelines do, with the correlation id of what was sent.
pub fn log_answer(
    pipeline: &str,
    key: &str,
    correlation_id: Option<&str>,
    attempt: u32,
    outcome: &Outcome,
) {
    match outcome {
        Outcome::Delivered { status } => {
            info!(
                pipeline,
                key,
                correlation_id,
                status,
                attempt,
                outcome = "delivered",
                "delivered"
            )
        }
        Outcome::Refused(reason) => {
            info!(
                pipeline,
                key,
                correlation_id,
                attempt,
                reason,
                outcome = "refused",
                "refused by the target"
            )
        }
        Outcome::Unavailable {
            reason,
            retry_after,
        } => {
            info!(
                pipeline,
                key,
                correlation_id,
                attempt,
                reason,
                retry_after_ms = retry_after.map(|d| d.as_millis() as u64),
                outcome = "target_failed",
                "target-level failure"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use steadfast_domain::fakes::{MemBus, MemInvoker, ScriptedTarget};
    use steadfast_domain::Fate;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(2),
            reserve: Duration::ZERO,
            min_call: Duration::from_millis(1),
        }
    }

    #[tokio::test]
    async fn a_target_down_for_everyone_halts_after_the_judges_calls_and_the_halt_is_requested() {
        let target = ScriptedTarget::always(Outcome::Unavailable {
            reason: "503".into(),
            retry_after: Some(Duration::from_secs(30)),
        });
        let body = json!({});
        let items = [
            Item {
                target: &target,
                key: "A",
                body: &body,
                receives: 1,
                strikes: 0,
            },
            Item {
                target: &target,
                key: "B",
                body: &body,
                receives: 1,
                strikes: 0,
            },
        ];
        let mut seen = Vec::new();
        let (run, calls) = deliver_all(
            policy(),
            &items,
            Instant::now() + Duration::from_secs(20),
            |i, a, _| {
                seen.push((i, a));
                async {}
            },
        )
        .await;
        let trip = run.trip().expect("halt").clone();
        assert!(calls.made <= 3 && calls.delivered == 0, "{calls:?}");
        let first_calls = seen.iter().filter(|(_, attempt)| *attempt == 1).count() as u32;
        assert_eq!(calls.retries, calls.made - first_calls, "{seen:?}");
        assert_eq!(seen.len() as u32, calls.made);
        assert!(
            run.fates().iter().all(|f| *f == Fate::HandBack),
            "{:?}",
            run.fates()
        );
        let (bus, invoker) = (MemBus::default(), MemInvoker::default());
        let who = HaltRequest {
            target: "portal",
            pipeline: "orders",
            identity: "A",
            message_id: "m0",
            correlation_id: Some("c-0"),
            observed_at_ms: Some(7),
        };
        request_halt(&bus, &invoker, &who, &trip).await;
        assert_eq!(bus.types(), vec!["DeliveryFailed"]);
        assert!(matches!(
            &bus.0.lock().unwrap()[0],
            FlowEvent::DeliveryFailed { correlation_id: Some(c), .. } if c == "c-0"
        ));
        let closes = invoker.all();
        assert!(
            matches!(&closes[..], [steadfast_domain::fakes::Invoked::Close(CloseRequest::Trip(t))] if t.wait_hint_ms == Some(30_000) && t.observed_at_ms == Some(7) && t.correlation_id.as_deref() == Some("c-0")),
            "{closes:?}"
        );
    }
}
