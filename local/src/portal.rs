//! The fake target API ("the portal"): POST /orders creates an order, honouring
//! `Idempotency-Key` (a known key answers 409 and creates nothing), validates the order (a
//! missing `sku` or a quantity below 1 is a 400), and GET /health answers the probe. Fault
//! modes: up, down (503), flaky (N% 503), slow (answers after a delay), too-many (429 with
//! Retry-After, for the next N requests), ambiguous (creates the order, then answers 500),
//! maintenance (503 with Retry-After on deliveries and health), auth (401 on deliveries, health
//! up: an expired token), fail-order (500 for one order id only: a poison order), hold.
//! Every request is recorded, so duplicates can be counted.
//!
//! The inbox side: `POST /inbox/{entity}` takes a record delivery (`{"id", "entity", "version",
//! "changedAt", "record"}`), honours `Idempotency-Key` the same way, applies the record as the
//! current state of its id whatever its age (as a plain portal would), and counts what would
//! hurt a user: the same content applied twice, and an older record overwriting a newer one.
//!
//! Control over HTTP for manual runs: `POST /_portal/mode` with a [`Mode`] as JSON, and
//! `GET /_portal/stats`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    /// One order the portal cannot process (a payload-specific 500); the others go through.
    FailOrder {
        order_id: String,
    },
}

/// One request as the portal saw it.
#[derive(Debug, Clone, Serialize)]
pub struct Seen {
    pub at_ms: u64,
    pub path: String,
    pub key: Option<String>,
    pub order_id: Option<String>,
    pub status: u16,
    /// This request created an order.
    pub created: bool,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    pub requests: usize,
    pub order_requests: usize,
    pub health_requests: usize,
    /// Distinct orders created.
    pub orders_created: usize,
    /// Orders created more than once, counted per extra creation.
    pub duplicate_creations: usize,
    pub conflicts_409: usize,
    pub rejected_400: usize,
}

/// One record delivery the portal applied (a 2xx that changed its state).
#[derive(Debug, Clone, Serialize)]
pub struct RecordDelivery {
    pub at_ms: u64,
    pub id: String,
    pub version: u64,
    pub key: String,
    pub changed_at: String,
    /// Canonical JSON text of the record.
    pub record: String,
    /// This content had been applied to this id before.
    pub duplicate: bool,
    /// It replaced a record with a later change time.
    pub stale_overwrite: bool,
}

/// The portal's current state of one record id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordState {
    pub version: u64,
    pub changed_at: String,
    pub record: String,
}

struct Inner {
    mode: Mode,
    /// When set, a request without `Authorization: Bearer <token>` is answered 401.
    token: Option<String>,
    record_keys: std::collections::HashSet<String>,
    records: HashMap<String, RecordState>,
    applied: Vec<RecordDelivery>,
    seen: Vec<Seen>,
    created_keys: std::collections::HashSet<String>,
    created_orders: HashMap<String, u32>,
}

#[derive(Clone)]
pub struct Portal {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
    shutdown: Arc<tokio::sync::Notify>,
}

impl Portal {
    /// Serves on 127.0.0.1 (port 0 = any free port).
    pub async fn start(port: u16) -> anyhow::Result<Portal> {
        let inner = Arc::new(Mutex::new(Inner {
            mode: Mode::Up,
            token: None,
            record_keys: Default::default(),
            records: Default::default(),
            applied: vec![],
            seen: vec![],
            created_keys: Default::default(),
            created_orders: Default::default(),
        }));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shutdown = Arc::new(tokio::sync::Notify::new());
        let portal = Portal {
            inner,
            url,
            shutdown: shutdown.clone(),
        };
        let app = Router::new()
            .route("/orders", post(order))
            .route("/inbox/{entity}", post(record))
            .route("/health", get(health))
            .route("/_portal/mode", post(set_mode))
            .route("/_portal/stats", get(stats))
            .with_state(portal.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { shutdown.notified().await })
                .await;
        });
        Ok(portal)
    }

    pub fn orders_url(&self) -> String {
        format!("{}/orders", self.url)
    }
    /// Base URL of the inbox endpoints (`/inbox/{entity}`).
    pub fn inbox_url(&self) -> String {
        format!("{}/inbox", self.url)
    }
    /// Record deliveries applied, in order.
    pub fn record_deliveries(&self) -> Vec<RecordDelivery> {
        self.lock().applied.clone()
    }
    /// Current state per record id.
    pub fn record_states(&self) -> HashMap<String, RecordState> {
        self.lock().records.clone()
    }
    pub fn health_url(&self) -> String {
        format!("{}/health", self.url)
    }
    pub fn set(&self, mode: Mode) {
        self.lock().mode = mode;
    }
    /// Requires `Authorization: Bearer <token>` on deliveries from now on.
    pub fn require_token(&self, token: &str) {
        self.lock().token = Some(token.to_owned());
    }
    /// `false` when a token is required and `headers` do not carry it.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(want) = self.lock().token.clone() else {
            return true;
        };
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {want}"))
    }
    pub fn mode(&self) -> Mode {
        self.lock().mode.clone()
    }
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }
    pub fn created_orders(&self) -> HashMap<String, u32> {
        self.lock().created_orders.clone()
    }
    pub fn stats(&self) -> Stats {
        let g = self.lock();
        Stats {
            requests: g.seen.len(),
            order_requests: g.seen.iter().filter(|s| s.path == "/orders").count(),
            health_requests: g.seen.iter().filter(|s| s.path == "/health").count(),
            orders_created: g.created_orders.len(),
            duplicate_creations: g
                .created_orders
                .values()
                .map(|n| n.saturating_sub(1) as usize)
                .sum(),
            conflicts_409: g.seen.iter().filter(|s| s.status == 409).count(),
            rejected_400: g.seen.iter().filter(|s| s.status == 400).count(),
        }
    }
    pub fn stop(&self) {
        self.shutdown.notify_waiters();
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn record(
        &self,
        path: &str,
        key: Option<String>,
        order_id: Option<String>,
        status: u16,
        created: bool,
    ) {
        self.lock().seen.push(Seen {
            at_ms: crate::now_ms(),
            path: path.into(),
            key,
            order_id,
            status,
            created,
        });
    }
}

enum Gate {
    Answer(StatusCode, Option<u64>),
    Process {
        then: StatusCode,
        delay: Option<Duration>,
    },
}

fn decide(p: &Portal) -> Gate {
    let mut g = p.lock();
    match g.mode.clone() {
        Mode::Up => Gate::Process {
            then: StatusCode::CREATED,
            delay: None,
        },
        Mode::Down => Gate::Answer(StatusCode::SERVICE_UNAVAILABLE, None),
        Mode::Flaky { percent } => {
            if rand::random::<u8>() % 100 < percent {
                Gate::Answer(StatusCode::SERVICE_UNAVAILABLE, None)
            } else {
                Gate::Process {
                    then: StatusCode::CREATED,
                    delay: None,
                }
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
        Mode::Ambiguous => Gate::Process {
            then: StatusCode::INTERNAL_SERVER_ERROR,
            delay: None,
        },
        Mode::Hold | Mode::FailOrder { .. } => Gate::Process {
            then: StatusCode::CREATED,
            delay: None,
        },
        Mode::Maintenance { retry_after_s } => {
            Gate::Answer(StatusCode::SERVICE_UNAVAILABLE, Some(retry_after_s))
        }
        Mode::Auth => Gate::Answer(StatusCode::UNAUTHORIZED, None),
    }
}

/// While the portal is in [`Mode::Hold`], waits.
async fn held(p: &Portal) {
    while p.mode() == Mode::Hold {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn order(State(p): State<Portal>, headers: HeaderMap, body: String) -> Response {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if !p.authorized(&headers) {
        p.record("/orders", key, None, 401, false);
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let parsed: Option<Value> = serde_json::from_str(&body).ok();
    let order_id = parsed.as_ref().and_then(|v| v.get("orderId")).map(|v| {
        v.as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string())
    });
    if let Mode::FailOrder { order_id: bad } = p.mode() {
        if order_id.as_deref() == Some(bad.as_str()) {
            p.record("/orders", key, order_id, 500, false);
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    let (then, delay) = match decide(&p) {
        Gate::Answer(status, retry_after) => {
            p.record("/orders", key, order_id, status.as_u16(), false);
            let mut r = status.into_response();
            if let Some(s) = retry_after {
                r.headers_mut()
                    .insert("retry-after", s.to_string().parse().expect("header"));
            }
            return r;
        }
        Gate::Process { then, delay } => (then, delay),
    };
    held(&p).await;
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let valid = parsed.as_ref().is_some_and(|v| {
        v.get("sku")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
            && v.get("quantity").and_then(Value::as_i64).unwrap_or(1) >= 1
    });
    if !valid {
        p.record("/orders", key, order_id, 400, false);
        return (
            StatusCode::BAD_REQUEST,
            "order needs a sku and a quantity >= 1",
        )
            .into_response();
    }
    let mut created = false;
    {
        let mut g = p.lock();
        let known = key.as_ref().is_some_and(|k| g.created_keys.contains(k));
        if !known {
            if let Some(k) = &key {
                g.created_keys.insert(k.clone());
            }
            *g.created_orders
                .entry(order_id.clone().unwrap_or_default())
                .or_insert(0) += 1;
            created = true;
        }
    }
    let status = if created { then } else { StatusCode::CONFLICT };
    p.record("/orders", key, order_id, status.as_u16(), created);
    status.into_response()
}

async fn record(
    State(p): State<Portal>,
    axum::extract::Path(entity): axum::extract::Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let path = format!("/inbox/{entity}");
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if !p.authorized(&headers) {
        p.record(&path, key, None, 401, false);
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let parsed: Option<Value> = serde_json::from_str(&body).ok();
    let id = parsed
        .as_ref()
        .and_then(|v| v["id"].as_str())
        .map(str::to_owned);
    let (then, delay) = match decide(&p) {
        Gate::Answer(status, retry_after) => {
            p.record(&path, key, id, status.as_u16(), false);
            let mut r = status.into_response();
            if let Some(s) = retry_after {
                r.headers_mut()
                    .insert("retry-after", s.to_string().parse().expect("header"));
            }
            return r;
        }
        Gate::Process { then, delay } => (then, delay),
    };
    held(&p).await;
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let fields = parsed.as_ref().and_then(|v| {
        Some((
            v["id"].as_str()?.to_owned(),
            v["version"].as_u64()?,
            v["changedAt"].as_str()?.to_owned(),
            v.get("record").filter(|r| r.is_object())?,
        ))
    });
    let (Some(key), Some((id, version, changed_at, rec))) = (key.clone(), fields) else {
        p.record(&path, key, id, 400, false);
        return (
            StatusCode::BAD_REQUEST,
            "a record delivery needs an Idempotency-Key, id, version, changedAt and record",
        )
            .into_response();
    };
    let record = steadfast_domain::inbox::canonical(rec);
    let created = {
        let mut g = p.lock();
        if g.record_keys.contains(&key) {
            false
        } else {
            g.record_keys.insert(key.clone());
            let duplicate = g.applied.iter().any(|a| a.id == id && a.record == record);
            let stale_overwrite = g
                .records
                .get(&id)
                .is_some_and(|cur| cur.changed_at > changed_at);
            g.applied.push(RecordDelivery {
                at_ms: crate::now_ms(),
                id: id.clone(),
                version,
                key: key.clone(),
                changed_at: changed_at.clone(),
                record: record.clone(),
                duplicate,
                stale_overwrite,
            });
            g.records.insert(
                id.clone(),
                RecordState {
                    version,
                    changed_at,
                    record,
                },
            );
            true
        }
    };
    let status = if created { then } else { StatusCode::CONFLICT };
    p.record(&path, Some(key), Some(id), status.as_u16(), created);
    status.into_response()
}

async fn health(State(p): State<Portal>) -> Response {
    let mode = p.mode();
    let status = match mode {
        Mode::Down | Mode::Maintenance { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Mode::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::OK,
    };
    p.record("/health", None, None, status.as_u16(), false);
    let mut r = status.into_response();
    if let Mode::Maintenance { retry_after_s } = mode {
        r.headers_mut().insert(
            "retry-after",
            retry_after_s.to_string().parse().expect("header"),
        );
    }
    r
}

async fn set_mode(State(p): State<Portal>, Json(mode): Json<Mode>) -> impl IntoResponse {
    p.set(mode.clone());
    Json(mode)
}

async fn stats(State(p): State<Portal>) -> impl IntoResponse {
    Json(p.stats())
}
