//! The portal's fault modes, and what each answers: a delivery is either answered at once (an
//! outage, throttling, an expired token) or processed (now, after a delay, or once a hold
//! ends); the health URL answers the probe.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::Portal;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Mode {
    Up,
    Down,
    Flaky {
        percent: u8,
    },
    Slow {
        delay_ms: u64,
    },
    TooMany {
        retry_after_s: u64,
        count: u32,
    },
    Ambiguous,
    /// Takes requests and holds them, unanswered, until the mode changes; then processes them.
    Hold,
    /// A maintenance window: every delivery gets 503 with `Retry-After: retry_after_s`, and the
    /// health URL answers 503 too.
    Maintenance {
        retry_after_s: u64,
    },
    /// An expired token: every delivery gets 401 while the health URL answers 200.
    Auth,
    /// A connection reset: every delivery's connection is closed before any answer, nothing
    /// processed; the health URL answers 200 (a broken path to the API, not the API).
    Reset,
    /// One order the portal cannot process (a payload-specific 500); the others go through.
    FailOrder {
        order_id: String,
    },
}

enum Gate {
    Answer(StatusCode, Option<u64>),
    Reset,
    Process {
        then: StatusCode,
        delay: Option<Duration>,
    },
}

impl Gate {
    /// Process the delivery now and answer `then` if it goes through.
    fn process(then: StatusCode) -> Gate {
        Gate::Process { then, delay: None }
    }
}

/// What the current mode makes of a delivery (counting down a too-many run).
fn decide(p: &Portal) -> Gate {
    let mut g = p.lock();
    match g.mode.clone() {
        Mode::Up | Mode::Hold | Mode::FailOrder { .. } => Gate::process(StatusCode::CREATED),
        Mode::Down => Gate::Answer(StatusCode::SERVICE_UNAVAILABLE, None),
        Mode::Flaky { percent } => {
            if rand::random::<u8>() % 100 < percent {
                Gate::Answer(StatusCode::SERVICE_UNAVAILABLE, None)
            } else {
                Gate::process(StatusCode::CREATED)
            }
        }
        Mode::Slow { delay_ms } => Gate::Process {
            then: StatusCode::CREATED,
            delay: Some(Duration::from_millis(delay_ms)),
        },
        Mode::TooMany {
            retry_after_s,
            count,
        } => {
            g.mode = if count <= 1 {
                Mode::Up
            } else {
                Mode::TooMany {
                    retry_after_s,
                    count: count - 1,
                }
            };
            Gate::Answer(StatusCode::TOO_MANY_REQUESTS, Some(retry_after_s))
        }
        Mode::Ambiguous => Gate::process(StatusCode::INTERNAL_SERVER_ERROR),
        Mode::Maintenance { retry_after_s } => {
            Gate::Answer(StatusCode::SERVICE_UNAVAILABLE, Some(retry_after_s))
        }
        Mode::Auth => Gate::Answer(StatusCode::UNAUTHORIZED, None),
        Mode::Reset => Gate::Reset,
    }
}

/// While the portal is in [`Mode::Hold`], waits.
async fn held(p: &Portal) {
    while p.mode() == Mode::Hold {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `status`, with `Retry-After: seconds` when given.
pub(super) fn answer(status: StatusCode, retry_after: Option<u64>) -> Response {
    let mut r = status.into_response();
    if let Some(s) = retry_after {
        r.headers_mut()
            .insert("retry-after", s.to_string().parse().expect("header"));
    }
    r
}

/// Lets a delivery to `path` through the current mode: `Ok` with the status to answer if it
/// goes through (after any hold and delay), or the answer the mode gives instead (recorded).
pub(super) async fn admit(
    p: &Portal,
    path: &str,
    key: Option<&str>,
    id: Option<&str>,
) -> Result<StatusCode, Response> {
    match decide(p) {
        Gate::Answer(status, retry_after) => {
            p.record(path, key, id, status.as_u16(), false);
            Err(answer(status, retry_after))
        }
        Gate::Reset => {
            p.record(path, key, id, 0, false);
            // Ends this connection's task without an answer: the caller's connection is
            // closed mid-request. (resume_unwind: no panic message, the server goes on.)
            std::panic::resume_unwind(Box::new("injected: connection reset"))
        }
        Gate::Process { then, delay } => {
            held(p).await;
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            Ok(then)
        }
    }
}

/// GET /health: the probe's answer in the current mode.
pub(super) async fn health(State(p): State<Portal>) -> Response {
    let mode = p.mode();
    let status = match mode {
        Mode::Down | Mode::Maintenance { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Mode::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::OK,
    };
    p.record("/health", None, None, status.as_u16(), false);
    let retry_after = match mode {
        Mode::Maintenance { retry_after_s } => Some(retry_after_s),
        _ => None,
    };
    answer(status, retry_after)
}
