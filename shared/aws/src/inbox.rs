//! Pipeline C's table: the inbox. One item per record id (`type/key`), written only with
//! conditions on what was read, so concurrent receivers and processors never overwrite each
//! other's work.
//!
//! Item: `id` (key), `entity`, `version`, `hash`, `changed_at_ms`, `record` (canonical JSON
//! text), `status`, `attempts`, `message_id` (the last accepted copy's), `received_at_ms`,
//! `updated_at_ms`; while pending `due_shard` (S) and `due_at` (N, ms), the keys of the sparse
//! index `due`; while claimed `claim` (token); after a delivery `delivered_version` and
//! `processed_at_ms`; `last_error` after a failed claim. Records are kept: the stored hash and
//! timestamp are what tells a late copy from a change.

use aws_sdk_dynamodb::types::ReturnValue;
use steadfast_domain::inbox::{Current, InboxClaimed, InboxSettle, InboxStatus, Settled};
use steadfast_domain::ports::{InboxStore, InboxWrite, PortError, PortResult};

use crate::describe;
use crate::items::{due_ids, n, number, put_refused, s, text, truncate, update_refused};

/// `INBOX_SHARDS` (1–100, default 4): the due index's shards. Receiver and processor agree.
pub fn shards_from(env: &crate::Env) -> Result<u32, crate::ConfigError> {
    Ok(env.whole_in("INBOX_SHARDS", 4, 1, 100)? as u32)
}

pub struct DynamoInbox {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl DynamoInbox {
    fn claimed_only(
        &self,
        c: &InboxClaimed,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("id", s(&c.id))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":token", s(&c.token))
            .expression_attribute_values(":inprogress", s(InboxStatus::InProgress.as_str()))
    }
}

const CLAIM_HELD: &str = "claim = :token AND #status = :inprogress";

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
            .map_err(|e| {
                PortError::new(format!("GetItem {id} from {}", self.table), describe(&e))
            })?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let status = InboxStatus::parse(&text(&item, "status")).ok_or_else(|| {
            PortError::new(
                format!("decode {id} from {}", self.table),
                format!("unknown status `{}`", text(&item, "status")),
            )
        })?;
        Ok(Some(Current {
            version: number(&item, "version"),
            hash: text(&item, "hash"),
            changed_at_ms: number(&item, "changed_at_ms"),
            status,
        }))
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
            .item("status", s(InboxStatus::ToBeProcessed.as_str()))
            .item("attempts", n(0))
            .item("message_id", s(w.message_id))
            .item("received_at_ms", n(w.now_ms))
            .item("updated_at_ms", n(w.now_ms))
            .item("due_shard", s(w.shard.to_string()))
            .item("due_at", n(w.now_ms))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if put_refused(&e) => Ok(false),
            Err(e) => Err(PortError::new(format!("PutItem {}", i.id), describe(&e))),
        }
    }

    async fn replace(
        &self,
        w: &InboxWrite<'_>,
        seen: &Current,
        version: u64,
        status: InboxStatus,
        fresh: bool,
    ) -> PortResult<bool> {
        let i = w.incoming;
        let set = "SET #record = :record, #h = :hash, changed_at_ms = :ts, version = :version, \
                   #status = :status, message_id = :mid, updated_at_ms = :now";
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
            .expression_attribute_values(":now", n(w.now_ms))
            .expression_attribute_values(":shard", s(w.shard.to_string()));
        if fresh {
            req = req.expression_attribute_values(":zero", n(0));
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if update_refused(&e) => Ok(false),
            Err(e) => Err(PortError::new(
                format!("UpdateItem replace {}", i.id),
                describe(&e),
            )),
        }
    }

    async fn due(&self, shard: u32, now_ms: u64, limit: usize) -> PortResult<Vec<String>> {
        due_ids(&self.client, &self.table, shard, now_ms, limit).await
    }

    async fn claim(
        &self,
        id: &str,
        now_ms: u64,
        lease_until_ms: u64,
        token: &str,
    ) -> PortResult<Option<InboxClaimed>> {
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
            .expression_attribute_values(":inprogress", s(InboxStatus::InProgress.as_str()))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                Ok(Some(InboxClaimed {
                    id: id.to_owned(),
                    entity: text(&item, "entity"),
                    version: number(&item, "version"),
                    changed_at_ms: number(&item, "changed_at_ms"),
                    record: text(&item, "record"),
                    attempts: number(&item, "attempts") as u32,
                    token: token.to_owned(),
                }))
            }
            Err(e) if update_refused(&e) => Ok(None),
            Err(e) => Err(PortError::new(
                format!("UpdateItem claim {id}"),
                describe(&e),
            )),
        }
    }

    async fn settle(&self, c: &InboxClaimed, how: &InboxSettle) -> PortResult<Settled> {
        let op = || format!("UpdateItem settle {}", c.id);
        let sent = match how {
            InboxSettle::Delivered { at_ms } => {
                let processed = self
                    .claimed_only(c)
                    .condition_expression(format!("{CLAIM_HELD} AND version = :v"))
                    .update_expression("SET #status = :st, processed_at_ms = :at, delivered_version = :v REMOVE due_shard, due_at, claim, last_error")
                    .expression_attribute_values(":st", s(InboxStatus::Processed.as_str()))
                    .expression_attribute_values(":at", n(at_ms))
                    .expression_attribute_values(":v", n(c.version))
                    .send()
                    .await;
                match processed {
                    Ok(_) => return Ok(Settled::Done),
                    Err(e) if update_refused(&e) => {}
                    Err(e) => return Err(PortError::new(op(), describe(&e))),
                }
                // Still ours, but a newer version arrived: due now, so it is delivered next.
                let again = self
                    .claimed_only(c)
                    .condition_expression(CLAIM_HELD)
                    .update_expression("SET #status = :st, due_at = :at, delivered_version = :v, processed_at_ms = :at, attempts = :zero REMOVE claim, last_error")
                    .expression_attribute_values(":st", s(InboxStatus::ToBeProcessed.as_str()))
                    .expression_attribute_values(":at", n(at_ms))
                    .expression_attribute_values(":v", n(c.version))
                    .expression_attribute_values(":zero", n(0))
                    .send()
                    .await;
                return match again {
                    Ok(_) => Ok(Settled::NewerVersion),
                    Err(e) if update_refused(&e) => Ok(Settled::LeaseLost),
                    Err(e) => Err(PortError::new(op(), describe(&e))),
                };
            }
            InboxSettle::Retry { due_at_ms, error } => self
                .claimed_only(c)
                .condition_expression(CLAIM_HELD)
                .update_expression("SET #status = :st, due_at = :due, last_error = :err REMOVE claim")
                .expression_attribute_values(":st", s(InboxStatus::ToBeProcessed.as_str()))
                .expression_attribute_values(":due", n(due_at_ms))
                .expression_attribute_values(":err", s(truncate(error)))
                .send()
                .await,
            InboxSettle::Release { due_at_ms } => self
                .claimed_only(c)
                .condition_expression(CLAIM_HELD)
                .update_expression("SET #status = :st, due_at = :due, attempts = attempts - :one REMOVE claim")
                .expression_attribute_values(":st", s(InboxStatus::ToBeProcessed.as_str()))
                .expression_attribute_values(":due", n(due_at_ms))
                .expression_attribute_values(":one", n(1))
                .send()
                .await,
            InboxSettle::Failed { error } => self
                .claimed_only(c)
                .condition_expression(CLAIM_HELD)
                .update_expression("SET #status = :st, failed_at_ms = :at, last_error = :err REMOVE due_shard, due_at, claim")
                .expression_attribute_values(":st", s(InboxStatus::Failed.as_str()))
                .expression_attribute_values(":at", n(crate::now_ms()))
                .expression_attribute_values(":err", s(truncate(error)))
                .send()
                .await,
        };
        match sent {
            Ok(_) => Ok(Settled::Done),
            Err(e) if update_refused(&e) => Ok(Settled::LeaseLost),
            Err(e) => Err(PortError::new(op(), describe(&e))),
        }
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
