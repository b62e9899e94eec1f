//! close: halts the flow, runs the probes, and keeps watch.
//!
//! - Trip (from the processor, the inbox processor or an operator): `Flowing → Halted` with a
//!   conditional write, so of many concurrent callers exactly one wins and the others do
//!   nothing. The gate records when its first probe is due: min(max(base · 2^attempt,
//!   Retry-After), cap), where the attempt is 0, or one past the last chain's if the flow
//!   resumed only moments ago (a relapse). The winner disables the target's mapping, emits
//!   `FlowHalted`, and asks `backoff` to set the timer. An operator's (manual) halt has no
//!   probes.
//! - Probe (from a timer on the `timers` queue): `Halted → Probing` only for the epoch and
//!   attempt the gate waits for, so a duplicate or stale timer is a no-op. Then the target is
//!   checked, by its health URL (only 2xx is healthy) or by delivering one real queued order
//!   (`ProbeMode=message`): healthy → `open`; still sick → `Halted` at attempt + 1 and
//!   `backoff`.
//! - Watchdog (every minute): reconciles every gate with its mapping and its timers (see
//!   `shared/domain/src/watchdog.rs`), says what it fixed in a `GateRepaired` event, ends
//!   ramp-ups that have run their time, and writes `GateHaltedSeconds` and `GateRepairs`.
//!
//! A trip that halts counts in `Halts`, a probe run in `Probes`, each for its gate's pipeline
//! (`steadfast_aws::metrics`).
//!
//! Every step is safe to repeat: a crash between two writes leaves a state the next timer, the
//! async retry or the watchdog completes.
//!
//! The code follows the paths: `requests` (the entry points and what every path shares),
//! `trip`, `probe`, `message_probe` and `watchdog`; `config` and `wiring` read the
//! environment at cold start.

use std::collections::BTreeMap;

use steadfast_domain::ports::Probe;
use steadfast_domain::watchdog::Fix;

mod config;
mod message_probe;
mod probe;
mod requests;
mod trip;
mod watchdog;
mod wiring;

#[cfg(test)]
mod fixtures;

pub use config::{config, Config};
pub use wiring::{ports, AwsPorts};

/// What a message probe needs besides the target: the guarded queue, the ledger, parking.
pub struct MessageProbe<Q, L, P> {
    pub source: Q,
    pub ledger: L,
    pub parking: P,
}

/// The adapters close works through.
pub struct Ports<G, E, I, S, T, Q, L, P> {
    pub gates: G,
    pub events: E,
    pub invoker: I,
    /// Every guarded target by name, with its mapping if it has one.
    pub switches: BTreeMap<String, Option<S>>,
    /// How each guarded target is probed.
    pub probes: BTreeMap<String, Probe<T>>,
    /// For targets probed in [`ProbeMode::Message`](steadfast_domain::ProbeMode::Message).
    pub messages: Option<MessageProbe<Q, L, P>>,
}

/// What one request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Halted {
        epoch: u64,
    },
    Resuming {
        epoch: u64,
        attempt: u32,
    },
    StillSick {
        epoch: u64,
        next_attempt: u32,
    },
    /// The watchdog's run: what it fixed, per target.
    Watched {
        repaired: Vec<(String, Vec<Fix>)>,
    },
    /// Someone else did it, or the request is out of date: nothing was changed.
    NoOp(String),
}
