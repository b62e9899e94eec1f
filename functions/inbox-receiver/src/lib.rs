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

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use serde::Serialize;
use steadfast_domain::inbox::{merge, InboxConfig, Incoming, Merge};
use steadfast_domain::outbox::shard_of;
use steadfast_domain::ports::{InboxStore, InboxWrite, ParkedMessage, Parking, PortError};
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
}

pub struct Ports<S, P> {
    pub store: S,
    pub parking: P,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    New,
    Changed,
    Duplicate,
    Stale,
    Parked,
    HandBack,
}

impl<S: InboxStore, P: Parking> Ports<S, P> {
    /// Handles one batch; its messages are handled concurrently (copies of one record meet
    /// at the table's conditions).
    pub async fn handle(
        &self,
        cfg: &Config,
        event: SqsEvent,
        now: impl Fn() -> u64,
    ) -> (SqsBatchResponse, Tally) {
        let mut tally = Tally::default();
        let mut response = SqsBatchResponse::default();
        let fates = join_all(event.records.iter().map(|m| self.one(cfg, m, &now))).await;
        for (m, fate) in event.records.iter().zip(fates) {
            match fate {
                Fate::New => tally.new += 1,
                Fate::Changed => tally.changed += 1,
                Fate::Duplicate => tally.duplicates += 1,
                Fate::Stale => tally.stale += 1,
                Fate::Parked => tally.parked += 1,
                Fate::HandBack => {
                    tally.handed_back += 1;
                    let mut f = BatchItemFailure::default();
                    f.item_identifier = m.message_id.clone().unwrap_or_default();
                    response.batch_item_failures.push(f);
                }
            }
        }
        info!(
            pipeline = "inbox",
            new = tally.new,
            changed = tally.changed,
            duplicates = tally.duplicates,
            stale = tally.stale,
            parked = tally.parked,
            handed_back = tally.handed_back,
            "batch done"
        );
        (response, tally)
    }

    async fn one(&self, cfg: &Config, m: &SqsMessage, now: &impl Fn() -> u64) -> Fate {
        let message_id = m.message_id.clone().unwrap_or_default();
        let body = m.body.clone().unwrap_or_default();
        let incoming = match cfg.inbox.read(&body) {
            Ok(i) => i,
            Err(e) => return self.park(cfg, m, e.to_string(), now()).await,
        };
        match self.upsert(cfg, &incoming, &message_id, now).await {
            Ok(fate) => {
                let outcome = match fate {
                    Fate::New => "new",
                    Fate::Changed => "changed",
                    Fate::Duplicate => "duplicate_dropped",
                    Fate::Stale => "stale_dropped",
                    _ => "other",
                };
                info!(pipeline = "inbox", message_id, id = %incoming.id, outcome);
                fate
            }
            Err(e) => {
                warn!(pipeline = "inbox", message_id, id = %incoming.id, error = %e, outcome = "handed_back");
                Fate::HandBack
            }
        }
    }

    /// Read, decide, write conditionally; again while another writer got there first.
    async fn upsert(
        &self,
        cfg: &Config,
        incoming: &Incoming,
        message_id: &str,
        now: &impl Fn() -> u64,
    ) -> Result<Fate, PortError> {
        let shard = shard_of(&incoming.id, cfg.shards);
        for _ in 0..MAX_ROUNDS {
            let current = self.store.current(&incoming.id).await?;
            let w = InboxWrite {
                incoming,
                message_id,
                now_ms: now(),
                shard,
            };
            let written = match merge(current.as_ref(), &incoming.hash, incoming.changed_at_ms) {
                Merge::Duplicate => return Ok(Fate::Duplicate),
                Merge::Stale => return Ok(Fate::Stale),
                Merge::Insert => self.store.insert(&w).await?.then_some(Fate::New),
                Merge::Replace {
                    version,
                    status,
                    fresh,
                } => {
                    let seen = current.as_ref().expect("a replace follows a read record");
                    self.store
                        .replace(&w, seen, version, status, fresh)
                        .await?
                        .then_some(Fate::Changed)
                }
            };
            if let Some(fate) = written {
                return Ok(fate);
            }
        }
        Err(PortError::new(
            format!("upsert {}", incoming.id),
            format!("the record kept changing under {MAX_ROUNDS} conditional writes"),
        ))
    }

    async fn park(&self, cfg: &Config, m: &SqsMessage, reason: String, now_ms: u64) -> Fate {
        let message_id = m.message_id.as_deref().unwrap_or_default();
        let parked = ParkedMessage {
            source: cfg.source.clone(),
            source_arn: m.event_source_arn.clone(),
            message_id: message_id.to_owned(),
            identity: None,
            reason: reason.clone(),
            parked_at_ms: now_ms,
            body: m.body.clone().unwrap_or_default(),
        };
        match self.parking.park(&parked).await {
            Ok(()) => {
                warn!(pipeline = "inbox", message_id, reason = %reason, outcome = "parked");
                Fate::Parked
            }
            Err(e) => {
                warn!(pipeline = "inbox", message_id, error = %e, outcome = "handed_back", "parking failed");
                Fate::HandBack
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steadfast_domain::fakes::{MemInbox, MemParking};
    use steadfast_domain::inbox::DEFAULT_MAX_RECORD_BYTES;
    use steadfast_domain::InboxStatus;

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

    fn ports() -> Ports<MemInbox, MemParking> {
        Ports {
            store: MemInbox::default(),
            parking: MemParking::default(),
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
        let stored = p.store.get("customer/C1").unwrap();
        assert_eq!(stored.current.version, 2);
        assert!(stored.record.contains("Ada L."));
        assert!(!stored.record.contains("messageId"));
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
        assert_eq!(
            (r.current.version, r.current.status),
            (2, InboxStatus::InProgress)
        );
        // delivering version 1 does not mark version 2 processed
        let s = p
            .store
            .settle(
                &claimed,
                &steadfast_domain::inbox::InboxSettle::Delivered { at_ms: 7 },
            )
            .await
            .unwrap();
        assert_eq!(s, steadfast_domain::inbox::Settled::NewerVersion);
        assert_eq!(
            p.store.get("customer/C1").unwrap().current.status,
            InboxStatus::ToBeProcessed
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
        let parked = p.parking.all();
        let reasons: Vec<&str> = parked.iter().map(|m| m.reason.as_str()).collect();
        assert!(reasons[0].starts_with("body is not valid JSON"));
        assert!(reasons[1].contains("`vendor` is not configured"));
        assert_eq!(reasons[2], "key field /no is missing");
        assert_eq!(parked[1].body, r#"{"entity":"vendor","no":"V"}"#);
    }
}
