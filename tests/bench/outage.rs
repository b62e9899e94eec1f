//! Outage policy in simulated time: the domain's own gate, probe backoff and in-process retry
//! policy driven by a virtual clock, so an 18-hour outage takes milliseconds. Orders arrive at
//! a steady rate; the API is down from the start for `outage`, then healthy. Steadfast is set
//! against naive send-and-retry: a fixed count of immediate retries per receive, the message
//! back on the queue after its visibility timeout, dead-lettered after `max_receives`.
//!
//! What is modelled, and what is not: every call to the API is counted (order calls and
//! probes), the queue keeps every order (retention 14 days), a delivery takes `call` and runs
//! `concurrency` at a time after a resume. Lambda start-up, the emulator and ramp-up are not
//! modelled; the local stack's figures are measured by the other parts of `make bench`.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;
use steadfast_domain::outcome::Outcome;
use steadfast_domain::{Backoff, Gate, GateState, Next, RetryPolicy};

/// One simulated outage.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// The API is down from 0 to `outage`.
    pub outage: Duration,
    /// Orders keep arriving this long after the outage.
    pub tail: Duration,
    /// One order every `every`.
    pub every: Duration,
    /// What the API answers while down: `Retry-After` (a maintenance window) or nothing.
    pub retry_after: Option<Duration>,
    /// One call to the API.
    pub call: Duration,
    /// Deliveries at once after a resume.
    pub concurrency: u32,
}

impl Scenario {
    pub fn eighteen_hours() -> Self {
        Scenario {
            outage: Duration::from_secs(18 * 3600),
            tail: Duration::from_secs(3600),
            every: Duration::from_secs(60),
            retry_after: None,
            call: Duration::from_millis(100),
            concurrency: 5,
        }
    }

    /// A maintenance window of `window`, announced on every answer by `Retry-After`.
    pub fn maintenance(window: Duration) -> Self {
        Scenario {
            outage: window,
            tail: Duration::from_secs(600),
            retry_after: Some(window),
            ..Scenario::eighteen_hours()
        }
    }

    fn arrivals(&self) -> Vec<u64> {
        let (every, end) = (ms(self.every).max(1), ms(self.outage + self.tail));
        (0..).map(|k| k * every).take_while(|t| *t < end).collect()
    }

    fn down(&self, at_ms: u64) -> bool {
        at_ms < ms(self.outage)
    }

    /// The API's answer to a call at `at_ms`.
    fn answer(&self, at_ms: u64) -> Outcome {
        if !self.down(at_ms) {
            return Outcome::Delivered { status: 201 };
        }
        Outcome::Unavailable {
            reason: "HTTP 503".into(),
            retry_after: self
                .retry_after
                .map(|w| w.saturating_sub(Duration::from_millis(at_ms))),
        }
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// What one policy did through one scenario.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Result {
    pub orders: u64,
    pub api_calls_during_outage: u64,
    pub api_calls_total: u64,
    /// Orders never delivered (dead-lettered, for the naive policy).
    pub lost: u64,
    /// Orders created at the API more than once.
    pub duplicates: u64,
    /// From the API's return to the first delivery after it, seconds.
    pub recovery_lag_s: f64,
    /// From the API's return until every order that arrived so far is delivered, seconds.
    pub drain_s: f64,
}

/// Steadfast: the processor tries an order with the retry policy; when it halts, the gate
/// trips, the queue keeps every order, and probes follow the backoff until one finds the API
/// healthy; then the queue drains.
pub fn steadfast(sc: &Scenario, backoff: Backoff) -> Result {
    let retry = RetryPolicy::default();
    let arrivals = sc.arrivals();
    let mut r = Result {
        orders: arrivals.len() as u64,
        ..Result::default()
    };
    let call = |r: &mut Result, at: u64| {
        r.api_calls_total += 1;
        if sc.down(at) {
            r.api_calls_during_outage += 1;
        }
        sc.answer(at)
    };
    let mut gate = Gate::new("portal");
    let mut queue: VecDeque<u64> = VecDeque::new();
    let mut next_arrival = 0usize;
    let mut now = 0u64;
    let mut first_after: Option<u64> = None;
    let mut last_delivery = 0u64;
    loop {
        let probe_at = (gate.state == GateState::Halted).then_some(gate.next_probe_at_ms);
        let arrival_at = arrivals.get(next_arrival).copied();
        // The next event: an arrival, or the gate's probe timer.
        let (at, is_probe) = match (arrival_at, probe_at) {
            (Some(a), Some(p)) if p < a => (p, true),
            (Some(a), _) => (a, false),
            (None, Some(p)) => (p, true),
            (None, None) => break,
        };
        now = now.max(at);
        if !is_probe {
            next_arrival += 1;
            queue.push_back(at);
            if !gate.is_flowing() {
                continue;
            }
        } else {
            let probing = gate
                .begin_probe(gate.epoch, gate.attempt, now)
                .expect("the timer the gate waits for");
            match call(&mut r, now) {
                Outcome::Delivered { .. } => {
                    gate = probing
                        .resume(Some(gate.epoch), now, "probe healthy", true)
                        .expect("resume");
                }
                other => {
                    let retry_after = match other {
                        Outcome::Unavailable { retry_after, .. } => retry_after,
                        _ => None,
                    };
                    let halted = probing
                        .probe_failed(gate.epoch, gate.attempt, now, "probe HTTP 503")
                        .expect("probe failed");
                    let wait =
                        backoff.delay_after(halted.step, retry_after_of(sc, now, retry_after), 0.5);
                    gate = Gate {
                        next_probe_at_ms: now + ms(wait),
                        ..halted
                    };
                    continue;
                }
            }
        }
        // Flowing: the queue drains, `concurrency` deliveries per call time.
        let mut batch_start = now;
        while !queue.is_empty() {
            let mut attempt = 1;
            let outcome = loop {
                let o = call(&mut r, batch_start);
                match retry.after(attempt, &o, Duration::from_secs(60), 0.5) {
                    Next::Retry(pause) if !matches!(o, Outcome::Delivered { .. }) => {
                        batch_start += ms(pause);
                        attempt += 1;
                    }
                    next => break (o, next),
                }
            };
            match outcome {
                (Outcome::Delivered { .. }, _) => {
                    queue.pop_front();
                    let done = batch_start + ms(sc.call);
                    if done >= ms(sc.outage) {
                        first_after.get_or_insert(done);
                    }
                    last_delivery = last_delivery.max(done);
                    if (queue.len() as u32).is_multiple_of(sc.concurrency.max(1)) {
                        batch_start += ms(sc.call);
                    }
                }
                (_, Next::Halt { reason, wait_hint }) => {
                    let tripped = gate
                        .trip(batch_start, &reason, false, 600_000)
                        .expect("trip");
                    let wait = backoff.delay_after(tripped.step, wait_hint, 0.5);
                    gate = Gate {
                        next_probe_at_ms: batch_start + ms(wait),
                        ..tripped
                    };
                    break;
                }
                _ => unreachable!("the simulated API refuses no order"),
            }
        }
        now = now.max(batch_start);
    }
    let up = ms(sc.outage);
    r.recovery_lag_s = first_after.map_or(f64::NAN, |t| t.saturating_sub(up) as f64 / 1000.0);
    r.drain_s = last_delivery.saturating_sub(up) as f64 / 1000.0;
    r.lost = queue.len() as u64;
    r
}

/// A probe's Retry-After (what is left of an announced window).
fn retry_after_of(sc: &Scenario, now: u64, announced: Option<Duration>) -> Option<Duration> {
    announced.or_else(|| {
        sc.retry_after
            .map(|w| w.saturating_sub(Duration::from_millis(now)))
    })
}

/// Naive send-and-retry: `tries` immediate calls per receive; a failed message comes back after
/// `visibility`, and after `max_receives` receives it is dead-lettered (lost to the flow). An
/// answer lost after the API processed the call (`ambiguous` of the calls while the API is
/// flaky) is retried and creates the order again.
#[derive(Debug, Clone, Copy)]
pub struct Naive {
    pub tries: u32,
    pub visibility: Duration,
    pub max_receives: u32,
}

impl Default for Naive {
    fn default() -> Self {
        Naive {
            tries: 3,
            visibility: Duration::from_secs(30),
            max_receives: 5,
        }
    }
}

pub fn naive(sc: &Scenario, n: Naive) -> Result {
    let arrivals = sc.arrivals();
    let mut r = Result {
        orders: arrivals.len() as u64,
        ..Result::default()
    };
    let up = ms(sc.outage);
    let mut first_after: Option<u64> = None;
    let mut last_delivery = 0u64;
    for a in arrivals {
        let mut receive_at = a;
        let mut delivered = false;
        for _ in 0..n.max_receives {
            for t in 0..n.tries {
                let at = receive_at + u64::from(t) * ms(sc.call);
                r.api_calls_total += 1;
                if sc.down(at) {
                    r.api_calls_during_outage += 1;
                    continue;
                }
                delivered = true;
                if a < up {
                    first_after.get_or_insert(at);
                }
                last_delivery = last_delivery.max(at);
                break;
            }
            if delivered {
                break;
            }
            receive_at += ms(n.visibility);
        }
        r.lost += u64::from(!delivered);
    }
    r.recovery_lag_s = first_after.map_or(f64::NAN, |t| t.saturating_sub(up) as f64 / 1000.0);
    r.drain_s = last_delivery.saturating_sub(up) as f64 / 1000.0;
    r
}

/// Duplicates under ambiguous failures: `orders` orders while `share` of the calls are
/// processed by the API but their answer is lost (a timeout). Naive retries create the order
/// again; Steadfast's retries carry the same `Idempotency-Key`, which the API honours, and its
/// ledger skips a redelivery of a delivered order. Returns (naive, steadfast) duplicates.
pub fn ambiguous(orders: u64, share: f64, seed: u64) -> (u64, u64) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut naive = 0;
    for _ in 0..orders {
        let mut created = 0u64;
        for _ in 0..Naive::default().tries {
            created += 1;
            if !rng.random_bool(share) {
                break; // answered: done
            }
        }
        naive += created.saturating_sub(1);
    }
    (naive, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steadfast_at_its_defaults_loses_nothing_and_calls_a_dead_api_at_most_25_times_in_18_hours() {
        let r = steadfast(&Scenario::eighteen_hours(), Backoff::default());
        assert_eq!((r.lost, r.duplicates), (0, 0), "{r:?}");
        assert!(r.api_calls_during_outage <= 25, "{r:?}");
        // the probe chain reaches the 4 h cap: the API's return is seen within 4 h
        assert!(
            r.recovery_lag_s > 0.0 && r.recovery_lag_s <= 4.0 * 3600.0,
            "{r:?}"
        );
    }

    #[test]
    fn a_lower_cap_finds_the_api_sooner_for_more_calls() {
        let sc = Scenario::eighteen_hours();
        let cap = |s| Backoff {
            cap: Duration::from_secs(s),
            ..Backoff::default()
        };
        let (five_min, four_h) = (steadfast(&sc, cap(300)), steadfast(&sc, cap(4 * 3600)));
        assert!(five_min.recovery_lag_s <= 300.0, "{five_min:?}");
        assert!(five_min.api_calls_during_outage > four_h.api_calls_during_outage);
        assert_eq!(five_min.lost, 0);
    }

    #[test]
    fn naive_retries_hammer_the_api_and_dead_letter_what_arrived_during_the_outage() {
        let sc = Scenario::eighteen_hours();
        let r = naive(&sc, Naive::default());
        // 1 080 orders in the outage, 3 tries × 5 receives each (the last minutes' orders
        // reach the API's return)
        assert!(r.api_calls_during_outage > 16_000, "{r:?}");
        assert!(r.lost >= 1075, "{r:?}");
    }

    #[test]
    fn an_announced_maintenance_window_costs_steadfast_at_most_3_calls() {
        let sc = Scenario::maintenance(Duration::from_secs(1800));
        let r = steadfast(&sc, Backoff::default());
        assert!(r.api_calls_during_outage <= 3, "{r:?}");
        assert_eq!(r.lost, 0);
        assert!(naive(&sc, Naive::default()).api_calls_during_outage > 100);
    }

    #[test]
    fn ambiguous_answers_duplicate_naive_orders_only() {
        let (naive, steadfast) = ambiguous(1000, 0.1, 7);
        assert!((80..=130).contains(&naive), "{naive}");
        assert_eq!(steadfast, 0);
    }
}
