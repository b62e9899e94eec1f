//! The fake target API ("the portal"): POST /orders creates an order, honouring
//! `Idempotency-Key` (a known key answers 409 and creates nothing), validates the order (a
//! missing `sku` or a quantity below 1 is a 400), and GET /health answers the probe. Fault
//! modes: up, down (503), flaky (N% 503), slow (answers after a delay), too-many (429 with
//! Retry-After, for the next N requests), ambiguous (creates the order, then answers 500),
//! maintenance (503 with Retry-After on deliveries and health), auth (401 on deliveries, health
//! up: an expired token), fail-order (500 for one order id only: a poison order), hold, reset
//! (the connection closed before any answer).
//! Every request is recorded, so duplicates can be counted.
//!
//! The inbox side: `POST /inbox/{entity}` takes a record delivery (`{"id", "entity", "version",
//! "changedAt", "record"}`), honours `Idempotency-Key` the same way, applies the record as the
//! current state of its id whatever its age (as a plain portal would), and counts what would
//! hurt a user: the same content applied twice, and an older record overwriting a newer one.
//!
//! Control over HTTP for manual runs: `POST /_portal/mode` with a [`Mode`] as JSON, and
//! `GET /_portal/stats`.
//!
//! This file holds the [`Portal`] handle: its state, its routes, and setting it up. By topic:
//! the fault modes and what they answer (`mode`), the requests seen and the stats and control
//! endpoints (`requests`), the orders endpoint (`orders`), the inbox endpoint (`records`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::routing::{get, post};
use axum::Router;

mod mode;
mod orders;
mod records;
mod requests;

pub use mode::Mode;
pub use records::{RecordDelivery, RecordState};
pub use requests::{Seen, Stats};

struct Inner {
    mode: Mode,
    /// When set, a request without `Authorization: Bearer <token>` is answered 401.
    token: Option<String>,
    record_keys: HashSet<String>,
    records: HashMap<String, RecordState>,
    applied: Vec<RecordDelivery>,
    seen: Vec<Seen>,
    created_keys: HashSet<String>,
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
            .route("/orders", post(orders::order))
            .route("/inbox/{entity}", post(records::record))
            .route("/health", get(mode::health))
            .route("/_portal/mode", post(requests::set_mode))
            .route("/_portal/stats", get(requests::stats))
            .with_state(portal.clone());
        crate::serve_until(listener, app, shutdown);
        Ok(portal)
    }

    pub fn orders_url(&self) -> String {
        format!("{}/orders", self.url)
    }
    /// Base URL of the inbox endpoints (`/inbox/{entity}`).
    pub fn inbox_url(&self) -> String {
        format!("{}/inbox", self.url)
    }
    pub fn health_url(&self) -> String {
        format!("{}/health", self.url)
    }
    pub fn set(&self, mode: Mode) {
        self.lock().mode = mode;
    }
    pub fn mode(&self) -> Mode {
        self.lock().mode.clone()
    }
    /// Requires `Authorization: Bearer <token>` on deliveries from now on.
    pub fn require_token(&self, token: &str) {
        self.lock().token = Some(token.to_owned());
    }
    pub fn stop(&self) {
        self.shutdown.notify_waiters();
    }
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}
