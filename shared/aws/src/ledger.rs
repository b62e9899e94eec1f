//! The delivery ledger on DynamoDB: key `identity`, expiring after the dedup window through
//! the table's TTL attribute `expires_at`. An SQS redelivery of a delivered message is found
//! here and not sent again. The window is the source queue's retention, so every message the
//! queue can still hold is covered.
//!
//! The same item counts the receives on which a message failed on its own (`strikes`), so a
//! poison message is parked after enough of them, whatever halts did to its receive count.
//!
//! A failed read concerns only its keys: the batch read falls back to one read per key, and
//! a key that can never be read (a validation error) is reported as such, so the processor
//! parks that one message and delivers the rest.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use steadfast_domain::ports::{Ledger, LedgerRead, PortError, PortResult};

use crate::error::port_error;
use crate::now_ms;

pub struct DynamoLedger {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
    /// How long a delivered identity is remembered: the source queue's retention (14 days).
    pub window: Duration,
}

type Item = HashMap<String, AttributeValue>;

impl DynamoLedger {
    /// The identity of a live delivery entry (TTL deletion is lazy: an expired entry no
    /// longer counts; an entry holding only strikes is no delivery).
    fn live(item: &Item, now_s: u64) -> Option<&String> {
        let live = match item.get("expires_at") {
            Some(AttributeValue::N(n)) => n.parse::<u64>().map(|t| t > now_s).unwrap_or(true),
            _ => true,
        };
        let delivered = item.contains_key("delivered_at_ms");
        match (live && delivered, item.get("identity")) {
            (true, Some(AttributeValue::S(id))) => Some(id),
            _ => None,
        }
    }

    fn key(id: &str) -> Item {
        HashMap::from([("identity".to_owned(), AttributeValue::S(id.to_owned()))])
    }

    /// The strikes an item holds, if it is live.
    fn strikes(item: &Item, now_s: u64) -> Option<(String, u32)> {
        let live = match item.get("expires_at") {
            Some(AttributeValue::N(n)) => n.parse::<u64>().map(|t| t > now_s).unwrap_or(true),
            _ => true,
        };
        match (live, item.get("identity"), item.get("strikes")) {
            (true, Some(AttributeValue::S(id)), Some(AttributeValue::N(n))) => {
                Some((id.clone(), n.parse().ok()?))
            }
            _ => None,
        }
    }

    fn note(item: &Item, now_s: u64, read: &mut LedgerRead) {
        if let Some(id) = Self::live(item, now_s) {
            read.delivered.insert(id.clone());
        }
        read.strikes.extend(Self::strikes(item, now_s));
    }

    /// One BatchGetItem (with its unprocessed keys) for at most 100 keys.
    async fn batch(&self, keys: &[&String], now_s: u64, read: &mut LedgerRead) -> PortResult<()> {
        let mut request = KeysAndAttributes::builder().consistent_read(true);
        for id in keys {
            request = request.keys(Self::key(id));
        }
        let request = request
            .build()
            .map_err(|e| PortError::new("build BatchGetItem", e))?;
        let mut pending = Some(HashMap::from([(self.table.clone(), request)]));
        while let Some(items) = pending.take().filter(|m| !m.is_empty()) {
            let out = self
                .client
                .batch_get_item()
                .set_request_items(Some(items))
                .send()
                .await
                .map_err(|e| port_error(format!("BatchGetItem from {}", self.table), e))?;
            for item in out
                .responses
                .unwrap_or_default()
                .remove(&self.table)
                .unwrap_or_default()
            {
                Self::note(&item, now_s, read);
            }
            pending = out.unprocessed_keys;
        }
        Ok(())
    }

    async fn one(&self, id: &str, now_s: u64, read: &mut LedgerRead) -> PortResult<()> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error(format!("GetItem from {}", self.table), e))?;
        if let Some(item) = out.item {
            Self::note(&item, now_s, read);
        }
        Ok(())
    }
}

impl Ledger for DynamoLedger {
    async fn delivered(&self, identities: &[String]) -> LedgerRead {
        let unique: Vec<&String> = identities
            .iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let now_s = now_ms() / 1000;
        let mut read = LedgerRead::default();
        // BatchGetItem takes at most 100 keys; SQS batches are at most 10 here.
        for chunk in unique.chunks(100) {
            if let Err(e) = self.batch(chunk, now_s, &mut read).await {
                tracing::warn!(error = %e, keys = chunk.len(), "ledger batch read failed; reading key by key");
                for id in chunk {
                    if let Err(e) = self.one(id, now_s, &mut read).await {
                        read.unreadable.insert((*id).clone(), e);
                    }
                }
            }
        }
        read
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
            .map_err(|e| port_error(format!("PutItem {identity} into {}", self.table), e))?;
        Ok(())
    }

    async fn strike(&self, identity: &str) -> PortResult<u32> {
        let expires = now_ms() / 1000 + self.window.as_secs();
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(identity)))
            .update_expression("ADD strikes :one SET expires_at = :exp")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":exp", AttributeValue::N(expires.to_string()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| {
                port_error(
                    format!("UpdateItem strikes of {identity} in {}", self.table),
                    e,
                )
            })?;
        Ok(out
            .attributes
            .and_then(|a| match a.get("strikes") {
                Some(AttributeValue::N(n)) => n.parse().ok(),
                _ => None,
            })
            .unwrap_or(1))
    }
}
