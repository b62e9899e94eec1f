//! What the DynamoDB record stores (outbox, inbox) share: attribute values, reading an item's
//! fields, telling a refused conditional write from a failure, and the query of the sparse,
//! sharded `due` index both tables carry.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use steadfast_domain::ports::{PortError, PortResult};

use crate::describe;

/// Name of the sparse, sharded index of pending records (keys `due_shard` S, `due_at` N).
pub const DUE_INDEX: &str = "due";

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Field `k` of `item` as text (a string or a number); empty when absent.
pub(crate) fn text(item: &HashMap<String, AttributeValue>, k: &str) -> String {
    match item.get(k) {
        Some(AttributeValue::S(v)) | Some(AttributeValue::N(v)) => v.clone(),
        _ => String::new(),
    }
}

/// Field `k` of `item` as a whole number; 0 when absent or not one.
pub(crate) fn number(item: &HashMap<String, AttributeValue>, k: &str) -> u64 {
    text(item, k).parse().unwrap_or(0)
}

/// An UpdateItem refused by its condition (not a failure: someone else got there first).
pub(crate) fn update_refused<R>(e: &SdkError<UpdateItemError, R>) -> bool {
    matches!(e, SdkError::ServiceError(se) if matches!(se.err(), UpdateItemError::ConditionalCheckFailedException(_)))
}

/// A PutItem refused by its condition.
pub(crate) fn put_refused<R>(e: &SdkError<PutItemError, R>) -> bool {
    matches!(e, SdkError::ServiceError(se) if matches!(se.err(), PutItemError::ConditionalCheckFailedException(_)))
}

/// An error text cut to what an item attribute should hold.
pub(crate) fn truncate(s: &str) -> String {
    s.chars().take(1000).collect()
}

/// Ids of records in `shard` of `table`'s due index whose `due_at` has come, oldest first.
pub(crate) async fn due_ids(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    shard: u32,
    now_ms: u64,
    limit: usize,
) -> PortResult<Vec<String>> {
    let out = client
        .query()
        .table_name(table)
        .index_name(DUE_INDEX)
        .key_condition_expression("due_shard = :s AND due_at <= :now")
        .expression_attribute_values(":s", s(shard.to_string()))
        .expression_attribute_values(":now", n(now_ms))
        .limit(limit.clamp(1, 1000) as i32)
        .send()
        .await
        .map_err(|e| PortError::new(format!("Query {table} shard {shard}"), describe(&e)))?;
    Ok(out
        .items()
        .iter()
        .map(|i| text(i, "id"))
        .filter(|id| !id.is_empty())
        .collect())
}
