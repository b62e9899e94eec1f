//! Tests of the configuration and of reading messages: what counts as a change, record ids,
//! and every refusal named with its field.

use super::*;
use crate::inbox::DEFAULT_MAX_RECORD_BYTES;
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
        "key field /customerNo must be a non-empty string or an integer"
    );
    assert_eq!(
        reason(r#"{"entity":"customer","customerNo":"C1"}"#),
        "timestamp field /changedAt is unusable: missing"
    );
    assert!(
        reason(r#"{"entity":"customer","customerNo":"C1","changedAt":"yesterday"}"#).starts_with(
            "timestamp field /changedAt is unusable: the text is not an RFC 3339 time"
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
    assert!(err(r#"{"c":{"key":[],"endpoint":"/c"}}"#).contains("entity `c`, key: no JSON pointer"));
    assert!(err(r#"{"c":{"key":["id"],"endpoint":"/c"}}"#).contains("`id` is not a JSON pointer"));
    assert_eq!(
        err(r#"{"c":{"key":["/a/id"],"noise":["/a"],"endpoint":"/c"}}"#),
        "entity `c`, noise: `/a` would remove the key field `/a/id`"
    );
    assert!(
        err(r#"{"c":{"key":["/id"],"noise":["/changedAt"],"endpoint":"/c"}}"#)
            .contains("would remove the timestamp")
    );
    assert!(err(r#"{"c":{"key":["/id"],"endpoint":"portal"}}"#).contains("entity `c`, endpoint"));
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
