//! Fakes of the guarded-delivery ports: gates, ledger, parking, bus, switch, timers, invoker,
//! a scripted target and the probe's queue.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use super::lock;
use crate::backoff::TimerRoute;
use crate::gate::Gate;
use crate::outcome::Outcome;
use crate::ports::*;
use crate::signal::{CloseRequest, FlowEvent, OpenRequest, ProbeRequest};

/// Gates by target; `.1` saves still to lose to a concurrent writer (see `race_next_saves`).
#[derive(Default)]
pub struct MemGates(pub Mutex<HashMap<String, Gate>>, pub Mutex<u32>);

impl MemGates {
    pub fn get(&self, target: &str) -> Option<Gate> {
        lock(&self.0).get(target).cloned()
    }

    /// The next `n` saves lose: another writer changes the stored gate just before each.
    pub fn race_next_saves(&self, n: u32) {
        *lock(&self.1) = n;
    }
}

impl GateStore for MemGates {
    async fn load(&self, target: &str) -> PortResult<Gate> {
        Ok(self.get(target).unwrap_or_else(|| Gate::new(target)))
    }
    async fn save(&self, next: &Gate) -> PortResult<bool> {
        let mut m = lock(&self.0);
        let mut races = lock(&self.1);
        if *races > 0 {
            *races -= 1;
            if let Some(g) = m.get_mut(&next.target) {
                g.version += 1;
            }
            return Ok(false);
        }
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

/// Parked messages; `fail_next(n)` makes the next `n` parks fail.
#[derive(Default)]
pub struct MemParking(pub Mutex<Vec<ParkedMessage>>, pub Mutex<u32>);

impl MemParking {
    pub fn all(&self) -> Vec<ParkedMessage> {
        lock(&self.0).clone()
    }
    pub fn fail_next(&self, n: u32) {
        *lock(&self.1) = n;
    }
}

impl Parking for MemParking {
    async fn park(&self, message: &ParkedMessage) -> PortResult<()> {
        let mut failures = lock(&self.1);
        if *failures > 0 {
            *failures -= 1;
            return Err(PortError::new("SendMessage", "injected failure"));
        }
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
/// deletes, `release` puts back at the front. Message `i` has id `q{i}` and correlation id
/// `c-q{i}`.
#[derive(Default)]
pub struct MemProbeSource {
    pub queue: Mutex<VecDeque<Queued>>,
    pub deleted: Mutex<Vec<String>>,
    /// Messages in flight (handed back, not yet visible).
    pub invisible: Mutex<u64>,
    /// Deletes fail (an SQS outage of DeleteMessage).
    pub failing_deletes: std::sync::atomic::AtomicBool,
}

impl MemProbeSource {
    pub fn with(bodies: &[&str]) -> Self {
        let s = MemProbeSource::default();
        for (i, b) in bodies.iter().enumerate() {
            lock(&s.queue).push_back(Queued {
                message_id: format!("q{i}"),
                correlation_id: format!("c-q{i}"),
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
        if self
            .failing_deletes
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(PortError::new("DeleteMessage", "injected: SQS unavailable"));
        }
        lock(&self.deleted).push(message.message_id.clone());
        Ok(())
    }
    async fn release(&self, message: &Queued) -> PortResult<()> {
        lock(&self.queue).push_front(message.clone());
        Ok(())
    }
}
