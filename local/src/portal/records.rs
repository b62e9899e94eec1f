//! POST /inbox/{entity}: takes a record delivery (`{"id", "entity", "version", "changedAt",
//! "record"}`), honours `Idempotency-Key`, applies the record as the current state of its id
//! whatever its age (as a plain portal would), and counts what would hurt a user: the same
//! content applied twice, and an older record overwriting a newer one.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::mode::admit;
use super::requests::idempotency_key;
use super::Portal;

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

/// A delivery's (id, version, changedAt, record), if it has them all (the record an object).
fn delivery_fields(delivery: Option<&Value>) -> Option<(String, u64, String, &Value)> {
    let v = delivery?;
    Some((
        v["id"].as_str()?.to_owned(),
        v["version"].as_u64()?,
        v["changedAt"].as_str()?.to_owned(),
        v.get("record").filter(|r| r.is_object())?,
    ))
}

impl Portal {
    /// Record deliveries applied, in order.
    pub fn record_deliveries(&self) -> Vec<RecordDelivery> {
        self.lock().applied.clone()
    }
    /// Current state per record id.
    pub fn record_states(&self) -> HashMap<String, RecordState> {
        self.lock().records.clone()
    }

    /// Applies `record` (canonical JSON) as the state of `id` unless the idempotency key is
    /// known; whether it did.
    fn apply_record(
        &self,
        key: &str,
        id: &str,
        version: u64,
        changed_at: String,
        record: String,
    ) -> bool {
        let mut g = self.lock();
        if g.record_keys.contains(key) {
            return false;
        }
        g.record_keys.insert(key.to_owned());
        let duplicate = g.applied.iter().any(|a| a.id == id && a.record == record);
        let stale_overwrite = g
            .records
            .get(id)
            .is_some_and(|cur| cur.changed_at > changed_at);
        g.applied.push(RecordDelivery {
            at_ms: crate::now_ms(),
            id: id.to_owned(),
            version,
            key: key.to_owned(),
            changed_at: changed_at.clone(),
            record: record.clone(),
            duplicate,
            stale_overwrite,
        });
        g.records.insert(
            id.to_owned(),
            RecordState {
                version,
                changed_at,
                record,
            },
        );
        true
    }
}

pub(super) async fn record(
    State(p): State<Portal>,
    Path(entity): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let path = format!("/inbox/{entity}");
    let key = idempotency_key(&headers);
    if let Some(refused) = p.refuse_unauthorized(&headers, &path, key.as_deref()) {
        return refused;
    }
    let parsed: Option<Value> = serde_json::from_str(&body).ok();
    let id = parsed.as_ref().and_then(|v| v["id"].as_str());
    let then = match admit(&p, &path, key.as_deref(), id).await {
        Ok(then) => then,
        Err(answered) => return answered,
    };
    let (Some(key), Some((id, version, changed_at, rec))) =
        (key.as_deref(), delivery_fields(parsed.as_ref()))
    else {
        p.record(&path, key.as_deref(), id, 400, false);
        return (
            StatusCode::BAD_REQUEST,
            "a record delivery needs an Idempotency-Key, id, version, changedAt and record",
        )
            .into_response();
    };
    let record = steadfast_domain::inbox::canonical(rec);
    let created = p.apply_record(key, &id, version, changed_at, record);
    let status = if created { then } else { StatusCode::CONFLICT };
    p.record(&path, Some(key), Some(&id), status.as_u16(), created);
    status.into_response()
}
