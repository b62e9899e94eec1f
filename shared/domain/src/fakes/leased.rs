//! Fakes of the outbox's and inbox's ports: the application store, one leased-record table
//! for both (with the inbox's merge writes), and the event bus the relay publishes to.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use super::lock;
use crate::inbox::{Current, InboxRecord};
use crate::lease::{Claimed, Leased, Settle, Settled, Status};
use crate::outbox::{NewRecord, OutboxRecord};
use crate::ports::*;

/// The business table and the outbox in memory; `fail_next` fails that many stores.
#[derive(Default)]
pub struct MemApplications {
    pub stored: Mutex<HashMap<String, (Value, NewRecord)>>,
    pub fail_next: Mutex<u32>,
}

impl ApplicationStore for MemApplications {
    async fn store(
        &self,
        id: &str,
        application: &Value,
        _message_id: &str,
        record: &NewRecord,
    ) -> PortResult<Stored> {
        {
            let mut f = lock(&self.fail_next);
            if *f > 0 {
                *f -= 1;
                return Err(PortError::new("TransactWriteItems", "injected failure"));
            }
        }
        let mut m = lock(&self.stored);
        if m.contains_key(id) {
            return Ok(Stored::AlreadyExists);
        }
        m.insert(id.to_owned(), (application.clone(), record.clone()));
        Ok(Stored::New)
    }
}

/// One leased record in memory, with the lifecycle's attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemRow<R> {
    pub record: R,
    pub shard: u32,
    pub status: Status,
    pub attempts: u32,
    /// `Some` only while pending (the sparse index).
    pub due_at_ms: Option<u64>,
    pub claim: Option<String>,
    pub last_error: Option<String>,
    pub delivered_version: Option<u64>,
    /// The inbox's content hash (empty for the outbox).
    pub hash: String,
}

impl<R> MemRow<R> {
    /// A new pending record, due at `due_at_ms`.
    pub fn pending(record: R, shard: u32, due_at_ms: u64) -> Self {
        MemRow {
            record,
            shard,
            status: Status::ToBeProcessed,
            attempts: 0,
            due_at_ms: Some(due_at_ms),
            claim: None,
            last_error: None,
            delivered_version: None,
            hash: String::new(),
        }
    }
}

/// A leased-record table in memory, with the same conditions as the DynamoDB adapter.
pub struct MemLeased<R>(pub Mutex<HashMap<String, MemRow<R>>>);

impl<R> Default for MemLeased<R> {
    fn default() -> Self {
        MemLeased(Mutex::new(HashMap::new()))
    }
}

impl<R: Clone> MemLeased<R> {
    pub fn get(&self, id: &str) -> Option<MemRow<R>> {
        lock(&self.0).get(id).cloned()
    }
}

pub type MemOutbox = MemLeased<OutboxRecord>;
pub type MemInbox = MemLeased<InboxRecord>;

impl MemOutbox {
    /// A record as the writer stores it.
    pub fn insert(&self, r: NewRecord) {
        let record = OutboxRecord {
            event_id: r.event_id,
            detail_type: r.detail_type,
            detail: r.detail,
            created_at_ms: r.created_at_ms,
            requeued_at_ms: None,
            correlation_id: r.correlation_id,
        };
        let row = MemRow::pending(record, r.shard, r.created_at_ms);
        lock(&self.0).insert(r.id, row);
    }
}

impl<R: Leased + Clone> LeasedStore for MemLeased<R> {
    type Record = R;

    async fn due(&self, shard: u32, now_ms: u64, limit: usize) -> PortResult<Vec<String>> {
        let m = lock(&self.0);
        let mut due: Vec<(u64, String)> = m
            .iter()
            .filter(|(_, r)| r.shard == shard)
            .filter_map(|(id, r)| {
                r.due_at_ms
                    .filter(|d| *d <= now_ms)
                    .map(|d| (d, id.clone()))
            })
            .collect();
        due.sort();
        Ok(due.into_iter().take(limit).map(|(_, id)| id).collect())
    }

    async fn claim(
        &self,
        id: &str,
        now_ms: u64,
        lease_until_ms: u64,
        token: &str,
    ) -> PortResult<Option<Claimed<R>>> {
        let mut m = lock(&self.0);
        let Some(r) = m.get_mut(id) else {
            return Ok(None);
        };
        if r.due_at_ms.is_none_or(|d| d > now_ms) {
            return Ok(None);
        }
        r.status = Status::InProgress;
        r.attempts += 1;
        r.due_at_ms = Some(lease_until_ms);
        r.claim = Some(token.to_owned());
        Ok(Some(Claimed {
            id: id.to_owned(),
            attempts: r.attempts,
            token: token.to_owned(),
            record: r.record.clone(),
        }))
    }

    async fn settle(&self, c: &Claimed<R>, how: &Settle) -> PortResult<Settled> {
        let mut m = lock(&self.0);
        let Some(r) = m.get_mut(&c.id) else {
            return Ok(Settled::LeaseLost);
        };
        if r.claim.as_deref() != Some(c.token.as_str()) || r.status != Status::InProgress {
            return Ok(Settled::LeaseLost);
        }
        r.claim = None;
        if r.record.version() != c.record.version() {
            // A newer version arrived while this one was claimed: it is due now, attempts
            // reset, whatever became of the old one.
            if let Settle::Done { .. } = how {
                r.delivered_version = c.record.version();
            }
            r.status = Status::ToBeProcessed;
            r.due_at_ms = Some(0);
            r.attempts = 0;
            r.last_error = None;
            return Ok(Settled::NewerVersion);
        }
        match how {
            Settle::Done { .. } => {
                r.delivered_version = c.record.version();
                r.status = Status::Processed;
                r.due_at_ms = None;
                r.last_error = None;
            }
            Settle::Retry { due_at_ms, error } => {
                r.status = Status::ToBeProcessed;
                r.due_at_ms = Some(*due_at_ms);
                r.last_error = Some(error.clone());
            }
            Settle::Release { due_at_ms } => {
                r.status = Status::ToBeProcessed;
                r.due_at_ms = Some(*due_at_ms);
                r.attempts = r.attempts.saturating_sub(1);
            }
            Settle::Failed { error } => {
                r.status = Status::Failed;
                r.due_at_ms = None;
                r.last_error = Some(error.clone());
            }
        }
        Ok(Settled::Done)
    }
}

impl InboxStore for MemInbox {
    async fn current(&self, id: &str) -> PortResult<Option<Current>> {
        Ok(lock(&self.0).get(id).map(|r| Current {
            version: r.record.version,
            hash: r.hash.clone(),
            changed_at_ms: r.record.changed_at_ms,
            status: r.status,
        }))
    }

    async fn insert(&self, w: &InboxWrite<'_>) -> PortResult<bool> {
        let mut m = lock(&self.0);
        if m.contains_key(&w.incoming.id) {
            return Ok(false);
        }
        let mut row = MemRow::pending(
            InboxRecord::of(w.incoming, 1, w.correlation_id),
            w.shard,
            w.now_ms,
        );
        row.hash = w.incoming.hash.clone();
        m.insert(w.incoming.id.clone(), row);
        Ok(true)
    }

    async fn replace(
        &self,
        w: &InboxWrite<'_>,
        seen: &Current,
        version: u64,
        status: Status,
        fresh: bool,
    ) -> PortResult<bool> {
        let mut m = lock(&self.0);
        let Some(r) = m.get_mut(&w.incoming.id) else {
            return Ok(false);
        };
        if r.record.version != seen.version || r.status != seen.status {
            return Ok(false);
        }
        r.record = InboxRecord::of(w.incoming, version, w.correlation_id);
        r.hash = w.incoming.hash.clone();
        r.status = status;
        if fresh {
            r.attempts = 0;
            r.due_at_ms = Some(w.now_ms);
            r.last_error = None;
        } else if r.due_at_ms.is_none() {
            r.due_at_ms = Some(w.now_ms);
        }
        Ok(true)
    }

    async fn touch(&self, id: &str, seen: &Current, changed_at_ms: u64) -> PortResult<bool> {
        let mut m = lock(&self.0);
        let Some(r) = m.get_mut(id) else {
            return Ok(false);
        };
        if r.record.version != seen.version || r.hash != seen.hash {
            return Ok(false);
        }
        r.record.changed_at_ms = changed_at_ms;
        Ok(true)
    }
}

/// A bus in memory: records every call; fails whole calls while `down`, any entry whose
/// detail contains `poison` (an internal failure), and any whose detail contains `malformed`
/// (refused as malformed, for good).
#[derive(Default)]
pub struct MemPublisher {
    pub calls: Mutex<Vec<Vec<Outgoing>>>,
    pub published: Mutex<Vec<Outgoing>>,
    pub down: Mutex<bool>,
    pub poison: Mutex<Option<String>>,
    pub malformed: Mutex<Option<String>>,
}

impl Publisher for MemPublisher {
    async fn publish(&self, entries: &[Outgoing]) -> Vec<PortResult<()>> {
        lock(&self.calls).push(entries.to_vec());
        if *lock(&self.down) {
            let down = PortError::new("PutEvents", "ServiceUnavailable: injected");
            return entries.iter().map(|_| Err(down.clone())).collect();
        }
        let (poison, malformed) = (lock(&self.poison).clone(), lock(&self.malformed).clone());
        let has =
            |e: &Outgoing, p: &Option<String>| p.as_deref().is_some_and(|p| e.detail.contains(p));
        entries
            .iter()
            .map(|e| {
                if has(e, &malformed) {
                    Err(PortError::invalid(
                        "PutEvents entry refused",
                        "MalformedDetail: injected",
                    ))
                } else if has(e, &poison) {
                    Err(PortError::new(
                        "PutEvents entry refused",
                        "InternalFailure: injected",
                    ))
                } else {
                    lock(&self.published).push(e.clone());
                    Ok(())
                }
            })
            .collect()
    }
}
