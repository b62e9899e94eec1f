//! What one delivery attempt's answer means. The caller decides nothing from strings: the
//! class says what to do next.
//!
//! Three classes, by who the answer is about:
//! - **delivered**: the target has it (default 2xx, and 409 for an identity it already holds);
//! - **message-level**: the target will never take *this* message (default: every status that
//!   is neither delivered nor target-level, e.g. 400, 413, 422). The message is parked;
//! - **target-level**: the target is broken for everyone (default 3xx, 401, 403, 404, 405,
//!   407, 408, 410, 429, 5xx, and every timeout or connection error). The message stays in
//!   the queue; enough of these halt the flow. An expired token or a moved URL must halt, not
//!   park every order.
//!
//! Both lists are configurable ([`StatusClasses::parse`]).

use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The target has it.
    Delivered { status: u16 },
    /// Message-level: retrying will not help; park the message with this reason.
    Refused(String),
    /// Target-level: the target cannot take anything now. `retry_after`: the wait it
    /// announced (Retry-After), if any.
    Unavailable {
        reason: String,
        retry_after: Option<Duration>,
    },
}

impl Outcome {
    pub fn is_delivered(&self) -> bool {
        matches!(self, Outcome::Delivered { .. })
    }

    /// A target-level failure without an announced wait (timeouts, connection errors).
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Outcome::Unavailable {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub fn reason(&self) -> String {
        match self {
            Outcome::Delivered { status } => format!("HTTP {status}"),
            Outcome::Refused(r) | Outcome::Unavailable { reason: r, .. } => r.clone(),
        }
    }

    /// The wait the target announced, for target-level failures.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Outcome::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A status or a whole hundred (`409`, `5xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusSet {
    One(u16),
    Hundred(u16),
}

impl StatusSet {
    fn contains(self, status: u16) -> bool {
        match self {
            StatusSet::One(s) => s == status,
            StatusSet::Hundred(h) => status / 100 == h,
        }
    }

    fn parse(item: &str) -> Result<Self, String> {
        let item = item.trim();
        let bad = || format!("`{item}` is not a status (like 409) or a class (like 5xx)");
        if let Some(h) = item.strip_suffix("xx").or_else(|| item.strip_suffix("XX")) {
            return match h.parse::<u16>() {
                Ok(h @ 1..=5) => Ok(StatusSet::Hundred(h)),
                _ => Err(bad()),
            };
        }
        match item.parse::<u16>() {
            Ok(s @ 100..=599) => Ok(StatusSet::One(s)),
            _ => Err(bad()),
        }
    }
}

/// Which HTTP statuses are delivered and which are target-level; all others are message-level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusClasses {
    delivered: Vec<StatusSet>,
    target_level: Vec<StatusSet>,
}

/// Default delivered statuses.
pub const DELIVERED_STATUSES: &str = "2xx,409";
/// Default target-level statuses.
pub const TARGET_LEVEL_STATUSES: &str = "3xx,401,403,404,405,407,408,410,429,5xx";

impl Default for StatusClasses {
    fn default() -> Self {
        StatusClasses::parse(DELIVERED_STATUSES, TARGET_LEVEL_STATUSES)
            .expect("the default status classes parse")
    }
}

impl StatusClasses {
    /// Parses two comma-separated lists such as `"2xx,409"` and `"3xx,401,5xx"`. A status may
    /// not be in both; a single status inside a class of the other list is allowed and wins
    /// (`"2xx"` delivered with `"204"` target-level makes 204 target-level).
    pub fn parse(delivered: &str, target_level: &str) -> Result<Self, String> {
        let list = |s: &str| -> Result<Vec<StatusSet>, String> {
            s.split(',')
                .filter(|i| !i.trim().is_empty())
                .map(StatusSet::parse)
                .collect()
        };
        let delivered = list(delivered)?;
        let target_level = list(target_level)?;
        if delivered.is_empty() {
            return Err("no delivered status given (the default is 2xx,409)".into());
        }
        for d in &delivered {
            if target_level.contains(d) {
                return Err(format!("{d:?} is both delivered and target-level"));
            }
        }
        Ok(StatusClasses {
            delivered,
            target_level,
        })
    }

    /// The class of `status`: a single status listed beats a class listed in the other list.
    fn is(&self, list: &[StatusSet], other: &[StatusSet], status: u16) -> bool {
        let exact = |l: &[StatusSet]| l.contains(&StatusSet::One(status));
        if exact(list) {
            return true;
        }
        if exact(other) {
            return false;
        }
        list.iter().any(|s| s.contains(status))
    }

    /// Classifies an HTTP answer. `retry_after` is the parsed Retry-After header, if any (it
    /// only matters for target-level answers); `detail` a short, body-free description.
    pub fn classify(&self, status: u16, retry_after: Option<Duration>, detail: &str) -> Outcome {
        let reason = if detail.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {detail}")
        };
        if self.is(&self.delivered, &self.target_level, status) {
            Outcome::Delivered { status }
        } else if self.is(&self.target_level, &self.delivered, status) {
            Outcome::Unavailable {
                reason,
                retry_after,
            }
        } else {
            Outcome::Refused(reason)
        }
    }
}

/// Parses a Retry-After value: delta-seconds (`"120"`) or an HTTP-date
/// (`"Sun, 06 Nov 1994 08:49:37 GMT"`), the latter relative to `now`. A date in the past means
/// no wait.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(o: &Outcome) -> &'static str {
        match o {
            Outcome::Delivered { .. } => "delivered",
            Outcome::Refused(_) => "message",
            Outcome::Unavailable { .. } => "target",
        }
    }

    #[test]
    fn default_classes_follow_the_design_table() {
        let c = StatusClasses::default();
        for s in [200, 201, 204, 409] {
            assert_eq!(kind(&c.classify(s, None, "")), "delivered", "{s}");
        }
        for s in [400, 402, 406, 411, 413, 415, 422, 451] {
            assert_eq!(kind(&c.classify(s, None, "")), "message", "{s}");
        }
        for s in [
            301, 302, 307, 308, 401, 403, 404, 405, 407, 408, 410, 429, 500, 502, 503, 504,
        ] {
            assert_eq!(kind(&c.classify(s, None, "")), "target", "{s}");
        }
    }

    #[test]
    fn a_retry_after_travels_with_target_level_answers_only() {
        let c = StatusClasses::default();
        assert_eq!(
            c.classify(503, Some(Duration::from_secs(120)), "Service Unavailable"),
            Outcome::Unavailable {
                reason: "HTTP 503: Service Unavailable".into(),
                retry_after: Some(Duration::from_secs(120)),
            }
        );
        assert_eq!(
            c.classify(400, Some(Duration::from_secs(1)), ""),
            Outcome::Refused("HTTP 400".into())
        );
    }

    #[test]
    fn classes_are_configurable_and_a_single_status_beats_a_class() {
        let c = StatusClasses::parse("2xx", "5xx,409,404").unwrap();
        assert_eq!(kind(&c.classify(409, None, "")), "target");
        let c = StatusClasses::parse("2xx,409", "4xx,5xx").unwrap();
        assert_eq!(kind(&c.classify(409, None, "")), "delivered");
        assert_eq!(kind(&c.classify(422, None, "")), "target");
        let c = StatusClasses::parse("2xx", "5xx,204").unwrap();
        assert_eq!(kind(&c.classify(204, None, "")), "target");
        assert_eq!(kind(&c.classify(200, None, "")), "delivered");
    }

    #[test]
    fn bad_class_lists_say_what_is_wrong() {
        assert!(StatusClasses::parse("2xx", "5xx,6xx")
            .unwrap_err()
            .contains("6xx"));
        assert!(StatusClasses::parse("2xx", "abc")
            .unwrap_err()
            .contains("abc"));
        assert!(StatusClasses::parse("409", "409")
            .unwrap_err()
            .contains("both"));
        assert!(StatusClasses::parse("", "5xx").is_err());
    }

    #[test]
    fn retry_after_in_seconds_and_as_an_http_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means no wait"
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
