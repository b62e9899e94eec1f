//! The gate that guards a target API: `Flowing`, `Halted`, `Probing`.
//!
//! The `close` function halts the flow (a classic breaker would say the circuit "opens") and
//! the `open` function resumes it; the states are named after the flow to stay unambiguous.
//!
//! Every transition is a pure function from one [`Gate`] to the next. The store persists a
//! transition with a write that is conditional on the `version` it read, so of many concurrent
//! callers exactly one wins; the others see a conflict and do nothing.
//!
//! Invariants (property-tested):
//! - `epoch` counts halts and never decreases; each halt starts a new epoch;
//! - a probe is accepted only for the current epoch and the attempt the gate is waiting for,
//!   so a duplicate or stale timer is refused;
//! - `version` increases by exactly one on every accepted transition;
//! - a manual halt (an operator's) is never probed and only lifted by a resume without epoch.
//!
//! `attempt` numbers the probes of a halt (a timer is accepted once); `step` is the backoff
//! exponent. A probe that finds the target sick raises both; one that could not tell (nothing
//! to probe with yet) raises only `attempt`. A halt that comes soon after a resume (within the
//! relapse window) does not start its backoff again at step 0 but one step after where the
//! last halt ended: a target whose health check answers 2xx while deliveries keep failing is
//! probed ever less often instead of every second.

use serde::{Deserialize, Serialize};

/// Where the flow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GateState {
    /// Healthy: the processor delivers. The only state in which deliveries happen.
    Flowing,
    /// Halted after failures; waiting for the timer of probe `attempt`.
    Halted,
    /// A probe of the target is under way.
    Probing,
}

/// The persisted gate of one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gate {
    /// The target this gate guards (a name from configuration, e.g. `portal`).
    pub target: String,
    pub state: GateState,
    /// Number of halts so far; identifies the current backoff chain.
    pub epoch: u64,
    /// In `Halted`: the probe attempt the gate waits for. In `Probing`: the probe under way.
    /// In `Flowing`: the attempt whose probe found the target healthy.
    pub attempt: u32,
    /// The backoff exponent of the next probe's delay (see the module documentation).
    #[serde(default)]
    pub step: u32,
    /// Optimistic-concurrency version; `0` means "never stored".
    pub version: u64,
    /// Milliseconds since the Unix epoch of the last transition.
    pub changed_at_ms: u64,
    /// Why the gate last changed (e.g. "5 transient failures: HTTP 503").
    #[serde(default)]
    pub reason: String,
    /// When the current (or last) halt began, ms since the Unix epoch; 0 if never halted.
    #[serde(default)]
    pub halted_at_ms: u64,
    /// In `Halted`: when the timer of probe `attempt` is due, ms since the Unix epoch (0 for a
    /// manual halt, which has no probes).
    #[serde(default)]
    pub next_probe_at_ms: u64,
    /// When the flow last resumed, ms since the Unix epoch; 0 if never.
    #[serde(default)]
    pub resumed_at_ms: u64,
    /// Halted by an operator: no probes, lifted only by an operator's resume.
    #[serde(default)]
    pub manual: bool,
    /// Resumed at a low concurrency, not yet raised to the configured one.
    #[serde(default)]
    pub ramping: bool,
    /// Deliveries counted since the resume while `ramping` (an atomic counter of the store).
    #[serde(default)]
    pub ramp_delivered: u64,
}

/// Why a transition was not taken. None of these is an error for the caller: each means
/// "someone else already did it, or this request is out of date".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the gate of {0} is already halted (epoch {1})")]
    AlreadyHalted(String, u64),
    #[error("the gate of {0} is already flowing")]
    AlreadyFlowing(String),
    #[error("the gate of {0} was halted by an operator; only an operator's resume lifts it")]
    ManualHalt(String),
    #[error("the gate of {0} is not ramping up (epoch {1})")]
    NotRamping(String, u64),
    #[error("the flow of {0} resumed after the failures this request reports")]
    Outdated(String),
    #[error("stale probe for epoch {got_epoch} attempt {got_attempt}; gate is {state:?} at epoch {epoch} attempt {attempt}")]
    StaleProbe {
        got_epoch: u64,
        got_attempt: u32,
        state: GateState,
        epoch: u64,
        attempt: u32,
    },
}

impl Gate {
    /// A target that was never halted: flowing, epoch 0, not yet stored.
    pub fn new(target: impl Into<String>) -> Self {
        Gate {
            target: target.into(),
            state: GateState::Flowing,
            epoch: 0,
            attempt: 0,
            step: 0,
            version: 0,
            changed_at_ms: 0,
            reason: String::new(),
            halted_at_ms: 0,
            next_probe_at_ms: 0,
            resumed_at_ms: 0,
            manual: false,
            ramping: false,
            ramp_delivered: 0,
        }
    }

    pub fn is_flowing(&self) -> bool {
        self.state == GateState::Flowing
    }

    fn next(&self, state: GateState, attempt: u32, now_ms: u64, reason: &str) -> Gate {
        Gate {
            state,
            attempt,
            version: self.version + 1,
            changed_at_ms: now_ms,
            reason: reason.to_owned(),
            next_probe_at_ms: 0,
            ramping: false,
            ramp_delivered: 0,
            ..self.clone()
        }
    }

    /// `Flowing → Halted`: a new epoch. Its probe chain starts at attempt 0, or, if the flow
    /// resumed less than `relapse_ms` ago, one attempt after where the last chain ended.
    /// `manual`: an operator's halt, which has no probes; it also turns a running automatic
    /// halt into a manual one (same epoch).
    pub fn trip(
        &self,
        now_ms: u64,
        reason: &str,
        manual: bool,
        relapse_ms: u64,
    ) -> Result<Gate, Refused> {
        match self.state {
            GateState::Flowing => {
                let relapse = self.resumed_at_ms > 0
                    && now_ms.saturating_sub(self.resumed_at_ms) < relapse_ms;
                let mut g = self.next(GateState::Halted, 0, now_ms, reason);
                g.step = if relapse && !manual {
                    self.step.saturating_add(1)
                } else {
                    0
                };
                g.epoch = self.epoch + 1;
                g.halted_at_ms = now_ms;
                g.manual = manual;
                Ok(g)
            }
            _ if manual && !self.manual => {
                let mut g = self.next(GateState::Halted, self.attempt, now_ms, reason);
                g.manual = true;
                Ok(g)
            }
            _ => Err(Refused::AlreadyHalted(self.target.clone(), self.epoch)),
        }
    }

    /// A trip whose failures were seen at `observed_at_ms`, before the flow last resumed, is
    /// out of date (a retried request must not halt a flow that recovered meanwhile).
    pub fn outdated(&self, observed_at_ms: Option<u64>) -> Option<Refused> {
        match observed_at_ms {
            Some(t) if self.resumed_at_ms > t => Some(Refused::Outdated(self.target.clone())),
            _ => None,
        }
    }

    fn check_probe(&self, expected: GateState, epoch: u64, attempt: u32) -> Result<(), Refused> {
        if self.manual && self.state != GateState::Flowing {
            return Err(Refused::ManualHalt(self.target.clone()));
        }
        if self.state == expected && self.epoch == epoch && self.attempt == attempt {
            Ok(())
        } else {
            Err(Refused::StaleProbe {
                got_epoch: epoch,
                got_attempt: attempt,
                state: self.state,
                epoch: self.epoch,
                attempt: self.attempt,
            })
        }
    }

    /// `Halted → Probing`, only for the timer the gate is waiting for.
    pub fn begin_probe(&self, epoch: u64, attempt: u32, now_ms: u64) -> Result<Gate, Refused> {
        self.check_probe(GateState::Halted, epoch, attempt)?;
        Ok(self.next(GateState::Probing, attempt, now_ms, "probing"))
    }

    /// `Probing → Halted` waiting for attempt + 1: the probe found the target still sick (or
    /// never finished: the watchdog says so after a grace time).
    pub fn probe_failed(
        &self,
        epoch: u64,
        attempt: u32,
        now_ms: u64,
        reason: &str,
    ) -> Result<Gate, Refused> {
        self.check_probe(GateState::Probing, epoch, attempt)?;
        let mut g = self.next(GateState::Halted, attempt.saturating_add(1), now_ms, reason);
        g.step = self.step.saturating_add(1);
        Ok(g)
    }

    /// `Probing → Halted` waiting for attempt + 1 at the same backoff step: the probe could not
    /// tell (nothing to probe with yet).
    pub fn probe_inconclusive(
        &self,
        epoch: u64,
        attempt: u32,
        now_ms: u64,
        reason: &str,
    ) -> Result<Gate, Refused> {
        self.check_probe(GateState::Probing, epoch, attempt)?;
        Ok(self.next(GateState::Halted, attempt.saturating_add(1), now_ms, reason))
    }

    /// `Halted → Halted`, same attempt, its timer due again at `next_probe_at_ms`: the
    /// watchdog found the timer lost.
    pub fn reschedule(&self, now_ms: u64, next_probe_at_ms: u64) -> Result<Gate, Refused> {
        self.check_probe(GateState::Halted, self.epoch, self.attempt)?;
        let mut g = self.next(GateState::Halted, self.attempt, now_ms, &self.reason);
        g.next_probe_at_ms = next_probe_at_ms;
        Ok(g)
    }

    /// `Halted | Probing → Flowing`. With `epoch`, only if that halt is still the current one
    /// and not a manual one (a resume from an old chain must not undo a newer halt); without,
    /// an operator's resume. `ramping`: the flow restarts at a low concurrency.
    pub fn resume(
        &self,
        epoch: Option<u64>,
        now_ms: u64,
        reason: &str,
        ramping: bool,
    ) -> Result<Gate, Refused> {
        if self.state == GateState::Flowing {
            return Err(Refused::AlreadyFlowing(self.target.clone()));
        }
        if let Some(e) = epoch {
            if self.manual {
                return Err(Refused::ManualHalt(self.target.clone()));
            }
            if e != self.epoch {
                return Err(Refused::StaleProbe {
                    got_epoch: e,
                    got_attempt: self.attempt,
                    state: self.state,
                    epoch: self.epoch,
                    attempt: self.attempt,
                });
            }
        }
        let mut g = self.next(GateState::Flowing, self.attempt, now_ms, reason);
        g.manual = false;
        g.resumed_at_ms = now_ms;
        g.ramping = ramping;
        Ok(g)
    }

    /// `Flowing` ramping → `Flowing` at full concurrency, for the resume of `epoch` only.
    pub fn end_ramp(&self, epoch: u64, now_ms: u64) -> Result<Gate, Refused> {
        if self.state != GateState::Flowing || !self.ramping || self.epoch != epoch {
            return Err(Refused::NotRamping(self.target.clone(), self.epoch));
        }
        let mut g = self.next(GateState::Flowing, self.attempt, now_ms, "ramped up");
        g.changed_at_ms = self.changed_at_ms;
        g.ramp_delivered = self.ramp_delivered;
        Ok(g)
    }
}

#[cfg(test)]
mod tests;
