//! Entry-level EventBridge faults: what `PutEvents` calls get while they are set.
//!
//! - `down`: the call fails with HTTP 500 `InternalException` (nothing reaches the bus);
//! - `throttle`: HTTP 400 `ThrottlingException`;
//! - `fail_ratio`: that share of the entries, drawn at random, fail with `InternalFailure`;
//!   the others are forwarded, and the answer merges both, in order (a partial failure);
//! - `poison`: entries whose detail contains this text always fail;
//! - `delay`: every PutEvents answer is held back this long (slow bus).
//!
//! Counters tell how many entries were refused by injection, for reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{error_answer, forward, AwsError, Inner};

/// The faults in force. Default: none (a plain pass-through).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BusFaults {
    pub down: bool,
    pub throttle: bool,
    /// Share (0.0–1.0) of PutEvents entries refused.
    pub fail_ratio: f64,
    /// Entries whose detail contains this text are refused.
    pub poison: Option<String>,
    pub delay: Duration,
}

#[derive(Debug, Default)]
pub struct BusCounters {
    pub put_events_calls: AtomicU64,
    pub entries_seen: AtomicU64,
    /// Entries refused by injection (whole calls refused count all their entries).
    pub entries_refused: AtomicU64,
    pub calls_refused: AtomicU64,
    pub entries_forwarded: AtomicU64,
}

fn json_answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

/// A `PutEvents` call under the bus faults in force.
pub(super) async fn put_events(
    inner: &Inner,
    method: Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let faults = super::lock(&inner.bus).clone();
    let c = &inner.counters;
    c.put_events_calls.fetch_add(1, Ordering::Relaxed);
    if !faults.delay.is_zero() {
        tokio::time::sleep(faults.delay).await;
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let entries = request["Entries"].as_array().cloned().unwrap_or_default();
    c.entries_seen
        .fetch_add(entries.len() as u64, Ordering::Relaxed);
    if faults.down || faults.throttle {
        c.calls_refused.fetch_add(1, Ordering::Relaxed);
        c.entries_refused
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        let e = if faults.down {
            AwsError::new(500, "InternalException")
        } else {
            AwsError::throttling()
        };
        return error_answer("events", &e);
    }
    // Decide per entry, forward the ones that pass, merge the answers in order.
    let refuse: Vec<bool> = entries
        .iter()
        .map(|e| {
            let poisoned = faults
                .poison
                .as_deref()
                .is_some_and(|p| e["Detail"].as_str().is_some_and(|d| d.contains(p)));
            poisoned || (faults.fail_ratio > 0.0 && rand::random::<f64>() < faults.fail_ratio)
        })
        .collect();
    if !refuse.iter().any(|r| *r) {
        c.entries_forwarded
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        return forward(inner, method, path_and_query, headers, body).await;
    }
    let passing: Vec<Value> = entries
        .iter()
        .zip(&refuse)
        .filter(|(_, r)| !**r)
        .map(|(e, _)| e.clone())
        .collect();
    let mut answered: Vec<Value> = Vec::new();
    if !passing.is_empty() {
        let mut forwarded = request.clone();
        forwarded["Entries"] = Value::Array(passing.clone());
        let resp = forward(
            inner,
            method,
            path_and_query,
            headers,
            Bytes::from(forwarded.to_string()),
        )
        .await;
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        if !status.is_success() {
            // The emulator refused the call itself: pass that answer on unchanged.
            return (
                status,
                [("content-type", "application/x-amz-json-1.1")],
                bytes,
            )
                .into_response();
        }
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        answered = v["Entries"].as_array().cloned().unwrap_or_default();
        c.entries_forwarded
            .fetch_add(passing.len() as u64, Ordering::Relaxed);
    }
    let mut upstream = answered.into_iter();
    let mut failed = 0u64;
    let merged: Vec<Value> = refuse
        .iter()
        .map(|r| {
            if *r {
                failed += 1;
                json!({"ErrorCode": "InternalFailure", "ErrorMessage": "injected: entry refused"})
            } else {
                let e = upstream.next().unwrap_or(
                    json!({"ErrorCode": "InternalFailure", "ErrorMessage": "no answer"}),
                );
                if e.get("ErrorCode").is_some() {
                    failed += 1;
                }
                e
            }
        })
        .collect();
    c.entries_refused.fetch_add(
        refuse.iter().filter(|r| **r).count() as u64,
        Ordering::Relaxed,
    );
    json_answer(
        StatusCode::OK,
        json!({"FailedEntryCount": failed, "Entries": merged}),
    )
}
