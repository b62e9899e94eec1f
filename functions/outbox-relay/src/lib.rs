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
//!
//! Every line about a record carries the correlation id the writer stored with it (the
//! lender's message's); the published event has it in its detail (`correlationId`), and so
//! does the `OutboxRecordFailed` alert.
//!
//! Each run writes its metrics for the bus (`steadfast_aws::metrics`): `Delivered` (records
//! published), `RelayLagMs` (written → published, per record), `ClaimConflicts` (claims
//! skipped, leases lost) and `RecordsFailed`.

use futures::future::join_all;
use serde::Serialize;
use steadfast_aws::metrics::{Document, Metric};
use steadfast_aws::{ConfigError, Env};
use steadfast_domain::lease::{Claimed, Leased, Settle, Settled};
use steadfast_domain::outbox::{batches, failed_detail, OutboxRecord, RelayPolicy, RECORD_FAILED};
use steadfast_domain::ports::{LeasedStore, Outgoing, PortResult, Publisher};
pub use steadfast_runtime::sweep::Trigger;
use steadfast_runtime::sweep::{claim_all, pages, settled, Sweep};
use tracing::{error, info, warn};

pub struct Config {
    pub policy: RelayPolicy,
    /// Shards of the due index. `OUTBOX_SHARDS`, default 8.
    pub shards: u32,
    /// Records claimed per sweep at most. `OUTBOX_SWEEP_LIMIT`, default 1000.
    pub sweep_limit: usize,
    /// The bus the records go to, the metrics' target: `EVENT_BUS_NAME`, default `default`.
    pub target: String,
}

impl Config {
    /// `OUTBOX_RETRY_WINDOW_SECONDS` (default 86400), `OUTBOX_RETRY_BASE_SECONDS`,
    /// `OUTBOX_RETRY_CAP_SECONDS` (default 300), `OUTBOX_LEASE_SECONDS`,
    /// `OUTBOX_RETENTION_DAYS`, `OUTBOX_SHARDS`, `OUTBOX_SWEEP_LIMIT`.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let d = RelayPolicy::default();
        let window = env.whole_in(
            "OUTBOX_RETRY_WINDOW_SECONDS",
            d.window.as_secs(),
            1,
            14 * 86_400,
        )?;
        let lease = env.lease_policy("OUTBOX", None, d.lease)?;
        if lease.retry.cap > std::time::Duration::from_secs(300) {
            let cap = format!("{}", lease.retry.cap.as_secs_f64());
            let why = "at most 300 seconds, so a record waits at most 5 minutes between attempts";
            return Err(env.invalid("OUTBOX_RETRY_CAP_SECONDS", &cap, why));
        }
        Ok(Config {
            policy: RelayPolicy {
                lease,
                window: std::time::Duration::from_secs(window),
                retention: std::time::Duration::from_secs(
                    86_400 * env.whole_in("OUTBOX_RETENTION_DAYS", 7, 1, 365)?,
                ),
            },
            shards: steadfast_aws::outbox::shards_from(env)?,
            sweep_limit: env.whole_in("OUTBOX_SWEEP_LIMIT", 1000, 1, 100_000)? as usize,
            target: env
                .optional("EVENT_BUS_NAME")
                .unwrap_or_else(|| "default".into()),
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
    /// Per published record, written → published (for the metrics, not the answer).
    #[serde(skip)]
    pub lags_ms: Vec<u64>,
}

impl Tally {
    /// The run's metrics for `target`, the bus (see `steadfast_aws::metrics`).
    pub fn metrics(&self, target: &str) -> Document {
        Document::new("outbox", target)
            .count(Metric::Delivered, self.published)
            .samples(Metric::RelayLagMs, self.lags_ms.iter().copied())
            .count(Metric::ClaimConflicts, self.skipped + self.lost_leases)
            .count(Metric::RecordsFailed, self.failed)
    }
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
        if let Trigger::Records(ids) = &trigger {
            tally.from_stream = ids.len() as u32;
        }
        let sweep = Sweep::new(cfg.shards, cfg.sweep_limit, now());
        let t = &mut tally;
        tally.errors += pages(trigger, &self.outbox, sweep, "outbox", async |ids| {
            let before = t.claimed;
            self.claim_and_publish(cfg, ids, &now, token, t).await;
            Some((t.claimed - before) as usize)
        })
        .await;
        tally.metrics(&cfg.target).emit();
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
        tally.failed += held.unreadable;
        let (give_up, publish): (Vec<_>, Vec<_>) = held
            .claimed
            .into_iter()
            .map(|c| (cfg.policy.give_up(&c, now()), c))
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
    ) -> Vec<(&'c Claimed<OutboxRecord>, PortResult<()>)> {
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
                error!(pipeline = "outbox", id = %c.id, correlation_id = c.record.correlation_id(), error = ?other, "the alert for a failed record could not be published");
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
    let correlation_id = c.record.correlation_id();
    match how {
        Settle::Done { at_ms, .. } => {
            tally.published += 1;
            // Relay lag: written → published.
            let lag_ms = at_ms.saturating_sub(c.record.created_at_ms);
            tally.lags_ms.push(lag_ms);
            info!(pipeline = "outbox", id = %c.id, correlation_id, event_id = %c.record.event_id, attempts = c.attempts, lag_ms, outcome = "published");
            None
        }
        Settle::Retry { due_at_ms, error } => {
            tally.retried += 1;
            warn!(pipeline = "outbox", id = %c.id, correlation_id, due_at_ms, error = %error, outcome = "retry");
            None
        }
        Settle::Release { .. } => None,
        Settle::Failed { error } => {
            tally.failed += 1;
            error!(pipeline = "outbox", id = %c.id, correlation_id, event_id = %c.record.event_id, error = %error, outcome = "failed");
            Some(Outgoing {
                detail_type: RECORD_FAILED.to_owned(),
                detail: failed_detail(c, error).to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests;
