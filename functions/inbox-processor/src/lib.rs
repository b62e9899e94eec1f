//! inbox-processor: delivers the inbox's pending records to the portal, guarded by the gate.
//!
//! Two triggers. The table's stream (records that became `ToBeProcessed`): those ids are
//! claimed at once. The one-minute schedule: a sweep of every shard of the sparse `due` index,
//! for records due again (after a failed claim, a halt, or an expired lease).
//!
//! First the gate of the portal is read (the same gate as the guarded-delivery pipeline): if it
//! is not `Flowing`, nothing is claimed, and the records wait for a sweep after the flow
//! resumes. Each record is claimed with a conditional update (lease + token) and delivered
//! with `Idempotency-Key = type/key/version`, records of different keys concurrently, one at a
//! time per key (the claim). Settling is conditional on the claim: `Processed` only if the
//! version is still the one delivered, otherwise due again so the newer version goes next.
//! A refused record (4xx) is `Failed` with the reason. When a record exhausts its in-process
//! tries, `close` is asked to halt the flow, the record waits for its retry time, and the
//! records not yet attempted are released untouched.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures::future::join_all;
use futures::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::Value;
use steadfast_domain::inbox::{InboxClaimed, InboxPolicy, InboxSettle, Settled};
use steadfast_domain::ports::{EventBus, GateStore, InboxStore, Invoker, Target};
use steadfast_domain::{CloseRequest, FlowEvent, Next, Outcome, RetryPolicy, TripRequest};
use tracing::{error, info, warn};

pub struct Config {
    /// The portal's gate. `INBOX_TARGET_NAME`, default `portal-inbox`: its own gate, apart
    /// from the orders target's (set both names alike to share one on purpose).
    pub target: String,
    pub policy: InboxPolicy,
    /// In-process tries per claim (`MAX_ATTEMPTS`, `RETRY_BASE_SECONDS`, `RETRY_CAP_SECONDS`).
    pub retry: RetryPolicy,
    /// Shards of the due index. `INBOX_SHARDS`, default 4.
    pub shards: u32,
    /// Records claimed per sweep at most. `INBOX_SWEEP_LIMIT`, default 500.
    pub sweep_limit: usize,
    /// Deliveries in flight at once (different keys). `INBOX_DELIVERY_CONCURRENCY`, default 8.
    pub concurrency: usize,
}

pub struct Ports<S, G, E, I, T> {
    pub store: S,
    pub gates: G,
    pub events: E,
    pub invoker: I,
    /// The portal endpoint of each entity type.
    pub targets: BTreeMap<String, T>,
}

/// What started this invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Records that became `ToBeProcessed`, by id (from a DynamoDB stream event).
    Changed(Vec<String>),
    /// The schedule (any event that is not a stream event).
    Sweep,
}

impl Trigger {
    /// A DynamoDB stream event gives the ids of its INSERT/MODIFY records whose new image is
    /// `ToBeProcessed` (a keys-only record counts too); anything else is a sweep.
    pub fn of(event: &Value) -> Trigger {
        let Some(records) = event.get("Records").and_then(Value::as_array) else {
            return Trigger::Sweep;
        };
        if !records.iter().any(|r| r["eventSource"] == "aws:dynamodb") {
            return Trigger::Sweep;
        }
        let mut ids: Vec<String> = records
            .iter()
            .filter(|r| r["eventName"] == "INSERT" || r["eventName"] == "MODIFY")
            .filter(
                |r| match r["dynamodb"]["NewImage"]["status"]["S"].as_str() {
                    Some(status) => status == "ToBeProcessed",
                    None => true,
                },
            )
            .filter_map(|r| r["dynamodb"]["Keys"]["id"]["S"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids.dedup();
        Trigger::Changed(ids)
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
    /// Claimed but not attempted, because the run stopped.
    pub released: u32,
    pub failed: u32,
    pub lost_leases: u32,
    pub api_calls: u32,
    pub tripped: bool,
    pub errors: u32,
}

/// What the deliveries of one run share.
#[derive(Default)]
struct Run {
    /// This run asked `close` to halt the flow: nothing more is attempted.
    stop: AtomicBool,
    /// One delivery is retrying a transient failure. The others do not retry meanwhile (nor
    /// start), so a sick portal sees one retrying caller per run, not one per record in flight.
    canary: AtomicBool,
}

/// One record's end in this run.
#[derive(Debug, Default)]
struct One {
    api_calls: u32,
    settled: Option<(InboxSettle, Result<Settled, String>)>,
}

impl<S, G, E, I, T> Ports<S, G, E, I, T>
where
    S: InboxStore,
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
        let run = Run::default();
        match trigger {
            Trigger::Changed(ids) => {
                self.claim_and_deliver(cfg, &ids, &now, token, deadline, &run, &mut tally)
                    .await;
            }
            Trigger::Sweep => {
                // Due as of the start: a record put back during this run waits for the next.
                let started = now();
                let page = 100usize.min(cfg.sweep_limit.max(1));
                'shards: for shard in 0..cfg.shards {
                    loop {
                        if run.stop.load(Ordering::SeqCst)
                            || tally.claimed as usize >= cfg.sweep_limit
                        {
                            break 'shards;
                        }
                        let ids = match self.store.due(shard, started, page).await {
                            Ok(ids) => ids,
                            Err(e) => {
                                error!(pipeline = "inbox", shard, error = %e, "due query failed");
                                tally.errors += 1;
                                break;
                            }
                        };
                        if ids.is_empty() {
                            break;
                        }
                        let before = tally.claimed;
                        self.claim_and_deliver(cfg, &ids, &now, token, deadline, &run, &mut tally)
                            .await;
                        if tally.claimed == before || ids.len() < page {
                            break;
                        }
                    }
                }
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

    #[allow(clippy::too_many_arguments)]
    async fn claim_and_deliver(
        &self,
        cfg: &Config,
        ids: &[String],
        now: &impl Fn() -> u64,
        token: &str,
        deadline: Instant,
        run: &Run,
        tally: &mut Tally,
    ) {
        let claims = join_all(ids.iter().map(|id| async move {
            let t = now();
            (
                id,
                self.store
                    .claim(id, t, cfg.policy.lease_until(t), token)
                    .await,
            )
        }))
        .await;
        let mut held = Vec::new();
        for (id, claim) in claims {
            match claim {
                Ok(Some(c)) => held.push(c),
                Ok(None) => tally.skipped += 1,
                Err(e) => {
                    warn!(pipeline = "inbox", id = %id, error = %e, "claim failed; a sweep retries");
                    tally.errors += 1;
                }
            }
        }
        tally.claimed += held.len() as u32;
        let ends: Vec<(InboxClaimed, One)> = stream::iter(held)
            .map(|c| async move {
                let one = self.deliver(cfg, &c, now, deadline, run).await;
                (c, one)
            })
            .buffer_unordered(cfg.concurrency.max(1))
            .collect()
            .await;
        for (c, one) in ends {
            tally.api_calls += one.api_calls;
            let Some((how, result)) = one.settled else {
                continue;
            };
            match result {
                Err(e) => {
                    // The claim holds until its lease ends; then a sweep finds the record again.
                    error!(pipeline = "inbox", id = %c.id, version = c.version, error = %e, "settle failed");
                    tally.errors += 1;
                }
                Ok(Settled::LeaseLost) => {
                    warn!(pipeline = "inbox", id = %c.id, version = c.version, "lease lost before settling");
                    tally.lost_leases += 1;
                }
                Ok(settled) => match how {
                    InboxSettle::Delivered { .. } => {
                        tally.delivered += 1;
                        if settled == Settled::NewerVersion {
                            tally.newer_versions += 1;
                        }
                    }
                    InboxSettle::Retry { .. } => tally.retried += 1,
                    InboxSettle::Release { .. } => tally.released += 1,
                    InboxSettle::Failed { .. } => tally.failed += 1,
                },
            }
        }
        if run.stop.load(Ordering::SeqCst) {
            tally.tripped = true;
        }
    }

    /// Delivers one claimed record and settles it.
    async fn deliver(
        &self,
        cfg: &Config,
        c: &InboxClaimed,
        now: &impl Fn() -> u64,
        deadline: Instant,
        run: &Run,
    ) -> One {
        let mut one = One::default();
        let key = c.idempotency_key();
        let later = |now_ms: u64| now_ms.saturating_add(cfg.policy.retry.base.as_millis() as u64);
        let how = 'decide: {
            if let Some(reason) = cfg.policy.give_up(c) {
                break 'decide self.refused(cfg, c, reason).await;
            }
            if run.stop.load(Ordering::SeqCst) || run.canary.load(Ordering::SeqCst) {
                break 'decide InboxSettle::Release {
                    due_at_ms: later(now()),
                };
            }
            let Some(target) = self.targets.get(&c.entity) else {
                let reason = format!("entity type `{}` has no configured endpoint", c.entity);
                break 'decide self.refused(cfg, c, reason).await;
            };
            let body = match c.delivery() {
                Ok(b) => b,
                Err(reason) => break 'decide self.refused(cfg, c, reason).await,
            };
            let mut attempt = 0u32;
            let mut canary = false;
            let how = loop {
                let remaining = deadline.saturating_duration_since(Instant::now());
                let Some(timeout) = cfg.retry.call_timeout(target.timeout(), remaining) else {
                    // No call can end before the deadline: back to the index, claim uncounted.
                    break InboxSettle::Release { due_at_ms: now() };
                };
                attempt += 1;
                one.api_calls += 1;
                let outcome = target.deliver(&key, &body, timeout).await;
                if let Outcome::Delivered { status } = outcome {
                    let lag_ms = now().saturating_sub(c.changed_at_ms);
                    info!(pipeline = "inbox", id = %c.id, version = c.version, status, attempt, lag_ms, outcome = "delivered");
                    break InboxSettle::Delivered { at_ms: now() };
                }
                let remaining = deadline.saturating_duration_since(Instant::now());
                match cfg
                    .retry
                    .after(attempt, &outcome, remaining, rand::random::<f64>())
                {
                    Next::Retry(_) if run.stop.load(Ordering::SeqCst) => {
                        // Another delivery halted the flow meanwhile: stop here.
                        break cfg.policy.after_failure(
                            c,
                            &outcome.reason(),
                            now(),
                            rand::random::<f64>(),
                        );
                    }
                    Next::Retry(_) if !canary && run.canary.swap(true, Ordering::SeqCst) => {
                        // Another delivery is already retrying: leave the portal to it.
                        info!(pipeline = "inbox", id = %c.id, version = c.version, reason = %outcome.reason(), outcome = "held_back");
                        break InboxSettle::Release {
                            due_at_ms: later(now()),
                        };
                    }
                    Next::Retry(pause) => {
                        canary = true;
                        info!(pipeline = "inbox", id = %c.id, version = c.version, attempt, reason = %outcome.reason(), pause_ms = pause.as_millis() as u64, outcome = "retrying");
                        tokio::time::sleep(pause).await;
                    }
                    Next::Park(reason) => break self.refused(cfg, c, reason).await,
                    Next::Halt { reason, wait_hint } => {
                        if !run.stop.swap(true, Ordering::SeqCst) {
                            self.trip(cfg, c, attempt, &reason, wait_hint).await;
                        }
                        warn!(pipeline = "inbox", id = %c.id, version = c.version, attempt, reason, outcome = "retry_later");
                        break cfg
                            .policy
                            .after_failure(c, &reason, now(), rand::random::<f64>());
                    }
                }
            };
            if canary {
                run.canary.store(false, Ordering::SeqCst);
            }
            how
        };
        let result = self.store.settle(c, &how).await.map_err(|e| e.to_string());
        one.settled = Some((how, result));
        one
    }

    /// A record the portal will never take (or that cannot be built): `Failed`, with an event.
    async fn refused(&self, cfg: &Config, c: &InboxClaimed, reason: String) -> InboxSettle {
        warn!(pipeline = "inbox", id = %c.id, version = c.version, reason, outcome = "failed");
        let event = FlowEvent::MessageParked {
            target: cfg.target.clone(),
            identity: c.idempotency_key(),
            message_id: String::new(),
            reason: reason.clone(),
        };
        if let Err(e) = self.events.emit(&event).await {
            warn!(pipeline = "inbox", error = %e, "MessageParked event not emitted");
        }
        InboxSettle::Failed { error: reason }
    }

    /// Tells the error service, and asks `close` to halt the flow.
    async fn trip(
        &self,
        cfg: &Config,
        c: &InboxClaimed,
        attempts: u32,
        reason: &str,
        wait_hint: Option<std::time::Duration>,
    ) {
        warn!(pipeline = "inbox", id = %c.id, attempts, reason, "giving up; asking close to halt the flow");
        let failed = FlowEvent::DeliveryFailed {
            target: cfg.target.clone(),
            identity: c.idempotency_key(),
            message_id: String::new(),
            attempts,
            reason: reason.to_owned(),
        };
        if let Err(e) = self.events.emit(&failed).await {
            warn!(pipeline = "inbox", error = %e, "DeliveryFailed event not emitted");
        }
        let trip = CloseRequest::Trip(TripRequest {
            target: cfg.target.clone(),
            reason: format!("inbox: {attempts} failed attempts, last: {reason}"),
            wait_hint_ms: wait_hint.map(|d| d.as_millis() as u64),
            manual: false,
            observed_at_ms: None,
        });
        if let Err(e) = self.invoker.close(&trip).await {
            warn!(pipeline = "inbox", error = %e, "trip request not sent; the next run tries again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use steadfast_domain::backoff::{Backoff, Jitter};
    use steadfast_domain::fakes::*;
    use steadfast_domain::inbox::{InboxConfig, DEFAULT_MAX_RECORD_BYTES};
    use steadfast_domain::ports::InboxWrite;
    use steadfast_domain::{Gate, InboxStatus};

    type Fake = Ports<MemInbox, MemGates, MemBus, MemInvoker, ScriptedTarget>;

    fn cfg() -> Config {
        Config {
            target: "portal".into(),
            policy: InboxPolicy {
                max_claims: 3,
                retry: Backoff {
                    base: Duration::from_secs(1),
                    cap: Duration::from_secs(4),
                    jitter: Jitter::None,
                    queue_limit: Duration::ZERO,
                },
                lease: Duration::from_secs(10),
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
            concurrency: 4,
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
            p.store.get("customer/0").unwrap().current.status,
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
                Trigger::Changed(vec!["customer/1".into()]),
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
    async fn exhausted_tries_trip_the_gate_once_and_release_the_rest() {
        let mut c = cfg();
        c.concurrency = 1;
        let p = ports(ScriptedTarget::always(Outcome::unavailable("HTTP 503")));
        for no in 0..4 {
            put(&p, no, "A", "2026-01-01T00:00:00Z").await;
        }
        let t = p.run(&c, Trigger::Sweep, || 10, "t", later()).await;
        assert!(t.tripped);
        assert_eq!(t.api_calls, 2, "only the first record is tried, twice");
        assert_eq!(t.retried + t.released, t.claimed);
        assert_eq!(t.retried, 1);
        let trips = p.invoker.all();
        assert_eq!(trips.len(), 1);
        assert!(p.events.types().contains(&"DeliveryFailed"));
        // nothing was lost: every record is pending again
        for no in 0..4 {
            let r = p.store.get(&format!("customer/{no}")).unwrap();
            assert_eq!(r.current.status, InboxStatus::ToBeProcessed);
        }
    }

    #[tokio::test]
    async fn a_sick_portal_sees_one_retrying_caller_per_run() {
        let mut c = cfg();
        c.concurrency = 4;
        c.retry.max_attempts = 3;
        let p = ports(ScriptedTarget::always(Outcome::unavailable("HTTP 503")));
        for no in 0..6 {
            put(&p, no, "A", "2026-01-01T00:00:00Z").await;
        }
        let t = p.run(&c, Trigger::Sweep, || 10, "t", later()).await;
        // at most one first attempt per delivery slot, then only the canary retries
        assert!(t.api_calls <= 4 + 2, "{t:?}");
        assert!(t.tripped);
        assert_eq!(p.invoker.all().len(), 1);
        assert_eq!(t.retried + t.released, t.claimed);
        for no in 0..6 {
            let r = p.store.get(&format!("customer/{no}")).unwrap();
            assert_eq!(r.current.status, InboxStatus::ToBeProcessed, "nothing lost");
        }
    }

    #[tokio::test]
    async fn a_refused_record_is_failed_with_its_reason_and_the_others_go_on() {
        let p = ports(ScriptedTarget::new(
            vec![Outcome::Refused("HTTP 422: Unprocessable Entity".into())],
            Outcome::Delivered { status: 201 },
        ));
        let mut c = cfg();
        c.concurrency = 1;
        put(&p, 1, "A", "2026-01-01T00:00:00Z").await;
        put(&p, 3, "B", "2026-01-01T00:00:00Z").await;
        let t = p.run(&c, Trigger::Sweep, || 10, "t", later()).await;
        assert_eq!((t.failed, t.delivered), (1, 1));
        let failed: Vec<_> = (0..4)
            .filter_map(|n| p.store.get(&format!("customer/{n}")))
            .filter(|r| r.current.status == InboxStatus::Failed)
            .collect();
        assert_eq!(
            failed[0].last_error.as_deref(),
            Some("HTTP 422: Unprocessable Entity")
        );
        assert_eq!(p.events.types(), vec!["MessageParked"]);
        // a newer version of the failed record is taken again
        let id = put(
            &p,
            if failed[0].record.contains("\"A\"") {
                1
            } else {
                3
            },
            "C",
            "2026-01-02T00:00:00Z",
        )
        .await;
        assert_eq!(
            p.store.get(&id).unwrap().current.status,
            InboxStatus::ToBeProcessed
        );
    }

    #[tokio::test]
    async fn an_update_while_in_progress_is_delivered_next() {
        let p = ports(ScriptedTarget::always(Outcome::Delivered { status: 201 }));
        let id = put(&p, 1, "A", "2026-01-01T00:00:00Z").await;
        let claimed = p.store.claim(&id, 10, 100, "x").await.unwrap().unwrap();
        put(&p, 1, "B", "2026-01-02T00:00:00Z").await;
        let s = p
            .store
            .settle(&claimed, &InboxSettle::Delivered { at_ms: 11 })
            .await
            .unwrap();
        assert_eq!(s, Settled::NewerVersion);
        let t = p
            .run(
                &cfg(),
                Trigger::Changed(vec![id.clone()]),
                || 12,
                "t",
                later(),
            )
            .await;
        assert_eq!(t.delivered, 1);
        assert_eq!(p.targets["customer"].calls(), vec!["customer/1/2"]);
        assert_eq!(
            p.store.get(&id).unwrap().current.status,
            InboxStatus::Processed
        );
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
            Trigger::of(&event),
            Trigger::Changed(vec!["customer/1".into(), "customer/3".into()])
        );
        assert_eq!(
            Trigger::of(&serde_json::json!({"source": "aws.scheduler"})),
            Trigger::Sweep
        );
    }
}
