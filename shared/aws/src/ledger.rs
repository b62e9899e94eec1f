//! The delivery ledger on DynamoDB: key `identity`, expiring after the dedup window through
//! the table's TTL attribute `expires_at`. An SQS redelivery of a delivered message is found
//! here and not sent again.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use steadfast_domain::ports::{Ledger, PortError, PortResult};

use crate::{describe, now_ms};

pub struct DynamoLedger {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
    /// How long a delivered identity is remembered. Default 7 days.
    pub window: Duration,
}

impl Ledger for DynamoLedger {
    async fn delivered(&self, identities: &[String]) -> PortResult<HashSet<String>> {
        let unique: HashSet<&String> = identities.iter().collect();
        let mut found = HashSet::new();
        let now_s = now_ms() / 1000;
        // BatchGetItem takes at most 100 keys; SQS batches are at most 10 here.
        let keys: Vec<&String> = unique.into_iter().collect();
        for chunk in keys.chunks(100) {
            let mut request = KeysAndAttributes::builder().consistent_read(true);
            for id in chunk {
                request = request.keys(HashMap::from([(
                    "identity".to_owned(),
                    AttributeValue::S((*id).clone()),
                )]));
            }
            let mut pending = Some(HashMap::from([(
                self.table.clone(),
                request
                    .build()
                    .map_err(|e| PortError::new("build BatchGetItem", e))?,
            )]));
            while let Some(items) = pending.take().filter(|m| !m.is_empty()) {
                let out = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(items))
                    .send()
                    .await
                    .map_err(|e| {
                        PortError::new(format!("BatchGetItem from {}", self.table), describe(&e))
                    })?;
                for item in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    // TTL deletion is lazy: an expired entry no longer counts.
                    let live = match item.get("expires_at") {
                        Some(AttributeValue::N(n)) => {
                            n.parse::<u64>().map(|t| t > now_s).unwrap_or(true)
                        }
                        _ => true,
                    };
                    if let (true, Some(AttributeValue::S(id))) = (live, item.get("identity")) {
                        found.insert(id.clone());
                    }
                }
                pending = out.unprocessed_keys;
            }
        }
        Ok(found)
    }

    async fn record(&self, identity: &str, message_id: &str) -> PortResult<()> {
        let now = now_ms();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("identity", AttributeValue::S(identity.to_owned()))
            .item("message_id", AttributeValue::S(message_id.to_owned()))
            .item("delivered_at_ms", AttributeValue::N(now.to_string()))
            .item(
                "expires_at",
                AttributeValue::N((now / 1000 + self.window.as_secs()).to_string()),
            )
            .send()
            .await
            .map_err(|e| {
                PortError::new(
                    format!("PutItem {identity} into {}", self.table),
                    describe(&e),
                )
            })?;
        Ok(())
    }
}
