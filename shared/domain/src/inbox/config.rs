//! The inbox configuration (entity types, checked at cold start) and reading one message into
//! an [`Incoming`]: its record id, clean record, change time and content hash.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::canonical::{canonical, content_hash, remove_pointer};
use super::{MAX_ID_BYTES, MAX_MESSAGE_BYTES};

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

/// Where a configuration error is: the entity and its field.
fn at(name: &str, field: &str) -> String {
    format!("entity `{name}`, {field}")
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
            spec.check(name, type_pointer)?;
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
        let mut body = parse_body(raw)?;
        let (entity, spec) = self.entity_of(&body)?;
        let id = record_id(&entity, spec, &body)?;
        let changed_at_ms = changed_at(spec, &body)?;
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
        let hash = content_hash(&content);
        Ok(Incoming {
            id,
            entity,
            hash,
            changed_at_ms,
            record,
        })
    }

    /// The entity type the message names, and its configuration.
    fn entity_of(&self, body: &Value) -> Result<(String, &EntitySpec), InboxError> {
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
        Ok((entity, spec))
    }
}

impl EntitySpec {
    /// Checks one entity type, in the order its errors are reported.
    fn check(&self, name: &str, type_pointer: &str) -> Result<(), String> {
        check_name(name)?;
        if self.key.is_empty() {
            return Err(format!("{}: no JSON pointer given", at(name, "key")));
        }
        for p in self.key.iter().chain(&self.noise).chain([&self.changed_at]) {
            if !valid_pointer(p) {
                return Err(format!(
                    "{}: `{p}` is not a JSON pointer (it must start with '/')",
                    at(name, "pointers")
                ));
            }
        }
        self.check_noise(name, type_pointer)?;
        if self.key.iter().any(|k| k == &self.changed_at) {
            return Err(format!(
                "{}: the timestamp `{}` cannot also be a key field",
                at(name, "changedAt"),
                self.changed_at
            ));
        }
        self.check_endpoint(name)
    }

    /// No noise field may remove a key field, the timestamp or the entity type.
    fn check_noise(&self, name: &str, type_pointer: &str) -> Result<(), String> {
        for n in &self.noise {
            if let Some(k) = self.key.iter().find(|k| covers(n, k)) {
                return Err(format!(
                    "{}: `{n}` would remove the key field `{k}`",
                    at(name, "noise")
                ));
            }
            if covers(n, &self.changed_at) {
                return Err(format!(
                    "{}: `{n}` would remove the timestamp `{}`",
                    at(name, "noise"),
                    self.changed_at
                ));
            }
            if covers(n, type_pointer) {
                return Err(format!(
                    "{}: `{n}` would remove the entity type `{type_pointer}`",
                    at(name, "noise")
                ));
            }
        }
        Ok(())
    }

    fn check_endpoint(&self, name: &str) -> Result<(), String> {
        let e = self.endpoint.trim();
        if e.is_empty()
            || !(e.starts_with('/') || e.starts_with("https://") || e.starts_with("http://"))
        {
            return Err(format!(
                "{}: `{}` is neither an absolute URL nor a path starting with '/'",
                at(name, "endpoint"),
                self.endpoint
            ));
        }
        Ok(())
    }
}

/// An entity type's name is part of every record id.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "entity type `{name}` must be letters, digits, '-' or '_' (it is part of every record id)"
        ));
    }
    Ok(())
}

/// The message as a JSON object, within SQS's size.
fn parse_body(raw: &str) -> Result<Value, InboxError> {
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(InboxError::TooLarge {
            size: raw.len(),
            limit: MAX_MESSAGE_BYTES,
        });
    }
    let body = crate::json::parse(raw).map_err(|e| InboxError::InvalidJson(e.to_string()))?;
    if !body.is_object() {
        return Err(InboxError::NotAnObject);
    }
    Ok(body)
}

/// `type/key[/key...]`, each key part escaped.
fn record_id(entity: &str, spec: &EntitySpec, body: &Value) -> Result<String, InboxError> {
    let mut parts = Vec::with_capacity(spec.key.len());
    for p in &spec.key {
        let part = match body.pointer(p) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            // Integers only: 42 and 42.0 must not become two keys.
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
            None | Some(Value::Null) => return Err(InboxError::MissingKey { pointer: p.clone() }),
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
    Ok(id)
}

/// The source's change time, epoch milliseconds.
fn changed_at(spec: &EntitySpec, body: &Value) -> Result<u64, InboxError> {
    match body.pointer(&spec.changed_at) {
        None | Some(Value::Null) => Err(InboxError::BadTimestamp {
            pointer: spec.changed_at.clone(),
            why: "missing".into(),
        }),
        Some(v) => parse_timestamp(v).map_err(|why| InboxError::BadTimestamp {
            pointer: spec.changed_at.clone(),
            why,
        }),
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
    #[error("key field {pointer} must be a non-empty string or an integer")]
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
            .map_err(|_| "the text is not an RFC 3339 time".to_owned())?;
            let ms = t.unix_timestamp_nanos() / 1_000_000;
            u64::try_from(ms).map_err(|_| "the time is before 1970".to_owned())
        }
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| "the number is not a whole number of epoch milliseconds".to_owned()),
        _ => Err("neither RFC 3339 text nor epoch milliseconds".into()),
    }
}

#[cfg(test)]
mod tests;
