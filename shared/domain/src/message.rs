//! An incoming order message: size and JSON checks, and its business identity, from which the
//! `Idempotency-Key` is derived. The key depends on the business content only, never on the
//! SQS message id, so a resent order carries the same key.
//!
//! Also the correlation id of any queue message ([`correlation_id`]): the one id every log
//! line, stored record and event about the message carries, through every function it touches.

use serde_json::Value;

/// Orders above this are parked before delivery: an order body is small, and one this large is
/// a producer's mistake, not a bigger order. (The queue itself takes up to 1 040 384 bytes, so
/// the parked copy with its envelope still fits the 1 MiB parking queue.)
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Longest identity, in bytes: a DynamoDB key holds at most 2 048 bytes, and a header this
/// long is already unusual. A longer one is parked before any table call.
pub const MAX_IDENTITY_BYTES: usize = 1024;

/// Bytes the `Idempotency-Key` header carries percent-encoded: controls, `%` itself, and (as
/// every byte outside ASCII) the UTF-8 of non-ASCII characters.
const KEY_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');

/// The `Idempotency-Key` header value of `identity`: the identity as it is when it is printable
/// ASCII; otherwise its UTF-8 bytes percent-encoded (`orders/Ä-1` → `orders/%C3%84-1`), so the
/// header is valid on every HTTP stack and the same identity always gives the same key.
pub fn idempotency_key(identity: &str) -> String {
    percent_encoding::utf8_percent_encode(identity, KEY_ESCAPES).to_string()
}

/// The SQS message attribute (type `String`) a sender sets to name a message's correlation id.
pub const CORRELATION_ATTRIBUTE: &str = "correlation_id";

/// Longest correlation id taken from a sender, in characters.
pub const MAX_CORRELATION_ID: usize = 128;

/// The correlation id of a queue message: the sender's `correlation_id` attribute (`sent`) when
/// it is 1–128 printable ASCII characters without spaces, otherwise the SQS message id. Anything
/// else a sender puts there is ignored, so a log line never carries more than a short token.
pub fn correlation_id<'a>(sent: Option<&'a str>, message_id: &'a str) -> &'a str {
    match sent {
        Some(s) if is_correlation_id(s) => s,
        _ => message_id,
    }
}

/// 1–128 printable ASCII characters, without spaces.
fn is_correlation_id(s: &str) -> bool {
    (1..=MAX_CORRELATION_ID).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Where the business identity sits in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRule {
    /// Prefix of every key, e.g. `orders`.
    pub namespace: String,
    /// JSON pointers (RFC 6901) whose values, joined by `/`, identify the record.
    pub pointers: Vec<String>,
}

impl IdentityRule {
    /// Parses `"/orderId"` or `"/customer/id,/orderNo"`. Each pointer must start with `/`.
    pub fn parse(namespace: &str, pointers: &str) -> Result<Self, String> {
        let pointers: Vec<String> = pointers
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
        if pointers.is_empty() {
            return Err("no JSON pointer given".into());
        }
        if let Some(bad) = pointers.iter().find(|p| !p.starts_with('/')) {
            return Err(format!(
                "`{bad}` is not a JSON pointer (it must start with '/')"
            ));
        }
        if namespace.is_empty() || namespace.contains('/') {
            return Err(format!(
                "namespace `{namespace}` must be non-empty and without '/'"
            ));
        }
        Ok(IdentityRule {
            namespace: namespace.to_owned(),
            pointers,
        })
    }
}

/// Why a message cannot be delivered, ever. Each is parked with this text as its reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("body is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("body is JSON but not an object")]
    NotAnObject,
    #[error("identity field {pointer} is missing")]
    MissingIdentity { pointer: String },
    #[error("identity field {pointer} must be a non-empty string or an integer")]
    BadIdentity { pointer: String },
    #[error("identity is {size} bytes, over the limit of {limit}")]
    IdentityTooLong { size: usize, limit: usize },
}

/// A message that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderMessage {
    /// `namespace/value[/value...]`, the `Idempotency-Key` and the ledger key.
    pub identity: String,
    pub body: Value,
}

impl OrderMessage {
    pub fn parse(raw: &str, rule: &IdentityRule) -> Result<Self, MessageError> {
        if raw.len() > MAX_BODY_BYTES {
            return Err(MessageError::TooLarge {
                size: raw.len(),
                limit: MAX_BODY_BYTES,
            });
        }
        let body = crate::json::parse(raw).map_err(|e| MessageError::InvalidJson(e.to_string()))?;
        if !body.is_object() {
            return Err(MessageError::NotAnObject);
        }
        let mut identity = rule.namespace.clone();
        for pointer in &rule.pointers {
            let part = match body.pointer(pointer) {
                None | Some(Value::Null) => {
                    return Err(MessageError::MissingIdentity {
                        pointer: pointer.clone(),
                    })
                }
                Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
                // Integers only: 42 and 42.0 must not become two identities.
                Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
                Some(_) => {
                    return Err(MessageError::BadIdentity {
                        pointer: pointer.clone(),
                    })
                }
            };
            identity.push('/');
            if rule.pointers.len() > 1 {
                // Parts of a composite identity keep their own `/`: `a/b`+`c` ≠ `a`+`b/c`.
                identity.push_str(&part.replace('%', "%25").replace('/', "%2F"));
            } else {
                identity.push_str(&part);
            }
        }
        if identity.len() > MAX_IDENTITY_BYTES {
            return Err(MessageError::IdentityTooLong {
                size: identity.len(),
                limit: MAX_IDENTITY_BYTES,
            });
        }
        Ok(OrderMessage { identity, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> IdentityRule {
        IdentityRule::parse("orders", "/orderId").unwrap()
    }

    #[test]
    fn the_identity_comes_from_the_business_fields_only() {
        let a = OrderMessage::parse(r#"{"orderId":"A-1","messageId":"m1"}"#, &rule()).unwrap();
        let b = OrderMessage::parse(r#"{"messageId":"m2","orderId":"A-1"}"#, &rule()).unwrap();
        assert_eq!(a.identity, "orders/A-1");
        assert_eq!(a.identity, b.identity);
        let n = OrderMessage::parse(r#"{"orderId":42}"#, &rule()).unwrap();
        assert_eq!(n.identity, "orders/42");
    }

    #[test]
    fn composite_identities_join_their_parts_without_ambiguity() {
        let r = IdentityRule::parse("orders", "/customer/id, /orderNo").unwrap();
        let m = OrderMessage::parse(r#"{"customer":{"id":"C7"},"orderNo":3}"#, &r).unwrap();
        assert_eq!(m.identity, "orders/C7/3");
        let a = OrderMessage::parse(r#"{"customer":{"id":"a/b"},"orderNo":"c"}"#, &r).unwrap();
        let b = OrderMessage::parse(r#"{"customer":{"id":"a"},"orderNo":"b/c"}"#, &r).unwrap();
        assert_ne!(a.identity, b.identity);
        assert_eq!(a.identity, "orders/a%2Fb/c");
    }

    #[test]
    fn bad_messages_say_what_is_wrong() {
        let r = rule();
        assert!(matches!(
            OrderMessage::parse("{nope", &r),
            Err(MessageError::InvalidJson(_))
        ));
        assert_eq!(
            OrderMessage::parse("[1]", &r),
            Err(MessageError::NotAnObject)
        );
        assert_eq!(
            OrderMessage::parse(r#"{"id":1}"#, &r)
                .unwrap_err()
                .to_string(),
            "identity field /orderId is missing"
        );
        for not_integer in [r#"{"orderId":42.0}"#, r#"{"orderId":4.2e1}"#] {
            assert!(matches!(
                OrderMessage::parse(not_integer, &r),
                Err(MessageError::BadIdentity { .. })
            ));
        }
        assert!(matches!(
            OrderMessage::parse(r#"{"orderId":" "}"#, &r),
            Err(MessageError::BadIdentity { .. })
        ));
        let big = format!(
            r#"{{"orderId":"x","pad":"{}"}}"#,
            "a".repeat(MAX_BODY_BYTES)
        );
        assert!(matches!(
            OrderMessage::parse(&big, &r),
            Err(MessageError::TooLarge { .. })
        ));
    }

    #[test]
    fn an_over_long_identity_is_refused_before_any_table_call() {
        let long = format!(r#"{{"orderId":"{}"}}"#, "x".repeat(5000));
        assert_eq!(
            OrderMessage::parse(&long, &rule()).unwrap_err().to_string(),
            "identity is 5007 bytes, over the limit of 1024"
        );
    }

    #[test]
    fn keys_are_header_safe_and_stable() {
        assert_eq!(idempotency_key("orders/A-1"), "orders/A-1");
        assert_eq!(idempotency_key("orders/Ä-1"), "orders/%C3%84-1");
        assert_eq!(idempotency_key("orders/50%"), "orders/50%25");
        assert_eq!(idempotency_key("orders/a\nb"), "orders/a%0Ab");
        for id in ["orders/ß", "orders/東京", "orders/\u{7f}x"] {
            let k = idempotency_key(id);
            assert!(k.bytes().all(|b| (0x20..0x7f).contains(&b)), "{k}");
            assert_eq!(
                percent_encoding::percent_decode_str(&k)
                    .decode_utf8()
                    .unwrap(),
                id,
                "reversible"
            );
        }
    }

    #[test]
    fn a_senders_correlation_id_is_kept_only_when_it_is_a_short_printable_token() {
        assert_eq!(correlation_id(Some("req-7f3a/9"), "m1"), "req-7f3a/9");
        assert_eq!(correlation_id(None, "m1"), "m1");
        let longest = "x".repeat(MAX_CORRELATION_ID);
        assert_eq!(correlation_id(Some(&longest), "m1"), longest);
        let too_long = "x".repeat(MAX_CORRELATION_ID + 1);
        for ignored in ["", "a b", "tab\there", "line\nbreak", "café", &too_long] {
            assert_eq!(correlation_id(Some(ignored), "m1"), "m1", "{ignored:?}");
        }
    }

    #[test]
    fn rules_are_checked() {
        assert!(IdentityRule::parse("orders", "orderId").is_err());
        assert!(IdentityRule::parse("orders", "").is_err());
        assert!(IdentityRule::parse("a/b", "/x").is_err());
    }
}
