//! inbox-receiver: takes an ERP's noisy messages into the inbox table.
//!
//! Per message: read it by the entity configuration ([`steadfast_domain::inbox`]); a message
//! that cannot be read is parked with the reason. Otherwise the merge rules decide from what
//! is stored: a new record is inserted (`ToBeProcessed`, version 1); a copy with the stored
//! content is a duplicate and a copy older than the stored version is stale, both dropped
//! without a write; a change replaces the record as the next version. Every write is
//! conditional on what was read (absent, or the same version and status), and a refused write
//! reads again and decides again, so concurrent copies never lose a change. A message whose
//! store or parking failed goes back to the queue; the rest of the batch is not affected.
//! The batch's dropped copies and parked messages are counted in the metrics
//! (`DuplicatesDropped`, `StaleDropped`, `Parked`). A stored version keeps the message id and
//! the correlation id of the copy that was accepted as it, for the processor's log lines.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde::Serialize;
use steadfast_aws::metrics::{Document, Metric};
use steadfast_aws::{ConfigError, Env};
use steadfast_domain::inbox::{merge, InboxConfig, Incoming, Merge};
use steadfast_domain::lease::shard_of;
use steadfast_domain::ports::{EventBus, InboxStore, InboxWrite, Parking, PortError};
use steadfast_runtime::batch::{correlation_id, message_id, Fate, Parker};
use tracing::{info, warn};

/// Reads and conditional writes per message before it is handed back (only reached when
/// writers keep changing the same record between our read and our write).
const MAX_ROUNDS: u32 = 20;

pub struct Config {
    pub inbox: InboxConfig,
    /// Recorded on parked messages. `INBOX_SOURCE_NAME`, default `erp-records`.
    pub source: String,
    /// Shards of the due index. `INBOX_SHARDS`, default 4.
    pub shards: u32,
    /// The inbox portal's gate, the metrics' target: `INBOX_TARGET_NAME`, default
    /// `portal-inbox` (as the inbox processor's).
    pub target: String,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        Ok(Config {
            inbox: steadfast_aws::inbox::config_from(env)?,
            source: env
                .optional("INBOX_SOURCE_NAME")
                .unwrap_or_else(|| "erp-records".into()),
            shards: steadfast_aws::inbox::shards_from(env)?,
            target: env
                .optional("INBOX_TARGET_NAME")
                .unwrap_or_else(|| "portal-inbox".into()),
        })
    }
}

pub struct Ports<S, P, E> {
    pub store: S,
    pub parking: P,
    pub events: E,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// New records (version 1).
    pub new: u32,
    /// Changes stored as a next version.
    pub changed: u32,
    pub duplicates: u32,
    pub stale: u32,
    pub parked: u32,
    pub handed_back: u32,
}

impl Tally {
    /// The batch's metrics for `target`, the inbox portal's gate (see `steadfast_aws::metrics`).
    pub fn metrics(&self, target: &str) -> Document {
        Document::new("inbox", target)
            .count(Metric::DuplicatesDropped, self.duplicates)
            .count(Metric::StaleDropped, self.stale)
            .count(Metric::Parked, self.parked)
    }
}

impl<S: InboxStore, P: Parking, E: EventBus> Ports<S, P, E> {
    /// Handles one batch; its messages are handled concurrently (copies of one record meet
    /// at the table's conditions).
    pub async fn handle(
        &self,
        cfg: &Config,
        event: SqsEvent,
        now: impl Fn() -> u64,
    ) -> (SqsBatchResponse, Tally) {
        let parker = Parker::of_source(&self.parking, &self.events, &cfg.source);
        let now = &now;
        let (response, counts) = parker.run(&event.records, |m| self.one(cfg, m, now)).await;
        let tally = Tally {
            new: counts.done("new"),
            changed: counts.done("changed"),
            duplicates: counts.done("duplicate_dropped"),
            stale: counts.done("stale_dropped"),
            parked: counts.parked,
            handed_back: counts.handed_back,
        };
        info!(pipeline = "inbox", ?tally, "batch done");
        tally.metrics(&cfg.target).emit();
        (response, tally)
    }

    async fn one(&self, cfg: &Config, m: &SqsMessage, now: &impl Fn() -> u64) -> Fate {
        let message_id = message_id(m);
        let correlation_id = correlation_id(m);
        let incoming = match cfg.inbox.read(m.body.as_deref().unwrap_or_default()) {
            Ok(i) => i,
            Err(e) => {
                return Fate::Park {
                    reason: e.to_string(),
                    identity: None,
                }
            }
        };
        match self
            .upsert(cfg, &incoming, &message_id, correlation_id, now)
            .await
        {
            Ok(outcome) => {
                info!(pipeline = "inbox", message_id, correlation_id, id = %incoming.id, outcome);
                Fate::Done(outcome)
            }
            Err(e) => {
                warn!(pipeline = "inbox", message_id, correlation_id, id = %incoming.id, error = %e, outcome = "handed_back");
                Fate::HandBack
            }
        }
    }

    /// Read, decide, write conditionally; again while another writer got there first. An
    /// accepted copy is stored with its message id and correlation id.
    /// Returns what became of the copy: `new`, `changed`, `duplicate_dropped`, `stale_dropped`.
    async fn upsert(
        &self,
        cfg: &Config,
        incoming: &Incoming,
        message_id: &str,
        correlation_id: &str,
        now: &impl Fn() -> u64,
    ) -> Result<&'static str, PortError> {
        let shard = shard_of(&incoming.id, cfg.shards);
        for _ in 0..MAX_ROUNDS {
            let current = self.store.current(&incoming.id).await?;
            let w = InboxWrite {
                incoming,
                message_id,
                correlation_id,
                now_ms: now(),
                shard,
            };
            let written = match merge(current.as_ref(), &incoming.hash, incoming.changed_at_ms) {
                Merge::Duplicate => return Ok("duplicate_dropped"),
                Merge::Touch { changed_at_ms } => {
                    let seen = current.as_ref().expect("a touch follows a read record");
                    self.store
                        .touch(&incoming.id, seen, changed_at_ms)
                        .await?
                        .then_some("duplicate_dropped")
                }
                Merge::Stale => return Ok("stale_dropped"),
                Merge::Insert => self.store.insert(&w).await?.then_some("new"),
                Merge::Replace {
                    version,
                    status,
                    fresh,
                } => {
                    let seen = current.as_ref().expect("a replace follows a read record");
                    self.store
                        .replace(&w, seen, version, status, fresh)
                        .await?
                        .then_some("changed")
                }
            };
            if let Some(outcome) = written {
                return Ok(outcome);
            }
        }
        Err(PortError::new(
            format!("upsert {}", incoming.id),
            format!("the record kept changing under {MAX_ROUNDS} conditional writes"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steadfast_domain::fakes::{MemBus, MemInbox, MemParking};
    use steadfast_domain::inbox::DEFAULT_MAX_RECORD_BYTES;
    use steadfast_domain::ports::LeasedStore;
    use steadfast_domain::{Settle, Settled, Status};

    fn cfg() -> Config {
        Config {
            inbox: InboxConfig::parse(
                "/entity",
                r#"{"customer":{"key":["/no"],"noise":["/messageId"],"endpoint":"/customers"}}"#,
                DEFAULT_MAX_RECORD_BYTES,
            )
            .unwrap(),
            source: "erp-records".into(),
            shards: 4,
            target: "portal-inbox".into(),
        }
    }

    fn event(bodies: &[String]) -> SqsEvent {
        let records: Vec<serde_json::Value> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| serde_json::json!({"messageId": format!("m{i}"), "body": b}))
            .collect();
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
    }

    fn customer(no: &str, name: &str, ts: &str, mid: &str) -> String {
        format!(
            r#"{{"entity":"customer","no":"{no}","name":"{name}","changedAt":"{ts}","messageId":"{mid}"}}"#
        )
    }

    fn ports() -> Ports<MemInbox, MemParking, MemBus> {
        Ports {
            store: MemInbox::default(),
            parking: MemParking::default(),
            events: MemBus::default(),
        }
    }

    #[tokio::test]
    async fn copies_changes_and_late_copies_in_one_batch() {
        let p = ports();
        let (r, t) = p
            .handle(
                &cfg(),
                event(&[
                    customer("C1", "Ada", "2026-01-01T00:00:00Z", "a"),
                    customer("C1", "Ada", "2026-01-01T00:00:00Z", "b"),
                    customer("C1", "Ada", "2026-01-01T00:00:00Z", "c"),
                ]),
                || 1,
            )
            .await;
        assert!(r.batch_item_failures.is_empty());
        assert_eq!((t.new, t.duplicates), (1, 2));
        assert_eq!(
            t.metrics("portal-inbox").total(Metric::DuplicatesDropped),
            2
        );
        let (_, t) = p
            .handle(
                &cfg(),
                event(&[
                    customer("C1", "Ada L.", "2026-01-02T00:00:00Z", "d"),
                    customer("C1", "Old", "2025-12-01T00:00:00Z", "e"),
                ]),
                || 2,
            )
            .await;
        assert_eq!((t.changed, t.stale), (1, 1));
        assert_eq!(
            t.metrics("portal-inbox"),
            Document::new("inbox", "portal-inbox").count(Metric::StaleDropped, 1u32)
        );
        let stored = p.store.get("customer/C1").unwrap();
        assert_eq!(stored.record.version, 2);
        assert!(stored.record.record.contains("Ada L."));
        assert!(!stored.record.record.contains("messageId"));
        // AND the stored version keeps the correlation id of the copy accepted as it (the
        // change, the batch's first message: its SQS message id, as no sender set one)
        assert_eq!(stored.record.correlation_id.as_deref(), Some("m0"));
    }

    #[tokio::test]
    async fn the_accepted_copys_correlation_id_is_stored_and_a_duplicate_leaves_it() {
        let p = ports();
        let correlated = |body: String, id: &str| {
            let mut e = event(&[body]);
            let attribute = serde_json::json!({"stringValue": id, "dataType": "String"});
            e.records[0].message_attributes.insert(
                "correlation_id".into(),
                serde_json::from_value(attribute).unwrap(),
            );
            e
        };
        let ada = |ts: &str| customer("C1", "Ada", ts, "x");
        p.handle(
            &cfg(),
            correlated(ada("2026-01-01T00:00:00Z"), "erp-1"),
            || 1,
        )
        .await;
        p.handle(
            &cfg(),
            correlated(ada("2026-01-01T00:00:00Z"), "erp-2"),
            || 2,
        )
        .await;
        let stored = p.store.get("customer/C1").unwrap();
        assert_eq!(stored.record.correlation_id.as_deref(), Some("erp-1"));
        let change = customer("C1", "Ada L.", "2026-01-02T00:00:00Z", "y");
        p.handle(&cfg(), correlated(change, "erp-3"), || 3).await;
        let stored = p.store.get("customer/C1").unwrap();
        assert_eq!(
            (
                stored.record.version,
                stored.record.correlation_id.as_deref()
            ),
            (2, Some("erp-3"))
        );
    }

    #[tokio::test]
    async fn a_revert_keeps_its_newer_time_so_a_late_older_change_does_not_overwrite_it() {
        let (p, c) = (ports(), cfg());
        let send = |body: String| p.handle(&c, event(&[body]), || 1);
        send(customer("C1", "A", "2026-01-01T00:00:20Z", "a")).await;
        send(customer("C1", "B", "2026-01-01T00:00:25Z", "b")).await;
        // A again at :30 (a revert): a change back to A
        let (_, t) = send(customer("C1", "A", "2026-01-01T00:00:30Z", "c")).await;
        assert_eq!(t.changed, 1);
        // a later copy of A at :40 changes no content but moves its time
        let (_, t) = send(customer("C1", "A", "2026-01-01T00:00:40Z", "d")).await;
        assert_eq!(t.duplicates, 1);
        // B at :35 arrives late: older than the stored A@40, so it is stale
        let (_, t) = send(customer("C1", "B", "2026-01-01T00:00:35Z", "e")).await;
        assert_eq!(t.stale, 1);
        let stored = p.store.get("customer/C1").unwrap();
        assert!(stored.record.record.contains(r#""name":"A""#), "{stored:?}");
        assert_eq!(stored.record.version, 3);
    }

    #[tokio::test]
    async fn a_change_to_a_record_in_progress_keeps_it_in_progress() {
        let p = ports();
        p.handle(
            &cfg(),
            event(&[customer("C1", "A", "2026-01-01T00:00:00Z", "a")]),
            || 1,
        )
        .await;
        let claimed = p
            .store
            .claim("customer/C1", 5, 100, "t")
            .await
            .unwrap()
            .unwrap();
        p.handle(
            &cfg(),
            event(&[customer("C1", "B", "2026-01-02T00:00:00Z", "b")]),
            || 6,
        )
        .await;
        let r = p.store.get("customer/C1").unwrap();
        assert_eq!((r.record.version, r.status), (2, Status::InProgress));
        // delivering version 1 does not mark version 2 processed
        let s = p
            .store
            .settle(
                &claimed,
                &Settle::Done {
                    at_ms: 7,
                    expires_at_s: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(s, Settled::NewerVersion);
        assert_eq!(
            p.store.get("customer/C1").unwrap().status,
            Status::ToBeProcessed
        );
    }

    #[tokio::test]
    async fn bad_messages_are_parked_and_the_rest_of_the_batch_goes_on() {
        let p = ports();
        let (r, t) = p
            .handle(
                &cfg(),
                event(&[
                    "{nope".into(),
                    r#"{"entity":"vendor","no":"V"}"#.into(),
                    r#"{"entity":"customer","changedAt":"2026-01-01T00:00:00Z"}"#.into(),
                    customer("C2", "B", "2026-01-01T00:00:00Z", "x"),
                ]),
                || 1,
            )
            .await;
        assert!(r.batch_item_failures.is_empty());
        assert_eq!((t.parked, t.new), (3, 1));
        assert_eq!(t.metrics("portal-inbox").total(Metric::Parked), 3);
        let parked = p.parking.all();
        let reasons: Vec<&str> = parked.iter().map(|m| m.reason.as_str()).collect();
        assert!(reasons[0].starts_with("body is not valid JSON"));
        assert!(reasons[1].contains("`vendor` is not configured"));
        assert_eq!(reasons[2], "key field /no is missing");
        assert_eq!(parked[1].body, r#"{"entity":"vendor","no":"V"}"#);
        assert_eq!(parked[1].correlation_id, "m1");
    }
}
