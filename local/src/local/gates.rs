//! The gates in the stack's gate table: read whole or as a summary, and written as they are
//! (to set up the state a crash would leave).

use std::collections::HashMap;

use anyhow::{anyhow, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use steadfast_domain::Gate;

use super::Local;
use crate::aws::describe;

impl Local {
    /// The name of the inbox portal's gate (`InboxTargetName`, default `<stack>-inbox`).
    pub fn inbox_target(&self) -> String {
        format!("{}-inbox", self.stack.name)
    }

    /// The gate of `target` as stored, whole; `None` if never written.
    pub async fn gate_of(&self, target: &str) -> Result<Option<Gate>> {
        self.gate_item(target)
            .await?
            .map(|i| serde_dynamo::from_item(i).map_err(|e| anyhow!("decode gate: {e}")))
            .transpose()
    }

    /// Writes a gate item as it is (to set up the state a crash would leave).
    pub async fn put_gate(&self, gate: &Gate) -> Result<()> {
        let item = serde_dynamo::to_item(gate).map_err(|e| anyhow!("encode gate: {e}"))?;
        self.emu
            .dynamodb
            .put_item()
            .table_name(self.stack.reference("GateTable")?)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| anyhow!("PutItem gate: {}", describe(&e)))?;
        Ok(())
    }

    /// The orders gate as stored: (state, epoch, attempt); `None` if never written.
    pub async fn gate(&self) -> Result<Option<(String, u64, u64)>> {
        self.gate_summary(&self.stack.name).await
    }

    /// A gate as stored: (state, epoch, attempt); `None` if never written.
    pub async fn gate_summary(&self, target: &str) -> Result<Option<(String, u64, u64)>> {
        Ok(self.gate_item(target).await?.map(|i| {
            let s = |k: &str| match i.get(k) {
                Some(AttributeValue::S(s)) => s.clone(),
                Some(AttributeValue::N(n)) => n.clone(),
                _ => String::new(),
            };
            (
                s("state"),
                s("epoch").parse().unwrap_or(0),
                s("attempt").parse().unwrap_or(0),
            )
        }))
    }

    /// The gate item of `target` (a consistent read); `None` if never written.
    async fn gate_item(&self, target: &str) -> Result<Option<HashMap<String, AttributeValue>>> {
        let out = self
            .emu
            .dynamodb
            .get_item()
            .table_name(self.stack.reference("GateTable")?)
            .key("target", AttributeValue::S(target.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| anyhow!("GetItem gate: {}", describe(&e)))?;
        Ok(out.item)
    }
}
