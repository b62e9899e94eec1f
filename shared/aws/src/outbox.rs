//! Pipeline B's tables: the business table (`applications`) and the outbox, written in one
//! TransactWriteItems; the relay's due-index query, conditional claim and conditional settle.
//!
//! Outbox item: `id` (key), `event_id`, `detail_type`, `detail` (JSON text), `status`,
//! `attempts`, `created_at_ms`; while pending also `due_shard` (S) and `due_at` (N, ms) — the
//! keys of the sparse index `due`; while claimed `claim` (token); then `published_at_ms` and
//! `expires_at` (TTL, s) or `failed_at_ms`; `last_error` after a failed attempt.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem};
use serde_json::Value;
use steadfast_domain::outbox::{Claimed, NewRecord, OutboxStatus, Settle};
use steadfast_domain::ports::{ApplicationStore, OutboxStore, PortError, PortResult, Stored};

use crate::describe;
use crate::items::{due_ids, n, s, text, truncate, update_refused};

/// `OUTBOX_SHARDS` (1–100, default 8): the due index's shards. The writer and the relay must
/// agree, so both read it here.
pub fn shards_from(env: &crate::Env) -> Result<u32, crate::ConfigError> {
    Ok(env.whole_in("OUTBOX_SHARDS", 8, 1, 100)? as u32)
}

pub struct DynamoApplications {
    pub client: aws_sdk_dynamodb::Client,
    pub applications_table: String,
    pub outbox_table: String,
}

impl ApplicationStore for DynamoApplications {
    async fn store(
        &self,
        id: &str,
        application: &Value,
        message_id: &str,
        record: &NewRecord,
    ) -> PortResult<Stored> {
        let op = || format!("TransactWriteItems application {id}");
        let body: AttributeValue = serde_dynamo::to_attribute_value(application)
            .map_err(|e| PortError::new(op(), format!("encode application: {e}")))?;
        let business = Put::builder()
            .table_name(&self.applications_table)
            .item("id", s(id))
            .item("application", body)
            .item("message_id", s(message_id))
            .item("received_at_ms", n(record.created_at_ms))
            .condition_expression("attribute_not_exists(id)")
            .build()
            .map_err(|e| PortError::new(op(), e))?;
        let outbox = Put::builder()
            .table_name(&self.outbox_table)
            .item("id", s(id))
            .item("event_id", s(&record.event_id))
            .item("detail_type", s(&record.detail_type))
            .item("detail", s(&record.detail))
            .item("status", s(OutboxStatus::ToBeProcessed.as_str()))
            .item("attempts", n(0))
            .item("created_at_ms", n(record.created_at_ms))
            .item("due_shard", s(record.shard.to_string()))
            .item("due_at", n(record.created_at_ms))
            .condition_expression("attribute_not_exists(id)")
            .build()
            .map_err(|e| PortError::new(op(), e))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(business).build())
            .transact_items(TransactWriteItem::builder().put(outbox).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(Stored::New),
            Err(SdkError::ServiceError(e)) if already_exists(e.err()) => Ok(Stored::AlreadyExists),
            Err(e) => Err(PortError::new(op(), describe(&e))),
        }
    }
}

/// A transaction cancelled only because a condition failed: the application exists.
fn already_exists(e: &TransactWriteItemsError) -> bool {
    match e {
        TransactWriteItemsError::TransactionCanceledException(t) => {
            let reasons = t.cancellation_reasons();
            !reasons.is_empty()
                && reasons
                    .iter()
                    .any(|r| r.code() == Some("ConditionalCheckFailed"))
                && reasons.iter().all(|r| {
                    matches!(
                        r.code(),
                        Some("ConditionalCheckFailed") | Some("None") | None
                    )
                })
        }
        _ => false,
    }
}

pub struct DynamoOutbox {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl OutboxStore for DynamoOutbox {
    async fn due(&self, shard: u32, now_ms: u64, limit: usize) -> PortResult<Vec<String>> {
        due_ids(&self.client, &self.table, shard, now_ms, limit).await
    }

    async fn claim(
        &self,
        id: &str,
        now_ms: u64,
        lease_until_ms: u64,
        token: &str,
    ) -> PortResult<Option<Claimed>> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(id))
            .condition_expression("attribute_exists(due_shard) AND due_at <= :now")
            .update_expression(
                "SET #status = :inprogress, due_at = :lease, claim = :token, claimed_at_ms = :now, attempts = attempts + :one",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":lease", n(lease_until_ms))
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":inprogress", s(OutboxStatus::InProgress.as_str()))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                Ok(Some(Claimed {
                    id: id.to_owned(),
                    event_id: text(&item, "event_id"),
                    detail_type: text(&item, "detail_type"),
                    detail: text(&item, "detail"),
                    attempts: text(&item, "attempts").parse().unwrap_or(1),
                    token: token.to_owned(),
                    created_at_ms: text(&item, "created_at_ms").parse().unwrap_or(0),
                }))
            }
            Err(e) if update_refused(&e) => Ok(None),
            Err(e) => Err(PortError::new(
                format!("UpdateItem claim {id}"),
                describe(&e),
            )),
        }
    }

    async fn settle(&self, c: &Claimed, how: &Settle) -> PortResult<bool> {
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(&c.id))
            .condition_expression("claim = :token AND #status = :inprogress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":token", s(&c.token))
            .expression_attribute_values(":inprogress", s(OutboxStatus::InProgress.as_str()));
        let req = match how {
            Settle::Processed { published_at_ms, expires_at_s } => req
                .update_expression("SET #status = :st, published_at_ms = :at, expires_at = :exp REMOVE due_shard, due_at, claim")
                .expression_attribute_values(":st", s(OutboxStatus::Processed.as_str()))
                .expression_attribute_values(":at", n(published_at_ms))
                .expression_attribute_values(":exp", n(expires_at_s)),
            Settle::Retry { due_at_ms, error } => req
                .update_expression("SET #status = :st, due_at = :due, last_error = :err REMOVE claim")
                .expression_attribute_values(":st", s(OutboxStatus::ToBeProcessed.as_str()))
                .expression_attribute_values(":due", n(due_at_ms))
                .expression_attribute_values(":err", s(truncate(error))),
            Settle::Failed { error } => req
                .update_expression("SET #status = :st, failed_at_ms = :at, last_error = :err REMOVE due_shard, due_at, claim")
                .expression_attribute_values(":st", s(OutboxStatus::Failed.as_str()))
                .expression_attribute_values(":at", n(crate::now_ms()))
                .expression_attribute_values(":err", s(truncate(error))),
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if update_refused(&e) => Ok(false),
            Err(e) => Err(PortError::new(
                format!("UpdateItem settle {}", c.id),
                describe(&e),
            )),
        }
    }
}
