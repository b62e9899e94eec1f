//! What one delivery attempt's answer means. The caller decides nothing from strings: the
//! class says what to do next.
//!
//! 2xx and 409 (already there) = delivered; 408, 429 and 5xx = transient (429 and 503 with
//! Retry-After say how long to wait); other 4xx = permanent; other codes (1xx, 3xx) =
//! permanent too, as following redirects with a body is not safe to guess.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The target has it (2xx, or 409 for an identity it already holds).
    Delivered { status: u16 },
    /// Retrying will not help: park the message with this reason.
    Permanent(String),
    /// May succeed later.
    Transient(String),
    /// The target said when to come back.
    RetryAfter { wait: Duration, reason: String },
}

impl Outcome {
    pub fn is_delivered(&self) -> bool {
        matches!(self, Outcome::Delivered { .. })
    }
    pub fn reason(&self) -> String {
        match self {
            Outcome::Delivered { status } => format!("HTTP {status}"),
            Outcome::Permanent(r) | Outcome::Transient(r) => r.clone(),
            Outcome::RetryAfter { reason, .. } => reason.clone(),
        }
    }
}

/// Classifies an HTTP answer. `retry_after` is the parsed Retry-After header, if any;
/// `detail` a short, body-free description (e.g. the status text).
pub fn classify(status: u16, retry_after: Option<Duration>, detail: &str) -> Outcome {
    let reason = if detail.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {detail}")
    };
    match status {
        200..=299 | 409 => Outcome::Delivered { status },
        408 => Outcome::Transient(reason),
        429 | 500..=599 => match retry_after {
            Some(wait) => Outcome::RetryAfter { wait, reason },
            None => Outcome::Transient(reason),
        },
        _ => Outcome::Permanent(reason),
    }
}

/// Parses a Retry-After value in delta-seconds ("120"). HTTP dates are not parsed here (no
/// clock in the domain); the adapter turns them into seconds first.
pub fn parse_retry_after_seconds(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_the_design_table() {
        for s in [200, 201, 204, 409] {
            assert!(classify(s, None, "").is_delivered(), "{s}");
        }
        for s in [400, 401, 403, 404, 410, 413, 422, 301] {
            assert!(
                matches!(classify(s, None, ""), Outcome::Permanent(_)),
                "{s}"
            );
        }
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(classify(s, None, ""), Outcome::Transient(_)),
                "{s}"
            );
        }
        assert_eq!(
            classify(429, Some(Duration::from_secs(2)), "Too Many Requests"),
            Outcome::RetryAfter {
                wait: Duration::from_secs(2),
                reason: "HTTP 429: Too Many Requests".into()
            }
        );
        // a Retry-After on a permanent answer does not make it retryable
        assert!(matches!(
            classify(400, Some(Duration::from_secs(1)), ""),
            Outcome::Permanent(_)
        ));
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(
            parse_retry_after_seconds(" 3 "),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT"),
            None
        );
    }
}
