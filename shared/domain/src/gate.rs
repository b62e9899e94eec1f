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
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RELAPSE: u64 = 600_000;

    fn trip(g: &Gate, now: u64) -> Result<Gate, Refused> {
        g.trip(now, "x", false, RELAPSE)
    }

    #[test]
    fn a_full_cycle_trip_probe_fail_probe_resume() {
        // GIVEN a flowing gate
        let g = Gate::new("portal");
        // WHEN it trips, a probe fails, the next probe succeeds
        let halted = trip(&g, 1).unwrap();
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
        let flowing = probing2.resume(Some(1), 5, "healthy", true).unwrap();
        // THEN it flows again in the same epoch, ramping, and the next halt is epoch 2
        assert!(flowing.is_flowing() && flowing.ramping);
        assert_eq!((flowing.version, flowing.resumed_at_ms), (5, 5));
        assert_eq!(flowing.halted_at_ms, 1, "the halt began at 1");
        assert_eq!(trip(&flowing, RELAPSE + 6).unwrap().epoch, 2);
    }

    #[test]
    fn a_halt_soon_after_a_resume_continues_the_backoff() {
        let resumed = trip(&Gate::new("t"), 0)
            .unwrap()
            .begin_probe(1, 0, 0)
            .unwrap()
            .probe_failed(1, 0, 0, "")
            .unwrap()
            .begin_probe(1, 1, 0)
            .unwrap()
            .resume(Some(1), 1_000, "", false)
            .unwrap();
        assert_eq!(resumed.step, 1);
        let relapse = trip(&resumed, 2_000).unwrap();
        assert_eq!((relapse.attempt, relapse.step), (0, 2), "relapse");
        assert_eq!(
            trip(&resumed, 1_000 + RELAPSE).unwrap().step,
            0,
            "a fresh backoff after the relapse window"
        );
    }

    #[test]
    fn an_inconclusive_probe_moves_on_without_raising_the_backoff() {
        let g = trip(&Gate::new("t"), 0)
            .unwrap()
            .begin_probe(1, 0, 0)
            .unwrap()
            .probe_inconclusive(1, 0, 1, "nothing visible")
            .unwrap();
        assert_eq!((g.state, g.attempt, g.step), (GateState::Halted, 1, 0));
        assert!(g.begin_probe(1, 0, 2).is_err(), "the old timer is stale");
    }

    #[test]
    fn a_duplicate_timer_is_refused() {
        let probing = trip(&Gate::new("t"), 0)
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
        let halted = trip(&Gate::new("t"), 0).unwrap();
        assert_eq!(trip(&halted, 0), Err(Refused::AlreadyHalted("t".into(), 1)));
    }

    #[test]
    fn a_manual_halt_is_not_probed_and_only_an_operator_lifts_it() {
        let halted = trip(&Gate::new("t"), 0).unwrap();
        let manual = halted.trip(1, "maintenance", true, RELAPSE).unwrap();
        assert_eq!((manual.epoch, manual.manual), (1, true));
        assert!(matches!(
            manual.begin_probe(1, 0, 2),
            Err(Refused::ManualHalt(_))
        ));
        assert!(matches!(
            manual.resume(Some(1), 2, "", true),
            Err(Refused::ManualHalt(_))
        ));
        assert!(manual.reschedule(2, 3).is_err());
        let lifted = manual.resume(None, 3, "operator", true).unwrap();
        assert!(lifted.is_flowing() && !lifted.manual);
    }

    #[test]
    fn a_lost_timer_is_rescheduled_in_the_same_attempt() {
        let halted = trip(&Gate::new("t"), 0).unwrap();
        let again = halted.reschedule(10, 20).unwrap();
        assert_eq!(
            (
                again.state,
                again.attempt,
                again.next_probe_at_ms,
                again.version
            ),
            (GateState::Halted, 0, 20, 2)
        );
        assert!(again.begin_probe(1, 0, 21).is_ok());
    }

    #[test]
    fn a_ramp_ends_once_for_its_resume() {
        let flowing = trip(&Gate::new("t"), 0)
            .unwrap()
            .resume(None, 5, "", true)
            .unwrap();
        assert!(flowing.end_ramp(7, 6).is_err(), "another epoch");
        let full = flowing.end_ramp(1, 6).unwrap();
        assert!(!full.ramping && full.is_flowing());
        assert!(full.end_ramp(1, 7).is_err());
    }

    #[test]
    fn a_resume_from_an_old_epoch_does_not_undo_a_new_halt() {
        let g = trip(
            &trip(&Gate::new("t"), 0)
                .unwrap()
                .resume(None, 0, "", false)
                .unwrap(),
            RELAPSE,
        )
        .unwrap();
        assert_eq!(g.epoch, 2);
        assert!(g.resume(Some(1), 0, "", false).is_err());
        assert!(g.resume(Some(2), 0, "", false).is_ok());
    }

    #[derive(Debug, Clone)]
    enum Cmd {
        Trip(bool),
        BeginProbe(u64, u32),
        ProbeFailed(u64, u32),
        ProbeInconclusive(u64, u32),
        Reschedule,
        Resume(Option<u64>),
        EndRamp(u64),
    }

    fn cmd() -> impl Strategy<Value = Cmd> {
        prop_oneof![
            any::<bool>().prop_map(Cmd::Trip),
            (0u64..4, 0u32..4).prop_map(|(e, a)| Cmd::BeginProbe(e, a)),
            (0u64..4, 0u32..4).prop_map(|(e, a)| Cmd::ProbeFailed(e, a)),
            (0u64..4, 0u32..4).prop_map(|(e, a)| Cmd::ProbeInconclusive(e, a)),
            Just(Cmd::Reschedule),
            proptest::option::of(0u64..4).prop_map(Cmd::Resume),
            (0u64..4).prop_map(Cmd::EndRamp),
        ]
    }

    proptest! {
        #[test]
        fn transitions_keep_the_invariants(cmds in proptest::collection::vec((cmd(), 0u64..2_000_000), 0..60)) {
            let mut g = Gate::new("t");
            let mut accepted_probes = std::collections::HashSet::new();
            let mut now = 0u64;
            for (c, dt) in cmds {
                now += dt;
                let before = g.clone();
                let r = match c {
                    Cmd::Trip(manual) => g.trip(now, "", manual, RELAPSE),
                    Cmd::BeginProbe(e, a) => g.begin_probe(e, a, now),
                    Cmd::ProbeFailed(e, a) => g.probe_failed(e, a, now, ""),
                    Cmd::ProbeInconclusive(e, a) => g.probe_inconclusive(e, a, now, ""),
                    Cmd::Reschedule => g.reschedule(now, now + 1),
                    Cmd::Resume(e) => g.resume(e, now, "", true),
                    Cmd::EndRamp(e) => g.end_ramp(e, now),
                };
                if let Ok(next) = r {
                    // version moves by exactly one, the epoch never goes back
                    prop_assert_eq!(next.version, before.version + 1);
                    prop_assert!(next.epoch >= before.epoch);
                    // only a trip starts a new epoch, and only from Flowing
                    if next.epoch > before.epoch {
                        prop_assert_eq!(before.state, GateState::Flowing);
                        prop_assert_eq!(next.epoch, before.epoch + 1);
                        prop_assert_eq!(next.state, GateState::Halted);
                        prop_assert_eq!(next.attempt, 0);
                        prop_assert!(next.step == 0 || next.step == before.step + 1);
                    }
                    // each (epoch, attempt) probe is accepted at most once, never of a manual halt
                    if next.state == GateState::Probing {
                        prop_assert!(!before.manual);
                        prop_assert!(accepted_probes.insert((next.epoch, next.attempt)));
                    }
                    // a manual halt is lifted only by a resume without epoch
                    if before.manual && next.state == GateState::Flowing {
                        prop_assert!(matches!(c, Cmd::Resume(None)));
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
