//! What the processor delivers of a claimed inbox record: the record at one version, the
//! `Idempotency-Key` of that version, and the body the portal receives. Claims and settles are
//! the leased-record lifecycle of [`crate::lease`].

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::Incoming;
use crate::lease::{Claimed, LeasePolicy, Leased};

/// An inbox record as claimed: what is delivered, at which version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InboxRecord {
    pub entity: String,
    /// The version claimed: the one delivered, and the one `Processed` must still match.
    pub version: u64,
    pub changed_at_ms: u64,
    /// Canonical JSON text of the clean record.
    pub record: String,
    /// The correlation id of the copy that was accepted as this version (absent on records
    /// written before it was stored).
    #[serde(default)]
    pub correlation_id: Option<String>,
}

impl InboxRecord {
    /// The record `incoming` stores as `version`, from the message with `correlation_id`.
    pub fn of(incoming: &Incoming, version: u64, correlation_id: &str) -> Self {
        InboxRecord {
            entity: incoming.entity.clone(),
            version,
            changed_at_ms: incoming.changed_at_ms,
            record: incoming.record.clone(),
            correlation_id: Some(correlation_id.to_owned()),
        }
    }
}

impl Leased for InboxRecord {
    fn version(&self) -> Option<u64> {
        Some(self.version)
    }
    fn correlation_id(&self) -> Option<&str> {
        self.correlation_id.as_deref()
    }
}

/// The processor's claims: 10 per version before it is `Failed`, leases of 120 s.
pub fn default_policy() -> LeasePolicy {
    LeasePolicy::new(10, Duration::from_secs(120), "claim")
}

impl Claimed<InboxRecord> {
    /// `Idempotency-Key = type/key/version`: a redelivery of the same version carries the same key.
    pub fn idempotency_key(&self) -> String {
        format!("{}/{}", self.id, self.record.version)
    }

    /// What the portal receives: the record with its id, type, version and change time.
    pub fn delivery(&self) -> Result<Value, String> {
        let r = &self.record;
        let record: Value = serde_json::from_str(&r.record)
            .map_err(|e| format!("stored record of {} is not JSON: {e}", self.id))?;
        Ok(serde_json::json!({
            "id": self.id,
            "entity": r.entity,
            "version": r.version,
            "changedAt": crate::outbox::iso_ms(r.changed_at_ms),
            "record": record,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_version_is_delivered_under_its_own_key() {
        let c = Claimed {
            id: "customer/C1".into(),
            attempts: 1,
            token: "t".into(),
            record: InboxRecord {
                entity: "customer".into(),
                version: 2,
                changed_at_ms: 0,
                record: r#"{"name":"A"}"#.into(),
                correlation_id: Some("c-1".into()),
            },
        };
        assert_eq!(c.idempotency_key(), "customer/C1/2");
        let body = c.delivery().unwrap();
        assert_eq!(body["version"], 2);
        assert_eq!(body["record"]["name"], "A");
        assert_eq!(body["changedAt"], "1970-01-01T00:00:00.000Z");
        assert_eq!(c.record.version(), Some(2));
        let broken = Claimed {
            record: InboxRecord {
                record: "{".into(),
                ..c.record.clone()
            },
            ..c
        };
        assert!(broken.delivery().unwrap_err().contains("customer/C1"));
    }
}
