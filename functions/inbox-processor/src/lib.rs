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
//! asked to halt it and every record not delivered is released, its claim not counted.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde::Serialize;
use serde_json::Value;
use steadfast_aws::{ConfigError, Env};
use steadfast_domain::inbox::InboxRecord;
use steadfast_domain::lease::{Claimed, LeasePolicy, Settle, Settled};
use steadfast_domain::ports::{EventBus, GateStore, Invoker, LeasedStore, Target};
use steadfast_domain::{Fate, FlowEvent, Outcome, RetryPolicy};
use steadfast_runtime::deliver::{deliver_all, log_answer, request_halt, HaltRequest, Item};
pub use steadfast_runtime::sweep::Trigger;
use steadfast_runtime::sweep::{claim_all, event_name_in, settled, Sweep};
use tracing::{error, info, warn};

pub struct Config {
    /// The portal's gate. `INBOX_TARGET_NAME`, default `portal-inbox`: its own gate, apart
    /// from the orders target's (set both names alike to share one on purpose).
    pub target: String,
    /// `INBOX_MAX_CLAIMS`, `INBOX_RETRY_BASE_SECONDS`, `INBOX_RETRY_CAP_SECONDS`,
    /// `INBOX_LEASE_SECONDS`.
    pub policy: LeasePolicy,
    /// In-process tries (`MAX_ATTEMPTS`, `RETRY_BASE_SECONDS`, `RETRY_CAP_SECONDS`).
    pub retry: RetryPolicy,
    /// Shards of the due index. `INBOX_SHARDS`, default 4.
    pub shards: u32,
    /// Records claimed per sweep at most. `INBOX_SWEEP_LIMIT`, default 500.
    pub sweep_limit: usize,
    /// The invocation's length when the runtime gives no usable deadline (local Runtime API
    /// servers). `INBOX_INVOCATION_TIMEOUT_SECONDS`, default 60.
    pub invocation_timeout: Duration,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let r = RetryPolicy::default();
        let d = steadfast_domain::inbox::default_policy();
        Ok(Config {
            target: env
                .optional("INBOX_TARGET_NAME")
                .unwrap_or_else(|| "portal-inbox".into()),
            policy: env.lease_policy("INBOX", "INBOX_MAX_CLAIMS", d)?,
            retry: RetryPolicy {
                max_attempts: env.whole_in("MAX_ATTEMPTS", u64::from(r.max_attempts), 2, 20)?
                    as u32,
                base: env.seconds("RETRY_BASE_SECONDS", r.base)?,
                cap: env.seconds("RETRY_CAP_SECONDS", r.cap)?,
                ..r
            },
            shards: steadfast_aws::inbox::shards_from(env)?,
            sweep_limit: env.whole_in("INBOX_SWEEP_LIMIT", 500, 1, 100_000)? as usize,
            invocation_timeout: env
                .seconds("INBOX_INVOCATION_TIMEOUT_SECONDS", Duration::from_secs(60))?,
        })
    }
}

/// One HTTP target per entity type, from `INBOX_ENTITIES` and `INBOX_PORTAL_URL`.
pub fn targets(
    env: &Env,
    token: std::sync::Arc<steadfast_aws::token::Token>,
) -> Result<BTreeMap<String, steadfast_aws::http::HttpTarget>, ConfigError> {
    let inbox = steadfast_aws::inbox::config_from(env)?;
    let base = env.optional("INBOX_PORTAL_URL");
    let urls = inbox
        .endpoints(base.as_deref())
        .map_err(|why| env.invalid("INBOX_PORTAL_URL", base.as_deref().unwrap_or(""), why))?;
    urls.into_iter()
        .map(|(entity, url)| {
            let target = steadfast_aws::http::HttpTarget::at(
                env,
                "INBOX_ENTITIES endpoint",
                url,
                None,
                token.clone(),
            )?;
            Ok((entity, target))
        })
        .collect()
}

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

pub struct Ports<S, G, E, I, T> {
    pub store: S,
    pub gates: G,
    pub events: E,
    pub invoker: I,
    /// The portal endpoint of each entity type.
    pub targets: BTreeMap<String, T>,
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
    pub tripped: bool,
    pub errors: u32,
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
        match trigger {
            Trigger::Records(ids) => {
                self.claim_and_deliver(cfg, &ids, &now, token, deadline, &mut tally)
                    .await
            }
            Trigger::Sweep => {
                let mut sweep = Sweep::new(cfg.shards, cfg.sweep_limit, now());
                while !tally.tripped {
                    let Some(ids) = sweep.next(&self.store, "inbox").await else {
                        break;
                    };
                    let before = tally.claimed;
                    self.claim_and_deliver(cfg, &ids, &now, token, deadline, &mut tally)
                        .await;
                    sweep.claimed((tally.claimed - before) as usize, ids.len());
                }
                tally.errors += sweep.errors;
            }
        }
        steadfast_aws::metrics::records_failed("inbox", tally.failed);
        info!(
            pipeline = "inbox",
            claimed = tally.claimed,
            delivered = tally.delivered,
            newer_versions = tally.newer_versions,
            retried = tally.retried,
            released = tally.released,
            failed = tally.failed,
            skipped = tally.skipped,
            lost_leases = tally.lost_leases,
            tripped = tally.tripped,
            "processor run done"
        );
        tally
    }

    async fn claim_and_deliver(
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
        let mut settles: Vec<(&Claimed<InboxRecord>, Settle)> = Vec::new();
        let mut items = Vec::new();
        let mut tried = Vec::new();
        let bodies: Vec<Result<Value, String>> =
            held.claimed.iter().map(|c| c.delivery()).collect();
        let keys: Vec<String> = held.claimed.iter().map(|c| c.idempotency_key()).collect();
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
                settles.push((c, self.refused(cfg, c, reason).await));
            } else if let (Some(target), Ok(body)) = (target, body) {
                let strikes = c.attempts.saturating_sub(1);
                items.push(Item {
                    target,
                    key,
                    body,
                    receives: c.attempts,
                    strikes,
                });
                tried.push((c, key));
            }
        }
        let (run, calls) = deliver_all(cfg.retry, &items, deadline, |i, attempt, outcome| {
            let (c, key) = tried[i];
            log_answer("inbox", key, attempt, outcome);
            if matches!(outcome, Outcome::Delivered { .. }) {
                let lag_ms = now().saturating_sub(c.record.changed_at_ms);
                info!(pipeline = "inbox", id = %c.id, version = c.record.version, lag_ms, outcome = "delivered");
            }
            async {}
        })
        .await;
        tally.api_calls += calls.made;
        for (&(c, _), fate) in tried.iter().zip(run.fates()) {
            let how = match fate {
                Fate::Delivered => Settle::Done {
                    at_ms: now(),
                    expires_at_s: None,
                },
                Fate::Refused(reason) => self.refused(cfg, c, reason.clone()).await,
                Fate::Own(reason) => {
                    cfg.policy
                        .after_failure(c.attempts, reason, now(), rand::random::<f64>())
                }
                Fate::HandBack | Fate::Open => Settle::Release {
                    due_at_ms: now().saturating_add(cfg.policy.retry.base.as_millis() as u64),
                },
            };
            settles.push((c, how));
        }
        if let Some(trip) = run.trip() {
            tally.tripped = true;
            let who = HaltRequest {
                target: &cfg.target,
                pipeline: "inbox",
                identity: tried[trip.index].1,
                message_id: "",
                observed_at_ms: None,
            };
            request_halt(&self.events, &self.invoker, &who, trip).await;
        }
        let done = join_all(settles.into_iter().map(|(c, how)| async move {
            let r = self.store.settle(c, &how).await;
            (c, how, r)
        }))
        .await;
        for (c, how, written) in done {
            count(c, &how, written, tally);
        }
    }

    /// A record the portal will never take (or that cannot be built): `Failed`, with an event.
    async fn refused(&self, cfg: &Config, c: &Claimed<InboxRecord>, reason: String) -> Settle {
        warn!(pipeline = "inbox", id = %c.id, version = c.record.version, reason, outcome = "failed");
        let event = FlowEvent::MessageParked {
            target: cfg.target.clone(),
            identity: c.idempotency_key(),
            message_id: String::new(),
            reason: reason.clone(),
        };
        if let Err(e) = self.events.emit(&event).await {
            warn!(pipeline = "inbox", error = %e, "MessageParked event not emitted");
        }
        Settle::Failed { error: reason }
    }
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
    match how {
        Settle::Done { .. } => {
            tally.delivered += 1;
            if done == Settled::NewerVersion {
                tally.newer_versions += 1;
            }
        }
        Settle::Retry { .. } => tally.retried += 1,
        Settle::Release { .. } => tally.released += 1,
        Settle::Failed { .. } => tally.failed += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steadfast_domain::backoff::{Backoff, Jitter};
    use steadfast_domain::fakes::*;
    use steadfast_domain::inbox::{InboxConfig, DEFAULT_MAX_RECORD_BYTES};
    use steadfast_domain::ports::InboxStore;
    use steadfast_domain::ports::InboxWrite;
    use steadfast_domain::{Gate, Status as InboxStatus};

    type Fake = Ports<MemInbox, MemGates, MemBus, MemInvoker, ScriptedTarget>;

    fn cfg() -> Config {
        Config {
            target: "portal".into(),
            policy: LeasePolicy {
                retry: Backoff {
                    base: Duration::from_secs(1),
                    cap: Duration::from_secs(4),
                    jitter: Jitter::None,
                    queue_limit: Duration::ZERO,
                },
                ..LeasePolicy::new(3, Duration::from_secs(10), "claim")
            },
            retry: RetryPolicy {
                max_attempts: 2,
                base: Duration::from_millis(1),
                cap: Duration::from_millis(2),
                reserve: Duration::ZERO,
                min_call: Duration::from_millis(1),
            },
            shards: 2,
            sweep_limit: 100,
            invocation_timeout: Duration::from_secs(60),
        }
    }

    fn ports(target: ScriptedTarget) -> Fake {
        Ports {
            store: MemInbox::default(),
            gates: MemGates::default(),
            events: MemBus::default(),
            invoker: MemInvoker::default(),
            targets: BTreeMap::from([("customer".to_owned(), target)]),
        }
    }

    async fn put(p: &Fake, no: u32, name: &str, ts: &str) -> String {
        let inbox = InboxConfig::parse(
            "/entity",
            r#"{"customer":{"key":["/no"],"endpoint":"/c"}}"#,
            DEFAULT_MAX_RECORD_BYTES,
        )
        .unwrap();
        let i = inbox
            .read(&format!(
                r#"{{"entity":"customer","no":{no},"name":"{name}","changedAt":"{ts}"}}"#
            ))
            .unwrap();
        let w = InboxWrite {
            incoming: &i,
            message_id: "m",
            now_ms: 0,
            shard: no % 2,
        };
        match p.store.current(&i.id).await.unwrap() {
            None => assert!(p.store.insert(&w).await.unwrap()),
            Some(c) => {
                let (version, status, fresh) =
                    match steadfast_domain::inbox::merge(Some(&c), &i.hash, i.changed_at_ms) {
                        steadfast_domain::Merge::Replace {
                            version,
                            status,
                            fresh,
                        } => (version, status, fresh),
                        other => panic!("{other:?}"),
                    };
                assert!(p
                    .store
                    .replace(&w, &c, version, status, fresh)
                    .await
                    .unwrap());
            }
        }
        i.id
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[tokio::test]
    async fn a_sweep_delivers_each_record_once_with_its_versioned_key() {
        let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 201 }));
        for no in 0..5 {
            put(&p, no, "A", "2026-01-01T00:00:00Z").await;
        }
        let t = p.run(&cfg(), Trigger::Sweep, || 10, "t1", later()).await;
        assert_eq!((t.claimed, t.delivered, t.api_calls), (5, 5, 5));
        let mut calls = p.targets["customer"].calls();
        calls.sort();
        assert_eq!(calls[0], "customer/0/1");
        assert_eq!(
            p.store.get("customer/0").unwrap().status,
            InboxStatus::Processed
        );
        // nothing is due any more
        let again = p.run(&cfg(), Trigger::Sweep, || 20, "t2", later()).await;
        assert_eq!(again.claimed, 0);
    }

    #[tokio::test]
    async fn a_halted_gate_claims_nothing() {
        let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 201 }));
        put(&p, 1, "A", "2026-01-01T00:00:00Z").await;
        let mut g = Gate::new("portal");
        g.state = steadfast_domain::GateState::Halted;
        g.version = 1;
        p.gates.0.lock().unwrap().insert("portal".into(), g);
        let t = p
            .run(
                &cfg(),
                Trigger::Records(vec!["customer/1".into()]),
                || 10,
                "t",
                later(),
            )
            .await;
        assert!(t.gate_closed);
        assert_eq!(t.claimed, 0);
        assert!(p.targets["customer"].calls().is_empty());
    }

    #[tokio::test]
    async fn a_portal_down_for_everyone_halts_once_and_every_record_waits_uncounted() {
        let p = ports(ScriptedTarget::always(Outcome::unavailable("HTTP 503")));
        for no in 0..6 {
            put(&p, no, "A", "2026-01-01T00:00:00Z").await;
        }
        let t = p.run(&cfg(), Trigger::Sweep, || 10, "t", later()).await;
        assert!(t.tripped);
        // the judge's calls: the first record one short, the next one's answer as witness
        assert_eq!(t.api_calls, 2, "{t:?}");
        assert_eq!((t.released, t.retried, t.failed), (t.claimed, 0, 0));
        assert_eq!(p.invoker.all().len(), 1, "one halt request");
        assert!(p.events.types().contains(&"DeliveryFailed"));
        for no in 0..6 {
            let r = p.store.get(&format!("customer/{no}")).unwrap();
            assert_eq!(
                (r.status, r.attempts),
                (InboxStatus::ToBeProcessed, 0),
                "nothing lost, no claim counted against the record"
            );
        }
    }

    #[tokio::test]
    async fn a_record_that_fails_while_others_are_delivered_retries_later_without_a_halt() {
        let p = ports(ScriptedTarget::new(
            vec![
                Outcome::Delivered { status: 201 },
                Outcome::Delivered { status: 201 },
                Outcome::unavailable("HTTP 500"),
                Outcome::unavailable("HTTP 500"),
            ],
            Outcome::Delivered { status: 201 },
        ));
        for no in [0, 2, 4] {
            put(&p, no, "A", "2026-01-01T00:00:00Z").await; // one shard, one page
        }
        // the record with the most claims is tried last: make customer/0 the known failure
        let c = p
            .store
            .claim("customer/0", 1, 2, "old")
            .await
            .unwrap()
            .unwrap();
        let back = Settle::Retry {
            due_at_ms: 3,
            error: "HTTP 500".into(),
        };
        p.store.settle(&c, &back).await.unwrap();
        let t = p.run(&cfg(), Trigger::Sweep, || 10, "t", later()).await;
        assert!(!t.tripped, "{t:?}");
        assert_eq!((t.delivered, t.retried), (2, 1), "{t:?}");
        let failing = p.store.get("customer/0").unwrap();
        assert_eq!(failing.status, InboxStatus::ToBeProcessed);
        assert!(failing.last_error.unwrap().contains("HTTP 500"));
        assert!(p.invoker.all().is_empty());
    }

    #[tokio::test]
    async fn a_refused_record_is_failed_with_its_reason_and_the_others_go_on() {
        let p = ports(ScriptedTarget::new(
            vec![Outcome::Refused("HTTP 422: Unprocessable Entity".into())],
            Outcome::Delivered { status: 201 },
        ));
        let c = cfg();
        put(&p, 1, "A", "2026-01-01T00:00:00Z").await;
        put(&p, 3, "B", "2026-01-01T00:00:00Z").await;
        let t = p.run(&c, Trigger::Sweep, || 10, "t", later()).await;
        assert_eq!((t.failed, t.delivered), (1, 1));
        let failed: Vec<_> = (0..4)
            .filter_map(|n| p.store.get(&format!("customer/{n}")))
            .filter(|r| r.status == InboxStatus::Failed)
            .collect();
        assert_eq!(
            failed[0].last_error.as_deref(),
            Some("HTTP 422: Unprocessable Entity")
        );
        assert_eq!(p.events.types(), vec!["MessageParked"]);
        // a newer version of the failed record is taken again
        let id = put(
            &p,
            if failed[0].record.record.contains("\"A\"") {
                1
            } else {
                3
            },
            "C",
            "2026-01-02T00:00:00Z",
        )
        .await;
        assert_eq!(p.store.get(&id).unwrap().status, InboxStatus::ToBeProcessed);
    }

    #[tokio::test]
    async fn an_update_while_in_progress_is_delivered_next() {
        let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 201 }));
        let id = put(&p, 1, "A", "2026-01-01T00:00:00Z").await;
        let claimed = p.store.claim(&id, 10, 100, "x").await.unwrap().unwrap();
        put(&p, 1, "B", "2026-01-02T00:00:00Z").await;
        let s = p
            .store
            .settle(
                &claimed,
                &Settle::Done {
                    at_ms: 11,
                    expires_at_s: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(s, Settled::NewerVersion);
        let t = p
            .run(
                &cfg(),
                Trigger::Records(vec![id.clone()]),
                || 12,
                "t",
                later(),
            )
            .await;
        assert_eq!(t.delivered, 1);
        assert_eq!(p.targets["customer"].calls(), vec!["customer/1/2"]);
        assert_eq!(p.store.get(&id).unwrap().status, InboxStatus::Processed);
    }

    #[test]
    fn stream_events_give_the_ids_that_became_pending() {
        let event = serde_json::json!({"Records": [
            {"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": {"Keys": {"id": {"S": "customer/1"}}, "NewImage": {"status": {"S": "ToBeProcessed"}}}},
            {"eventSource": "aws:dynamodb", "eventName": "MODIFY", "dynamodb": {"Keys": {"id": {"S": "customer/2"}}, "NewImage": {"status": {"S": "InProgress"}}}},
            {"eventSource": "aws:dynamodb", "eventName": "MODIFY", "dynamodb": {"Keys": {"id": {"S": "customer/3"}}}},
            {"eventSource": "aws:dynamodb", "eventName": "REMOVE", "dynamodb": {"Keys": {"id": {"S": "customer/4"}}}}
        ]});
        assert_eq!(
            trigger(&event),
            Trigger::Records(vec!["customer/1".into(), "customer/3".into()])
        );
        assert_eq!(
            trigger(&serde_json::json!({"source": "aws.scheduler"})),
            Trigger::Sweep
        );
    }
}
