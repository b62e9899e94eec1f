//! Tests of the batch judge: table cases of target and message failures, and properties over
//! random answer sequences.

use super::*;
use proptest::prelude::*;

const PLENTY: Duration = Duration::from_secs(600);

fn policy(max: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts: max,
        base: Duration::from_millis(10),
        cap: Duration::from_secs(5),
        reserve: Duration::from_secs(2),
        min_call: Duration::from_millis(100),
    }
}

/// What a message does at the target.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Good,
    /// Refused (message-level) every time.
    Bad,
    /// Target-level failure for this message only, every time.
    Poison,
}

/// Runs a batch against a target that is `down` (every call target-level) or up (each
/// message answers by its kind). Returns the run and the calls, in order.
fn simulate(
    max: u32,
    kinds: &[Kind],
    receives: &[u32],
    down: bool,
    mut remaining: Duration,
) -> (BatchRun, Vec<(usize, Outcome)>) {
    let mut run = BatchRun::new(policy(max), Duration::from_secs(3), receives);
    let mut calls = vec![];
    for _ in 0..10_000 {
        match run.next(remaining) {
            Action::Done => return (run, calls),
            Action::Wait(w) => remaining = remaining.saturating_sub(w),
            Action::Call { index, timeout, .. } => {
                assert!(timeout + Duration::from_secs(2) <= remaining);
                let outcome = match (down, kinds[index]) {
                    (true, _) | (false, Kind::Poison) => Outcome::unavailable("HTTP 503"),
                    (false, Kind::Good) => Outcome::Delivered { status: 201 },
                    (false, Kind::Bad) => Outcome::Refused("HTTP 400".into()),
                };
                remaining = remaining.saturating_sub(Duration::from_millis(200));
                run.answer(&outcome, remaining, 0.5);
                calls.push((index, outcome));
            }
        }
    }
    panic!("the run did not end");
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![4 => Just(Kind::Good), 1 => Just(Kind::Bad), 1 => Just(Kind::Poison)]
}

#[test]
fn a_down_target_halts_after_max_attempts_calls_spread_over_two_messages() {
    let (run, calls) = simulate(5, &[Kind::Good; 3], &[1, 1, 1], true, PLENTY);
    let who: Vec<usize> = calls.iter().map(|(i, _)| *i).collect();
    assert_eq!(who, vec![0, 0, 0, 0, 1], "four tries, then the witness");
    let trip = run.trip().expect("tripped");
    assert_eq!((trip.index, trip.failures), (1, 5));
    assert!(run.fates().iter().all(|f| *f == Fate::HandBack));
}

#[test]
fn a_poison_message_witnessed_by_a_delivery_fails_on_its_own() {
    // GIVEN a poison message first and a good one after it
    let (run, calls) = simulate(5, &[Kind::Poison, Kind::Good], &[1, 1], false, PLENTY);
    assert_eq!(calls.len(), 5);
    assert!(run.trip().is_none());
    assert_eq!(
        run.fates(),
        &[Fate::Own("HTTP 503".into()), Fate::Delivered]
    );
    // AND after a few receives it is tried after the fresh one
    let (run, calls) = simulate(5, &[Kind::Poison, Kind::Good], &[6, 1], false, PLENTY);
    assert!(run.trip().is_none());
    assert_eq!(calls[0].0, 1, "tried first: fewer receives");
    assert_eq!(
        calls.len(),
        6,
        "all five of its own calls after the delivery"
    );
}

#[test]
fn two_poison_messages_after_a_delivery_both_fail_on_their_own() {
    let (run, _) = simulate(
        5,
        &[Kind::Good, Kind::Poison, Kind::Poison],
        &[1, 4, 4],
        false,
        PLENTY,
    );
    assert!(run.trip().is_none(), "{:?}", run.fates());
    assert!(matches!(run.fates()[1], Fate::Own(_)) && matches!(run.fates()[2], Fate::Own(_)));
    // good, poison, good, poison: each delivery vouches again
    let (run, _) = simulate(
        5,
        &[Kind::Good, Kind::Poison, Kind::Good, Kind::Poison],
        &[1, 1, 1, 1],
        false,
        PLENTY,
    );
    assert!(run.trip().is_none(), "{:?}", run.fates());
}

#[test]
fn an_outage_that_begins_mid_batch_halts_after_a_bounded_number_of_calls() {
    // GIVEN one message delivered, then the target goes down for the rest of the batch
    let mut run = BatchRun::new(policy(5), Duration::from_secs(3), &[1; 10]);
    let mut calls = 0;
    loop {
        match run.next(PLENTY) {
            Action::Done => break,
            Action::Wait(_) => {}
            Action::Call { .. } => {
                calls += 1;
                let o = if calls == 1 {
                    Outcome::Delivered { status: 201 }
                } else {
                    Outcome::unavailable("HTTP 503")
                };
                run.answer(&o, PLENTY, 0.5);
            }
        }
    }
    // THEN two messages' failures are taken for their own, then the flow halts
    assert!(run.trip().is_some());
    assert_eq!(calls, 1 + 5 + 5 + 4 + 1);
}

#[test]
fn own_failures_before_a_halt_are_the_targets_after_all() {
    // GIVEN one delivery, then the target goes down for the rest of the batch
    let mut run = BatchRun::new(policy(5), Duration::from_secs(3), &[1; 5]);
    let mut calls = 0;
    while let a @ (Action::Call { .. } | Action::Wait(_)) = run.next(PLENTY) {
        if let Action::Call { .. } = a {
            calls += 1;
            let o = if calls == 1 {
                Outcome::Delivered { status: 201 }
            } else {
                Outcome::unavailable("HTTP 503")
            };
            run.answer(&o, PLENTY, 0.5);
        }
    }
    // THEN the flow halts and no message is held responsible
    assert!(run.trip().is_some());
    assert!(
        run.fates()[1..].iter().all(|f| *f == Fate::HandBack),
        "{:?}",
        run.fates()
    );
}

#[test]
fn one_message_with_a_long_retry_after_beside_deliveries_fails_on_its_own() {
    let mut run = BatchRun::new(policy(5), Duration::from_secs(3), &[1, 1, 3]);
    for _ in 0..2 {
        assert!(matches!(run.next(PLENTY), Action::Call { .. }));
        run.answer(&Outcome::Delivered { status: 201 }, PLENTY, 0.0);
    }
    assert!(matches!(run.next(PLENTY), Action::Call { index: 2, .. }));
    run.answer(
        &Outcome::Unavailable {
            reason: "HTTP 503".into(),
            retry_after: Some(Duration::from_secs(30)),
        },
        PLENTY,
        0.0,
    );
    assert_eq!(run.next(PLENTY), Action::Done);
    assert!(run.trip().is_none());
    assert_eq!(run.fates()[2], Fate::Own("HTTP 503".into()));
}

#[test]
fn a_message_out_of_time_beside_deliveries_goes_back_untouched() {
    let mut run = BatchRun::new(policy(5), Duration::from_secs(3), &[1, 2]);
    assert!(matches!(run.next(PLENTY), Action::Call { .. }));
    run.answer(&Outcome::Delivered { status: 201 }, PLENTY, 0.0);
    assert!(matches!(run.next(PLENTY), Action::Call { .. }));
    run.answer(
        &Outcome::unavailable("timeout"),
        Duration::from_millis(2100),
        0.0,
    );
    assert_eq!(run.next(Duration::from_millis(2100)), Action::Done);
    assert!(run.trip().is_none());
    assert_eq!(
        run.fates()[1],
        Fate::HandBack,
        "no strike: the invocation ran out"
    );
}

#[test]
fn a_known_poison_message_failing_alone_does_not_halt_the_flow() {
    let mut run = BatchRun::new(policy(5), Duration::from_secs(3), &[4]).with_strikes(&[2]);
    let mut calls = 0;
    while let a @ (Action::Call { .. } | Action::Wait(_)) = run.next(PLENTY) {
        if let Action::Call { .. } = a {
            calls += 1;
            run.answer(&Outcome::unavailable("HTTP 500"), PLENTY, 0.5);
        }
    }
    assert_eq!(calls, 5);
    assert!(run.trip().is_none());
    assert_eq!(run.fates(), &[Fate::Own("HTTP 500".into())]);
    // AND a struck message is tried after fresh ones
    let mut run = BatchRun::new(policy(5), Duration::from_secs(3), &[1, 1]).with_strikes(&[1, 0]);
    assert!(matches!(run.next(PLENTY), Action::Call { index: 1, .. }));
}

#[test]
fn a_message_failing_alone_halts_the_flow() {
    let (run, calls) = simulate(5, &[Kind::Poison], &[9], false, PLENTY);
    assert_eq!(calls.len(), 5);
    assert_eq!(run.trip().map(|t| t.attempts), Some(5));
    assert_eq!(run.fates(), &[Fate::HandBack]);
}

#[test]
fn an_announced_wait_that_does_not_fit_halts_at_once() {
    let mut run = BatchRun::new(policy(5), Duration::from_secs(3), &[1, 1]);
    assert!(matches!(run.next(PLENTY), Action::Call { index: 0, .. }));
    run.answer(
        &Outcome::Unavailable {
            reason: "HTTP 503".into(),
            retry_after: Some(Duration::from_secs(120)),
        },
        Duration::from_secs(50),
        0.0,
    );
    assert_eq!(run.next(Duration::from_secs(50)), Action::Done);
    let trip = run.trip().unwrap();
    assert_eq!(trip.wait_hint, Some(Duration::from_secs(120)));
    assert_eq!(run.fates(), &[Fate::HandBack, Fate::HandBack]);
}

#[test]
fn an_announced_wait_longer_than_a_retry_pause_halts_even_with_time_left() {
    let mut run = BatchRun::new(policy(5), Duration::from_secs(3), &[1]);
    run.next(PLENTY);
    run.answer(
        &Outcome::Unavailable {
            reason: "HTTP 503".into(),
            retry_after: Some(Duration::from_secs(30)),
        },
        PLENTY,
        0.0,
    );
    assert_eq!(run.next(PLENTY), Action::Done);
    assert!(run.trip().is_some());
}

#[test]
fn a_short_announced_wait_is_sat_out() {
    let mut run = BatchRun::new(policy(5), Duration::from_secs(3), &[1]);
    run.next(PLENTY);
    run.answer(
        &Outcome::Unavailable {
            reason: "HTTP 429".into(),
            retry_after: Some(Duration::from_secs(2)),
        },
        PLENTY,
        0.0,
    );
    assert_eq!(run.next(PLENTY), Action::Wait(Duration::from_secs(2)));
    assert!(matches!(run.next(PLENTY), Action::Call { attempt: 2, .. }));
}

#[test]
fn without_time_for_a_call_nothing_starts_and_nothing_halts() {
    let (run, calls) = simulate(5, &[Kind::Good; 2], &[1, 1], false, Duration::from_secs(2));
    assert!(calls.is_empty());
    assert!(run.trip().is_none());
    assert_eq!(run.fates(), &[Fate::HandBack, Fate::HandBack]);
}

#[test]
fn a_failure_with_no_time_left_for_another_try_counts_like_a_used_up_message() {
    // 2.3 s left: one call fits, a pause and a second call do not.
    let (run, calls) = simulate(
        5,
        &[Kind::Good; 2],
        &[1, 1],
        true,
        Duration::from_millis(2300),
    );
    assert_eq!(calls.len(), 1);
    assert!(run.trip().is_some());
}

proptest! {
    #[test]
    fn a_down_target_always_halts_within_max_attempts_calls(
        max in 1u32..8,
        receives in proptest::collection::vec(1u32..12, 1..10),
    ) {
        let kinds = vec![Kind::Good; receives.len()];
        let (run, calls) = simulate(max, &kinds, &receives, true, PLENTY);
        prop_assert!(run.trip().is_some());
        prop_assert_eq!(calls.len() as u32, max);
        prop_assert!(run.fates().iter().all(|f| *f == Fate::HandBack), "nothing parked while the target is down");
    }

    #[test]
    fn message_level_answers_never_halt(
        max in 1u32..8,
        kinds in proptest::collection::vec(prop_oneof![Just(Kind::Good), Just(Kind::Bad)], 1..10),
    ) {
        let receives = vec![1; kinds.len()];
        let (run, _) = simulate(max, &kinds, &receives, false, PLENTY);
        prop_assert!(run.trip().is_none());
        for (k, f) in kinds.iter().zip(run.fates()) {
            match k {
                Kind::Good => prop_assert_eq!(f, &Fate::Delivered),
                _ => prop_assert!(matches!(f, Fate::Refused(_))),
            }
        }
    }

    #[test]
    fn every_message_ends_with_a_fate_and_no_message_is_called_too_often(
        max in 1u32..8,
        kinds in proptest::collection::vec(kind(), 1..10),
        receives in proptest::collection::vec(1u32..12, 10),
        down in any::<bool>(),
        secs in 1u64..120,
    ) {
        let receives = &receives[..kinds.len()];
        let (run, calls) = simulate(max, &kinds, receives, down, Duration::from_secs(secs));
        prop_assert!(run.fates().iter().all(|f| *f != Fate::Open));
        for (i, fate) in run.fates().iter().enumerate() {
            prop_assert!(calls.iter().filter(|(j, _)| *j == i).count() as u32 <= max);
            if *fate == Fate::Delivered {
                prop_assert!(calls.iter().any(|(j, o)| *j == i && o.is_delivered()));
            }
            if matches!(fate, Fate::Own(_)) {
                prop_assert!(kinds[i] == Kind::Poison || down, "only failing messages fail on their own");
            }
        }
        // Between two deliveries, target-level failures stay bounded: the failures of at
        // most OWN_FAILURES_PER_DELIVERY messages are taken for their own, then the flow
        // halts.
        let mut streak = 0u32;
        for (_, o) in &calls {
            match o {
                Outcome::Delivered { .. } => streak = 0,
                Outcome::Unavailable { .. } => streak += 1,
                Outcome::Refused(_) => {}
            }
            prop_assert!(streak <= max * (OWN_FAILURES_PER_DELIVERY + 1));
        }
    }

    #[test]
    fn one_poison_message_among_good_ones_never_halts_the_flow(
        max in 2u32..8,
        goods in 1usize..9,
        at in 0usize..9,
        poison_receives in 1u32..12,
    ) {
        let mut kinds = vec![Kind::Good; goods];
        let at = at.min(goods);
        kinds.insert(at, Kind::Poison);
        let mut receives = vec![1; kinds.len()];
        receives[at] = poison_receives;
        let (run, _) = simulate(max, &kinds, &receives, false, PLENTY);
        prop_assert!(run.trip().is_none(), "{:?}", run.fates());
        prop_assert!(matches!(run.fates()[at], Fate::Own(_)), "{:?}", run.fates());
        prop_assert_eq!(run.fates().iter().filter(|f| **f == Fate::Delivered).count(), goods);
    }
}
