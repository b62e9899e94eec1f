//! Message bodies as strict JSON: what a plain parse would let through while silently changing
//! the message is refused, with the place it was found (a JSON pointer):
//! - a key twice in one object (a plain parse keeps the last, so a resent record could say one
//!   thing to one reader and another to the next);
//! - a number a 64-bit value does not hold exactly: an integer beyond the 64-bit range, or a
//!   decimal with more digits than a 64-bit float keeps (a plain parse rounds it, so two ids
//!   could become one, or an amount change). Such values travel as strings.
//!
//! The pointer of a value is only built when something is wrong with it, so a large body costs
//! one pass; keys in a pointer are cut at [`MAX_STEP_CHARS`] characters.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Longest key shown in a pointer, in characters (a key can be data).
pub const MAX_STEP_CHARS: usize = 40;

/// Parses `raw` as strict JSON; the error names what is wrong and where (a JSON pointer, then
/// line and column).
pub fn parse(raw: &str) -> Result<Value, serde_json::Error> {
    let numbers = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_str(raw);
    let value = At {
        parent: None,
        step: Step::Root,
        numbers: &numbers,
    }
    .deserialize(&mut de)?;
    de.end()?;
    exact_numbers(raw, &numbers.into_inner())?;
    Ok(value)
}

/// A number as parsed: its value as a float (`None` when it was read as an exact integer) and
/// where it is.
struct Parsed {
    float: Option<f64>,
    pointer: String,
}

/// Every float was read from a literal with the same decimal value, and no integer literal
/// became a float (it was beyond the 64-bit range). Number literals and parsed numbers come in
/// the same order: the document's.
fn exact_numbers(raw: &str, parsed: &[Parsed]) -> Result<(), serde_json::Error> {
    for (literal, p) in literals(raw).zip(parsed) {
        let Some(x) = p.float else { continue };
        // An integer literal read as a float was beyond the 64-bit range (`-0` excepted).
        let integer = !literal.contains(['.', 'e', 'E']) && x != 0.0;
        if integer || decimal(literal) != decimal(&format!("{x:e}")) {
            return Err(de::Error::custom(format!(
                "the number at {} is beyond 64-bit precision (send it as a string)",
                p.pointer
            )));
        }
    }
    Ok(())
}

/// The number literals of a JSON text, in order (outside strings).
fn literals(raw: &str) -> impl Iterator<Item = &str> {
    let bytes = raw.as_bytes();
    let (mut i, mut in_string, mut escaped) = (0, false, false);
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let b = bytes[i];
            if in_string {
                (in_string, escaped) = match (escaped, b) {
                    (true, _) => (true, false),
                    (false, b'\\') => (true, true),
                    (false, b'"') => (false, false),
                    _ => (true, false),
                };
                i += 1;
            } else if b == b'"' {
                in_string = true;
                i += 1;
            } else if b == b'-' || b.is_ascii_digit() {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                return Some(&raw[start..i]);
            } else {
                i += 1;
            }
        }
        None
    })
}

/// A decimal literal as (negative, significant digits, exponent), zero as `(false, "", 0)`.
fn decimal(text: &str) -> (bool, String, i64) {
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i64>().unwrap_or(0)),
        None => (text, 0),
    };
    let negative = mantissa.starts_with('-');
    let mantissa = mantissa.trim_start_matches('-');
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    let trimmed = digits.trim_start_matches('0');
    let significant = trimmed.trim_end_matches('0');
    if significant.is_empty() {
        return (false, String::new(), 0);
    }
    let exp = exp - frac.len() as i64 + (trimmed.len() - significant.len()) as i64;
    (negative, significant.to_owned(), exp)
}

enum Step<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

/// The value being read: its place (built into a pointer only when needed) and the numbers
/// seen so far.
struct At<'a> {
    parent: Option<&'a At<'a>>,
    step: Step<'a>,
    numbers: &'a RefCell<Vec<Parsed>>,
}

impl At<'_> {
    fn pointer(&self) -> String {
        let mut steps = Vec::new();
        let mut at = Some(self);
        while let Some(a) = at {
            match a.step {
                Step::Root => {}
                Step::Index(i) => steps.push(i.to_string()),
                Step::Key(k) => {
                    let k: String = k.chars().take(MAX_STEP_CHARS).collect();
                    steps.push(k.replace('~', "~0").replace('/', "~1"));
                }
            }
            at = a.parent;
        }
        if steps.is_empty() {
            return "the top level".into();
        }
        steps.reverse();
        format!("/{}", steps.join("/"))
    }

    fn number(&self, float: Option<f64>) {
        let pointer = if float.is_some() {
            self.pointer()
        } else {
            String::new()
        };
        self.numbers.borrow_mut().push(Parsed { float, pointer });
    }
}

impl<'de> DeserializeSeed<'de> for At<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for At<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        self.number(None);
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        self.number(None);
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Value, E> {
        self.number(Some(x));
        Number::from_f64(x)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("the number at {} is not finite", self.pointer())))
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
        loop {
            let at = At {
                parent: Some(&self),
                step: Step::Index(out.len()),
                numbers: self.numbers,
            };
            match seq.next_element_seed(at)? {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let at = At {
                parent: Some(&self),
                step: Step::Key(&key),
                numbers: self.numbers,
            };
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key at {}",
                    at.pointer()
                )));
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
        let raw = r#"{"a": [1, -2, 2.5, "x\"1.5e999", null, true, 1.0e2, 1E5, -0, 0.1],
                      "b": {"c": 18446744073709551615, "d": -9223372036854775808}}"#;
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
        // the same key in two objects is no duplicate; an escaped spelling is the same key
        assert!(parse(r#"[{"a": 1}, {"a": 2}]"#).is_ok());
        assert!(parse(r#"{"ab": 1, "a\u0062": 2}"#).is_err());
    }

    #[test]
    fn numbers_a_64_bit_value_does_not_hold_exactly_are_refused_with_their_place() {
        for raw in [
            r#"{"id": 18446744073709551616}"#,
            r#"{"id": 123456789012345678901234567890}"#,
            r#"{"id": -9223372036854775809}"#,
            r#"{"id": 9007199254740993.0}"#,
            r#"{"id": 4503599627370496.5}"#,
            r#"{"id": 0.1000000000000000001}"#,
        ] {
            let e = parse(raw).unwrap_err().to_string();
            assert!(
                e.starts_with("the number at /id is beyond 64-bit precision"),
                "{raw}: {e}"
            );
        }
        assert!(parse("1e400").is_err());
        assert_eq!(
            parse(r#"{"n": 9007199254740991.0, "m": 1e20, "s": 0.30000000000000004}"#).unwrap(),
            json!({"n": 9007199254740991.0, "m": 1e20, "s": 0.30000000000000004})
        );
        assert_eq!(parse("-9223372036854775808").unwrap(), json!(i64::MIN));
    }

    #[test]
    fn pointers_escape_their_steps_and_cut_long_keys() {
        let e = parse(r#"{"a/b": [{"c~d": 1.00000000000000000001}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("the number at /a~1b/0/c~0d"), "{e}");
        let long = "k".repeat(500);
        let e = parse(&format!(r#"{{"{long}": 1, "{long}": 2}}"#))
            .unwrap_err()
            .to_string();
        assert!(e.len() < 200, "{e}");
    }

    #[test]
    fn a_wide_body_with_a_long_key_parses_in_one_pass() {
        let raw = format!(
            r#"{{"{}": [{}0]}}"#,
            "k".repeat(100_000),
            "0,".repeat(50_000)
        );
        let started = std::time::Instant::now();
        assert!(parse(&raw).is_ok());
        // One pass, not a copy of the key per element (that took minutes).
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
