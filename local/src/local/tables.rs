//! The outbox and inbox tables, read by consistent scans: outbox records per status, and
//! every inbox record.

use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, Result};
use aws_sdk_dynamodb::types::AttributeValue;

use super::Local;
use crate::aws::describe;

type Item = HashMap<String, AttributeValue>;

/// One inbox record as the table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxRow {
    pub version: u64,
    pub status: String,
    pub delivered_version: Option<u64>,
    pub attempts: u64,
}

/// A number attribute of an item, if it has one.
fn num(item: &Item, k: &str) -> Option<u64> {
    match item.get(k) {
        Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
        _ => None,
    }
}

impl Local {
    /// Outbox records per status (a consistent scan of the outbox table).
    pub async fn outbox_statuses(&self) -> Result<BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        for item in self.scan("OutboxTable", "#s").await? {
            if let Some(AttributeValue::S(s)) = item.get("status") {
                *out.entry(s.clone()).or_insert(0) += 1;
            }
        }
        Ok(out)
    }

    /// Claims counted so far per outbox record id (a consistent scan of the outbox table).
    pub async fn outbox_attempts(&self) -> Result<BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        for item in self.scan("OutboxTable", "id, attempts, #s").await? {
            if let Some(AttributeValue::S(id)) = item.get("id") {
                out.insert(id.clone(), num(&item, "attempts").unwrap_or(0));
            }
        }
        Ok(out)
    }

    /// Every inbox record by id (a consistent scan of the inbox table).
    pub async fn inbox_rows(&self) -> Result<BTreeMap<String, InboxRow>> {
        let items = self
            .scan("InboxTable", "id, version, #s, delivered_version, attempts")
            .await?;
        let mut out = BTreeMap::new();
        for item in &items {
            let (Some(AttributeValue::S(id)), Some(AttributeValue::S(status))) =
                (item.get("id"), item.get("status"))
            else {
                continue;
            };
            out.insert(
                id.clone(),
                InboxRow {
                    version: num(item, "version").unwrap_or(0),
                    status: status.clone(),
                    delivered_version: num(item, "delivered_version"),
                    attempts: num(item, "attempts").unwrap_or(0),
                },
            );
        }
        Ok(out)
    }

    /// Every item of a table of the stack, page by page (consistent reads), with this
    /// projection (`#s` stands for `status`).
    pub(super) async fn scan(&self, logical: &str, projection: &str) -> Result<Vec<Item>> {
        let table = self.stack.reference(logical)?.to_owned();
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .emu
                .dynamodb
                .scan()
                .table_name(&table)
                .consistent_read(true)
                .projection_expression(projection)
                .expression_attribute_names("#s", "status")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| anyhow!("Scan {table}: {}", describe(&e)))?;
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }
}
