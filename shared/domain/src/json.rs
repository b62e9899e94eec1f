//! Message bodies as strict JSON: what a plain parse would let through while silently changing
//! the message is refused, with the place it was found:
//! - a key twice in one object (a plain parse keeps the last, so a resent record could say
//!   one thing to one reader and another to the next);
//! - a number no 64-bit value holds exactly: an integer beyond the 64-bit range, or any other
//!   number at or beyond 2^53 (a plain parse rounds it, so two ids could become one, or an
//!   amount change). Such values travel as strings.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// From here on a 64-bit float no longer holds every integer exactly.
const EXACT_FLOAT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Parses `raw` as strict JSON; the error names what is wrong and where (a JSON pointer, then
/// line and column).
pub fn parse(raw: &str) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(raw);
    let value = At(String::new()).deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// The value at this JSON pointer.
struct At(String);

impl At {
    fn place(&self) -> &str {
        if self.0.is_empty() {
            "the top level"
        } else {
            &self.0
        }
    }

    fn child(&self, step: &str) -> At {
        At(format!(
            "{}/{}",
            self.0,
            step.replace('~', "~0").replace('/', "~1")
        ))
    }
}

impl<'de> DeserializeSeed<'de> for At {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for At {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Value, E> {
        match Number::from_f64(x) {
            Some(n) if x.abs() < EXACT_FLOAT_LIMIT => Ok(Value::Number(n)),
            _ => Err(E::custom(format!(
                "the number at {} is beyond 64-bit precision (send it as a string)",
                self.place()
            ))),
        }
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self.child(&out.len().to_string()))? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let at = self.child(&key);
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key at {}", at.0)));
            }
            let v = map.next_value_seed(at)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_plain_body_parses_as_serde_json_would() {
        let raw = r#"{"a": [1, -2, 2.5, "x", null, true], "b": {"c": 18446744073709551615}}"#;
        assert_eq!(
            parse(raw).unwrap(),
            serde_json::from_str::<Value>(raw).unwrap()
        );
    }

    #[test]
    fn a_duplicate_key_is_refused_with_its_place() {
        let e = parse(r#"{"loan": {"amount": "1.00", "amount": "900000.00"}}"#).unwrap_err();
        assert!(
            e.to_string().starts_with("duplicate key at /loan/amount"),
            "{e}"
        );
        // the same key in two objects is no duplicate
        assert!(parse(r#"[{"a": 1}, {"a": 2}]"#).is_ok());
    }

    #[test]
    fn numbers_no_64_bit_value_holds_exactly_are_refused_with_their_place() {
        for raw in [
            r#"{"id": 18446744073709551616}"#,
            r#"{"id": 123456789012345678901234567890}"#,
            r#"{"id": -9223372036854775809}"#,
            r#"{"id": 9007199254740993.0}"#,
        ] {
            let e = parse(raw).unwrap_err().to_string();
            assert!(
                e.starts_with("the number at /id is beyond 64-bit precision"),
                "{raw}: {e}"
            );
        }
        assert!(parse("1e400").is_err());
        assert_eq!(
            parse(r#"{"n": 9007199254740991.0}"#).unwrap(),
            json!({"n": 9007199254740991.0})
        );
        assert_eq!(parse("-9223372036854775808").unwrap(), json!(i64::MIN));
    }

    #[test]
    fn pointer_steps_are_escaped() {
        let e = parse(r#"{"a/b": {"c~d": 1e30}}"#).unwrap_err().to_string();
        assert!(e.starts_with("the number at /a~1b/c~0d"), "{e}");
    }
}
