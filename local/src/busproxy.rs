//! A fault-injecting HTTP proxy in front of the emulator's EventBridge endpoint.
//!
//! The functions reach EventBridge through it because the local stack sets
//! `AWS_ENDPOINT_URL_EVENTBRIDGE` (the SDK's per-service endpoint variable) to the proxy; the
//! production code paths are untouched. Every request is passed through as it is, except
//! `PutEvents` calls while a fault is set:
//! - `down`: the call fails with HTTP 500 `InternalException` (nothing reaches the bus);
//! - `throttle`: HTTP 400 `ThrottlingException`;
//! - `fail_ratio`: that share of the entries, drawn at random, fail with `InternalFailure`;
//!   the others are forwarded, and the answer merges both, in order (a partial failure);
//! - `poison`: entries whose detail contains this text always fail;
//! - `delay`: every PutEvents answer is held back this long (slow bus).
//!
//! Counters tell how many entries were refused by injection, for reports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

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

#[derive(Clone)]
struct Inner {
    upstream: String,
    http: reqwest::Client,
    faults: Arc<Mutex<BusFaults>>,
    counters: Arc<BusCounters>,
}

pub struct BusProxy {
    pub url: String,
    faults: Arc<Mutex<BusFaults>>,
    pub counters: Arc<BusCounters>,
    shutdown: Arc<tokio::sync::Notify>,
}

impl BusProxy {
    /// Starts the proxy on a free loopback port, forwarding to `upstream`.
    pub async fn start(upstream: &str) -> Result<BusProxy> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let inner = Inner {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(4)
                .build()?,
            faults: Arc::new(Mutex::new(BusFaults::default())),
            counters: Arc::new(BusCounters::default()),
        };
        let shutdown = Arc::new(tokio::sync::Notify::new());
        let proxy = BusProxy {
            url,
            faults: inner.faults.clone(),
            counters: inner.counters.clone(),
            shutdown: shutdown.clone(),
        };
        let app = Router::new().fallback(handle).with_state(inner);
        crate::serve_until(listener, app, shutdown);
        Ok(proxy)
    }

    pub fn set(&self, faults: BusFaults) {
        *self.faults.lock().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    pub fn faults(&self) -> BusFaults {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn refused(&self) -> u64 {
        self.counters.entries_refused.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.shutdown.notify_waiters();
    }
}

fn json_answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/x-amz-json-1.1")],
        body.to_string(),
    )
        .into_response()
}

async fn forward(
    inner: &Inner,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let url = format!(
        "{}{}",
        inner.upstream,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut req = inner.http.request(method, url).body(body);
    for (k, v) in headers {
        if k == "host" || k == "content-length" {
            continue;
        }
        req = req.header(k, v);
    }
    match req.send().await {
        Ok(r) => {
            let status = r.status();
            let ct = r.headers().get("content-type").cloned();
            let bytes = r.bytes().await.unwrap_or_default();
            let mut resp = (status, bytes).into_response();
            if let Some(ct) = ct {
                resp.headers_mut().insert("content-type", ct);
            }
            resp
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("bus proxy: upstream unreachable: {e}"),
        )
            .into_response(),
    }
}

async fn handle(
    State(inner): State<Inner>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_put_events = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.ends_with(".PutEvents"));
    if !is_put_events {
        return forward(&inner, method, &uri, &headers, body).await;
    }
    let faults = inner
        .faults
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
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
        return if faults.down {
            json_answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"__type": "InternalException", "message": "injected: event bus down"}),
            )
        } else {
            json_answer(
                StatusCode::BAD_REQUEST,
                json!({"__type": "ThrottlingException", "message": "injected: Rate exceeded"}),
            )
        };
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
        return forward(&inner, method, &uri, &headers, body).await;
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
            &inner,
            method,
            &uri,
            &headers,
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
