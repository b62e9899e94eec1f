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
use steadfast_aws::{ConfigError, Env};
use steadfast_domain::lease::{Claimed, Settle, Settled};
use steadfast_domain::outbox::{batches, failed_detail, OutboxRecord, RelayPolicy, RECORD_FAILED};
use steadfast_domain::ports::{LeasedStore, Outgoing, PortResult, Publisher};
pub use steadfast_runtime::sweep::Trigger;
use steadfast_runtime::sweep::{claim_all, settled, Sweep};
use tracing::{error, info, warn};

pub struct Config {
    pub policy: RelayPolicy,
    /// Shards of the due index. `OUTBOX_SHARDS`, default 8.
    pub shards: u32,
    /// Records claimed per sweep at most. `OUTBOX_SWEEP_LIMIT`, default 1000.
    pub sweep_limit: usize,
}

impl Config {
    /// `OUTBOX_MAX_ATTEMPTS`, `OUTBOX_RETRY_BASE_SECONDS`, `OUTBOX_RETRY_CAP_SECONDS`,
    /// `OUTBOX_LEASE_SECONDS`, `OUTBOX_RETENTION_DAYS`, `OUTBOX_SHARDS`, `OUTBOX_SWEEP_LIMIT`.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let d = RelayPolicy::default();
        Ok(Config {
            policy: RelayPolicy {
                lease: env.lease_policy("OUTBOX", "OUTBOX_MAX_ATTEMPTS", d.lease)?,
                retention: std::time::Duration::from_secs(
                    86_400 * env.whole_in("OUTBOX_RETENTION_DAYS", 7, 1, 365)?,
                ),
            },
            shards: steadfast_aws::outbox::shards_from(env)?,
            sweep_limit: env.whole_in("OUTBOX_SWEEP_LIMIT", 1000, 1, 100_000)? as usize,
        })
    }
}

pub struct Ports<O, B> {
    pub outbox: O,
    pub bus: B,
}

/// Reads a Lambda event: a stream event names the records just inserted; anything else is a
/// sweep.
pub fn trigger(event: &serde_json::Value) -> Trigger {
    Trigger::of(event, |r| {
        steadfast_runtime::sweep::event_name_in(r, &["INSERT"])
    })
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

impl<O: LeasedStore<Record = OutboxRecord>, B: Publisher> Ports<O, B> {
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
            Trigger::Records(ids) => {
                tally.from_stream = ids.len() as u32;
                self.claim_and_publish(cfg, &ids, &now, token, &mut tally)
                    .await;
            }
            Trigger::Sweep => {
                let mut sweep = Sweep::new(cfg.shards, cfg.sweep_limit, now());
                while let Some(ids) = sweep.next(&self.outbox, "outbox").await {
                    let before = tally.claimed;
                    self.claim_and_publish(cfg, &ids, &now, token, &mut tally)
                        .await;
                    sweep.claimed((tally.claimed - before) as usize, ids.len());
                }
                tally.errors += sweep.errors;
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
        let held = claim_all(&self.outbox, ids, &cfg.policy.lease, now, token, "outbox").await;
        tally.claimed += held.claimed.len() as u32;
        tally.skipped += held.skipped;
        tally.errors += held.errors;
        let (give_up, publish): (Vec<_>, Vec<_>) = held
            .claimed
            .into_iter()
            .map(|c| (cfg.policy.lease.give_up(c.attempts), c))
            .partition(|(reason, _)| reason.is_some());
        let mut settles: Vec<(Claimed<OutboxRecord>, Settle)> = give_up
            .into_iter()
            .map(|(reason, c)| {
                (
                    c,
                    Settle::Failed {
                        error: reason.unwrap_or_default(),
                    },
                )
            })
            .collect();
        let publish: Vec<Claimed<OutboxRecord>> = publish.into_iter().map(|(_, c)| c).collect();
        for (c, result) in self.publish(&publish).await {
            let how = cfg.policy.settle(c, result, now(), rand::random::<f64>());
            settles.push((c.clone(), how));
        }
        let done = join_all(settles.into_iter().map(|(c, how)| async move {
            let r = self.outbox.settle(&c, &how).await;
            (c, how, r)
        }))
        .await;
        for (c, how, r) in done {
            if let Some(alert) = count_settle(&c, &how, r, tally) {
                self.alert(&c, alert, tally).await;
            }
        }
    }

    /// Publishes `records` in PutEvents calls (concurrently); each with its own entry's result.
    async fn publish<'c>(
        &self,
        records: &'c [Claimed<OutboxRecord>],
    ) -> Vec<(&'c Claimed<OutboxRecord>, Result<(), String>)> {
        let sizes: Vec<usize> = records
            .iter()
            .map(|c| c.record.detail.len() + c.record.detail_type.len() + 64)
            .collect();
        let published = join_all(batches(&sizes).into_iter().map(|range| {
            let chunk = &records[range];
            async move {
                let entries: Vec<Outgoing> = chunk
                    .iter()
                    .map(|c| Outgoing {
                        detail_type: c.record.detail_type.clone(),
                        detail: c.record.detail.clone(),
                    })
                    .collect();
                let results = self.bus.publish(&entries).await;
                chunk.iter().zip(results).collect::<Vec<_>>()
            }
        }))
        .await;
        published.into_iter().flatten().collect()
    }

    async fn alert(&self, c: &Claimed<OutboxRecord>, alert: Outgoing, tally: &mut Tally) {
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
    c: &Claimed<OutboxRecord>,
    how: &Settle,
    written: PortResult<Settled>,
    tally: &mut Tally,
) -> Option<Outgoing> {
    match &written {
        Ok(Settled::LeaseLost) => tally.lost_leases += 1,
        Err(_) => tally.errors += 1,
        Ok(_) => {}
    }
    settled("outbox", c, written)?;
    match how {
        Settle::Done { at_ms, .. } => {
            tally.published += 1;
            // Relay lag: written → published.
            let lag_ms = at_ms.saturating_sub(c.record.created_at_ms);
            info!(pipeline = "outbox", id = %c.id, event_id = %c.record.event_id, attempts = c.attempts, lag_ms, outcome = "published");
            None
        }
        Settle::Retry { due_at_ms, error } => {
            tally.retried += 1;
            warn!(pipeline = "outbox", id = %c.id, due_at_ms, error = %error, outcome = "retry");
            None
        }
        Settle::Release { .. } => None,
        Settle::Failed { error } => {
            tally.failed += 1;
            error!(pipeline = "outbox", id = %c.id, event_id = %c.record.event_id, error = %error, outcome = "failed");
            Some(Outgoing {
                detail_type: RECORD_FAILED.to_owned(),
                detail: failed_detail(c, error).to_string(),
            })
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
    use steadfast_domain::lease::{LeasePolicy, Status};
    use steadfast_domain::outbox::{NewRecord, APPLICATION_RECEIVED};

    fn cfg() -> Config {
        Config {
            policy: RelayPolicy {
                lease: LeasePolicy {
                    retry: Backoff {
                        base: Duration::from_secs(1),
                        cap: Duration::from_secs(4),
                        jitter: Jitter::None,
                        queue_limit: Duration::ZERO,
                    },
                    ..LeasePolicy::new(3, Duration::from_secs(10), "attempt")
                },
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
        assert_eq!(trigger(&ev), Trigger::Records(vec!["A-1".into()]));
        assert_eq!(trigger(&json!({"source": "aws.scheduler"})), Trigger::Sweep);
        assert_eq!(trigger(&json!({})), Trigger::Sweep);
    }

    #[tokio::test]
    async fn a_sweep_publishes_everything_in_batches_of_ten() {
        let p = ports(25);
        let t = p.run(&cfg(), Trigger::Sweep, || 1_000, "t1").await;
        assert_eq!((t.claimed, t.published), (25, 25));
        let calls = p.bus.calls.lock().unwrap();
        assert!(calls.iter().all(|c| c.len() <= 10));
        assert!(calls.len() >= 3);
        assert_eq!(p.outbox.get("A-7").unwrap().status, Status::Processed);
        assert_eq!(p.outbox.get("A-7").unwrap().due_at_ms, None);
    }

    #[tokio::test]
    async fn inserted_records_are_published_without_a_sweep() {
        let p = ports(3);
        let t = p
            .run(&cfg(), Trigger::Records(vec!["A-1".into()]), || 1_000, "t1")
            .await;
        assert_eq!(t.published, 1);
        assert_eq!(p.outbox.get("A-0").unwrap().status, Status::ToBeProcessed);
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
            (Status::ToBeProcessed, 1, Some(2_000))
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
        assert_eq!((r.status, r.attempts), (Status::Failed, 3));
    }

    #[tokio::test]
    async fn an_expired_lease_is_reclaimed_and_the_old_holder_cannot_settle() {
        let p = ports(1);
        let c = cfg();
        // A relay claims at t=1000 and dies.
        let dead = p
            .outbox
            .claim("A-0", 1_000, c.policy.lease.lease_until(1_000), "dead")
            .await
            .unwrap()
            .unwrap();
        let t = p.run(&c, Trigger::Sweep, || 5_000, "live").await;
        assert_eq!(t.claimed, 0, "lease still held");
        let t = p.run(&c, Trigger::Sweep, || 11_001, "live").await;
        assert_eq!(t.published, 1);
        let r = p.outbox.get("A-0").unwrap();
        assert_eq!((r.status, r.attempts), (Status::Processed, 2));
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
        assert_eq!(late, Settled::LeaseLost, "a lost lease settles nothing");
    }

    #[tokio::test]
    async fn a_record_whose_relays_keep_dying_ends_failed() {
        let p = ports(1);
        let c = cfg();
        let mut t0 = 1_000;
        for _ in 0..3 {
            p.outbox
                .claim("A-0", t0, c.policy.lease.lease_until(t0), "dies")
                .await
                .unwrap()
                .unwrap();
            t0 += 20_000;
        }
        let t = p.run(&c, Trigger::Sweep, || t0, "live").await;
        assert_eq!((t.failed, t.alerts, t.published), (1, 1, 0));
        assert_eq!(p.outbox.get("A-0").unwrap().status, Status::Failed);
    }
}
