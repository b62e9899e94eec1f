//! Pipeline C's table: the inbox. One item per record id (`type/key`), written only with
//! conditions on what was read, so concurrent receivers and processors never overwrite each
//! other's work. The receiver merges copies here; the processor claims and settles records as
//! a leased-record table ([`crate::leased`]).
//!
//! Item: `id` (key), `entity`, `version`, `hash`, `changed_at_ms`, `record` (canonical JSON
//! text), `status`, `attempts`, `message_id` and `correlation_id` (the last accepted copy's),
//! `received_at_ms`, `updated_at_ms`; while pending `due_shard` (S) and `due_at` (N, ms), the
//! keys of the sparse index `due`; while claimed `claim` (token); after a delivery
//! `delivered_version` and `processed_at_ms`; `last_error` after a failed claim. Records are
//! kept: the stored hash and timestamp are what tells a late copy from a change.

use steadfast_domain::inbox::{Current, InboxRecord};
use steadfast_domain::lease::Status;
use steadfast_domain::ports::{InboxStore, InboxWrite, PortResult};

use crate::items::{decode, n, s};
use crate::leased::DynamoLeased;
use crate::{or_refused, SdkResultExt};

/// `INBOX_SHARDS` (1–100, default 4): the due index's shards. Receiver and processor agree.
pub fn shards_from(env: &crate::Env) -> Result<u32, crate::ConfigError> {
    Ok(env.whole_in("INBOX_SHARDS", 4, 1, 100)? as u32)
}

/// The inbox as the processor reads and settles it.
pub fn records(client: aws_sdk_dynamodb::Client, table: String) -> DynamoLeased<InboxRecord> {
    DynamoLeased::new(client, table, "processed_at_ms")
}

/// The inbox as the receiver merges copies into it.
pub struct DynamoInbox {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl InboxStore for DynamoInbox {
    async fn current(&self, id: &str) -> PortResult<Option<Current>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", s(id))
            .consistent_read(true)
            .projection_expression("version, #h, changed_at_ms, #status")
            .expression_attribute_names("#h", "hash")
            .expression_attribute_names("#status", "status")
            .send()
            .await
            .port(|| format!("GetItem {id} from {}", self.table))?;
        out.item
            .map(|item| decode(&self.table, id, item))
            .transpose()
    }

    async fn insert(&self, w: &InboxWrite<'_>) -> PortResult<bool> {
        let i = w.incoming;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("id", s(&i.id))
            .item("entity", s(&i.entity))
            .item("version", n(1))
            .item("hash", s(&i.hash))
            .item("changed_at_ms", n(i.changed_at_ms))
            .item("record", s(&i.record))
            .item("status", s(Status::ToBeProcessed.as_str()))
            .item("attempts", n(0))
            .item("message_id", s(w.message_id))
            .item("correlation_id", s(w.correlation_id))
            .item("received_at_ms", n(w.now_ms))
            .item("updated_at_ms", n(w.now_ms))
            .item("due_shard", s(w.shard.to_string()))
            .item("due_at", n(w.now_ms))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await
            .port(|| format!("PutItem {} into {}", i.id, self.table))
            .map(|_| true);
        or_refused(result, false)
    }

    async fn replace(
        &self,
        w: &InboxWrite<'_>,
        seen: &Current,
        version: u64,
        status: Status,
        fresh: bool,
    ) -> PortResult<bool> {
        let i = w.incoming;
        let set = "SET #record = :record, #h = :hash, changed_at_ms = :ts, version = :version, \
                   #status = :status, message_id = :mid, correlation_id = :cid, \
                   updated_at_ms = :now";
        let update = if fresh {
            format!("{set}, attempts = :zero, due_shard = :shard, due_at = :now REMOVE last_error")
        } else {
            format!("{set}, due_shard = if_not_exists(due_shard, :shard), due_at = if_not_exists(due_at, :now)")
        };
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(&i.id))
            .condition_expression("version = :seen AND #status = :seen_status")
            .update_expression(update)
            .expression_attribute_names("#record", "record")
            .expression_attribute_names("#h", "hash")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":seen", n(seen.version))
            .expression_attribute_values(":seen_status", s(seen.status.as_str()))
            .expression_attribute_values(":record", s(&i.record))
            .expression_attribute_values(":hash", s(&i.hash))
            .expression_attribute_values(":ts", n(i.changed_at_ms))
            .expression_attribute_values(":version", n(version))
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":mid", s(w.message_id))
            .expression_attribute_values(":cid", s(w.correlation_id))
            .expression_attribute_values(":now", n(w.now_ms))
            .expression_attribute_values(":shard", s(w.shard.to_string()));
        if fresh {
            req = req.expression_attribute_values(":zero", n(0));
        }
        let result = req
            .send()
            .await
            .port(|| format!("UpdateItem replace {} in {}", i.id, self.table))
            .map(|_| true);
        or_refused(result, false)
    }

    async fn touch(&self, id: &str, seen: &Current, changed_at_ms: u64) -> PortResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(id))
            .condition_expression("version = :seen AND #h = :hash")
            .update_expression("SET changed_at_ms = :ts")
            .expression_attribute_names("#h", "hash")
            .expression_attribute_values(":seen", n(seen.version))
            .expression_attribute_values(":hash", s(&seen.hash))
            .expression_attribute_values(":ts", n(changed_at_ms))
            .send()
            .await
            .port(|| format!("UpdateItem touch {id} in {}", self.table))
            .map(|_| true);
        or_refused(result, false)
    }
}

/// The entity configuration, checked at cold start: `INBOX_ENTITIES` (JSON, see
/// [`steadfast_domain::inbox::EntitySpec`]), `INBOX_TYPE_POINTER` (default `/entity`),
/// `INBOX_MAX_RECORD_BYTES` (default 350000).
pub fn config_from(env: &crate::Env) -> Result<steadfast_domain::InboxConfig, crate::ConfigError> {
    use steadfast_domain::inbox::DEFAULT_MAX_RECORD_BYTES;
    let entities = env.required("INBOX_ENTITIES")?;
    let pointer = env
        .optional("INBOX_TYPE_POINTER")
        .unwrap_or_else(|| "/entity".into());
    let max = env.whole_in(
        "INBOX_MAX_RECORD_BYTES",
        DEFAULT_MAX_RECORD_BYTES as u64,
        64,
        DEFAULT_MAX_RECORD_BYTES as u64,
    )? as usize;
    steadfast_domain::InboxConfig::parse(&pointer, &entities, max).map_err(|why| {
        if why.starts_with("type pointer") {
            env.invalid("INBOX_TYPE_POINTER", &pointer, why)
        } else {
            let shown: String = entities.chars().take(80).collect();
            env.invalid("INBOX_ENTITIES", &shown, why)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_entity_configuration_fails_naming_the_variable_and_the_field() {
        let env = crate::Env::from_pairs(&[(
            "INBOX_ENTITIES",
            r#"{"customer":{"key":["/no"],"noise":["/no"],"endpoint":"/c"}}"#,
        )]);
        let e = config_from(&env).unwrap_err().to_string();
        assert!(e.starts_with("environment variable INBOX_ENTITIES="), "{e}");
        assert!(
            e.ends_with("entity `customer`, noise: `/no` would remove the key field `/no`"),
            "{e}"
        );
        let missing = config_from(&crate::Env::from_pairs(&[]))
            .unwrap_err()
            .to_string();
        assert_eq!(missing, "environment variable INBOX_ENTITIES is not set");
        let env = crate::Env::from_pairs(&[
            (
                "INBOX_ENTITIES",
                r#"{"customer":{"key":["/no"],"endpoint":"/c"}}"#,
            ),
            ("INBOX_MAX_RECORD_BYTES", "10"),
        ]);
        assert!(config_from(&env)
            .unwrap_err()
            .to_string()
            .contains("INBOX_MAX_RECORD_BYTES"));
    }
}
