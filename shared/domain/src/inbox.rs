//! Pipeline C, the inbox: from a noisy source (an ERP that resends the same record under new
//! message ids, with changing export metadata, sometimes out of order) to exactly one clean
//! delivery per real change.
//!
//! Per entity type the configuration names the business key (JSON pointers, composite keys
//! allowed), the source timestamp that orders versions, the noise fields that never count as a
//! change, and the portal endpoint. A message becomes an [`Incoming`]: the record's id
//! (`type/key`), its clean record (the message without its noise fields) and a content hash
//! over the canonical form of that record without noise and timestamp, so key order,
//! whitespace, `1.0` vs `1`, message ids and export times never make two copies differ.
//!
//! The merge rules ([`merge`]), applied with conditional writes on the stored version:
//!
//! ```text
//!   no record yet                                        → Insert: ToBeProcessed, version 1
//!   same hash as stored                                  → Duplicate: dropped
//!   different hash, older (timestamp, hash) than stored  → Stale: dropped
//!   different hash otherwise                             → Replace: version + 1, ToBeProcessed
//!                                                          (an InProgress record stays InProgress)
//! ```
//!
//! Equal timestamps with different content are ordered by their hash, so every arrival order
//! of the same copies ends in the same stored version (a refinement of DESIGN §4, which would
//! let the last arrival win and so depend on SQS's order).
//!
//! The record lifecycle (the processor's side):
//!
//! ```text
//!   ToBeProcessed ──claim (due)──▶ InProgress ──delivered, version unchanged──▶ Processed
//!        ▲                              │ ──delivered, version changed meanwhile──▶ ToBeProcessed
//!        └── transient failure / released ┤
//!                                         └── refused (4xx) or claimed too often ──▶ Failed
//! ```
//!
//! A new version of a `Processed` or `Failed` record makes it `ToBeProcessed` again.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::backoff::Backoff;

/// Default largest clean record kept (DynamoDB items hold at most 400 KB, attributes included).
pub const DEFAULT_MAX_RECORD_BYTES: usize = 350_000;
/// SQS's own largest message body (1 MiB).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// Largest `type/key` id (DynamoDB allows 2048 bytes for a partition key).
pub const MAX_ID_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InboxStatus {
    ToBeProcessed,
    InProgress,
    Processed,
    Failed,
}

impl InboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InboxStatus::ToBeProcessed => "ToBeProcessed",
            InboxStatus::InProgress => "InProgress",
            InboxStatus::Processed => "Processed",
            InboxStatus::Failed => "Failed",
        }
    }
    pub fn parse(s: &str) -> Option<InboxStatus> {
        [
            InboxStatus::ToBeProcessed,
            InboxStatus::InProgress,
            InboxStatus::Processed,
            InboxStatus::Failed,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

// ---- configuration ----------------------------------------------------------------------

/// One entity type as configured (`INBOX_ENTITIES`, a JSON object of these by type name).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntitySpec {
    /// JSON pointers of the business key, in order (a composite key has several).
    pub key: Vec<String>,
    /// JSON pointer of the source's change timestamp (RFC 3339 text or epoch milliseconds).
    #[serde(default = "default_changed_at")]
    pub changed_at: String,
    /// JSON pointers of fields that are not business content (message ids, export times).
    #[serde(default)]
    pub noise: Vec<String>,
    /// Where the portal takes this type: an absolute URL, or a path under the portal's base URL.
    pub endpoint: String,
}

fn default_changed_at() -> String {
    "/changedAt".into()
}

/// The whole inbox configuration, checked at cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxConfig {
    /// Where a message names its entity type. `INBOX_TYPE_POINTER`, default `/entity`.
    pub type_pointer: String,
    pub entities: BTreeMap<String, EntitySpec>,
    /// Largest clean record accepted, bytes. `INBOX_MAX_RECORD_BYTES`.
    pub max_record_bytes: usize,
}

fn valid_pointer(p: &str) -> bool {
    p.starts_with('/') && p.len() > 1
}

/// `outer` covers `inner` when removing `outer` would remove `inner` too.
fn covers(outer: &str, inner: &str) -> bool {
    inner == outer || inner.starts_with(&format!("{outer}/"))
}

impl InboxConfig {
    /// Parses and checks the entity configuration. Every error names the entity and the field.
    pub fn parse(
        type_pointer: &str,
        entities_json: &str,
        max_record_bytes: usize,
    ) -> Result<InboxConfig, String> {
        if !valid_pointer(type_pointer) {
            return Err(format!(
                "type pointer `{type_pointer}` is not a JSON pointer (it must start with '/')"
            ));
        }
        let entities: BTreeMap<String, EntitySpec> = serde_json::from_str(entities_json)
            .map_err(|e| format!("not a JSON object of entity types: {e}"))?;
        if entities.is_empty() {
            return Err("no entity type configured".into());
        }
        for (name, spec) in &entities {
            let at = |field: &str| format!("entity `{name}`, {field}");
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!(
                    "entity type `{name}` must be letters, digits, '-' or '_' (it is part of every record id)"
                ));
            }
            if spec.key.is_empty() {
                return Err(format!("{}: no JSON pointer given", at("key")));
            }
            for p in spec.key.iter().chain(&spec.noise).chain([&spec.changed_at]) {
                if !valid_pointer(p) {
                    return Err(format!(
                        "{}: `{p}` is not a JSON pointer (it must start with '/')",
                        at("pointers")
                    ));
                }
            }
            for n in &spec.noise {
                if let Some(k) = spec.key.iter().find(|k| covers(n, k)) {
                    return Err(format!(
                        "{}: `{n}` would remove the key field `{k}`",
                        at("noise")
                    ));
                }
                if covers(n, &spec.changed_at) {
                    return Err(format!(
                        "{}: `{n}` would remove the timestamp `{}`",
                        at("noise"),
                        spec.changed_at
                    ));
                }
                if covers(n, type_pointer) {
                    return Err(format!(
                        "{}: `{n}` would remove the entity type `{type_pointer}`",
                        at("noise")
                    ));
                }
            }
            if spec.key.iter().any(|k| k == &spec.changed_at) {
                return Err(format!(
                    "{}: the timestamp `{}` cannot also be a key field",
                    at("changedAt"),
                    spec.changed_at
                ));
            }
            let e = spec.endpoint.trim();
            if e.is_empty()
                || !(e.starts_with('/') || e.starts_with("https://") || e.starts_with("http://"))
            {
                return Err(format!(
                    "{}: `{}` is neither an absolute URL nor a path starting with '/'",
                    at("endpoint"),
                    spec.endpoint
                ));
            }
        }
        if max_record_bytes < 64 {
            return Err(format!(
                "largest record {max_record_bytes} bytes is too small"
            ));
        }
        Ok(InboxConfig {
            type_pointer: type_pointer.to_owned(),
            entities,
            max_record_bytes,
        })
    }

    /// The endpoint of each entity type, paths resolved against `base` (the portal's URL).
    pub fn endpoints(&self, base: Option<&str>) -> Result<BTreeMap<String, String>, String> {
        self.entities
            .iter()
            .map(|(name, spec)| {
                let e = spec.endpoint.trim();
                let url = if e.starts_with('/') {
                    let base = base.filter(|b| !b.trim().is_empty()).ok_or_else(|| {
                        format!(
                            "entity `{name}`: endpoint `{e}` is a path, but no portal base URL is set"
                        )
                    })?;
                    format!("{}{e}", base.trim().trim_end_matches('/'))
                } else {
                    e.to_owned()
                };
                Ok((name.clone(), url))
            })
            .collect()
    }

    /// Reads one message. Every error says what is wrong and where.
    pub fn read(&self, raw: &str) -> Result<Incoming, InboxError> {
        if raw.len() > MAX_MESSAGE_BYTES {
            return Err(InboxError::TooLarge {
                size: raw.len(),
                limit: MAX_MESSAGE_BYTES,
            });
        }
        let mut body: Value =
            serde_json::from_str(raw).map_err(|e| InboxError::InvalidJson(e.to_string()))?;
        if !body.is_object() {
            return Err(InboxError::NotAnObject);
        }
        let entity = match body.pointer(&self.type_pointer) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            _ => {
                return Err(InboxError::MissingType {
                    pointer: self.type_pointer.clone(),
                })
            }
        };
        let spec = self
            .entities
            .get(&entity)
            .ok_or_else(|| InboxError::UnknownType {
                found: entity.clone(),
                known: self.entities.keys().cloned().collect::<Vec<_>>().join(", "),
            })?;
        let mut parts = Vec::with_capacity(spec.key.len());
        for p in &spec.key {
            let part = match body.pointer(p) {
                Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
                Some(Value::Number(n)) => n.to_string(),
                None | Some(Value::Null) => {
                    return Err(InboxError::MissingKey { pointer: p.clone() })
                }
                Some(_) => return Err(InboxError::BadKey { pointer: p.clone() }),
            };
            parts.push(escape_part(&part));
        }
        let id = format!("{entity}/{}", parts.join("/"));
        if id.len() > MAX_ID_BYTES {
            return Err(InboxError::KeyTooLong {
                size: id.len(),
                limit: MAX_ID_BYTES,
            });
        }
        let changed_at_ms = match body.pointer(&spec.changed_at) {
            None | Some(Value::Null) => {
                return Err(InboxError::BadTimestamp {
                    pointer: spec.changed_at.clone(),
                    why: "missing".into(),
                })
            }
            Some(v) => parse_timestamp(v).map_err(|why| InboxError::BadTimestamp {
                pointer: spec.changed_at.clone(),
                why,
            })?,
        };
        for n in &spec.noise {
            remove_pointer(&mut body, n);
        }
        let record = canonical(&body);
        if record.len() > self.max_record_bytes {
            return Err(InboxError::RecordTooLarge {
                size: record.len(),
                limit: self.max_record_bytes,
            });
        }
        let mut content = body;
        remove_pointer(&mut content, &spec.changed_at);
        let hash = hex::encode(Sha256::digest(canonical(&content).as_bytes()));
        Ok(Incoming {
            id,
            entity,
            hash,
            changed_at_ms,
            record,
        })
    }
}

/// Why a message can never be taken in. Each is parked with this text as its reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboxError {
    #[error("body is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("body is JSON but not an object")]
    NotAnObject,
    #[error("entity type field {pointer} is missing or not a non-empty string")]
    MissingType { pointer: String },
    #[error("entity type `{found}` is not configured (configured: {known})")]
    UnknownType { found: String, known: String },
    #[error("key field {pointer} is missing")]
    MissingKey { pointer: String },
    #[error("key field {pointer} must be a non-empty string or a number")]
    BadKey { pointer: String },
    #[error("record id is {size} bytes, over the limit of {limit}")]
    KeyTooLong { size: usize, limit: usize },
    #[error("timestamp field {pointer} is unusable: {why}")]
    BadTimestamp { pointer: String, why: String },
    #[error("record is {size} bytes without its noise fields, over the limit of {limit}")]
    RecordTooLarge { size: usize, limit: usize },
}

/// A message taken in: what the merge rules and the table need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// `type/key[/key...]`: the table key, and with the version the `Idempotency-Key`.
    pub id: String,
    pub entity: String,
    /// SHA-256 (hex) of the canonical record without noise fields and timestamp.
    pub hash: String,
    pub changed_at_ms: u64,
    /// The clean record (noise removed), canonical JSON text: what the portal receives.
    pub record: String,
}

/// `/` and `%` inside a key part are escaped, so composite ids cannot collide.
fn escape_part(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
}

/// RFC 3339 text, or a whole number of milliseconds since the Unix epoch.
fn parse_timestamp(v: &Value) -> Result<u64, String> {
    match v {
        Value::String(s) => {
            let t = time::OffsetDateTime::parse(
                s.trim(),
                &time::format_description::well_known::Rfc3339,
            )
            .map_err(|e| format!("`{s}` is not an RFC 3339 time ({e})"))?;
            let ms = t.unix_timestamp_nanos() / 1_000_000;
            u64::try_from(ms).map_err(|_| format!("`{s}` is before 1970"))
        }
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("{n} is not a whole number of epoch milliseconds")),
        _ => Err("neither RFC 3339 text nor epoch milliseconds".into()),
    }
}

/// Removes the object member a JSON pointer names, if it is there.
fn remove_pointer(v: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    if let Some(Value::Object(m)) = v.pointer_mut(parent) {
        m.remove(&last);
    }
}

/// Canonical JSON text: members sorted by name, no whitespace, integral numbers without a
/// fraction (`1.0` is `1`). Equal business content gives equal text.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut members: Vec<(&String, &Value)> = m.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                out.push_str(&(f as i64).to_string())
            }
            _ => out.push_str(&n.to_string()),
        },
        other => out.push_str(&other.to_string()),
    }
}

// ---- merge rules ------------------------------------------------------------------------

/// What the table holds for a record id, as far as the merge rules care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub version: u64,
    pub hash: String,
    pub changed_at_ms: u64,
    pub status: InboxStatus,
}

/// The decision for one incoming copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merge {
    /// No record yet: store it, `ToBeProcessed`, version 1.
    Insert,
    /// The stored record has this content already.
    Duplicate,
    /// Older than the stored version: never overwrites it.
    Stale,
    /// A real change: store it as `version` with `status`. `fresh`: the record had settled
    /// (`Processed`/`Failed`), so it enters the due index now with its attempts reset.
    Replace {
        version: u64,
        status: InboxStatus,
        fresh: bool,
    },
}

/// The merge rules (see the module header).
pub fn merge(current: Option<&Current>, hash: &str, changed_at_ms: u64) -> Merge {
    let Some(c) = current else {
        return Merge::Insert;
    };
    if c.hash == hash {
        return Merge::Duplicate;
    }
    if (changed_at_ms, hash) < (c.changed_at_ms, c.hash.as_str()) {
        return Merge::Stale;
    }
    let (status, fresh) = match c.status {
        InboxStatus::InProgress => (InboxStatus::InProgress, false),
        InboxStatus::ToBeProcessed => (InboxStatus::ToBeProcessed, false),
        InboxStatus::Processed | InboxStatus::Failed => (InboxStatus::ToBeProcessed, true),
    };
    Merge::Replace {
        version: c.version + 1,
        status,
        fresh,
    }
}

// ---- the processor's side ---------------------------------------------------------------

/// A record the processor holds a lease on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxClaimed {
    pub id: String,
    pub entity: String,
    /// The version claimed: the one delivered, and the one `Processed` must still match.
    pub version: u64,
    pub changed_at_ms: u64,
    /// Canonical JSON text of the clean record.
    pub record: String,
    /// Claims so far, this one included.
    pub attempts: u32,
    pub token: String,
}

impl InboxClaimed {
    /// `Idempotency-Key = type/key/version`: a redelivery of the same version carries the same key.
    pub fn idempotency_key(&self) -> String {
        format!("{}/{}", self.id, self.version)
    }

    /// What the portal receives: the record with its id, type, version and change time.
    pub fn delivery(&self) -> Result<Value, String> {
        let record: Value = serde_json::from_str(&self.record)
            .map_err(|e| format!("stored record of {} is not JSON: {e}", self.id))?;
        Ok(serde_json::json!({
            "id": self.id,
            "entity": self.entity,
            "version": self.version,
            "changedAt": crate::outbox::iso_ms(self.changed_at_ms),
            "record": record,
        }))
    }
}

/// How the processor settles a claimed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxSettle {
    /// The portal has the claimed version: `Processed` if the version is unchanged, otherwise
    /// back to `ToBeProcessed` (due now) so the newer version is delivered next.
    Delivered { at_ms: u64 },
    /// Not delivered this time; due again at `due_at_ms`.
    Retry { due_at_ms: u64, error: String },
    /// Not attempted here (the run stopped, or another delivery is retrying): due again at
    /// `due_at_ms`, this claim not counted.
    Release { due_at_ms: u64 },
    /// Refused for good (4xx) or claimed too often: `Failed`, until a newer version arrives.
    Failed { error: String },
}

/// What a settle did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Done,
    /// Delivered, but a newer version arrived meanwhile: the record is due again.
    NewerVersion,
    /// The lease was lost (another processor reclaimed the record): nothing was written.
    LeaseLost,
}

/// The processor's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InboxPolicy {
    /// Claims of one version before it is `Failed` (each claim tries up to the retry policy's
    /// attempts). Default 10.
    pub max_claims: u32,
    /// Wait before a record is due again after a failed claim: claim n waits `retry.delay(n-1)`.
    pub retry: Backoff,
    /// How long a claim holds.
    pub lease: Duration,
}

impl Default for InboxPolicy {
    fn default() -> Self {
        InboxPolicy {
            max_claims: 10,
            retry: Backoff {
                base: Duration::from_secs(2),
                cap: Duration::from_secs(300),
                jitter: crate::backoff::Jitter::Proportion(0.2),
                queue_limit: Duration::ZERO,
            },
            lease: Duration::from_secs(120),
        }
    }
}

impl InboxPolicy {
    pub fn lease_until(&self, now_ms: u64) -> u64 {
        now_ms.saturating_add(self.lease.as_millis() as u64)
    }

    /// `Some(reason)` when `c` was claimed too often to try again.
    pub fn give_up(&self, c: &InboxClaimed) -> Option<String> {
        (c.attempts > self.max_claims).then(|| {
            format!(
                "version {} claimed {} times without being delivered; max {}",
                c.version,
                c.attempts - 1,
                self.max_claims
            )
        })
    }

    /// After a claim that did not deliver: retry later, or `Failed` once claims run out.
    pub fn after_failure(
        &self,
        c: &InboxClaimed,
        error: &str,
        now_ms: u64,
        unit: f64,
    ) -> InboxSettle {
        let error = format!("claim {} of {}: {error}", c.attempts, self.max_claims);
        if c.attempts >= self.max_claims {
            return InboxSettle::Failed { error };
        }
        let wait = self.retry.delay(c.attempts.saturating_sub(1), unit);
        InboxSettle::Retry {
            due_at_ms: now_ms.saturating_add(wait.as_millis() as u64),
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const ENTITIES: &str = r#"{
        "customer": {"key": ["/customerNo"], "noise": ["/messageId", "/exportedAt", "/meta"], "endpoint": "/customers"},
        "orderline": {"key": ["/order/no", "/lineNo"], "changedAt": "/modified", "endpoint": "https://portal.example/lines"}
    }"#;

    fn cfg() -> InboxConfig {
        InboxConfig::parse("/entity", ENTITIES, DEFAULT_MAX_RECORD_BYTES).unwrap()
    }

    #[test]
    fn key_order_whitespace_noise_and_number_form_never_make_a_change() {
        let a = cfg()
            .read(r#"{"entity":"customer","customerNo":"C1","name":"Ada","limit":10,"changedAt":"2026-01-01T10:00:00Z","messageId":"m1","exportedAt":"x"}"#)
            .unwrap();
        let b = cfg()
            .read(
                r#"{ "messageId" : "m2", "meta": {"batch": 7},
                 "limit": 10.0, "name":"Ada", "changedAt":"2026-01-01T10:00:00Z",
                 "customerNo":"C1", "entity":"customer", "exportedAt":"y" }"#,
            )
            .unwrap();
        assert_eq!(a.id, "customer/C1");
        assert_eq!(a.hash, b.hash);
        assert_eq!(a.record, b.record);
        assert!(!a.record.contains("messageId") && !a.record.contains("exportedAt"));
        // the timestamp is not content: a touched, unchanged record is a duplicate
        let c = cfg()
            .read(r#"{"entity":"customer","customerNo":"C1","name":"Ada","limit":10,"changedAt":"2026-02-01T10:00:00Z"}"#)
            .unwrap();
        assert_eq!(a.hash, c.hash);
        assert!(c.changed_at_ms > a.changed_at_ms);
        // a business field is content
        let d = cfg()
            .read(r#"{"entity":"customer","customerNo":"C1","name":"Ada L.","limit":10,"changedAt":"2026-01-01T10:00:00Z"}"#)
            .unwrap();
        assert_ne!(a.hash, d.hash);
    }

    #[test]
    fn composite_keys_are_escaped_and_timestamps_may_be_epoch_ms() {
        let m = cfg()
            .read(r#"{"entity":"orderline","order":{"no":"A/7"},"lineNo":2,"modified":1767225600000}"#)
            .unwrap();
        assert_eq!(m.id, "orderline/A%2F7/2");
        assert_eq!(m.changed_at_ms, 1_767_225_600_000);
    }

    #[test]
    fn bad_messages_say_what_is_wrong_and_where() {
        let c = cfg();
        let reason = |raw: &str| c.read(raw).unwrap_err().to_string();
        assert!(reason("{oops").starts_with("body is not valid JSON"));
        assert_eq!(reason("[1]"), "body is JSON but not an object");
        assert_eq!(
            reason(r#"{"customerNo":"C1"}"#),
            "entity type field /entity is missing or not a non-empty string"
        );
        assert_eq!(
            reason(r#"{"entity":"vendor"}"#),
            "entity type `vendor` is not configured (configured: customer, orderline)"
        );
        assert_eq!(
            reason(r#"{"entity":"customer","changedAt":"2026-01-01T00:00:00Z"}"#),
            "key field /customerNo is missing"
        );
        assert_eq!(
            reason(r#"{"entity":"customer","customerNo":{"a":1}}"#),
            "key field /customerNo must be a non-empty string or a number"
        );
        assert_eq!(
            reason(r#"{"entity":"customer","customerNo":"C1"}"#),
            "timestamp field /changedAt is unusable: missing"
        );
        assert!(
            reason(r#"{"entity":"customer","customerNo":"C1","changedAt":"yesterday"}"#)
                .starts_with(
                    "timestamp field /changedAt is unusable: `yesterday` is not an RFC 3339 time"
                )
        );
        let small = InboxConfig::parse("/entity", ENTITIES, 100).unwrap();
        let big = json!({"entity":"customer","customerNo":"C1","changedAt":"2026-01-01T00:00:00Z","notes":"x".repeat(200)});
        assert!(small
            .read(&big.to_string())
            .unwrap_err()
            .to_string()
            .starts_with("record is 2"));
        let long = json!({"entity":"customer","customerNo":"k".repeat(2000),"changedAt":"2026-01-01T00:00:00Z"});
        assert!(matches!(
            c.read(&long.to_string()),
            Err(InboxError::KeyTooLong { .. })
        ));
    }

    #[test]
    fn configurations_that_make_no_sense_are_refused_naming_the_field() {
        let err = |json: &str| InboxConfig::parse("/entity", json, 1000).unwrap_err();
        assert!(err("[]").starts_with("not a JSON object of entity types"));
        assert_eq!(err("{}"), "no entity type configured");
        assert!(
            err(r#"{"c":{"key":[],"endpoint":"/c"}}"#).contains("entity `c`, key: no JSON pointer")
        );
        assert!(
            err(r#"{"c":{"key":["id"],"endpoint":"/c"}}"#).contains("`id` is not a JSON pointer")
        );
        assert_eq!(
            err(r#"{"c":{"key":["/a/id"],"noise":["/a"],"endpoint":"/c"}}"#),
            "entity `c`, noise: `/a` would remove the key field `/a/id`"
        );
        assert!(
            err(r#"{"c":{"key":["/id"],"noise":["/changedAt"],"endpoint":"/c"}}"#)
                .contains("would remove the timestamp")
        );
        assert!(
            err(r#"{"c":{"key":["/id"],"endpoint":"portal"}}"#).contains("entity `c`, endpoint")
        );
        assert!(err(r#"{"c":{"key":["/id"],"endpoint":"/c","noize":[]}}"#)
            .contains("unknown field `noize`"));
        assert!(err(r#"{"c d":{"key":["/id"],"endpoint":"/c"}}"#).contains("entity type `c d`"));
        assert!(InboxConfig::parse("entity", ENTITIES, 1000).is_err());
        let ends = cfg().endpoints(Some("http://127.0.0.1:9/")).unwrap();
        assert_eq!(ends["customer"], "http://127.0.0.1:9/customers");
        assert_eq!(ends["orderline"], "https://portal.example/lines");
        assert!(cfg()
            .endpoints(None)
            .unwrap_err()
            .contains("no portal base URL"));
    }

    fn cur(version: u64, hash: &str, ts: u64, status: InboxStatus) -> Current {
        Current {
            version,
            hash: hash.into(),
            changed_at_ms: ts,
            status,
        }
    }

    #[test]
    fn the_four_merge_cases() {
        use InboxStatus::*;
        assert_eq!(merge(None, "a", 1), Merge::Insert);
        assert_eq!(
            merge(Some(&cur(3, "a", 5, Processed)), "a", 9),
            Merge::Duplicate
        );
        assert_eq!(
            merge(Some(&cur(3, "b", 5, Processed)), "a", 4),
            Merge::Stale
        );
        assert_eq!(
            merge(Some(&cur(3, "b", 5, Processed)), "a", 6),
            Merge::Replace {
                version: 4,
                status: ToBeProcessed,
                fresh: true
            }
        );
        assert_eq!(
            merge(Some(&cur(3, "b", 5, InProgress)), "a", 6),
            Merge::Replace {
                version: 4,
                status: InProgress,
                fresh: false
            }
        );
        assert_eq!(
            merge(Some(&cur(1, "b", 5, ToBeProcessed)), "c", 6),
            Merge::Replace {
                version: 2,
                status: ToBeProcessed,
                fresh: false
            }
        );
        assert_eq!(
            merge(Some(&cur(1, "b", 5, Failed)), "c", 6),
            Merge::Replace {
                version: 2,
                status: ToBeProcessed,
                fresh: true
            }
        );
        // equal timestamps: the higher hash wins, whatever the arrival order
        assert_eq!(
            merge(Some(&cur(1, "b", 5, Processed)), "a", 5),
            Merge::Stale
        );
        assert!(matches!(
            merge(Some(&cur(1, "a", 5, Processed)), "b", 5),
            Merge::Replace { .. }
        ));
    }

    #[test]
    fn claims_run_out_into_failed() {
        let p = InboxPolicy {
            max_claims: 2,
            retry: Backoff {
                base: Duration::from_secs(1),
                cap: Duration::from_secs(4),
                jitter: crate::backoff::Jitter::None,
                queue_limit: Duration::ZERO,
            },
            lease: Duration::from_secs(10),
        };
        let mut c = InboxClaimed {
            id: "customer/C1".into(),
            entity: "customer".into(),
            version: 2,
            changed_at_ms: 0,
            record: "{}".into(),
            attempts: 1,
            token: "t".into(),
        };
        assert_eq!(c.idempotency_key(), "customer/C1/2");
        assert_eq!(
            p.after_failure(&c, "HTTP 503", 1000, 0.0),
            InboxSettle::Retry {
                due_at_ms: 2000,
                error: "claim 1 of 2: HTTP 503".into()
            }
        );
        c.attempts = 2;
        assert!(matches!(
            p.after_failure(&c, "HTTP 503", 1000, 0.0),
            InboxSettle::Failed { .. }
        ));
        assert_eq!(p.give_up(&c), None);
        c.attempts = 3;
        assert!(p.give_up(&c).unwrap().contains("claimed 2 times"));
    }

    // ---- properties: a model of the table and the processor, driven by the merge rules ----

    /// One version of a record at the source, and the copies the source sends of it.
    #[derive(Debug, Clone)]
    struct Version {
        content: u8,
        ts: u64,
    }

    #[derive(Debug, Clone)]
    enum Step {
        /// A copy of version `i % versions` arrives.
        Arrive(usize),
        /// The processor claims the record if it is due.
        Claim,
        /// The portal answers the claimed delivery (then the settle rules apply).
        Answer,
    }

    #[derive(Default)]
    struct Model {
        current: Option<(Current, u8)>,
        claimed: Option<(u64, u8, u64)>,
        /// (version, content, ts) as delivered, in order.
        delivered: Vec<(u64, u8, u64)>,
        /// Versions the table held at some claim.
        claimed_versions: Vec<u64>,
    }

    fn hash_of(content: u8) -> String {
        hex::encode(Sha256::digest([content]))
    }

    impl Model {
        fn arrive(&mut self, v: &Version) {
            let h = hash_of(v.content);
            match merge(self.current.as_ref().map(|c| &c.0), &h, v.ts) {
                Merge::Insert => {
                    self.current = Some((cur(1, &h, v.ts, InboxStatus::ToBeProcessed), v.content))
                }
                Merge::Duplicate | Merge::Stale => {}
                Merge::Replace {
                    version, status, ..
                } => self.current = Some((cur(version, &h, v.ts, status), v.content)),
            }
        }
        fn claim(&mut self) {
            if let Some((c, content)) = &mut self.current {
                if c.status == InboxStatus::ToBeProcessed {
                    c.status = InboxStatus::InProgress;
                    self.claimed = Some((c.version, *content, c.changed_at_ms));
                    self.claimed_versions.push(c.version);
                }
            }
        }
        fn answer(&mut self) {
            if let (Some((version, content, ts)), Some((c, _))) =
                (self.claimed.take(), self.current.as_mut())
            {
                self.delivered.push((version, content, ts));
                // the settle: Processed only if the version is unchanged
                c.status = if c.version == version {
                    InboxStatus::Processed
                } else {
                    InboxStatus::ToBeProcessed
                };
            }
        }
        fn drain(&mut self) {
            for _ in 0..4 {
                self.claim();
                self.answer();
            }
        }
    }

    fn versions() -> impl Strategy<Value = Vec<Version>> {
        // distinct contents; timestamps may repeat (ties are ordered by hash)
        (1usize..6).prop_flat_map(|n| {
            (
                Just(n),
                proptest::collection::vec(0u64..8, n),
                proptest::sample::subsequence((0u8..40).collect::<Vec<_>>(), n),
            )
                .prop_map(|(_, ts, contents)| {
                    contents
                        .into_iter()
                        .zip(ts)
                        .map(|(content, ts)| Version { content, ts })
                        .collect()
                })
        })
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        proptest::collection::vec(
            prop_oneof![
                4 => (0usize..100).prop_map(Step::Arrive),
                1 => Just(Step::Claim),
                1 => Just(Step::Answer),
            ],
            1..80,
        )
    }

    fn newest(vs: &[Version], sent: &[usize]) -> (u64, String) {
        sent.iter()
            .map(|i| (vs[*i].ts, hash_of(vs[*i].content)))
            .max()
            .expect("something sent")
    }

    proptest! {
        /// Any interleaving of copies, versions, claims and answers: the delivered payload in the
        /// end is the newest sent, no version is delivered twice, no delivery goes back in time,
        /// and deliveries equal the versions that were newest when claimed.
        #[test]
        fn the_newest_wins_and_nothing_is_delivered_twice(vs in versions(), steps in steps()) {
            let mut m = Model::default();
            let mut sent = vec![];
            for s in &steps {
                match s {
                    Step::Arrive(i) => {
                        let i = i % vs.len();
                        sent.push(i);
                        m.arrive(&vs[i]);
                    }
                    Step::Claim => m.claim(),
                    Step::Answer => m.answer(),
                }
            }
            // every version goes in at least once, then the processor drains
            for (i, v) in vs.iter().enumerate() { sent.push(i); m.arrive(v); }
            m.drain();
            let (ts, hash) = newest(&vs, &sent);
            let last = *m.delivered.last().expect("delivered");
            prop_assert_eq!((last.2, hash_of(last.1)), (ts, hash));
            let (c, _) = m.current.as_ref().unwrap();
            prop_assert_eq!(c.status, InboxStatus::Processed);
            let mut versions: Vec<u64> = m.delivered.iter().map(|d| d.0).collect();
            prop_assert!(versions.windows(2).all(|w| w[0] < w[1]), "versions {:?}", versions);
            let order: Vec<(u64, String)> = m.delivered.iter().map(|d| (d.2, hash_of(d.1))).collect();
            prop_assert!(order.windows(2).all(|w| w[0] < w[1]), "went back in time: {:?}", order);
            versions.dedup();
            prop_assert_eq!(versions.len(), m.delivered.len());
            prop_assert_eq!(&m.claimed_versions, &m.delivered.iter().map(|d| d.0).collect::<Vec<_>>());
        }

        /// When the processor drains after every arrival, deliveries equal the distinct changes:
        /// the copies that were newer than everything before them.
        #[test]
        fn deliveries_equal_distinct_changes_when_drained(vs in versions(), order in proptest::collection::vec(0usize..100, 1..60)) {
            let mut m = Model::default();
            let mut best: Option<(u64, String)> = None;
            let mut changes = 0;
            for i in order {
                let v = &vs[i % vs.len()];
                let key = (v.ts, hash_of(v.content));
                if best.as_ref().is_none_or(|b| key > *b) {
                    changes += 1;
                    best = Some(key);
                }
                m.arrive(v);
                m.drain();
            }
            prop_assert_eq!(m.delivered.len(), changes);
        }

        /// Every arrival order of the same copies ends with the same stored version content.
        #[test]
        fn arrival_order_does_not_matter(vs in versions(), seed in any::<u64>()) {
            let mut forward = Model::default();
            for v in &vs { forward.arrive(v); }
            let mut shuffled: Vec<&Version> = vs.iter().collect();
            let n = shuffled.len();
            for i in 0..n { shuffled.swap(i, (seed as usize).wrapping_mul(i + 7) % n); }
            let mut other = Model::default();
            for v in shuffled { other.arrive(v); }
            prop_assert_eq!(forward.current.unwrap().1, other.current.unwrap().1);
        }
    }
}
