//! inbox-processor: delivers the inbox's pending records to the portal, guarded by the gate.
//!
//! Two triggers. The table's stream (records that became `ToBeProcessed`): those ids are
//! claimed at once. The one-minute schedule: a sweep of every shard of the sparse `due` index,
//! for records due again (after a failed claim, a halt, or an expired lease).
//!
//! First the gate of the portal is read (the same gate as the guarded-delivery pipeline): if it
//! is not `Flowing`, nothing is claimed, and the records wait for a sweep after the flow
//! resumes. Each record is claimed with a conditional update (lease + token) and delivered
//! with `Idempotency-Key = type/key/version`, one at a time per key (the claim), through the
//! same batch judge as the order processor ([`steadfast_runtime::deliver`]): retries with short
//! pauses, a witness before a halt, a record that keeps failing while others go through
//! counted against itself. Settling is conditional on the claim: `Processed` only if the
//! version is still the one delivered, otherwise due again so the newer version goes next. A
//! refused record (4xx) is `Failed` with the reason. When the judge halts the flow, `close` is
//! asked to halt it; the record whose failures decided it waits for its retry time (its claim
//! counted) and every other record not delivered is released, its claim not counted. A sweep
//! stops taking pages once the invocation has only its reserve left.
//!
//! Every line about a record carries the correlation id the receiver stored with its version
//! (the accepted ERP message's), and so do the halt request and the events about a record.
//!
//! Each run writes its metrics for the portal's gate (`steadfast_aws::metrics`): `Delivered`,
//! `Retries`, `ClaimConflicts` (claims skipped, leases lost) and `RecordsFailed`.

use std::collections::BTreeMap;
use std::time::Instant;

use futures::future::join_all;
use serde::Serialize;
use serde_json::Value;
use steadfast_aws::metrics::{Document, Metric};
use steadfast_aws::{ConfigError, Env};
use steadfast_domain::inbox::InboxRecord;
use steadfast_domain::lease::{Claimed, Leased, Settle, Settled};
use steadfast_domain::ports::{EventBus, GateStore, Invoker, LeasedStore, Target};
use steadfast_domain::{Fate, FlowEvent, Outcome};
use steadfast_runtime::deliver::{deliver_all, log_answer, request_halt, HaltRequest, Item};
pub use steadfast_runtime::sweep::Trigger;
use steadfast_runtime::sweep::{claim_all, event_name_in, pages, settled, Sweep};
use tracing::{error, info, warn};

mod config;
pub use config::{targets, Config};

/// Reads a Lambda event: a stream event names the records that became `ToBeProcessed` (a
/// keys-only record counts too); anything else is a sweep.
pub fn trigger(event: &Value) -> Trigger {
    Trigger::of(event, |r| {
        event_name_in(r, &["INSERT", "MODIFY"])
            && r["dynamodb"]["NewImage"]["status"]["S"]
                .as_str()
                .is_none_or(|status| status == "ToBeProcessed")
    })
}

/// Records claimed at a time: each group is delivered and settled before the next is claimed.
const CLAIMS_AT_ONCE: usize = 10;

pub struct Ports<S, G, E, I, T> {
    pub store: S,
    pub gates: G,
    pub events: E,
    pub invoker: I,
    /// The portal endpoint of each entity type.
    pub targets: BTreeMap<String, T>,
}

/// The ports as deployed.
pub type AwsPorts = Ports<
    steadfast_aws::leased::DynamoLeased<InboxRecord>,
    steadfast_aws::gates::DynamoGates,
    steadfast_aws::events::EventBridgeBus,
    steadfast_aws::invoke::LambdaInvoker,
    steadfast_aws::http::HttpTarget,
>;

impl AwsPorts {
    /// Every adapter from the environment; an error names the variable at fault.
    pub async fn from_env(
        env: &Env,
        clients: &steadfast_aws::Clients,
    ) -> Result<Self, ConfigError> {
        Ok(Ports {
            store: clients.inbox_records(env)?,
            gates: clients.gates(env)?,
            events: clients.bus(env)?,
            invoker: clients.tripper(env)?,
            targets: targets(env, clients.target_token(env).await?)?,
        })
    }
}

/// What one invocation did; its answer, and the log line.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// The gate was not `Flowing`: nothing was claimed.
    pub gate_closed: bool,
    pub claimed: u32,
    /// Ids seen that were not due or were claimed by another processor first.
    pub skipped: u32,
    pub delivered: u32,
    /// Delivered, but a newer version arrived meanwhile (it is due now).
    pub newer_versions: u32,
    pub retried: u32,
    /// Claimed but not delivered because the flow halted or time ran out.
    pub released: u32,
    pub failed: u32,
    pub lost_leases: u32,
    pub api_calls: u32,
    /// Calls that repeated a failed call for the same record.
    pub retries: u32,
    pub tripped: bool,
    pub errors: u32,
}

impl Tally {
    /// The run's metrics for `target`, the portal's gate (see `steadfast_aws::metrics`).
    pub fn metrics(&self, target: &str) -> Document {
        Document::new("inbox", target)
            .count(Metric::Delivered, self.delivered)
            .count(Metric::Retries, self.retries)
            .count(Metric::ClaimConflicts, self.skipped + self.lost_leases)
            .count(Metric::RecordsFailed, self.failed)
    }
}

impl<S, G, E, I, T> Ports<S, G, E, I, T>
where
    S: LeasedStore<Record = InboxRecord>,
    G: GateStore,
    E: EventBus,
    I: Invoker,
    T: Target,
{
    /// Runs one invocation. `now` reads the clock; `token` is unique per invocation;
    /// `deadline` is when the invocation must have answered.
    pub async fn run(
        &self,
        cfg: &Config,
        trigger: Trigger,
        now: impl Fn() -> u64,
        token: &str,
        deadline: Instant,
    ) -> Tally {
        let mut tally = Tally::default();
        match self.gates.load(&cfg.target).await {
            Ok(g) if g.is_flowing() => {}
            Ok(g) => {
                info!(pipeline = "inbox", target_api = %cfg.target, state = ?g.state, "gate not flowing; nothing claimed");
                tally.gate_closed = true;
                return tally;
            }
            Err(e) => {
                error!(pipeline = "inbox", target_api = %cfg.target, error = %e, "gate unreadable; nothing claimed");
                tally.errors += 1;
                return tally;
            }
        }
        let sweep = Sweep::new(cfg.shards, cfg.sweep_limit, now());
        let t = &mut tally;
        tally.errors += pages(trigger, &self.store, sweep, "inbox", async |ids| {
            let before = t.claimed;
            self.claim_and_deliver(cfg, ids, &now, token, deadline, t)
                .await;
            let in_time = Instant::now() + cfg.retry.reserve < deadline;
            (!t.tripped && in_time).then_some((t.claimed - before) as usize)
        })
        .await;
        tally.metrics(&cfg.target).emit();
        info!(pipeline = "inbox", ?tally, "processor run done");
        tally
    }

    /// Claims and delivers `ids` a few at a time, and only while time is left: a record is
    /// claimed just before its turn, so an invocation that runs out of time (or dies) leaves
    /// few claims behind to expire.
    async fn claim_and_deliver(
        &self,
        cfg: &Config,
        ids: &[String],
        now: &impl Fn() -> u64,
        token: &str,
        deadline: Instant,
        tally: &mut Tally,
    ) {
        for chunk in ids.chunks(CLAIMS_AT_ONCE) {
            if tally.tripped || Instant::now() + cfg.retry.reserve >= deadline {
                break;
            }
            self.claim_chunk(cfg, chunk, now, token, deadline, tally)
                .await;
        }
    }

    async fn claim_chunk(
        &self,
        cfg: &Config,
        ids: &[String],
        now: &impl Fn() -> u64,
        token: &str,
        deadline: Instant,
        tally: &mut Tally,
    ) {
        let held = claim_all(&self.store, ids, &cfg.policy, now, token, "inbox").await;
        tally.claimed += held.claimed.len() as u32;
        tally.skipped += held.skipped;
        tally.errors += held.errors;
        tally.failed += held.unreadable;
        let mut refused = Vec::new();
        let bodies: Vec<Result<Value, String>> =
            held.claimed.iter().map(|c| c.delivery()).collect();
        let keys: Vec<String> = held.claimed.iter().map(|c| c.idempotency_key()).collect();
        // One judge per endpoint: a delivery to one vouches for nothing about another.
        let mut groups: BTreeMap<&str, Vec<Delivery<'_, T>>> = BTreeMap::new();
        for ((c, body), key) in held.claimed.iter().zip(&bodies).zip(&keys) {
            let target = self.targets.get(&c.record.entity);
            let refusal = cfg
                .policy
                .give_up(c.attempts)
                .or_else(|| match (target, body) {
                    (None, _) => Some(format!(
                        "entity type `{}` has no configured endpoint",
                        c.record.entity
                    )),
                    (_, Err(reason)) => Some(reason.clone()),
                    _ => None,
                });
            if let Some(reason) = refusal {
                refused.push((c, self.refused(cfg, c, reason).await));
            } else if let (Some(target), Ok(body)) = (target, body) {
                let d = Delivery {
                    c,
                    key,
                    body,
                    target,
                };
                groups.entry(c.record.entity.as_str()).or_default().push(d);
            }
        }
        self.settle_all(refused, tally).await;
        for group in groups.into_values() {
            let mut settles = Vec::new();
            if tally.tripped {
                let due_at_ms = now().saturating_add(cfg.policy.retry.base.as_millis() as u64);
                settles.extend(group.iter().map(|d| (d.c, Settle::Release { due_at_ms })));
            } else {
                self.deliver(cfg, &group, now, deadline, tally, &mut settles)
                    .await;
            }
            // Settled before the next endpoint's deliveries start.
            self.settle_all(settles, tally).await;
        }
    }

    async fn settle_all(&self, settles: Vec<(&Claimed<InboxRecord>, Settle)>, tally: &mut Tally) {
        let done = join_all(settles.into_iter().map(|(c, how)| async move {
            let r = self.store.settle(c, &how).await;
            (c, how, r)
        }))
        .await;
        for (c, how, written) in done {
            count(c, &how, written, tally);
        }
    }

    /// Delivers one endpoint's records through the judge; a delivered record is settled at
    /// once, the others' settles are added to `settles`.
    async fn deliver<'c>(
        &self,
        cfg: &Config,
        group: &[Delivery<'c, T>],
        now: &impl Fn() -> u64,
        deadline: Instant,
        tally: &mut Tally,
        settles: &mut Vec<(&'c Claimed<InboxRecord>, Settle)>,
    ) {
        let items: Vec<Item<T>> = group
            .iter()
            .map(|d| Item {
                target: d.target,
                key: d.key,
                body: d.body,
                receives: d.c.attempts,
                strikes: 0,
            })
            .collect();
        let delivered = std::sync::Mutex::new(Vec::new());
        let (run, calls) = deliver_all(cfg.retry, &items, deadline, |i, attempt, outcome| {
            let (c, store, delivered) = (group[i].c, &self.store, &delivered);
            let done = match outcome {
                Outcome::Delivered { status } => {
                    let at_ms = now();
                    let lag_ms = at_ms.saturating_sub(c.record.changed_at_ms);
                    info!(
                        pipeline = "inbox",
                        key = group[i].key,
                        correlation_id = c.record.correlation_id(),
                        status,
                        attempt,
                        lag_ms,
                        outcome = "delivered",
                        "delivered"
                    );
                    Some(at_ms)
                }
                other => {
                    log_answer(
                        "inbox",
                        group[i].key,
                        c.record.correlation_id(),
                        attempt,
                        other,
                    );
                    None
                }
            };
            async move {
                let Some(at_ms) = done else { return };
                let how = Settle::Done {
                    at_ms,
                    expires_at_s: None,
                };
                let written = store.settle(c, &how).await;
                delivered
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((c, how, written));
            }
        })
        .await;
        tally.api_calls += calls.made;
        tally.retries += calls.retries;
        for (c, how, written) in delivered.into_inner().unwrap_or_else(|e| e.into_inner()) {
            count(c, &how, written, tally);
        }
        let trip = run.trip();
        for (i, (d, fate)) in group.iter().zip(run.fates()).enumerate() {
            let how = match (fate, trip) {
                (Fate::Delivered, _) => continue,
                (Fate::Refused(reason), _) => self.refused(cfg, d.c, reason.clone()).await,
                (Fate::Own(reason), _) => {
                    cfg.policy
                        .after_failure(d.c.attempts, reason, now(), rand::random::<f64>())
                }
                // The record whose failures halted the flow waits for its retry time, counted.
                (_, Some(t)) if t.index == i => {
                    cfg.policy
                        .after_failure(d.c.attempts, &t.reason, now(), rand::random::<f64>())
                }
                (Fate::HandBack | Fate::Open, _) => Settle::Release {
                    due_at_ms: now().saturating_add(cfg.policy.retry.base.as_millis() as u64),
                },
            };
            settles.push((d.c, how));
        }
        if let Some(trip) = trip {
            tally.tripped = true;
            let decided = &group[trip.index];
            let who = HaltRequest {
                target: &cfg.target,
                pipeline: "inbox",
                identity: decided.key,
                message_id: "",
                correlation_id: decided.c.record.correlation_id(),
                observed_at_ms: None,
            };
            request_halt(&self.events, &self.invoker, &who, trip).await;
        }
    }

    /// A record the portal will never take (or that cannot be built): `Failed`, with an event.
    async fn refused(&self, cfg: &Config, c: &Claimed<InboxRecord>, reason: String) -> Settle {
        let correlation_id = c.record.correlation_id();
        warn!(pipeline = "inbox", id = %c.id, correlation_id, version = c.record.version, reason, outcome = "failed");
        let event = FlowEvent::MessageParked {
            target: cfg.target.clone(),
            identity: c.idempotency_key(),
            message_id: String::new(),
            reason: reason.clone(),
            correlation_id: correlation_id.map(str::to_owned),
        };
        if let Err(e) = self.events.emit(&event).await {
            warn!(pipeline = "inbox", correlation_id, error = %e, "MessageParked event not emitted");
        }
        Settle::Failed { error: reason }
    }
}

/// A claimed record ready to deliver, and where.
struct Delivery<'a, T> {
    c: &'a Claimed<InboxRecord>,
    key: &'a str,
    body: &'a Value,
    target: &'a T,
}

/// Counts one settle.
fn count(
    c: &Claimed<InboxRecord>,
    how: &Settle,
    written: steadfast_domain::ports::PortResult<Settled>,
    tally: &mut Tally,
) {
    match &written {
        Ok(Settled::LeaseLost) => tally.lost_leases += 1,
        Err(_) => tally.errors += 1,
        Ok(_) => {}
    }
    let Some(done) = settled("inbox", c, written) else {
        return;
    };
    match (how, done) {
        (Settle::Done { .. }, done) => {
            tally.delivered += 1;
            if done == Settled::NewerVersion {
                tally.newer_versions += 1;
            }
        }
        // Not delivered, but a newer version arrived meanwhile: it is due now.
        (_, Settled::NewerVersion) => tally.newer_versions += 1,
        (Settle::Retry { .. }, _) => tally.retried += 1,
        (Settle::Release { .. }, _) => tally.released += 1,
        (Settle::Failed { .. }, _) => tally.failed += 1,
    }
}

#[cfg(test)]
mod tests;
