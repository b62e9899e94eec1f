//! The requests the portal saw: recording each, the stats counted from them, the checks every
//! delivery goes through first (its idempotency key, the token), and the control endpoints.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::{Mode, Portal};

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

/// The request's `Idempotency-Key`, if it has one.
pub(super) fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl Portal {
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
    /// Records a request to `path` and how it was answered.
    pub(super) fn record(
        &self,
        path: &str,
        key: Option<&str>,
        order_id: Option<&str>,
        status: u16,
        created: bool,
    ) {
        self.lock().seen.push(Seen {
            at_ms: crate::now_ms(),
            path: path.into(),
            key: key.map(str::to_owned),
            order_id: order_id.map(str::to_owned),
            status,
            created,
        });
    }
    /// A 401 (recorded) when a token is required and `headers` do not carry it; `None` when
    /// the delivery may go on.
    pub(super) fn refuse_unauthorized(
        &self,
        headers: &HeaderMap,
        path: &str,
        key: Option<&str>,
    ) -> Option<Response> {
        if self.authorized(headers) {
            return None;
        }
        self.record(path, key, None, 401, false);
        Some(StatusCode::UNAUTHORIZED.into_response())
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
}

/// POST /_portal/mode: sets the mode, and answers it.
pub(super) async fn set_mode(State(p): State<Portal>, Json(mode): Json<Mode>) -> impl IntoResponse {
    p.set(mode.clone());
    Json(mode)
}

/// GET /_portal/stats.
pub(super) async fn stats(State(p): State<Portal>) -> impl IntoResponse {
    Json(p.stats())
}
