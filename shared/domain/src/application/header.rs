//! The message's own fields: `applicationId` and `submittedAt`.

use time::macros::format_description;
use time::{Date, OffsetDateTime};

use super::fields::Checker;

/// `/applicationId`: 1–64 of `A-Z a-z 0-9 - _ .`, kept as sent.
pub(super) fn application_id(c: &mut Checker) -> Option<String> {
    c.text("/applicationId").and_then(|s| {
        let ok = (1..=64).contains(&s.len())
            && s.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch));
        c.ensure(ok, "/applicationId", "must be 1-64 of A-Z a-z 0-9 - _ .")
            .then_some(s)
    })
}

/// `/submittedAt`: RFC 3339 with an offset.
pub(super) fn submitted_at(c: &mut Checker) -> Option<OffsetDateTime> {
    c.text("/submittedAt").and_then(|s| {
        match OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339) {
            Ok(t) => Some(t),
            Err(_) => {
                c.fail(
                    "/submittedAt",
                    "must be an RFC 3339 timestamp with offset, e.g. 2026-11-28T10:15:00+01:00",
                );
                None
            }
        }
    })
}

/// The UTC date of `t`: the day ages are counted on.
pub(super) fn utc_date(t: OffsetDateTime) -> Date {
    t.to_offset(time::UtcOffset::UTC).date()
}

/// ISO 8601 UTC, second precision, `Z`.
pub(super) fn utc_iso(t: OffsetDateTime) -> String {
    let f = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(f)
        .unwrap_or_default()
}
