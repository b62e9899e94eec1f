//! Pipeline B's tables: the business table (`applications`) and the outbox, written in one
//! TransactWriteItems. The relay reads and settles the outbox as a leased-record table
//! ([`crate::leased`]).
//!
//! Outbox item: `id` (key), `event_id`, `detail_type`, `detail` (JSON text), `created_at_ms`,
//! `correlation_id` (of the message the record came from, when known), and the lifecycle's
//! attributes (`status`, `attempts`, `due_shard`/`due_at` while pending,
//! `published_at_ms` and `expires_at` (TTL, s) once published).

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde_json::Value;
use steadfast_domain::lease::Status;
use steadfast_domain::outbox::{NewRecord, OutboxRecord};
use steadfast_domain::ports::{ApplicationStore, PortError, PortResult, Stored};

use crate::error::port_error;
use crate::items::{n, s};
use crate::leased::DynamoLeased;

/// `OUTBOX_SHARDS` (1–100, default 8): the due index's shards. The writer and the relay must
/// agree, so both read it here.
pub fn shards_from(env: &crate::Env) -> Result<u32, crate::ConfigError> {
    Ok(env.whole_in("OUTBOX_SHARDS", 8, 1, 100)? as u32)
}

/// The outbox as the relay reads and settles it.
pub fn outbox(client: aws_sdk_dynamodb::Client, table: String) -> DynamoLeased<OutboxRecord> {
    DynamoLeased::new(client, table, "published_at_ms")
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
            .map_err(|e| PortError::new(op(), format!("encode application: {e}")).caused_by(e))?;
        let business = Put::builder()
            .table_name(&self.applications_table)
            .item("id", s(id))
            .item("application", body)
            .item("message_id", s(message_id))
            .item("received_at_ms", n(record.created_at_ms))
            .condition_expression("attribute_not_exists(id)")
            .build()
            .map_err(|e| PortError::new(op(), &e).caused_by(e))?;
        let outbox = Put::builder()
            .table_name(&self.outbox_table)
            .item("id", s(id))
            .item("event_id", s(&record.event_id))
            .item("detail_type", s(&record.detail_type))
            .item("detail", s(&record.detail))
            .item("status", s(Status::ToBeProcessed.as_str()))
            .item("attempts", n(0))
            .item("created_at_ms", n(record.created_at_ms))
            .item("due_shard", s(record.shard.to_string()))
            .item("due_at", n(record.created_at_ms));
        let outbox = match &record.correlation_id {
            Some(cid) => outbox.item("correlation_id", s(cid)),
            None => outbox,
        }
        .condition_expression("attribute_not_exists(id)")
        .build()
        .map_err(|e| PortError::new(op(), &e).caused_by(e))?;
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
            Err(e) => Err(port_error(op(), e)),
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
