//! In-memory fakes of the ports, for unit tests of the functions' handlers (feature
//! `test-util`). They follow the ports' contracts, including the gate store's conditional save.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use crate::backoff::TimerRoute;
use crate::gate::Gate;
use crate::outcome::Outcome;
use crate::ports::*;
use crate::signal::{CloseRequest, FlowEvent, OpenRequest, ProbeRequest};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
pub struct MemGates(pub Mutex<HashMap<String, Gate>>);

impl MemGates {
    pub fn get(&self, target: &str) -> Option<Gate> {
        lock(&self.0).get(target).cloned()
    }
}

impl GateStore for MemGates {
    async fn load(&self, target: &str) -> PortResult<Gate> {
        Ok(self.get(target).unwrap_or_else(|| Gate::new(target)))
    }
    async fn save(&self, next: &Gate) -> PortResult<bool> {
        let mut m = lock(&self.0);
        let stored = m.get(&next.target).map(|g| g.version).unwrap_or(0);
        if stored + 1 != next.version {
            return Ok(false);
        }
        m.insert(next.target.clone(), next.clone());
        Ok(true)
    }
    async fn count_ramp(
        &self,
        target: &str,
        epoch: u64,
        delivered: u64,
    ) -> PortResult<Option<u64>> {
        let mut m = lock(&self.0);
        match m.get_mut(target) {
            Some(g) if g.is_flowing() && g.ramping && g.epoch == epoch => {
                g.ramp_delivered += delivered;
                Ok(Some(g.ramp_delivered))
            }
            _ => Ok(None),
        }
    }
}

/// Delivered identities; identities in `unreadable` fail to read with an invalid-request
/// error, as an over-long DynamoDB key does; strikes per identity.
#[derive(Default)]
pub struct MemLedger(
    pub Mutex<HashSet<String>>,
    pub Mutex<HashSet<String>>,
    pub Mutex<HashMap<String, u32>>,
);

impl Ledger for MemLedger {
    async fn delivered(&self, identities: &[String]) -> LedgerRead {
        let m = lock(&self.0);
        let bad = lock(&self.1);
        let mut read = LedgerRead::default();
        for i in identities {
            if let Some(n) = lock(&self.2).get(i) {
                read.strikes.insert(i.clone(), *n);
            }
        }
        for i in identities {
            if bad.contains(i) {
                read.unreadable
                    .insert(i.clone(), PortError::invalid("GetItem", "key too long"));
            } else if m.contains(i) {
                read.delivered.insert(i.clone());
            }
        }
        read
    }
    async fn record(&self, identity: &str, _message_id: &str) -> PortResult<()> {
        lock(&self.0).insert(identity.to_owned());
        Ok(())
    }
    async fn strike(&self, identity: &str) -> PortResult<u32> {
        let mut m = lock(&self.2);
        let n = m.entry(identity.to_owned()).or_insert(0);
        *n += 1;
        Ok(*n)
    }
}

#[derive(Default)]
pub struct MemParking(pub Mutex<Vec<ParkedMessage>>);

impl MemParking {
    pub fn all(&self) -> Vec<ParkedMessage> {
        lock(&self.0).clone()
    }
}

impl Parking for MemParking {
    async fn park(&self, message: &ParkedMessage) -> PortResult<()> {
        lock(&self.0).push(message.clone());
        Ok(())
    }
}

#[derive(Default)]
pub struct MemBus(pub Mutex<Vec<FlowEvent>>);

impl MemBus {
    pub fn types(&self) -> Vec<&'static str> {
        lock(&self.0).iter().map(|e| e.detail_type()).collect()
    }
}

impl EventBus for MemBus {
    async fn emit(&self, event: &FlowEvent) -> PortResult<()> {
        lock(&self.0).push(event.clone());
        Ok(())
    }
}

/// Records every switch as (enabled, MaximumConcurrency); starts enabled at 5. `failures`
/// makes the next that many `set` calls fail.
pub struct MemSwitch(pub Mutex<Vec<(bool, Option<u32>)>>, pub Mutex<u32>);

impl Default for MemSwitch {
    fn default() -> Self {
        MemSwitch(Mutex::new(vec![(true, Some(5))]), Mutex::new(0))
    }
}

impl MemSwitch {
    pub fn enabled(&self) -> bool {
        lock(&self.0).last().is_none_or(|s| s.0)
    }
    pub fn max_concurrency(&self) -> Option<u32> {
        lock(&self.0).last().and_then(|s| s.1)
    }
}

impl FlowSwitch for MemSwitch {
    async fn read(&self) -> PortResult<SwitchReading> {
        Ok(SwitchReading {
            state: if self.enabled() {
                SwitchState::Enabled
            } else {
                SwitchState::Disabled
            },
            max_concurrency: self.max_concurrency(),
        })
    }
    async fn set(&self, enabled: Option<bool>, max_concurrency: Option<u32>) -> PortResult<()> {
        let mut failures = lock(&self.1);
        if *failures > 0 {
            *failures -= 1;
            return Err(PortError::new(
                "UpdateEventSourceMapping",
                "injected failure",
            ));
        }
        let mut states = lock(&self.0);
        let max = max_concurrency.or_else(|| states.last().and_then(|s| s.1));
        let enabled = enabled.unwrap_or_else(|| states.last().is_none_or(|s| s.0));
        states.push((enabled, max));
        Ok(())
    }
}

#[derive(Default)]
pub struct MemTimers {
    pub set: Mutex<Vec<(ProbeRequest, TimerRoute)>>,
    pub cancelled: Mutex<Vec<ProbeRequest>>,
}

impl Timers for MemTimers {
    async fn set(&self, probe: &ProbeRequest, route: TimerRoute) -> PortResult<()> {
        lock(&self.set).push((probe.clone(), route));
        Ok(())
    }
    async fn cancel(&self, probe: &ProbeRequest) -> PortResult<()> {
        lock(&self.cancelled).push(probe.clone());
        Ok(())
    }
}

/// What was invoked, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invoked {
    Close(CloseRequest),
    Backoff(ProbeRequest),
    Open(OpenRequest),
}

#[derive(Default)]
pub struct MemInvoker(pub Mutex<Vec<Invoked>>);

impl MemInvoker {
    pub fn all(&self) -> Vec<Invoked> {
        lock(&self.0).clone()
    }
}

impl Invoker for MemInvoker {
    async fn close(&self, request: &CloseRequest) -> PortResult<()> {
        lock(&self.0).push(Invoked::Close(request.clone()));
        Ok(())
    }
    async fn backoff(&self, probe: &ProbeRequest) -> PortResult<()> {
        lock(&self.0).push(Invoked::Backoff(probe.clone()));
        Ok(())
    }
    async fn open(&self, request: &OpenRequest) -> PortResult<()> {
        lock(&self.0).push(Invoked::Open(request.clone()));
        Ok(())
    }
}

/// A scripted target: answers from the script in order, then `fallback`.
pub struct ScriptedTarget {
    pub script: Mutex<VecDeque<Outcome>>,
    pub fallback: Outcome,
    pub calls: Mutex<Vec<String>>,
}

impl ScriptedTarget {
    pub fn new(script: Vec<Outcome>, fallback: Outcome) -> Self {
        ScriptedTarget {
            script: Mutex::new(script.into()),
            fallback,
            calls: Mutex::new(vec![]),
        }
    }
    pub fn always(outcome: Outcome) -> Self {
        Self::new(vec![], outcome)
    }
    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }
    fn next(&self) -> Outcome {
        lock(&self.script)
            .pop_front()
            .unwrap_or_else(|| self.fallback.clone())
    }
}

impl Target for ScriptedTarget {
    async fn deliver(&self, identity: &str, _body: &Value, _timeout: Duration) -> Outcome {
        lock(&self.calls).push(identity.to_owned());
        self.next()
    }
    async fn check(&self, _timeout: Duration) -> Outcome {
        lock(&self.calls).push("<probe>".to_owned());
        self.next()
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(3)
    }
}

/// A guarded queue in memory for the message probe: messages are taken in order; `done`
/// deletes, `release` puts back at the front.
#[derive(Default)]
pub struct MemProbeSource {
    pub queue: Mutex<VecDeque<Queued>>,
    pub deleted: Mutex<Vec<String>>,
    /// Messages in flight (handed back, not yet visible).
    pub invisible: Mutex<u64>,
}

impl MemProbeSource {
    pub fn with(bodies: &[&str]) -> Self {
        let s = MemProbeSource::default();
        for (i, b) in bodies.iter().enumerate() {
            lock(&s.queue).push_back(Queued {
                message_id: format!("q{i}"),
                receipt: format!("r{i}"),
                body: (*b).to_owned(),
                receive_count: 1,
                source_arn: "arn:aws:sqs:us-east-1:000000000000:orders".into(),
            });
        }
        s
    }
    pub fn left(&self) -> usize {
        lock(&self.queue).len()
    }
}

impl ProbeSource for MemProbeSource {
    async fn take(&self) -> PortResult<Taken> {
        let invisible = *lock(&self.invisible);
        Ok(match lock(&self.queue).pop_front() {
            Some(q) => Taken::Message(q),
            None if invisible > 0 => Taken::Unseen { waiting: invisible },
            None => Taken::Empty,
        })
    }
    async fn done(&self, message: &Queued) -> PortResult<()> {
        lock(&self.deleted).push(message.message_id.clone());
        Ok(())
    }
    async fn release(&self, message: &Queued) -> PortResult<()> {
        lock(&self.queue).push_front(message.clone());
        Ok(())
    }
}

// ---- Pipeline B ----

use crate::outbox::{Claimed, NewRecord, OutboxStatus, Settle};

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

/// One outbox record in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct MemRecord {
    pub record: NewRecord,
    pub status: OutboxStatus,
    pub attempts: u32,
    /// `Some` only while pending (the sparse index).
    pub due_at_ms: Option<u64>,
    pub claim: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Default)]
pub struct MemOutbox(pub Mutex<HashMap<String, MemRecord>>);

impl MemOutbox {
    pub fn insert(&self, record: NewRecord) {
        let due = record.created_at_ms;
        lock(&self.0).insert(
            record.id.clone(),
            MemRecord {
                record,
                status: OutboxStatus::ToBeProcessed,
                attempts: 0,
                due_at_ms: Some(due),
                claim: None,
                last_error: None,
            },
        );
    }
    pub fn get(&self, id: &str) -> Option<MemRecord> {
        lock(&self.0).get(id).cloned()
    }
}

impl OutboxStore for MemOutbox {
    async fn due(&self, shard: u32, now_ms: u64, limit: usize) -> PortResult<Vec<String>> {
        let m = lock(&self.0);
        let mut due: Vec<(u64, String)> = m
            .values()
            .filter(|r| r.record.shard == shard)
            .filter_map(|r| {
                r.due_at_ms
                    .filter(|d| *d <= now_ms)
                    .map(|d| (d, r.record.id.clone()))
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
    ) -> PortResult<Option<Claimed>> {
        let mut m = lock(&self.0);
        let Some(r) = m.get_mut(id) else {
            return Ok(None);
        };
        if r.due_at_ms.is_none_or(|d| d > now_ms) {
            return Ok(None);
        }
        r.status = OutboxStatus::InProgress;
        r.attempts += 1;
        r.due_at_ms = Some(lease_until_ms);
        r.claim = Some(token.to_owned());
        Ok(Some(Claimed {
            id: id.to_owned(),
            event_id: r.record.event_id.clone(),
            detail_type: r.record.detail_type.clone(),
            detail: r.record.detail.clone(),
            attempts: r.attempts,
            token: token.to_owned(),
            created_at_ms: r.record.created_at_ms,
        }))
    }
    async fn settle(&self, c: &Claimed, how: &Settle) -> PortResult<bool> {
        let mut m = lock(&self.0);
        let Some(r) = m.get_mut(&c.id) else {
            return Ok(false);
        };
        if r.claim.as_deref() != Some(c.token.as_str()) || r.status != OutboxStatus::InProgress {
            return Ok(false);
        }
        r.claim = None;
        match how {
            Settle::Processed { .. } => {
                r.status = OutboxStatus::Processed;
                r.due_at_ms = None;
            }
            Settle::Retry { due_at_ms, error } => {
                r.status = OutboxStatus::ToBeProcessed;
                r.due_at_ms = Some(*due_at_ms);
                r.last_error = Some(error.clone());
            }
            Settle::Failed { error } => {
                r.status = OutboxStatus::Failed;
                r.due_at_ms = None;
                r.last_error = Some(error.clone());
            }
        }
        Ok(true)
    }
}

/// A bus in memory: records every call; fails whole calls while `down`, and any entry whose
/// detail contains `poison`.
#[derive(Default)]
pub struct MemPublisher {
    pub calls: Mutex<Vec<Vec<Outgoing>>>,
    pub published: Mutex<Vec<Outgoing>>,
    pub down: Mutex<bool>,
    pub poison: Mutex<Option<String>>,
}

impl Publisher for MemPublisher {
    async fn publish(&self, entries: &[Outgoing]) -> Vec<Result<(), String>> {
        lock(&self.calls).push(entries.to_vec());
        if *lock(&self.down) {
            return entries
                .iter()
                .map(|_| Err("ServiceUnavailable: injected".to_owned()))
                .collect();
        }
        let poison = lock(&self.poison).clone();
        entries
            .iter()
            .map(|e| match &poison {
                Some(p) if e.detail.contains(p.as_str()) => {
                    Err("InternalFailure: injected".to_owned())
                }
                _ => {
                    lock(&self.published).push(e.clone());
                    Ok(())
                }
            })
            .collect()
    }
}

// ---- Pipeline C ----

use crate::inbox::{Current, InboxClaimed, InboxSettle, InboxStatus, Settled};

/// One inbox record in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemInboxRecord {
    pub current: Current,
    pub entity: String,
    pub record: String,
    pub shard: u32,
    pub attempts: u32,
    pub due_at_ms: Option<u64>,
    pub claim: Option<String>,
    pub delivered_version: Option<u64>,
    pub last_error: Option<String>,
}

/// The inbox table in memory, with the same conditions as the DynamoDB adapter.
#[derive(Default)]
pub struct MemInbox(pub Mutex<HashMap<String, MemInboxRecord>>);

impl MemInbox {
    pub fn get(&self, id: &str) -> Option<MemInboxRecord> {
        lock(&self.0).get(id).cloned()
    }
}

impl InboxStore for MemInbox {
    async fn current(&self, id: &str) -> PortResult<Option<Current>> {
        Ok(lock(&self.0).get(id).map(|r| r.current.clone()))
    }
    async fn insert(&self, w: &InboxWrite<'_>) -> PortResult<bool> {
        let mut m = lock(&self.0);
        if m.contains_key(&w.incoming.id) {
            return Ok(false);
        }
        m.insert(
            w.incoming.id.clone(),
            MemInboxRecord {
                current: Current {
                    version: 1,
                    hash: w.incoming.hash.clone(),
                    changed_at_ms: w.incoming.changed_at_ms,
                    status: InboxStatus::ToBeProcessed,
                },
                entity: w.incoming.entity.clone(),
                record: w.incoming.record.clone(),
                shard: w.shard,
                attempts: 0,
                due_at_ms: Some(w.now_ms),
                claim: None,
                delivered_version: None,
                last_error: None,
            },
        );
        Ok(true)
    }
    async fn replace(
        &self,
        w: &InboxWrite<'_>,
        seen: &Current,
        version: u64,
        status: InboxStatus,
        fresh: bool,
    ) -> PortResult<bool> {
        let mut m = lock(&self.0);
        let Some(r) = m.get_mut(&w.incoming.id) else {
            return Ok(false);
        };
        if r.current.version != seen.version || r.current.status != seen.status {
            return Ok(false);
        }
        r.current = Current {
            version,
            hash: w.incoming.hash.clone(),
            changed_at_ms: w.incoming.changed_at_ms,
            status,
        };
        r.record = w.incoming.record.clone();
        if fresh {
            r.attempts = 0;
            r.due_at_ms = Some(w.now_ms);
        }
        Ok(true)
    }
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
    ) -> PortResult<Option<InboxClaimed>> {
        let mut m = lock(&self.0);
        let Some(r) = m.get_mut(id) else {
            return Ok(None);
        };
        if r.due_at_ms.is_none_or(|d| d > now_ms) {
            return Ok(None);
        }
        r.current.status = InboxStatus::InProgress;
        r.attempts += 1;
        r.due_at_ms = Some(lease_until_ms);
        r.claim = Some(token.to_owned());
        Ok(Some(InboxClaimed {
            id: id.to_owned(),
            entity: r.entity.clone(),
            version: r.current.version,
            changed_at_ms: r.current.changed_at_ms,
            record: r.record.clone(),
            attempts: r.attempts,
            token: token.to_owned(),
        }))
    }
    async fn settle(&self, c: &InboxClaimed, how: &InboxSettle) -> PortResult<Settled> {
        let mut m = lock(&self.0);
        let Some(r) = m.get_mut(&c.id) else {
            return Ok(Settled::LeaseLost);
        };
        if r.claim.as_deref() != Some(c.token.as_str())
            || r.current.status != InboxStatus::InProgress
        {
            return Ok(Settled::LeaseLost);
        }
        r.claim = None;
        let mut outcome = Settled::Done;
        match how {
            InboxSettle::Delivered { at_ms } => {
                r.delivered_version = Some(c.version);
                if r.current.version == c.version {
                    r.current.status = InboxStatus::Processed;
                    r.due_at_ms = None;
                } else {
                    r.current.status = InboxStatus::ToBeProcessed;
                    r.due_at_ms = Some(*at_ms);
                    r.attempts = 0;
                    outcome = Settled::NewerVersion;
                }
            }
            InboxSettle::Retry { due_at_ms, error } => {
                r.current.status = InboxStatus::ToBeProcessed;
                r.due_at_ms = Some(*due_at_ms);
                r.last_error = Some(error.clone());
            }
            InboxSettle::Release { due_at_ms } => {
                r.current.status = InboxStatus::ToBeProcessed;
                r.due_at_ms = Some(*due_at_ms);
                r.attempts = r.attempts.saturating_sub(1);
            }
            InboxSettle::Failed { error } => {
                r.current.status = InboxStatus::Failed;
                r.due_at_ms = None;
                r.last_error = Some(error.clone());
            }
        }
        Ok(outcome)
    }
}
