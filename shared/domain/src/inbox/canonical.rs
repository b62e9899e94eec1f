//! The canonical form of a record and its content hash: equal business content gives equal
//! text and an equal hash, whatever the key order, whitespace or number form of the copy.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Removes the object member a JSON pointer names, if it is there.
pub(super) fn remove_pointer(v: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    if let Some(Value::Object(m)) = v.pointer_mut(parent) {
        m.remove(&last);
    }
}

/// SHA-256 (hex) of the canonical form of `v`.
pub(super) fn content_hash(v: &Value) -> String {
    hex::encode(Sha256::digest(canonical(v).as_bytes()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn members_are_sorted_and_integral_numbers_lose_their_fraction() {
        let v = json!({"b": [1.0, 2.5, {"d": null, "c": "x"}], "a": true});
        assert_eq!(
            canonical(&v),
            r#"{"a":true,"b":[1,2.5,{"c":"x","d":null}]}"#
        );
    }

    #[test]
    fn a_pointer_removes_one_member_and_understands_escapes() {
        let mut v = json!({"a": {"b/c": 1, "d": 2}, "e": 3});
        remove_pointer(&mut v, "/a/b~1c");
        remove_pointer(&mut v, "/missing/x");
        assert_eq!(v, json!({"a": {"d": 2}, "e": 3}));
        assert_eq!(
            content_hash(&v),
            content_hash(&json!({"e": 3, "a": {"d": 2.0}}))
        );
    }
}
