//! The outbox: records written with the business record in one transaction and published to
//! the event bus by the relay, through the leased-record lifecycle of [`crate::lease`]
//! (`Processed` records are kept for a retention period, then removed by TTL; `Failed` ones
//! raise an alert).

use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::lease::{shard_of, Claimed, LeasePolicy, Leased, Settle};
use crate::ports::PortError;

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
    /// The correlation id of the message the record came from.
    pub correlation_id: Option<String>,
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
            correlation_id: None,
        }
    }

    /// The record of the message with `correlation_id`.
    pub fn correlated(self, correlation_id: &str) -> Self {
        NewRecord {
            correlation_id: Some(correlation_id.to_owned()),
            ..self
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
    /// When an operator made the `Failed` record due again (`steadfast requeue`): its retry
    /// window starts over from then.
    #[serde(default)]
    pub requeued_at_ms: Option<u64>,
    /// The correlation id of the message the record came from (absent on records written
    /// before it was stored).
    #[serde(default)]
    pub correlation_id: Option<String>,
}

impl Leased for OutboxRecord {
    fn correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }
}

/// The relay's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RelayPolicy {
    /// The backoff between publish attempts (2 s doubling to at most 5 min) and the lease.
    pub lease: LeasePolicy,
    /// How long a record is retried before it is `Failed` (counted from when it was written,
    /// or requeued).
    /// Default 24 h: a bus in trouble for hours loses nothing and needs nobody.
    pub window: Duration,
    /// How long `Processed` records are kept before TTL removes them.
    pub retention: Duration,
}

impl Default for RelayPolicy {
    fn default() -> Self {
        RelayPolicy {
            // Claims are bounded by the window, not counted.
            lease: LeasePolicy::new(u32::MAX, Duration::from_secs(30), "attempt"),
            window: Duration::from_secs(86_400),
            retention: Duration::from_secs(7 * 86_400),
        }
    }
}

impl RelayPolicy {
    /// `Some(reason)` when `c` is claimed after its retry window has passed (its earlier
    /// attempts failed, or relays crashed or timed out on it): it is not tried again.
    pub fn give_up(&self, c: &Claimed<OutboxRecord>, now_ms: u64) -> Option<String> {
        self.expired(c, now_ms).then(|| {
            format!(
                "not published within {} s; {} earlier attempts",
                self.window.as_secs(),
                c.attempts.saturating_sub(1)
            )
        })
    }

    fn expired(&self, c: &Claimed<OutboxRecord>, now_ms: u64) -> bool {
        let from = c
            .record
            .created_at_ms
            .max(c.record.requeued_at_ms.unwrap_or(0));
        now_ms >= from.saturating_add(self.window.as_millis() as u64)
    }

    /// How to settle `c` after its publish attempt gave `result`: `Processed`; `Failed` when
    /// the bus refuses the entry as malformed or the retry window has passed; otherwise due
    /// again after the backoff. `unit` in [0, 1) draws jitter.
    pub fn settle(
        &self,
        c: &Claimed<OutboxRecord>,
        result: Result<(), PortError>,
        now_ms: u64,
        unit: f64,
    ) -> Settle {
        let error = match result {
            Ok(()) => {
                return Settle::Done {
                    at_ms: now_ms,
                    expires_at_s: Some((now_ms / 1000).saturating_add(self.retention.as_secs())),
                }
            }
            Err(e) => e,
        };
        let tried = format!("attempt {}: {error}", c.attempts);
        if error.is_invalid() {
            return Settle::Failed {
                error: format!("refused by the bus for good; {tried}"),
            };
        }
        if self.expired(c, now_ms) {
            return Settle::Failed {
                error: format!("not published within {} s; {tried}", self.window.as_secs()),
            };
        }
        let wait = self.lease.retry.delay(c.attempts.saturating_sub(1), unit);
        Settle::Retry {
            due_at_ms: now_ms.saturating_add(wait.as_millis() as u64),
            error: tried,
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
/// its id, when it was recorded (ISO 8601 UTC, milliseconds), the correlation id of the
/// lender's message, and the transformed application.
pub fn application_detail(
    app: &crate::application::ApprovalApplication,
    now_ms: u64,
    correlation_id: &str,
) -> serde_json::Value {
    serde_json::json!({
        "eventId": event_id(&app.application_id),
        "applicationId": app.application_id,
        "recordedAt": iso_ms(now_ms),
        "correlationId": correlation_id,
        "application": app,
    })
}

/// The alert's detail for a record that ended `Failed` (no application data in it), with the
/// record's correlation id when it has one.
pub fn failed_detail(c: &Claimed<OutboxRecord>, error: &str) -> serde_json::Value {
    let mut detail = serde_json::json!({
        "id": c.id,
        "eventId": c.record.event_id,
        "detailType": c.record.detail_type,
        "attempts": c.attempts,
        "error": error,
    });
    if let Some(id) = &c.record.correlation_id {
        detail["correlationId"] = id.as_str().into();
    }
    detail
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
                requeued_at_ms: None,
                correlation_id: Some("c-a".into()),
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
                ..LeasePolicy::new(u32::MAX, Duration::from_secs(10), "attempt")
            },
            window: Duration::from_secs(60),
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
    fn a_publish_settles_processed_and_a_failure_backs_off_within_the_window() {
        let p = policy();
        let down = || Err(PortError::new("PutEvents", "InternalFailure"));
        assert_eq!(
            p.settle(&claimed(1), Ok(()), 10_000, 0.0),
            Settle::Done {
                at_ms: 10_000,
                expires_at_s: Some(10 + 7 * 86_400)
            }
        );
        assert_eq!(
            p.settle(&claimed(1), down(), 10_000, 0.0),
            Settle::Retry {
                due_at_ms: 11_000,
                error: "attempt 1: PutEvents: InternalFailure".into()
            }
        );
        // many attempts, still inside the window: the wait is capped, the record retried
        assert!(matches!(
            p.settle(&claimed(40), down(), 30_000, 0.0),
            Settle::Retry {
                due_at_ms: 38_000,
                ..
            }
        ));
        // past the window (written at 0, window 60 s): Failed
        assert!(matches!(
            p.settle(&claimed(41), down(), 60_000, 0.0),
            Settle::Failed { error } if error.starts_with("not published within 60 s")
        ));
        assert_eq!(p.give_up(&claimed(9), 59_999), None);
        assert!(p.give_up(&claimed(9), 60_000).is_some());
        // requeued by an operator at 100 s: a new window from then
        let mut requeued = claimed(1);
        requeued.record.requeued_at_ms = Some(100_000);
        assert_eq!(p.give_up(&requeued, 159_999), None);
        assert!(p.give_up(&requeued, 160_000).is_some());
    }

    #[test]
    fn an_entry_the_bus_refuses_as_malformed_fails_at_once() {
        let refused = Err(PortError::invalid(
            "PutEvents entry refused",
            "MalformedDetail",
        ));
        assert!(matches!(
            policy().settle(&claimed(1), refused, 1_000, 0.0),
            Settle::Failed { error } if error.starts_with("refused by the bus for good")
        ));
    }

    #[test]
    fn the_failed_alert_carries_the_records_correlation_id_when_it_has_one() {
        let c = claimed(3);
        assert_eq!(failed_detail(&c, "x")["correlationId"], "c-a");
        assert_eq!(c.record.correlation_id(), Some("c-a"));
        let mut old = claimed(3);
        old.record.correlation_id = None;
        assert!(failed_detail(&old, "x").get("correlationId").is_none());
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
