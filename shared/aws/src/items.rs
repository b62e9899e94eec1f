//! DynamoDB items: attribute values to write, and typed reads through serde_dynamo that fail
//! naming the table, the key and the field (a missing or malformed attribute is never read as
//! a default).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use steadfast_domain::ports::{ErrorKind, PortError, PortResult};

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// An error text cut to what an item attribute should hold.
pub(crate) fn truncate(s: &str) -> String {
    s.chars().take(1000).collect()
}

/// `item` of `table` under key `key` as a `T`; the error names the table, key and field.
pub(crate) fn decode<T: DeserializeOwned>(
    table: &str,
    key: &str,
    item: HashMap<String, AttributeValue>,
) -> PortResult<T> {
    let item: serde_dynamo::Item = item.into();
    let item = serde_dynamo::Deserializer::from_attribute_value(serde_dynamo::AttributeValue::M(
        item.into(),
    ));
    serde_path_to_error::deserialize(item).map_err(|e| {
        let why = match e.path().to_string() {
            root if root == "." => e.inner().to_string(),
            field => format!("field `{field}`: {}", e.inner()),
        };
        PortError::of(
            ErrorKind::Malformed,
            format!("decode item {key} of {table}"),
            why,
        )
        .caused_by(e.into_inner())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Row {
        id: String,
        attempts: u32,
    }

    #[test]
    fn a_missing_or_malformed_field_is_an_error_naming_table_key_and_field() {
        let ok: Row = decode(
            "outbox",
            "A",
            HashMap::from([("id".into(), s("A")), ("attempts".into(), n(2))]),
        )
        .unwrap();
        assert_eq!(
            ok,
            Row {
                id: "A".into(),
                attempts: 2
            }
        );
        let missing = decode::<Row>("outbox", "A", HashMap::from([("id".into(), s("A"))]))
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("decode item A of outbox: "),
            "{missing}"
        );
        assert!(missing.contains("attempts"), "{missing}");
        let malformed = decode::<Row>(
            "outbox",
            "A",
            HashMap::from([("id".into(), s("A")), ("attempts".into(), s("two"))]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            malformed.starts_with("decode item A of outbox: field `attempts`: "),
            "{malformed}"
        );
    }
}
