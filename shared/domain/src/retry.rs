//! The in-process retry policy of one message: up to `max_attempts` tries with a short,
//! jittered, doubling pause, never past the time the Lambda has left.
//!
//! Defaults: 5 attempts, pause 200 ms doubling to at most 5 s, half of each pause jittered,
//! and 2 s kept in reserve before the deadline for reporting.

use std::time::Duration;

use crate::outcome::Outcome;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Tries per message before the flow is halted. Default 5.
    pub max_attempts: u32,
    /// First pause. Default 200 ms.
    pub base: Duration,
    /// Longest pause. Default 5 s.
    pub cap: Duration,
    /// Time kept free before the Lambda's deadline. Default 2 s.
    pub reserve: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
            reserve: Duration::from_secs(2),
        }
    }
}

/// What to do after a failed try.
#[derive(Debug, Clone, PartialEq)]
pub enum RetryDecision {
    /// Park the message: the target will never take it.
    Park(String),
    /// Wait this long, then try again.
    Wait(Duration),
    /// Stop trying this message here: it goes back to the queue. `exhausted` tells whether it
    /// used all attempts (which trips the gate) or merely ran out of Lambda time.
    GiveUp { reason: String, exhausted: bool },
}

impl RetryPolicy {
    /// Decides after try number `attempt` (1-based) failed with `outcome`, with `remaining`
    /// time left in this invocation and `unit` a random number in [0, 1) for the jitter.
    pub fn decide(
        &self,
        attempt: u32,
        outcome: &Outcome,
        remaining: Duration,
        unit: f64,
    ) -> RetryDecision {
        let reason = outcome.reason();
        let wait = match outcome {
            Outcome::Delivered { .. } => return RetryDecision::Wait(Duration::ZERO),
            Outcome::Permanent(r) => return RetryDecision::Park(r.clone()),
            Outcome::RetryAfter { wait, .. } => *wait,
            Outcome::Transient(_) => {
                let exp = self
                    .base
                    .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
                let full = exp.min(self.cap);
                // equal jitter: half fixed, half random
                full / 2 + (full / 2).mul_f64(unit.clamp(0.0, 1.0))
            }
        };
        if attempt >= self.max_attempts {
            return RetryDecision::GiveUp {
                reason,
                exhausted: true,
            };
        }
        if wait + self.reserve > remaining {
            return RetryDecision::GiveUp {
                reason,
                exhausted: false,
            };
        }
        RetryDecision::Wait(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLENTY: Duration = Duration::from_secs(600);

    #[test]
    fn permanent_answers_park_at_once() {
        let d =
            RetryPolicy::default().decide(1, &Outcome::Permanent("HTTP 400".into()), PLENTY, 0.5);
        assert_eq!(d, RetryDecision::Park("HTTP 400".into()));
    }

    #[test]
    fn transient_answers_wait_longer_each_time_then_give_up() {
        let p = RetryPolicy::default();
        let t = Outcome::Transient("HTTP 503".into());
        let waits: Vec<Duration> = (1..5)
            .map(|a| match p.decide(a, &t, PLENTY, 1.0) {
                RetryDecision::Wait(w) => w,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            waits,
            vec![200, 400, 800, 1600]
                .into_iter()
                .map(Duration::from_millis)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            p.decide(5, &t, PLENTY, 0.0),
            RetryDecision::GiveUp {
                reason: "HTTP 503".into(),
                exhausted: true
            }
        );
    }

    #[test]
    fn retry_after_is_honoured_unless_the_lambda_runs_out_of_time() {
        let p = RetryPolicy::default();
        let o = Outcome::RetryAfter {
            wait: Duration::from_secs(3),
            reason: "HTTP 429".into(),
        };
        assert_eq!(
            p.decide(1, &o, PLENTY, 0.0),
            RetryDecision::Wait(Duration::from_secs(3))
        );
        assert!(matches!(
            p.decide(1, &o, Duration::from_secs(4), 0.0),
            RetryDecision::GiveUp {
                exhausted: false,
                ..
            }
        ));
    }
}
