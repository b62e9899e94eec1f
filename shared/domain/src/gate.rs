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
//! - `epoch` counts halts and never decreases; each halt starts a new epoch at attempt 0.
//! - a probe is accepted only for the current epoch and the attempt the gate is waiting for,
//!   so a duplicate or stale timer is refused;
//! - `version` increases by exactly one on every accepted transition.

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
    pub attempt: u32,
    /// Optimistic-concurrency version; `0` means "never stored".
    pub version: u64,
    /// Milliseconds since the Unix epoch of the last transition (informational).
    pub changed_at_ms: u64,
    /// Why the gate last changed (e.g. "5 transient failures: HTTP 503").
    #[serde(default)]
    pub reason: String,
    /// When the current (or last) halt began, ms since the Unix epoch; 0 if never halted.
    #[serde(default)]
    pub halted_at_ms: u64,
}

/// Why a transition was not taken. None of these is an error for the caller: each means
/// "someone else already did it, or this request is out of date".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the gate of {0} is already halted (epoch {1})")]
    AlreadyHalted(String, u64),
    #[error("the gate of {0} is already flowing")]
    AlreadyFlowing(String),
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
            version: 0,
            changed_at_ms: 0,
            reason: String::new(),
            halted_at_ms: 0,
        }
    }

    pub fn is_flowing(&self) -> bool {
        self.state == GateState::Flowing
    }

    fn next(&self, state: GateState, epoch: u64, attempt: u32, now_ms: u64, reason: &str) -> Gate {
        Gate {
            target: self.target.clone(),
            state,
            epoch,
            attempt,
            version: self.version + 1,
            changed_at_ms: now_ms,
            reason: reason.to_owned(),
            halted_at_ms: if state == GateState::Halted && epoch > self.epoch {
                now_ms
            } else {
                self.halted_at_ms
            },
        }
    }

    /// `Flowing → Halted`: a new epoch whose backoff chain starts at attempt 0.
    pub fn trip(&self, now_ms: u64, reason: &str) -> Result<Gate, Refused> {
        match self.state {
            GateState::Flowing => {
                Ok(self.next(GateState::Halted, self.epoch + 1, 0, now_ms, reason))
            }
            _ => Err(Refused::AlreadyHalted(self.target.clone(), self.epoch)),
        }
    }

    fn check_probe(&self, expected: GateState, epoch: u64, attempt: u32) -> Result<(), Refused> {
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
        Ok(self.next(GateState::Probing, epoch, attempt, now_ms, "probing"))
    }

    /// `Probing → Halted` waiting for attempt + 1: the probe found the target still sick.
    pub fn probe_failed(
        &self,
        epoch: u64,
        attempt: u32,
        now_ms: u64,
        reason: &str,
    ) -> Result<Gate, Refused> {
        self.check_probe(GateState::Probing, epoch, attempt)?;
        Ok(self.next(
            GateState::Halted,
            epoch,
            attempt.saturating_add(1),
            now_ms,
            reason,
        ))
    }

    /// `Halted | Probing → Flowing`. With `epoch`, only if that halt is still the current one
    /// (a resume from an old chain must not undo a newer halt); without, an operator's resume.
    pub fn resume(&self, epoch: Option<u64>, now_ms: u64, reason: &str) -> Result<Gate, Refused> {
        if self.state == GateState::Flowing {
            return Err(Refused::AlreadyFlowing(self.target.clone()));
        }
        if let Some(e) = epoch {
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
        Ok(self.next(GateState::Flowing, self.epoch, 0, now_ms, reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_full_cycle_trip_probe_fail_probe_resume() {
        // GIVEN a flowing gate
        let g = Gate::new("portal");
        // WHEN it trips, a probe fails, the next probe succeeds
        let halted = g.trip(1, "5 failures").unwrap();
        assert_eq!(
            (halted.state, halted.epoch, halted.attempt, halted.version),
            (GateState::Halted, 1, 0, 1)
        );
        let probing = halted.begin_probe(1, 0, 2).unwrap();
        assert_eq!(probing.state, GateState::Probing);
        let halted_again = probing.probe_failed(1, 0, 3, "503").unwrap();
        assert_eq!(
            (halted_again.state, halted_again.attempt),
            (GateState::Halted, 1)
        );
        let probing2 = halted_again.begin_probe(1, 1, 4).unwrap();
        let flowing = probing2.resume(Some(1), 5, "healthy").unwrap();
        // THEN it flows again in the same epoch, and the next halt is epoch 2
        assert!(flowing.is_flowing());
        assert_eq!(flowing.version, 5);
        assert_eq!(flowing.trip(6, "x").unwrap().epoch, 2);
    }

    #[test]
    fn a_duplicate_timer_is_refused() {
        let probing = Gate::new("t")
            .trip(0, "")
            .unwrap()
            .begin_probe(1, 0, 0)
            .unwrap();
        assert!(matches!(
            probing.begin_probe(1, 0, 0),
            Err(Refused::StaleProbe { .. })
        ));
    }

    #[test]
    fn a_second_trip_is_refused() {
        let halted = Gate::new("t").trip(0, "").unwrap();
        assert_eq!(
            halted.trip(0, ""),
            Err(Refused::AlreadyHalted("t".into(), 1))
        );
    }

    #[test]
    fn a_resume_from_an_old_epoch_does_not_undo_a_new_halt() {
        let g = Gate::new("t")
            .trip(0, "")
            .unwrap()
            .resume(None, 0, "")
            .unwrap()
            .trip(0, "")
            .unwrap();
        assert_eq!(g.epoch, 2);
        assert!(g.resume(Some(1), 0, "").is_err());
        assert!(g.resume(Some(2), 0, "").is_ok());
    }

    #[derive(Debug, Clone)]
    enum Cmd {
        Trip,
        BeginProbe(u64, u32),
        ProbeFailed(u64, u32),
        Resume(Option<u64>),
    }

    fn cmd() -> impl Strategy<Value = Cmd> {
        prop_oneof![
            Just(Cmd::Trip),
            (0u64..4, 0u32..4).prop_map(|(e, a)| Cmd::BeginProbe(e, a)),
            (0u64..4, 0u32..4).prop_map(|(e, a)| Cmd::ProbeFailed(e, a)),
            proptest::option::of(0u64..4).prop_map(Cmd::Resume),
        ]
    }

    proptest! {
        #[test]
        fn transitions_keep_the_invariants(cmds in proptest::collection::vec(cmd(), 0..60)) {
            let mut g = Gate::new("t");
            let mut accepted_probes = std::collections::HashSet::new();
            for c in cmds {
                let before = g.clone();
                let r = match c {
                    Cmd::Trip => g.trip(0, ""),
                    Cmd::BeginProbe(e, a) => g.begin_probe(e, a, 0),
                    Cmd::ProbeFailed(e, a) => g.probe_failed(e, a, 0, ""),
                    Cmd::Resume(e) => g.resume(e, 0, ""),
                };
                if let Ok(next) = r {
                    // version moves by exactly one, the epoch never goes back
                    prop_assert_eq!(next.version, before.version + 1);
                    prop_assert!(next.epoch >= before.epoch);
                    // only a trip starts a new epoch, and only from Flowing
                    if next.epoch > before.epoch {
                        prop_assert_eq!(before.state, GateState::Flowing);
                        prop_assert_eq!(next.epoch, before.epoch + 1);
                        prop_assert_eq!((next.state, next.attempt), (GateState::Halted, 0));
                    }
                    // each (epoch, attempt) probe is accepted at most once
                    if next.state == GateState::Probing {
                        prop_assert!(accepted_probes.insert((next.epoch, next.attempt)));
                    }
                    g = next;
                } else {
                    // a refused command changes nothing (g is untouched)
                    prop_assert_eq!(&g, &before);
                }
                // attempts only ever count up within an epoch
                if g.state != GateState::Flowing && before.state != GateState::Flowing && g.epoch == before.epoch {
                    prop_assert!(g.attempt >= before.attempt);
                }
            }
        }
    }
}
