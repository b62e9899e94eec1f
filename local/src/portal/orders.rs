//! POST /orders: creates an order, honouring `Idempotency-Key` (a known key answers 409 and
//! creates nothing) and validating it (a missing `sku` or a quantity below 1 is a 400), in
//! whatever fault mode the portal is in.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::mode::admit;
use super::requests::idempotency_key;
use super::{Mode, Portal};

/// The order's `orderId`, as text.
fn order_id(order: Option<&Value>) -> Option<String> {
    order.and_then(|v| v.get("orderId")).map(|v| {
        v.as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string())
    })
}

/// An order has a non-empty `sku` and a quantity of at least 1 (1 when absent).
fn valid(order: Option<&Value>) -> bool {
    order.is_some_and(|v| {
        v.get("sku")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
            && v.get("quantity").and_then(Value::as_i64).unwrap_or(1) >= 1
    })
}

impl Portal {
    /// Creates the order unless its idempotency key is known; whether it did.
    fn create_order(&self, key: Option<&str>, order_id: Option<&str>) -> bool {
        let mut g = self.lock();
        if key.is_some_and(|k| g.created_keys.contains(k)) {
            return false;
        }
        if let Some(k) = key {
            g.created_keys.insert(k.to_owned());
        }
        *g.created_orders
            .entry(order_id.unwrap_or_default().to_owned())
            .or_insert(0) += 1;
        true
    }
}

pub(super) async fn order(State(p): State<Portal>, headers: HeaderMap, body: String) -> Response {
    let key = idempotency_key(&headers);
    let key = key.as_deref();
    if let Some(refused) = p.refuse_unauthorized(&headers, "/orders", key) {
        return refused;
    }
    let parsed: Option<Value> = serde_json::from_str(&body).ok();
    let order_id = order_id(parsed.as_ref());
    let order_id = order_id.as_deref();
    if let Mode::FailOrder { order_id: bad } = p.mode() {
        if order_id == Some(bad.as_str()) {
            p.record("/orders", key, order_id, 500, false);
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    let then = match admit(&p, "/orders", key, order_id).await {
        Ok(then) => then,
        Err(answered) => return answered,
    };
    if !valid(parsed.as_ref()) {
        p.record("/orders", key, order_id, 400, false);
        return (
            StatusCode::BAD_REQUEST,
            "order needs a sku and a quantity >= 1",
        )
            .into_response();
    }
    let created = p.create_order(key, order_id);
    let status = if created { then } else { StatusCode::CONFLICT };
    p.record("/orders", key, order_id, status.as_u16(), created);
    status.into_response()
}
