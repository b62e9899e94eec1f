//! In-memory fakes of the ports, for unit tests of the functions' handlers (feature
//! `test-util`). They follow the ports' contracts, including the gate store's conditional save.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use serde_json::Value;

use crate::backoff::TimerRoute;
use crate::gate::Gate;
use crate::outcome::Outcome;
use crate::ports::*;
use crate::signal::{CloseRequest, FlowEvent, ProbeRequest};

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
}

#[derive(Default)]
pub struct MemLedger(pub Mutex<HashSet<String>>);

impl Ledger for MemLedger {
    async fn delivered(&self, identities: &[String]) -> PortResult<HashSet<String>> {
        let m = lock(&self.0);
        Ok(identities
            .iter()
            .filter(|i| m.contains(*i))
            .cloned()
            .collect())
    }
    async fn record(&self, identity: &str, _message_id: &str) -> PortResult<()> {
        lock(&self.0).insert(identity.to_owned());
        Ok(())
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

/// Records every switch; starts enabled. `failures` makes the next that many calls fail.
pub struct MemSwitch(pub Mutex<Vec<bool>>, pub Mutex<u32>);

impl Default for MemSwitch {
    fn default() -> Self {
        MemSwitch(Mutex::new(vec![true]), Mutex::new(0))
    }
}

impl MemSwitch {
    pub fn enabled(&self) -> bool {
        *lock(&self.0).last().unwrap_or(&true)
    }
}

impl FlowSwitch for MemSwitch {
    async fn set_enabled(&self, enabled: bool) -> PortResult<()> {
        let mut failures = lock(&self.1);
        if *failures > 0 {
            *failures -= 1;
            return Err(PortError::new(
                "UpdateEventSourceMapping",
                "injected failure",
            ));
        }
        lock(&self.0).push(enabled);
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
    Open(ProbeRequest),
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
    async fn open(&self, probe: &ProbeRequest) -> PortResult<()> {
        lock(&self.0).push(Invoked::Open(probe.clone()));
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
    async fn deliver(&self, identity: &str, _body: &Value) -> Outcome {
        lock(&self.calls).push(identity.to_owned());
        self.next()
    }
    async fn check(&self) -> Outcome {
        lock(&self.calls).push("<probe>".to_owned());
        self.next()
    }
}
