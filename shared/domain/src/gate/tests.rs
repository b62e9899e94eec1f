//! Tests of the gate: each transition and its refusals, and properties over random sequences
//! of transitions.

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
