//! The leased-record tables (outbox, inbox) in DynamoDB: the query of the sparse, sharded `due`
//! index, the conditional claim, and the settle conditional on the claim token (and, for a
//! versioned record's `Done`, on its version).
//!
//! Attributes every leased item has: `id` (key), `status`, `attempts`; while pending
//! `due_shard` (S) and `due_at` (N, ms), the keys of the index; while claimed `claim` (token)
//! and `claimed_at_ms`; `last_error` after a failed attempt; `failed_at_ms` once `Failed`; the
//! time of a `Done` under the table's own name (`published_at_ms`, `processed_at_ms`), with
//! `expires_at` (TTL, s) when the record is kept for a while only, and `delivered_version` for
//! versioned records.

use std::marker::PhantomData;

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::ReturnValue;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use steadfast_domain::lease::{Claimed, Leased, Settle, Settled, Status};
use steadfast_domain::ports::{LeasedStore, PortResult};

use crate::items::{decode, n, s, truncate};
use crate::{or_refused, SdkResultExt};

/// Name of the sparse, sharded index of pending records (keys `due_shard` S, `due_at` N).
pub const DUE_INDEX: &str = "due";

/// A table of leased records of type `R`, decoded from the claimed item's attributes.
pub struct DynamoLeased<R> {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
    /// The attribute a `Done` settle stamps with its time.
    pub done_at: &'static str,
    record: PhantomData<fn() -> R>,
}

impl<R> DynamoLeased<R> {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String, done_at: &'static str) -> Self {
        DynamoLeased {
            client,
            table,
            done_at,
            record: PhantomData,
        }
    }

    fn held(&self, id: &str, token: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("id", s(id))
            .condition_expression(CLAIM_HELD)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":inprogress", s(Status::InProgress.as_str()))
    }
}

const CLAIM_HELD: &str = "claim = :token AND #status = :inprogress";

/// The lifecycle's own attribute of a claimed item.
#[derive(Deserialize)]
struct Attempts {
    attempts: u32,
}

impl<R: Leased + DeserializeOwned> LeasedStore for DynamoLeased<R> {
    type Record = R;

    async fn due(&self, shard: u32, now_ms: u64, limit: usize) -> PortResult<Vec<String>> {
        #[derive(Deserialize)]
        struct Key {
            id: String,
        }
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("due_shard = :s AND due_at <= :now")
            .expression_attribute_values(":s", s(shard.to_string()))
            .expression_attribute_values(":now", n(now_ms))
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .port(|| format!("Query {} shard {shard}", self.table))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|item| decode::<Key>(&self.table, "(due index)", item).map(|k| k.id))
            .collect()
    }

    async fn claim(
        &self,
        id: &str,
        now_ms: u64,
        lease_until_ms: u64,
        token: &str,
    ) -> PortResult<Option<Claimed<R>>> {
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
            .expression_attribute_values(":inprogress", s(Status::InProgress.as_str()))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .port(|| format!("UpdateItem claim {id} in {}", self.table))
            .map(Some);
        let Some(out) = or_refused(result, None)? else {
            return Ok(None);
        };
        let item = out.attributes.unwrap_or_default();
        let decoded = decode::<Attempts>(&self.table, id, item.clone())
            .and_then(|a| Ok((a.attempts, decode::<R>(&self.table, id, item)?)));
        match decoded {
            Ok((attempts, record)) => Ok(Some(Claimed {
                id: id.to_owned(),
                attempts,
                token: token.to_owned(),
                record,
            })),
            Err(e) => {
                self.unreadable(id, token, &e).await;
                Err(e)
            }
        }
    }

    async fn settle(&self, c: &Claimed<R>, how: &Settle) -> PortResult<Settled> {
        let op = || format!("UpdateItem settle {} in {}", c.id, self.table);
        let req = self.held(&c.id, &c.token);
        let version = c.record.version();
        let req = match how {
            Settle::Done {
                at_ms,
                expires_at_s,
            } => done(req, self.done_at, *at_ms, *expires_at_s, version),
            Settle::Retry { due_at_ms, error } => req
                .update_expression(
                    "SET #status = :st, due_at = :due, last_error = :err REMOVE claim",
                )
                .expression_attribute_values(":st", s(Status::ToBeProcessed.as_str()))
                .expression_attribute_values(":due", n(due_at_ms))
                .expression_attribute_values(":err", s(truncate(error))),
            Settle::Release { due_at_ms } => req
                .update_expression(
                    "SET #status = :st, due_at = :due, attempts = attempts - :one REMOVE claim",
                )
                .expression_attribute_values(":st", s(Status::ToBeProcessed.as_str()))
                .expression_attribute_values(":due", n(due_at_ms))
                .expression_attribute_values(":one", n(1)),
            Settle::Failed { error } => failed(req, error),
        };
        // A versioned record is settled only while the claimed version is still the stored one.
        let req = match version {
            Some(v) => req
                .condition_expression(format!("{CLAIM_HELD} AND version = :v"))
                .expression_attribute_values(":v", n(v)),
            None => req,
        };
        let sent = req.send().await.port(op).map(|_| Some(Settled::Done));
        match (or_refused(sent, None)?, version) {
            (Some(settled), _) => Ok(settled),
            (None, None) => Ok(Settled::LeaseLost),
            // Refused: the lease is lost, or a newer version arrived meanwhile.
            (None, Some(v)) => {
                let delivered = match how {
                    Settle::Done { at_ms, .. } => Some(*at_ms),
                    _ => None,
                };
                self.newer(c, v, delivered).await
            }
        }
    }
}

impl<R> DynamoLeased<R> {
    /// A claimed item that cannot be read can never be delivered: `Failed` with the reason,
    /// so it is not reclaimed after every lease (the claim's caller reports the error).
    async fn unreadable(&self, id: &str, token: &str, why: &steadfast_domain::ports::PortError) {
        let set = failed(self.held(id, token), &why.to_string()).send().await;
        if let Err(e) = set {
            tracing::error!(table = %self.table, id, error = %crate::describe(&e), "an unreadable item could not be set Failed; it is claimed again after its lease");
        }
    }

    /// A claimed version that is no longer the stored one, while the claim is still ours:
    /// the newer version is due now with its attempts reset, whatever became of the old one
    /// (`delivered` at, when it was delivered).
    async fn newer(
        &self,
        c: &Claimed<R>,
        version: u64,
        delivered: Option<u64>,
    ) -> PortResult<Settled> {
        let now = delivered.unwrap_or_else(crate::now_ms);
        let stamp = match delivered {
            Some(_) => format!(", delivered_version = :v, {} = :at", self.done_at),
            None => String::new(),
        };
        let req = self
            .held(&c.id, &c.token)
            .update_expression(format!(
                "SET #status = :st, due_at = :at, attempts = :zero{stamp} REMOVE claim, last_error"
            ))
            .expression_attribute_values(":st", s(Status::ToBeProcessed.as_str()))
            .expression_attribute_values(":at", n(now))
            .expression_attribute_values(":zero", n(0));
        let req = match delivered {
            Some(_) => req.expression_attribute_values(":v", n(version)),
            None => req,
        };
        let sent = req
            .send()
            .await
            .port(|| format!("UpdateItem settle {} in {}", c.id, self.table))
            .map(|_| Settled::NewerVersion);
        or_refused(sent, Settled::LeaseLost)
    }
}

/// The `Failed` update: out of the index, with the reason.
fn failed(req: UpdateItemFluentBuilder, error: &str) -> UpdateItemFluentBuilder {
    req.update_expression(
        "SET #status = :st, failed_at_ms = :at, last_error = :err REMOVE due_shard, due_at, claim",
    )
    .expression_attribute_values(":st", s(Status::Failed.as_str()))
    .expression_attribute_values(":at", n(crate::now_ms()))
    .expression_attribute_values(":err", s(truncate(error)))
}

/// The `Done` update: `Processed`, stamped, out of the index; a versioned record notes the
/// version delivered (`:v`, bound by the caller's version condition).
fn done(
    req: UpdateItemFluentBuilder,
    done_at: &str,
    at_ms: u64,
    expires_at_s: Option<u64>,
    version: Option<u64>,
) -> UpdateItemFluentBuilder {
    let expires = if expires_at_s.is_some() {
        ", expires_at = :exp"
    } else {
        ""
    };
    let delivered = if version.is_some() {
        ", delivered_version = :v"
    } else {
        ""
    };
    let req = req
        .update_expression(format!(
            "SET #status = :st, {done_at} = :at{expires}{delivered} REMOVE due_shard, due_at, claim, last_error"
        ))
        .expression_attribute_values(":st", s(Status::Processed.as_str()))
        .expression_attribute_values(":at", n(at_ms));
    match expires_at_s {
        Some(exp) => req.expression_attribute_values(":exp", n(exp)),
        None => req,
    }
}
