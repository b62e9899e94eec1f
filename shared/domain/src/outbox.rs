//! The outbox: records written with the business record in one transaction and published to
//! the event bus by the relay, through the leased-record lifecycle of [`crate::lease`]
//! (`Processed` records are kept for a retention period, then removed by TTL; `Failed` ones
//! raise an alert).

use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::lease::{shard_of, Claimed, LeasePolicy, Leased, Settle};

/// `detail-type` of a published application.
pub const APPLICATION_RECEIVED: &str = "MortgageApplicationReceived";
/// `detail-type` of the alert for a record that ended `Failed`.
pub const RECORD_FAILED: &str = "OutboxRecordFailed";
/// PutEvents limits: entries per call and bytes per call.
pub const MAX_ENTRIES_PER_CALL: usize = 10;
pub const MAX_BYTES_PER_CALL: usize = 256 * 1024;

/// The deterministic event id of record `id`: the same record always publishes under the same
/// id, so a consumer can drop the rare second copy (a relay that crashed after PutEvents).
/// Formatted as a UUID (8-4-4-4-12 hex) taken from SHA-256.
pub fn event_id(id: &str) -> String {
    let h = hex::encode(Sha256::digest(format!("steadfast-outbox/{id}").as_bytes()));
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A record as written by the writer, in the same transaction as the business record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    pub id: String,
    pub event_id: String,
    pub detail_type: String,
    /// The event detail, JSON text.
    pub detail: String,
    pub created_at_ms: u64,
    pub shard: u32,
}

impl NewRecord {
    pub fn new(id: &str, detail_type: &str, detail: String, now_ms: u64, shards: u32) -> Self {
        NewRecord {
            id: id.to_owned(),
            event_id: event_id(id),
            detail_type: detail_type.to_owned(),
            detail,
            created_at_ms: now_ms,
            shard: shard_of(id, shards),
        }
    }
}

/// What the relay publishes of a claimed record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OutboxRecord {
    pub event_id: String,
    pub detail_type: String,
    /// The event detail, JSON text.
    pub detail: String,
    pub created_at_ms: u64,
}

impl Leased for OutboxRecord {}

/// The relay's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RelayPolicy {
    /// Claims (publish attempts) before a record is `Failed`, their backoff, and the lease.
    pub lease: LeasePolicy,
    /// How long `Processed` records are kept before TTL removes them.
    pub retention: Duration,
}

impl Default for RelayPolicy {
    fn default() -> Self {
        RelayPolicy {
            lease: LeasePolicy::new(8, Duration::from_secs(30), "attempt"),
            retention: Duration::from_secs(7 * 86_400),
        }
    }
}

impl RelayPolicy {
    /// How to settle `c` after its publish attempt gave `result`; `unit` in [0, 1) draws jitter.
    pub fn settle(
        &self,
        c: &Claimed<OutboxRecord>,
        result: Result<(), String>,
        now_ms: u64,
        unit: f64,
    ) -> Settle {
        match result {
            Ok(()) => Settle::Done {
                at_ms: now_ms,
                expires_at_s: Some((now_ms / 1000).saturating_add(self.retention.as_secs())),
            },
            Err(error) => self.lease.after_failure(c.attempts, &error, now_ms, unit),
        }
    }
}

/// Splits entries of the given sizes into PutEvents calls: at most
/// [`MAX_ENTRIES_PER_CALL`] entries and [`MAX_BYTES_PER_CALL`] bytes each, order kept.
/// Returns index ranges.
pub fn batches(sizes: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, s) in sizes.iter().enumerate() {
        let full =
            i - start == MAX_ENTRIES_PER_CALL || (i > start && bytes + s > MAX_BYTES_PER_CALL);
        if full {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += s;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

/// The detail of a published application: its event id (for consumers to deduplicate on),
/// its id, when it was recorded (ISO 8601 UTC, milliseconds), and the transformed application.
pub fn application_detail(
    app: &crate::application::ApprovalApplication,
    now_ms: u64,
) -> serde_json::Value {
    serde_json::json!({
        "eventId": event_id(&app.application_id),
        "applicationId": app.application_id,
        "recordedAt": iso_ms(now_ms),
        "application": app,
    })
}

/// The alert's detail for a record that ended `Failed` (no application data in it).
pub fn failed_detail(c: &Claimed<OutboxRecord>, error: &str) -> serde_json::Value {
    serde_json::json!({
        "id": c.id,
        "eventId": c.record.event_id,
        "detailType": c.record.detail_type,
        "attempts": c.attempts,
        "error": error,
    })
}

/// `ms` since the Unix epoch as ISO 8601 UTC with milliseconds.
pub fn iso_ms(ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(f).unwrap_or_default()
}

/// Parses what [`iso_ms`] writes (any RFC 3339 time) back to ms since the epoch.
pub fn parse_iso_ms(text: &str) -> Option<u64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn claimed(attempts: u32) -> Claimed<OutboxRecord> {
        Claimed {
            id: "a".into(),
            attempts,
            token: "t".into(),
            record: OutboxRecord {
                event_id: event_id("a"),
                detail_type: APPLICATION_RECEIVED.into(),
                detail: "{}".into(),
                created_at_ms: 0,
            },
        }
    }

    fn policy() -> RelayPolicy {
        RelayPolicy {
            lease: LeasePolicy {
                retry: crate::backoff::Backoff {
                    base: Duration::from_secs(1),
                    cap: Duration::from_secs(8),
                    jitter: crate::backoff::Jitter::None,
                    queue_limit: Duration::ZERO,
                },
                ..LeasePolicy::new(3, Duration::from_secs(10), "attempt")
            },
            ..RelayPolicy::default()
        }
    }

    #[test]
    fn times_round_trip_in_milliseconds() {
        assert_eq!(iso_ms(1_764_324_900_123), "2025-11-28T10:15:00.123Z");
        assert_eq!(
            parse_iso_ms(&iso_ms(1_764_324_900_123)),
            Some(1_764_324_900_123)
        );
    }

    #[test]
    fn event_ids_are_deterministic_uuids() {
        assert_eq!(event_id("APP-1"), event_id("APP-1"));
        assert_ne!(event_id("APP-1"), event_id("APP-2"));
        let e = event_id("APP-1");
        let parts: Vec<usize> = e.split('-').map(str::len).collect();
        assert_eq!(parts, vec![8, 4, 4, 4, 12]);
    }

    #[test]
    fn a_publish_settles_processed_with_its_retention_and_a_failure_backs_off() {
        let p = policy();
        assert_eq!(
            p.settle(&claimed(1), Ok(()), 10_000, 0.0),
            Settle::Done {
                at_ms: 10_000,
                expires_at_s: Some(10 + 7 * 86_400)
            }
        );
        assert_eq!(
            p.settle(&claimed(1), Err("down".into()), 10_000, 0.0),
            Settle::Retry {
                due_at_ms: 11_000,
                error: "attempt 1 of 3: down".into()
            }
        );
        assert_eq!(
            p.settle(&claimed(3), Err("down".into()), 10_000, 0.0),
            Settle::Failed {
                error: "attempt 3 of 3: down".into()
            }
        );
    }

    #[test]
    fn batches_respect_count_and_size() {
        assert_eq!(batches(&[]), Vec::<std::ops::Range<usize>>::new());
        assert_eq!(batches(&[1; 25]), vec![0..10, 10..20, 20..25]);
        let big = MAX_BYTES_PER_CALL / 2;
        assert_eq!(batches(&[big, big, 1, big]), vec![0..2, 2..4]);
        // A single oversized entry still goes alone (PutEvents then refuses that entry).
        assert_eq!(batches(&[MAX_BYTES_PER_CALL + 1, 1]), vec![0..1, 1..2]);
    }

    proptest! {
        #[test]
        fn batches_cover_everything_in_order_within_limits(sizes in prop::collection::vec(1usize..100_000, 0..60)) {
            let b = batches(&sizes);
            let mut next = 0;
            for r in &b {
                prop_assert_eq!(r.start, next);
                prop_assert!(!r.is_empty() && r.len() <= MAX_ENTRIES_PER_CALL);
                let bytes: usize = sizes[r.clone()].iter().sum();
                prop_assert!(r.len() == 1 || bytes <= MAX_BYTES_PER_CALL);
                next = r.end;
            }
            prop_assert_eq!(next, sizes.len());
        }
    }
}
