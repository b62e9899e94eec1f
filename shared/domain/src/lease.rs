//! The leased-record lifecycle the outbox and the inbox share: a record is due, one worker
//! claims it (a lease with a token, one more attempt), and settles it by the token.
//!
//! ```text
//!                      claim (due, or lease expired)
//!   ToBeProcessed ─────────────────────────────────▶ InProgress ──done──▶ Processed
//!        ▲                                              │
//!        ├──── retry (failed, claims left) ─────────────┤
//!        ├──── release (not attempted; claim uncounted) ┤
//!        │                                              └── refused, or claims run out ──▶ Failed
//!        └──── done, but a newer version arrived meanwhile (versioned records only)
//! ```
//!
//! Only pending records (`ToBeProcessed`, `InProgress`) carry the index attributes `due_shard`
//! and `due_at`, so the due index is sparse: it holds exactly the work left. For a pending
//! record `due_at` is its next-attempt time; for a claimed one, the end of its lease, so an
//! expired lease makes the record due again without a separate sweep. Each claim counts as an
//! attempt, so a record that crashes every worker that claims it still ends `Failed`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backoff::{Backoff, Jitter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Status {
    ToBeProcessed,
    InProgress,
    Processed,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::ToBeProcessed => "ToBeProcessed",
            Status::InProgress => "InProgress",
            Status::Processed => "Processed",
            Status::Failed => "Failed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::ToBeProcessed,
            Status::InProgress,
            Status::Processed,
            Status::Failed,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// The due-index shard of record `id` among `shards` (spreads writes over index partitions).
pub fn shard_of(id: &str, shards: u32) -> u32 {
    let d = Sha256::digest(id.as_bytes());
    u32::from_be_bytes([d[0], d[1], d[2], d[3]]) % shards.max(1)
}

/// What a leased record carries beyond the lifecycle.
pub trait Leased: Send + Sync {
    /// The version a `Done` settle must still find stored (`None`: unversioned records).
    fn version(&self) -> Option<u64> {
        None
    }
    /// The correlation id of the message the record came from, for every log line about it
    /// (`None`: a record written before it was stored).
    fn correlation_id(&self) -> Option<&str> {
        None
    }
}

/// A record this worker holds a lease on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed<R> {
    pub id: String,
    /// Claims so far, this one included.
    pub attempts: u32,
    /// This claim's token; settling is conditional on it.
    pub token: String,
    pub record: R,
}

/// How a claimed record is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// Delivered: `Processed` (kept until `expires_at_s`, epoch seconds, when given). A
    /// versioned record whose version changed meanwhile goes back to `ToBeProcessed`, due now.
    Done {
        at_ms: u64,
        expires_at_s: Option<u64>,
    },
    /// Not delivered this time; due again at `due_at_ms`.
    Retry { due_at_ms: u64, error: String },
    /// Not attempted here (the run stopped): due again at `due_at_ms`, the claim not counted.
    Release { due_at_ms: u64 },
    /// Refused for good, or claimed too often: `Failed` (an alert follows).
    Failed { error: String },
}

/// What a settle did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Done,
    /// Delivered, but a newer version arrived meanwhile: the record is due again.
    NewerVersion,
    /// The lease was lost (another worker reclaimed the record): nothing was written.
    LeaseLost,
}

/// Claims, retries and leases.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeasePolicy {
    /// Claims before a record is `Failed`.
    pub max_claims: u32,
    /// Wait before a record is due again after a failed claim: claim n waits `retry.delay(n-1)`.
    pub retry: Backoff,
    /// How long a claim holds; a record is reclaimable once its lease has passed.
    pub lease: Duration,
    /// What one claim is called in errors (`attempt`, `claim`).
    pub noun: &'static str,
}

impl LeasePolicy {
    /// `max_claims` claims with the default retry backoff (2 s doubling to 300 s, ±20 %).
    pub fn new(max_claims: u32, lease: Duration, noun: &'static str) -> Self {
        LeasePolicy {
            max_claims,
            retry: Backoff {
                base: Duration::from_secs(2),
                cap: Duration::from_secs(300),
                jitter: Jitter::Proportion(0.2),
                queue_limit: Duration::ZERO,
            },
            lease,
            noun,
        }
    }

    /// The end of a lease taken at `now_ms`.
    pub fn lease_until(&self, now_ms: u64) -> u64 {
        now_ms.saturating_add(self.lease.as_millis() as u64)
    }

    /// `Some(reason)` when a record claimed `attempts` times (this claim included) was claimed
    /// too often to try again: earlier claims never settled (workers crashed or timed out).
    pub fn give_up(&self, attempts: u32) -> Option<String> {
        (attempts > self.max_claims).then(|| {
            format!(
                "claimed {} times without being settled; max {}",
                attempts - 1,
                self.max_claims
            )
        })
    }

    /// After a claim that did not deliver: retry later, or `Failed` once claims run out.
    /// `unit` in [0, 1) draws the jitter.
    pub fn after_failure(&self, attempts: u32, error: &str, now_ms: u64, unit: f64) -> Settle {
        let error = format!("{} {} of {}: {error}", self.noun, attempts, self.max_claims);
        if attempts >= self.max_claims {
            return Settle::Failed { error };
        }
        let wait = self.retry.delay(attempts.saturating_sub(1), unit);
        Settle::Retry {
            due_at_ms: now_ms.saturating_add(wait.as_millis() as u64),
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy() -> LeasePolicy {
        LeasePolicy {
            retry: Backoff {
                base: Duration::from_secs(1),
                cap: Duration::from_secs(8),
                jitter: Jitter::None,
                queue_limit: Duration::ZERO,
            },
            ..LeasePolicy::new(3, Duration::from_secs(10), "attempt")
        }
    }

    #[test]
    fn failures_back_off_then_fail() {
        let p = policy();
        assert_eq!(
            p.after_failure(1, "down", 10_000, 0.0),
            Settle::Retry {
                due_at_ms: 11_000,
                error: "attempt 1 of 3: down".into()
            }
        );
        assert!(matches!(
            p.after_failure(2, "x", 10_000, 0.0),
            Settle::Retry {
                due_at_ms: 12_000,
                ..
            }
        ));
        assert_eq!(
            p.after_failure(3, "down", 10_000, 0.0),
            Settle::Failed {
                error: "attempt 3 of 3: down".into()
            }
        );
    }

    #[test]
    fn a_record_claimed_past_its_claims_is_given_up() {
        let p = policy();
        assert_eq!(p.give_up(3), None);
        assert_eq!(
            p.give_up(4).as_deref(),
            Some("claimed 3 times without being settled; max 3")
        );
        assert_eq!(p.lease_until(1_000), 11_000);
    }

    #[test]
    fn statuses_read_back_what_they_write() {
        for s in [
            Status::ToBeProcessed,
            Status::InProgress,
            Status::Processed,
            Status::Failed,
        ] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("Done"), None);
    }

    #[test]
    fn shards_stay_in_range_and_spread() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..200 {
            let s = shard_of(&format!("APP-{i}"), 8);
            assert!(s < 8);
            seen.insert(s);
        }
        assert_eq!(seen.len(), 8);
        assert_eq!(shard_of("x", 0), 0);
    }

    proptest! {
        #[test]
        fn retries_are_due_later_and_never_past_the_cap(attempts in 1u32..3, unit in 0.0f64..1.0, now in 0u64..1u64<<40) {
            let p = LeasePolicy { retry: Backoff { jitter: Jitter::Proportion(0.5), ..policy().retry }, ..policy() };
            match p.after_failure(attempts, "e", now, unit) {
                Settle::Retry { due_at_ms, .. } => {
                    prop_assert!(due_at_ms > now);
                    prop_assert!(due_at_ms - now <= 8_000);
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }
}
