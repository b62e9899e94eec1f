//! The in-process retry policy of one delivery: up to `max_attempts` tries with a short,
//! jittered, doubling pause, never a call that cannot end before the Lambda's deadline.
//!
//! Defaults: 5 attempts, pause 200 ms doubling to at most 5 s, half of each pause jittered,
//! 3 s kept in reserve before the deadline for parking, events and the answer, and no call
//! started with less than 1 s to run. [`crate::judge::Judge`] decides what a failure means for the batch.

use std::time::Duration;

use crate::outcome::Outcome;

/// What to do after one delivery of a single record failed (the inbox's per-record rule; the
/// processor's batches use [`crate::judge::BatchRun`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Wait this long, then try again.
    Retry(Duration),
    /// Message-level: the target will never take it.
    Park(String),
    /// Target-level and no further try here: attempts used, no time for another, or an
    /// announced wait that does not fit. Halt the flow; `wait_hint` is the announced wait.
    Halt {
        reason: String,
        wait_hint: Option<Duration>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Tries per message before the flow is halted. Default 5.
    pub max_attempts: u32,
    /// First pause. Default 200 ms.
    pub base: Duration,
    /// Longest pause. Default 5 s.
    pub cap: Duration,
    /// Time kept free before the Lambda's deadline. Default 3 s.
    pub reserve: Duration,
    /// Shortest call worth starting. Default 1 s.
    pub min_call: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
            reserve: Duration::from_secs(3),
            min_call: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The pause after try number `attempt` (1-based) failed: the target's announced wait if
    /// it gave one, else base · 2^(attempt−1) capped, with equal jitter (half fixed, half drawn
    /// from `unit` in [0, 1)).
    pub fn pause(&self, attempt: u32, announced: Option<Duration>, unit: f64) -> Duration {
        if let Some(wait) = announced {
            return wait;
        }
        let exp = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let full = exp.min(self.cap);
        full / 2 + (full / 2).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// The timeout of a call started with `remaining` time left in the invocation: the
    /// configured `timeout`, cut to what is left before the reserve. `None`: no call can end in
    /// time, do not start one.
    pub fn call_timeout(&self, timeout: Duration, remaining: Duration) -> Option<Duration> {
        let usable = remaining.checked_sub(self.reserve)?;
        let t = timeout.min(usable);
        (t >= self.min_call.min(timeout)).then_some(t)
    }

    /// Whether a pause of `pause` followed by one more call still fits in `remaining`.
    pub fn fits(&self, pause: Duration, remaining: Duration) -> bool {
        pause + self.reserve + self.min_call <= remaining
    }

    /// After try number `attempt` (1-based) of one record failed with `outcome` (not
    /// delivered), with `remaining` time left and `unit` in [0, 1) for the jitter. An announced
    /// wait longer than `cap` is the gate's to sit out, not the invocation's: halt.
    pub fn after(&self, attempt: u32, outcome: &Outcome, remaining: Duration, unit: f64) -> Next {
        let (reason, announced) = match outcome {
            Outcome::Refused(r) => return Next::Park(r.clone()),
            Outcome::Delivered { .. } => return Next::Retry(Duration::ZERO),
            Outcome::Unavailable {
                reason,
                retry_after,
            } => (reason.clone(), *retry_after),
        };
        let pause = self.pause(attempt, announced, unit);
        let too_long = announced.is_some_and(|w| w > self.cap);
        if too_long || attempt >= self.max_attempts || !self.fits(pause, remaining) {
            return Next::Halt {
                reason,
                wait_hint: announced,
            };
        }
        Next::Retry(pause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_from_the_base_and_honour_an_announced_wait() {
        let p = RetryPolicy::default();
        let waits: Vec<u128> = (1..6).map(|a| p.pause(a, None, 1.0).as_millis()).collect();
        assert_eq!(waits, vec![200, 400, 800, 1600, 3200]);
        assert_eq!(p.pause(9, None, 1.0), Duration::from_secs(5), "capped");
        assert_eq!(
            p.pause(1, None, 0.0),
            Duration::from_millis(100),
            "half jittered"
        );
        assert_eq!(
            p.pause(1, Some(Duration::from_secs(3)), 0.0),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn a_single_record_retries_then_halts_and_a_refusal_parks() {
        let p = RetryPolicy::default();
        let plenty = Duration::from_secs(600);
        let down = Outcome::unavailable("HTTP 503");
        assert_eq!(
            p.after(1, &down, plenty, 1.0),
            Next::Retry(Duration::from_millis(200))
        );
        assert!(matches!(p.after(5, &down, plenty, 1.0), Next::Halt { .. }));
        assert!(
            matches!(
                p.after(1, &down, Duration::from_millis(3100), 1.0),
                Next::Halt { .. }
            ),
            "no time for another try counts like a used-up record"
        );
        let long = Outcome::Unavailable {
            reason: "HTTP 503".into(),
            retry_after: Some(Duration::from_secs(120)),
        };
        assert_eq!(
            p.after(1, &long, Duration::from_secs(600), 0.0),
            Next::Halt {
                reason: "HTTP 503".into(),
                wait_hint: Some(Duration::from_secs(120))
            }
        );
        assert_eq!(
            p.after(1, &Outcome::Refused("HTTP 422".into()), plenty, 0.0),
            Next::Park("HTTP 422".into())
        );
    }

    #[test]
    fn no_call_is_started_that_cannot_end_before_the_reserve() {
        let p = RetryPolicy::default();
        let t = Duration::from_secs(10);
        assert_eq!(p.call_timeout(t, Duration::from_secs(30)), Some(t));
        assert_eq!(
            p.call_timeout(t, Duration::from_secs(6)),
            Some(Duration::from_secs(3)),
            "cut to the time left"
        );
        assert_eq!(p.call_timeout(t, Duration::from_millis(3500)), None);
        assert_eq!(p.call_timeout(t, Duration::from_secs(1)), None);
        assert!(p.fits(Duration::from_secs(1), Duration::from_secs(5)));
        assert!(!p.fits(Duration::from_secs(2), Duration::from_secs(5)));
    }
}
