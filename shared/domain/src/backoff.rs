//! The probe schedule after a halt: delay = min(max(base · 2^attempt, Retry-After), cap),
//! optionally jittered, and how each delay is carried (an SQS timer message or a one-time
//! Scheduler schedule). A wait the target announced (Retry-After) moves the probe to when it
//! said it would be back, never past the cap.
//!
//! Defaults: base 1 s, cap 4 h, no jitter, timers queue up to 900 s (SQS's DelaySeconds
//! maximum). EventBridge Scheduler fires with one-minute precision, so only delays above the
//! queue limit go through it.

use std::time::Duration;

/// How much randomness to take off each delay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// Exact delays.
    None,
    /// Take up to this fraction (0.0..=1.0) off each delay: `d · (1 − f·u)` for `u` in [0, 1).
    /// The result stays in `[d·(1−f), d]`, so it never exceeds the cap.
    Proportion(f64),
}

/// The doubling probe schedule. Plain data: [`Backoff::delay`] is a pure function and
/// [`Backoff::iter`] yields the un-jittered schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before probe 0. Default 1 s.
    pub base: Duration,
    /// Upper bound of every delay. Default 4 h.
    pub cap: Duration,
    /// Default [`Jitter::None`].
    pub jitter: Jitter,
    /// Longest delay carried by an SQS message timer. Default 900 s (SQS's maximum).
    pub queue_limit: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(4 * 3600),
            jitter: Jitter::None,
            queue_limit: Duration::from_secs(900),
        }
    }
}

/// How one probe timer is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerRoute {
    /// SQS `SendMessage` to the timers queue with `DelaySeconds` (second precision).
    Queue { delay_seconds: u32 },
    /// A one-time EventBridge Scheduler `at(...)` schedule whose target is the timers queue.
    Schedule { fire_at_ms: u64 },
}

impl Backoff {
    /// The delay before probe `attempt`, un-jittered: min(base · 2^attempt, cap).
    pub fn raw_delay(&self, attempt: u32) -> Duration {
        let factor = 2u32
            .checked_pow(attempt)
            .map(u128::from)
            .unwrap_or(u128::MAX);
        let nanos = self.base.as_nanos().saturating_mul(factor);
        let cap = self.cap.as_nanos();
        let capped = nanos.min(cap);
        Duration::from_nanos(u64::try_from(capped).unwrap_or(u64::MAX))
    }

    /// The delay before probe `attempt`, with jitter drawn from `unit` (a number in [0, 1)).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let raw = self.raw_delay(attempt);
        match self.jitter {
            Jitter::None => raw,
            Jitter::Proportion(f) => {
                let f = f.clamp(0.0, 1.0);
                let u = unit.clamp(0.0, 1.0);
                raw.mul_f64(1.0 - f * u)
            }
        }
    }

    /// The delay before probe `attempt` when the target announced `announced` (its longest
    /// Retry-After): min(max(jittered delay, announced), cap).
    pub fn delay_after(&self, attempt: u32, announced: Option<Duration>, unit: f64) -> Duration {
        let d = self.delay(attempt, unit);
        announced.map_or(d, |a| d.max(a)).min(self.cap)
    }

    /// How a timer of `delay`, set at `now_ms`, is carried.
    pub fn route(&self, delay: Duration, now_ms: u64) -> TimerRoute {
        if delay <= self.queue_limit {
            // Round up: a probe may come a little late, never early.
            let secs = delay.as_millis().div_ceil(1000);
            TimerRoute::Queue {
                delay_seconds: u32::try_from(secs).unwrap_or(u32::MAX),
            }
        } else {
            let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
            TimerRoute::Schedule {
                fire_at_ms: now_ms.saturating_add(ms),
            }
        }
    }

    /// The un-jittered schedule, probe 0 onwards (endless: it stays at the cap).
    pub fn iter(&self) -> impl Iterator<Item = Duration> + '_ {
        (0u32..).map(|a| self.raw_delay(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn defaults_double_from_one_second_to_four_hours() {
        let b = Backoff::default();
        let first: Vec<u64> = b.iter().take(5).map(|d| d.as_secs()).collect();
        assert_eq!(first, vec![1, 2, 4, 8, 16]);
        // 2^14 s = 4.55 h > 4 h, so attempt 14 is the first at the cap
        assert_eq!(b.raw_delay(13), Duration::from_secs(8192));
        assert_eq!(b.raw_delay(14), Duration::from_secs(14_400));
        assert_eq!(b.raw_delay(1000), Duration::from_secs(14_400));
    }

    #[test]
    fn short_delays_go_through_the_queue_and_long_ones_through_the_scheduler() {
        let b = Backoff::default();
        assert_eq!(
            b.route(Duration::from_secs(900), 0),
            TimerRoute::Queue { delay_seconds: 900 }
        );
        assert_eq!(
            b.route(Duration::from_millis(1500), 0),
            TimerRoute::Queue { delay_seconds: 2 }
        );
        assert_eq!(
            b.route(Duration::from_secs(901), 10),
            TimerRoute::Schedule {
                fire_at_ms: 901_010
            }
        );
    }

    #[test]
    fn an_announced_wait_moves_the_probe_but_never_past_the_cap() {
        let b = Backoff::default();
        let two_min = Some(Duration::from_secs(120));
        assert_eq!(b.delay_after(0, two_min, 0.0), Duration::from_secs(120));
        assert_eq!(b.delay_after(10, two_min, 0.0), Duration::from_secs(1024));
        assert_eq!(
            b.delay_after(0, Some(Duration::from_secs(86_400)), 0.0),
            Duration::from_secs(14_400)
        );
        assert_eq!(b.delay_after(3, None, 0.0), Duration::from_secs(8));
    }

    proptest! {
        #[test]
        fn the_first_probe_comes_no_earlier_than_the_announced_wait_up_to_the_cap(
            base_ms in 1u64..10_000, cap_ms in 1u64..100_000_000, attempt in 0u32..64,
            wait_ms in 0u64..200_000_000, f in 0.0f64..=1.0, u in 0.0f64..1.0,
        ) {
            let b = Backoff { base: Duration::from_millis(base_ms), cap: Duration::from_millis(cap_ms), jitter: Jitter::Proportion(f), ..Backoff::default() };
            let wait = Duration::from_millis(wait_ms);
            let d = b.delay_after(attempt, Some(wait), u);
            prop_assert!(d >= wait.min(b.cap));
            prop_assert!(d <= b.cap);
        }

        #[test]
        fn the_schedule_doubles_from_the_base_and_never_passes_the_cap(
            base_ms in 1u64..10_000, cap_ms in 1u64..100_000_000, attempt in 0u32..200,
        ) {
            let b = Backoff { base: Duration::from_millis(base_ms), cap: Duration::from_millis(cap_ms), ..Backoff::default() };
            let d = b.raw_delay(attempt);
            prop_assert!(d <= b.cap);
            if attempt == 0 { prop_assert_eq!(d, b.base.min(b.cap)); }
            let next = b.raw_delay(attempt + 1);
            // doubling until the cap, then flat
            prop_assert!(next == (d * 2).min(b.cap));
        }

        #[test]
        fn jitter_stays_within_its_bounds(
            base_ms in 1u64..10_000, cap_ms in 1u64..100_000_000, attempt in 0u32..64,
            f in 0.0f64..=1.0, u in 0.0f64..1.0,
        ) {
            let b = Backoff { base: Duration::from_millis(base_ms), cap: Duration::from_millis(cap_ms), jitter: Jitter::Proportion(f), ..Backoff::default() };
            let raw = b.raw_delay(attempt);
            let d = b.delay(attempt, u);
            prop_assert!(d <= raw);
            prop_assert!(d <= b.cap);
            // lower bound with 1 µs slack for float rounding
            prop_assert!(d + Duration::from_micros(1) >= raw.mul_f64(1.0 - f));
        }
    }
}
