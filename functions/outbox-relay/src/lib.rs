//! outbox-relay: publishes outbox records to the event bus.
//!
//! Two triggers. The table's stream (INSERT records): the new records are claimed and published
//! at once, so the normal path takes well under a second. The one-minute schedule: a sweep of
//! every shard of the sparse `due` index, which finds records due for a retry and records whose
//! lease expired (a relay crashed between claim and settle), up to a limit per invocation.
//!
//! Each record is claimed with a conditional update (lease + token), published in PutEvents
//! calls of at most ten entries, and settled by the result of its own entry: `Processed`, or
//! back to `ToBeProcessed` with a backoff, or `Failed` with an alert once attempts run out.
//! Settling is conditional on the claim token, so a relay that lost its lease writes nothing.

use futures::future::join_all;
use serde::Serialize;
use serde_json::Value;
use steadfast_domain::outbox::{
    batches, failed_detail, Claimed, OnClaim, RelayPolicy, Settle, RECORD_FAILED,
};
use steadfast_domain::ports::{OutboxStore, Outgoing, PortError, Publisher};
use tracing::{error, info, warn};

pub struct Config {
    pub policy: RelayPolicy,
    /// Shards of the due index. `OUTBOX_SHARDS`, default 8.
    pub shards: u32,
    /// Records claimed per sweep at most. `OUTBOX_SWEEP_LIMIT`, default 1000.
    pub sweep_limit: usize,
}

pub struct Ports<O, B> {
    pub outbox: O,
    pub bus: B,
}

/// What started this invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Records just inserted, by id (from a DynamoDB stream event).
    Inserted(Vec<String>),
    /// The schedule (any event that is not a stream event).
    Sweep,
}

impl Trigger {
    /// Reads a Lambda event: a DynamoDB stream event gives the ids of its INSERT records
    /// (key attribute `id`); anything else is a sweep.
    pub fn of(event: &Value) -> Trigger {
        let Some(records) = event.get("Records").and_then(Value::as_array) else {
            return Trigger::Sweep;
        };
        if !records.iter().any(|r| r["eventSource"] == "aws:dynamodb") {
            return Trigger::Sweep;
        }
        Trigger::Inserted(
            records
                .iter()
                .filter(|r| r["eventName"] == "INSERT")
                .filter_map(|r| r["dynamodb"]["Keys"]["id"]["S"].as_str().map(str::to_owned))
                .collect(),
        )
    }
}

/// What one invocation did; returned as the invocation's answer and logged.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Records the stream handed to this invocation (0 for a sweep).
    pub from_stream: u32,
    pub claimed: u32,
    /// Ids seen that were not due or were claimed by another relay first.
    pub skipped: u32,
    pub published: u32,
    pub retried: u32,
    pub failed: u32,
    /// Settles refused because the lease was lost meanwhile.
    pub lost_leases: u32,
    pub alerts: u32,
    pub errors: u32,
}

impl<O: OutboxStore, B: Publisher> Ports<O, B> {
    /// Runs one invocation. `now` reads the clock; `token` is unique per invocation.
    pub async fn run(
        &self,
        cfg: &Config,
        trigger: Trigger,
        now: impl Fn() -> u64,
        token: &str,
    ) -> Tally {
        let mut tally = Tally::default();
        match trigger {
            Trigger::Inserted(ids) => {
                tally.from_stream = ids.len() as u32;
                self.claim_and_publish(cfg, &ids, &now, token, &mut tally)
                    .await;
            }
            Trigger::Sweep => {
                // Due as of the start: a record put back during this run waits for the next.
                let started = now();
                let page = 100usize.min(cfg.sweep_limit.max(1));
                'shards: for shard in 0..cfg.shards {
                    loop {
                        if tally.claimed as usize >= cfg.sweep_limit {
                            break 'shards;
                        }
                        let ids = match self.outbox.due(shard, started, page).await {
                            Ok(ids) => ids,
                            Err(e) => {
                                error!(pipeline = "outbox", shard, error = %e, "due query failed");
                                tally.errors += 1;
                                break;
                            }
                        };
                        if ids.is_empty() {
                            break;
                        }
                        let before = tally.claimed;
                        self.claim_and_publish(cfg, &ids, &now, token, &mut tally)
                            .await;
                        // Nothing claimable in this page (index lagging, or another relay):
                        // leave the shard, the next sweep sees it again.
                        if tally.claimed == before || ids.len() < page {
                            break;
                        }
                    }
                }
            }
        }
        steadfast_aws::metrics::records_failed("outbox", tally.failed);
        info!(
            pipeline = "outbox",
            from_stream = tally.from_stream,
            claimed = tally.claimed,
            published = tally.published,
            retried = tally.retried,
            failed = tally.failed,
            skipped = tally.skipped,
            lost_leases = tally.lost_leases,
            "relay run done"
        );
        tally
    }

    /// Claims `ids` (concurrently), publishes what it holds in PutEvents calls of at most ten
    /// entries (concurrently), and settles each record by its own entry's result.
    async fn claim_and_publish(
        &self,
        cfg: &Config,
        ids: &[String],
        now: &impl Fn() -> u64,
        token: &str,
        tally: &mut Tally,
    ) {
        let claims = join_all(ids.iter().map(|id| async move {
            let t = now();
            (
                id,
                self.outbox
                    .claim(id, t, cfg.policy.lease_until(t), token)
                    .await,
            )
        }))
        .await;
        let mut held: Vec<Claimed> = Vec::new();
        let mut give_up: Vec<(Claimed, Settle)> = Vec::new();
        for (id, claim) in claims {
            match claim {
                Ok(Some(c)) => {
                    tally.claimed += 1;
                    match cfg.policy.on_claim(&c) {
                        OnClaim::Publish => held.push(c),
                        OnClaim::GiveUp { reason } => {
                            give_up.push((c, Settle::Failed { error: reason }))
                        }
                    }
                }
                Ok(None) => tally.skipped += 1,
                Err(e) => {
                    warn!(pipeline = "outbox", id = %id, error = %e, "claim failed; the sweep retries");
                    tally.errors += 1;
                }
            }
        }
        let sizes: Vec<usize> = held
            .iter()
            .map(|c| c.detail.len() + c.detail_type.len() + 64)
            .collect();
        let published = join_all(batches(&sizes).into_iter().map(|range| {
            let chunk = &held[range];
            async move {
                let entries: Vec<Outgoing> = chunk
                    .iter()
                    .map(|c| Outgoing {
                        detail_type: c.detail_type.clone(),
                        detail: c.detail.clone(),
                    })
                    .collect();
                let results = self.bus.publish(&entries).await;
                chunk.iter().zip(results).collect::<Vec<_>>()
            }
        }))
        .await;
        let mut settles: Vec<(Claimed, Settle)> = give_up;
        for (c, result) in published.into_iter().flatten() {
            let how = cfg.policy.settle(c, result, now(), rand::random::<f64>());
            settles.push((c.clone(), how));
        }
        let done = join_all(settles.into_iter().map(|(c, how)| async move {
            let r = self.outbox.settle(&c, &how).await;
            (c, how, r)
        }))
        .await;
        let mut alerts = Vec::new();
        for (c, how, r) in done {
            if let Some(alert) = self.count_settle(&c, &how, r, tally) {
                alerts.push((c, alert));
            }
        }
        for (c, alert) in alerts {
            match self.bus.publish(std::slice::from_ref(&alert)).await.pop() {
                Some(Ok(())) => tally.alerts += 1,
                other => {
                    error!(pipeline = "outbox", id = %c.id, error = ?other, "the alert for a failed record could not be published");
                    tally.errors += 1;
                }
            }
        }
    }

    /// Counts and logs one settle; returns the alert to send when the record ended `Failed`.
    fn count_settle(
        &self,
        c: &Claimed,
        how: &Settle,
        written: Result<bool, PortError>,
        tally: &mut Tally,
    ) -> Option<Outgoing> {
        match written {
            Ok(true) => {}
            Ok(false) => {
                warn!(pipeline = "outbox", id = %c.id, event_id = %c.event_id, "lease lost before settling; another relay owns the record");
                tally.lost_leases += 1;
                return None;
            }
            Err(e) => {
                // The claim stays until its lease expires; then the record is due again.
                error!(pipeline = "outbox", id = %c.id, error = %e, "settle failed; the record is retried after its lease");
                tally.errors += 1;
                return None;
            }
        }
        match how {
            Settle::Processed {
                published_at_ms, ..
            } => {
                tally.published += 1;
                // Relay lag: written → published.
                let lag_ms = published_at_ms.saturating_sub(c.created_at_ms);
                info!(pipeline = "outbox", id = %c.id, event_id = %c.event_id, attempts = c.attempts, lag_ms, outcome = "published");
                None
            }
            Settle::Retry { due_at_ms, error } => {
                tally.retried += 1;
                warn!(pipeline = "outbox", id = %c.id, due_at_ms, error = %error, outcome = "retry");
                None
            }
            Settle::Failed { error } => {
                tally.failed += 1;
                error!(pipeline = "outbox", id = %c.id, event_id = %c.event_id, error = %error, outcome = "failed");
                Some(Outgoing {
                    detail_type: RECORD_FAILED.to_owned(),
                    detail: failed_detail(c, error).to_string(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;
    use steadfast_domain::backoff::{Backoff, Jitter};
    use steadfast_domain::fakes::{MemOutbox, MemPublisher};
    use steadfast_domain::outbox::{NewRecord, APPLICATION_RECEIVED};
    use steadfast_domain::OutboxStatus;

    fn cfg() -> Config {
        Config {
            policy: RelayPolicy {
                max_attempts: 3,
                retry: Backoff {
                    base: Duration::from_secs(1),
                    cap: Duration::from_secs(4),
                    jitter: Jitter::None,
                    queue_limit: Duration::ZERO,
                },
                lease: Duration::from_secs(10),
                retention: Duration::from_secs(60),
            },
            shards: 4,
            sweep_limit: 1000,
        }
    }

    fn ports(n: usize) -> Ports<MemOutbox, MemPublisher> {
        let p = Ports {
            outbox: MemOutbox::default(),
            bus: MemPublisher::default(),
        };
        for i in 0..n {
            let id = format!("A-{i}");
            p.outbox.insert(NewRecord::new(
                &id,
                APPLICATION_RECEIVED,
                json!({"applicationId": id}).to_string(),
                0,
                4,
            ));
        }
        p
    }

    #[test]
    fn stream_events_name_their_inserted_ids() {
        let ev = json!({"Records": [
            {"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": {"Keys": {"id": {"S": "A-1"}}}},
            {"eventSource": "aws:dynamodb", "eventName": "MODIFY", "dynamodb": {"Keys": {"id": {"S": "A-2"}}}},
        ]});
        assert_eq!(Trigger::of(&ev), Trigger::Inserted(vec!["A-1".into()]));
        assert_eq!(
            Trigger::of(&json!({"source": "aws.scheduler"})),
            Trigger::Sweep
        );
        assert_eq!(Trigger::of(&json!({})), Trigger::Sweep);
    }

    #[tokio::test]
    async fn a_sweep_publishes_everything_in_batches_of_ten() {
        let p = ports(25);
        let t = p.run(&cfg(), Trigger::Sweep, || 1_000, "t1").await;
        assert_eq!((t.claimed, t.published), (25, 25));
        let calls = p.bus.calls.lock().unwrap();
        assert!(calls.iter().all(|c| c.len() <= 10));
        assert!(calls.len() >= 3);
        assert_eq!(p.outbox.get("A-7").unwrap().status, OutboxStatus::Processed);
        assert_eq!(p.outbox.get("A-7").unwrap().due_at_ms, None);
    }

    #[tokio::test]
    async fn inserted_records_are_published_without_a_sweep() {
        let p = ports(3);
        let t = p
            .run(
                &cfg(),
                Trigger::Inserted(vec!["A-1".into()]),
                || 1_000,
                "t1",
            )
            .await;
        assert_eq!(t.published, 1);
        assert_eq!(
            p.outbox.get("A-0").unwrap().status,
            OutboxStatus::ToBeProcessed
        );
    }

    #[tokio::test]
    async fn a_bus_outage_puts_records_back_with_backoff_and_they_go_out_later() {
        let p = ports(5);
        *p.bus.down.lock().unwrap() = true;
        let t = p.run(&cfg(), Trigger::Sweep, || 1_000, "t1").await;
        assert_eq!((t.published, t.retried), (0, 5));
        let r = p.outbox.get("A-0").unwrap();
        assert_eq!(
            (r.status, r.attempts, r.due_at_ms),
            (OutboxStatus::ToBeProcessed, 1, Some(2_000))
        );
        // Not due yet: nothing happens.
        let t = p.run(&cfg(), Trigger::Sweep, || 1_500, "t2").await;
        assert_eq!(t.claimed, 0);
        *p.bus.down.lock().unwrap() = false;
        let t = p.run(&cfg(), Trigger::Sweep, || 2_000, "t3").await;
        assert_eq!(t.published, 5);
        assert_eq!(p.bus.published.lock().unwrap().len(), 5);
    }

    #[tokio::test]
    async fn only_failed_entries_are_retried_and_a_poison_record_ends_failed_with_an_alert() {
        let p = ports(12);
        *p.bus.poison.lock().unwrap() = Some(r#""applicationId":"A-3""#.into());
        let clock = AtomicU64::new(1_000);
        for _ in 0..3 {
            p.run(
                &cfg(),
                Trigger::Sweep,
                || clock.load(Ordering::Relaxed),
                "t",
            )
            .await;
            clock.fetch_add(10_000, Ordering::Relaxed);
        }
        let published = p.bus.published.lock().unwrap();
        let apps: Vec<_> = published
            .iter()
            .filter(|e| e.detail_type == APPLICATION_RECEIVED)
            .collect();
        assert_eq!(apps.len(), 11, "every other record once");
        let alerts: Vec<_> = published
            .iter()
            .filter(|e| e.detail_type == RECORD_FAILED)
            .collect();
        assert_eq!(alerts.len(), 1);
        assert!(alerts[0].detail.contains("A-3"));
        let r = p.outbox.get("A-3").unwrap();
        assert_eq!((r.status, r.attempts), (OutboxStatus::Failed, 3));
    }

    #[tokio::test]
    async fn an_expired_lease_is_reclaimed_and_the_old_holder_cannot_settle() {
        let p = ports(1);
        let c = cfg();
        // A relay claims at t=1000 and dies.
        let dead = p
            .outbox
            .claim("A-0", 1_000, c.policy.lease_until(1_000), "dead")
            .await
            .unwrap()
            .unwrap();
        let t = p.run(&c, Trigger::Sweep, || 5_000, "live").await;
        assert_eq!(t.claimed, 0, "lease still held");
        let t = p.run(&c, Trigger::Sweep, || 11_001, "live").await;
        assert_eq!(t.published, 1);
        let r = p.outbox.get("A-0").unwrap();
        assert_eq!((r.status, r.attempts), (OutboxStatus::Processed, 2));
        let late = p
            .outbox
            .settle(
                &dead,
                &Settle::Retry {
                    due_at_ms: 0,
                    error: "x".into(),
                },
            )
            .await
            .unwrap();
        assert!(!late, "a lost lease settles nothing");
    }

    #[tokio::test]
    async fn a_record_whose_relays_keep_dying_ends_failed() {
        let p = ports(1);
        let c = cfg();
        let mut t0 = 1_000;
        for _ in 0..3 {
            p.outbox
                .claim("A-0", t0, c.policy.lease_until(t0), "dies")
                .await
                .unwrap()
                .unwrap();
            t0 += 20_000;
        }
        let t = p.run(&c, Trigger::Sweep, || t0, "live").await;
        assert_eq!((t.failed, t.alerts, t.published), (1, 1, 0));
        assert_eq!(p.outbox.get("A-0").unwrap().status, OutboxStatus::Failed);
    }
}
