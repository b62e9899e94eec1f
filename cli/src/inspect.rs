//! `steadfast inspect outbox|inbox|order KEY`: one record's story. Payloads (the event's
//! detail, the record's content) are shown by size only.

use std::collections::BTreeMap;

use anyhow::{anyhow, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde_json::Value;
use steadfast_domain::idempotency_key;

use crate::aws::{describe, Aws};
use crate::stack::Stack;
use crate::{at, InspectKind};

/// Attributes holding a payload: shown by size.
const PAYLOADS: [&str; 3] = ["detail", "record", "application"];

#[derive(Debug, Serialize)]
pub struct Story {
    pub kind: String,
    pub key: String,
    pub table: String,
    pub found: bool,
    /// The key the target or the bus sees for this record.
    pub delivery_key: Option<String>,
    /// Every attribute; times (`*_ms`) as numbers, payloads as `"<N bytes>"`.
    pub attributes: BTreeMap<String, Value>,
}

pub async fn run(stack: &Stack, aws: &Aws, kind: InspectKind, key: &str) -> Result<Story> {
    let (logical, key_name) = match kind {
        InspectKind::Outbox => ("OutboxTable", "id"),
        InspectKind::Inbox => ("InboxTable", "id"),
        InspectKind::Order => ("LedgerTable", "identity"),
    };
    let table = stack.physical(logical)?;
    let out = aws
        .dynamodb
        .get_item()
        .table_name(table)
        .key(key_name, AttributeValue::S(key.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| anyhow!("GetItem {key} from {table}: {}", describe(&e)))?;
    let item = out.item.unwrap_or_default();
    let attributes: BTreeMap<String, Value> = item
        .iter()
        .map(|(k, v)| {
            let shown = match v {
                AttributeValue::S(s) if PAYLOADS.contains(&k.as_str()) => {
                    Value::from(format!("<{} bytes>", s.len()))
                }
                AttributeValue::M(_) | AttributeValue::L(_) => Value::from("<structured payload>"),
                AttributeValue::S(s) => Value::from(s.clone()),
                AttributeValue::N(n) => n
                    .parse::<u64>()
                    .map_or_else(|_| Value::from(n.clone()), Value::from),
                AttributeValue::Bool(b) => Value::from(*b),
                other => Value::from(format!("{other:?}")),
            };
            (k.clone(), shown)
        })
        .collect();
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let number = |k: &str| item.get(k).and_then(|v| v.as_n().ok()).cloned();
    let delivery_key = match kind {
        _ if item.is_empty() => None,
        // The event's id on the bus (PutEvents has no idempotency key; consumers dedupe on it).
        InspectKind::Outbox => text("event_id"),
        InspectKind::Inbox => number("version").map(|v| format!("{key}/{v}")),
        InspectKind::Order => Some(idempotency_key(key)),
    };
    Ok(Story {
        kind: format!("{kind:?}").to_lowercase(),
        key: key.to_owned(),
        table: table.to_owned(),
        found: !item.is_empty(),
        delivery_key,
        attributes,
    })
}

pub fn render(s: &Story) -> String {
    if !s.found {
        return format!("no {} record {} in {}\n", s.kind, s.key, s.table);
    }
    let mut out = format!("{} {} (table {})\n", s.kind, s.key, s.table);
    if let Some(k) = &s.delivery_key {
        out += &format!("  {:<18} {k}\n", "delivery key");
    }
    for (k, v) in &s.attributes {
        let shown = match v {
            Value::Number(n) if k.ends_with("_ms") || k == "due_at" => n
                .as_u64()
                .map_or(n.to_string(), |ms| format!("{} ({ms})", at(ms))),
            Value::String(t) => t.clone(),
            other => other.to_string(),
        };
        out += &format!("  {k:<18} {shown}\n");
    }
    out
}
