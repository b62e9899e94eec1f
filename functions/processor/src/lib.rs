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
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use steadfast_aws::metrics::{Document, Metric};
use steadfast_aws::{ConfigError, Env};
use steadfast_domain::ports::*;
use steadfast_domain::{
    is_poison, Fate as Judged, Gate, IdentityRule, OpenRequest, OrderMessage, RetryPolicy,
};
use steadfast_runtime::batch::{
    correlation_id, hand_back_all, message_id, receive_count, Fate, Parker,
};
use steadfast_runtime::deliver::{deliver_all, log_answer, request_halt, HaltRequest, Item};
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
    /// The invocation's length when the runtime gives no usable deadline (local Runtime API
    /// servers). `INVOCATION_TIMEOUT_SECONDS`, default 30.
    pub invocation_timeout: Duration,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let d = RetryPolicy::default();
        Ok(Config {
            target: env
                .optional("TARGET_NAME")
                .unwrap_or_else(|| "portal".into()),
            identity: steadfast_aws::clients::identity_rule(env)?,
            retry: RetryPolicy {
                max_attempts: env.whole_in("MAX_ATTEMPTS", u64::from(d.max_attempts), 2, 20)?
                    as u32,
                base: env.seconds("RETRY_BASE_SECONDS", d.base)?,
                cap: env.seconds("RETRY_CAP_SECONDS", d.cap)?,
                ..d
            },
            source: env
                .optional("SOURCE_NAME")
                .unwrap_or_else(|| "orders".into()),
            poison_receive_count: env.whole_in("POISON_RECEIVE_COUNT", 5, 1, 1000)? as u32,
            ramp_up_successes: env.whole_in("RAMP_UP_SUCCESSES", 20, 1, 100_000)?,
            invocation_timeout: env
                .seconds("INVOCATION_TIMEOUT_SECONDS", Duration::from_secs(30))?,
        })
    }
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
    /// Calls that repeated a failed call for the same order.
    pub retries: u32,
    pub tripped: bool,
}

impl Tally {
    /// The batch's metrics for `target` (see `steadfast_aws::metrics`).
    pub fn metrics(&self, target: &str) -> Document {
        Document::new("orders", target)
            .count(Metric::Delivered, self.delivered)
            .count(Metric::DuplicatesDropped, self.duplicates_skipped)
            .count(Metric::Parked, self.parked)
            .count(Metric::Retries, self.retries)
    }
}

use steadfast_aws::now_ms;

/// A message of the batch that will be tried.
struct Candidate {
    /// Its place in the batch.
    index: usize,
    /// The message's correlation id, on every line about it.
    correlation_id: String,
    order: OrderMessage,
    receive_count: u32,
    /// Receives on which it failed on its own before.
    strikes: u32,
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
        let messages = event.records;
        let observed_at_ms = now_ms();
        let gate = match self.gates.load(&cfg.target).await {
            Ok(g) if g.is_flowing() => g,
            Ok(g) => {
                info!(target_api = %cfg.target, state = ?g.state, epoch = g.epoch, count = messages.len(), "gate not flowing; batch handed back");
                return handed_back(&messages);
            }
            Err(e) => {
                warn!(target_api = %cfg.target, error = %e, "gate unreadable; handing the batch back");
                return handed_back(&messages);
            }
        };
        let mut fates = vec![Fate::HandBack; messages.len()];
        // 1–2. Validate everything first, so the ledger is asked once per batch.
        let (candidates, copies) = self.candidates(cfg, &messages, &mut fates).await;
        // 3. Deliver as the judge decides.
        let items: Vec<Item<T>> = candidates
            .iter()
            .map(|c| Item {
                target: &self.target,
                key: &c.order.identity,
                body: &c.order.body,
                receives: c.receive_count,
                strikes: c.strikes,
            })
            .collect();
        let (run, calls) = deliver_all(cfg.retry, &items, deadline, |i, attempt, outcome| {
            let (c, ledger) = (&candidates[i], &self.ledger);
            let message_id = message_id(&messages[c.index]);
            let correlation_id = Some(c.correlation_id.as_str());
            log_answer("orders", &c.order.identity, correlation_id, attempt, outcome);
            let delivered = matches!(outcome, steadfast_domain::Outcome::Delivered { .. });
            async move {
                if !delivered {
                    return;
                }
                if let Err(e) = ledger.record(&c.order.identity, &message_id).await {
                    // Delivered all the same; a redelivery meets the target's own
                    // idempotency check through the same Idempotency-Key.
                    warn!(identity = %c.order.identity, correlation_id, error = %e, "ledger write failed");
                }
            }
        })
        .await;
        // 4. The fates: copies of one identity in one batch follow the first copy's.
        for (c, judged) in candidates.iter().zip(run.fates()) {
            let fate = self.fate(cfg, c, judged).await;
            let delivered = fate == Fate::Done("delivered");
            for &copy in copies.get(&c.order.identity).into_iter().flatten() {
                fates[copy] = if delivered {
                    Fate::Done("duplicate")
                } else {
                    Fate::HandBack
                };
            }
            fates[c.index] = fate;
        }
        let tripped = run.trip().is_some();
        if let Some(trip) = run.trip() {
            let c = &candidates[trip.index];
            let who = HaltRequest {
                target: &cfg.target,
                pipeline: "orders",
                identity: &c.order.identity,
                message_id: &message_id(&messages[c.index]),
                correlation_id: Some(&c.correlation_id),
                observed_at_ms: Some(observed_at_ms),
            };
            request_halt(&self.events, &self.invoker, &who, trip).await;
        }
        if gate.ramping && calls.delivered > 0 {
            self.count_ramp(cfg, &gate, calls.delivered).await;
        }
        let parker = Parker {
            parking: &self.parking,
            events: &self.events,
            source: &cfg.source,
            target: &cfg.target,
        };
        let (response, counts) = parker.finish(&messages, fates).await;
        let tally = Tally {
            delivered: calls.delivered,
            duplicates_skipped: counts.done("duplicate"),
            parked: counts.parked,
            handed_back: counts.handed_back,
            api_calls: calls.made,
            retries: calls.retries,
            tripped,
        };
        info!(target_api = %cfg.target, delivered = tally.delivered, duplicates = tally.duplicates_skipped, parked = tally.parked, handed_back = tally.handed_back, api_calls = tally.api_calls, retries = tally.retries, tripped = tally.tripped, "batch done");
        tally.metrics(&cfg.target).emit();
        (response, tally)
    }

    /// Validates every message and asks the ledger once: bad messages are to be parked,
    /// delivered identities skipped, an identity the ledger cannot read concerns only its own
    /// message. Returns the messages to try, and the later copies of each identity.
    async fn candidates(
        &self,
        cfg: &Config,
        messages: &[SqsMessage],
        fates: &mut [Fate],
    ) -> (Vec<Candidate>, HashMap<String, Vec<usize>>) {
        let mut valid = Vec::new();
        for (index, msg) in messages.iter().enumerate() {
            match OrderMessage::parse(msg.body.as_deref().unwrap_or(""), &cfg.identity) {
                Ok(order) => valid.push(Candidate {
                    index,
                    correlation_id: correlation_id(msg).to_owned(),
                    order,
                    receive_count: receive_count(msg),
                    strikes: 0,
                }),
                Err(e) => {
                    fates[index] = Fate::Park {
                        reason: e.to_string(),
                        identity: None,
                    }
                }
            }
        }
        let identities: Vec<String> = valid.iter().map(|c| c.order.identity.clone()).collect();
        let read = self.ledger.delivered(&identities).await;
        let mut candidates = Vec::new();
        let mut copies: HashMap<String, Vec<usize>> = HashMap::new();
        for mut c in valid {
            c.strikes = read.strikes.get(&c.order.identity).copied().unwrap_or(0);
            let id = c.order.identity.clone();
            let message_id = message_id(&messages[c.index]);
            let correlation_id = c.correlation_id.as_str();
            if read.delivered.contains(&id) {
                info!(message_id, correlation_id, identity = %id, outcome = "duplicate_skipped", "already delivered");
                fates[c.index] = Fate::Done("duplicate");
            } else if let Some(e) = read.unreadable.get(&id) {
                if e.is_invalid() {
                    let reason = format!("the ledger cannot hold this identity: {e}");
                    fates[c.index] = Fate::Park {
                        reason,
                        identity: Some(id),
                    };
                } else {
                    warn!(message_id, correlation_id, identity = %id, error = %e, outcome = "handed_back", "ledger unreadable for this identity");
                }
            } else if let Some(later) = copies.get_mut(&id) {
                later.push(c.index);
            } else {
                copies.insert(id, vec![]);
                candidates.push(c);
            }
        }
        (candidates, copies)
    }

    /// What becomes of a tried message, as judged.
    async fn fate(&self, cfg: &Config, c: &Candidate, judged: &Judged) -> Fate {
        let identity = Some(c.order.identity.clone());
        match judged {
            Judged::Delivered => Fate::Done("delivered"),
            Judged::Refused(reason) => Fate::Park {
                reason: reason.clone(),
                identity,
            },
            Judged::Own(reason) => match self.poison(cfg, c, reason).await {
                Some(reason) => Fate::Park { reason, identity },
                None => Fate::HandBack,
            },
            Judged::HandBack | Judged::Open => Fate::HandBack,
        }
    }

    /// A message that failed on its own: one more strike in the ledger; the reason to park it
    /// once it has failed on its own on more than `POISON_RECEIVE_COUNT` receives.
    async fn poison(&self, cfg: &Config, c: &Candidate, last: &str) -> Option<String> {
        let (id, correlation_id) = (&c.order.identity, c.correlation_id.as_str());
        match self.ledger.strike(id).await {
            Ok(strikes) if is_poison(strikes, cfg.poison_receive_count) => Some(format!(
                "failed on its own on {strikes} receives while other orders were delivered; last: {last}"
            )),
            Ok(strikes) => {
                info!(identity = %id, correlation_id, strikes, outcome = "failed_on_its_own", "handed back; the target works for other orders");
                None
            }
            Err(e) => {
                warn!(identity = %id, correlation_id, error = %e, "strike not counted; handed back");
                None
            }
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

fn handed_back(messages: &[SqsMessage]) -> (SqsBatchResponse, Tally) {
    let (response, counts) = hand_back_all(messages);
    let tally = Tally {
        handed_back: counts.handed_back,
        ..Tally::default()
    };
    (response, tally)
}

#[cfg(test)]
mod tests;
