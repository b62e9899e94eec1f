//! The shared field readers: each reads one field of the lender's message by its JSON pointer
//! and records a problem with that pointer when the field is missing or malformed.

use serde_json::Value;

use super::money::parse_money;
use super::{ApplicationError, FieldError};

/// Reads fields of one message and collects their problems, in the order they are found.
pub(super) struct Checker<'a> {
    pub(super) root: &'a Value,
    errors: Vec<FieldError>,
}

impl<'a> Checker<'a> {
    pub(super) fn new(root: &'a Value) -> Self {
        Checker {
            root,
            errors: vec![],
        }
    }

    /// Every problem found, if any.
    pub(super) fn finish(self) -> Result<(), ApplicationError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApplicationError::Invalid(self.errors))
        }
    }

    /// Records a problem with `field`.
    pub(super) fn fail(&mut self, field: &str, reason: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            reason: reason.into(),
        });
    }

    /// Records `reason` for `field` unless `ok`; returns `ok`.
    pub(super) fn ensure(&mut self, ok: bool, field: &str, reason: &str) -> bool {
        if !ok {
            self.fail(field, reason);
        }
        ok
    }

    /// A present, non-empty string.
    pub(super) fn text(&mut self, field: &str) -> Option<String> {
        match self.root.pointer(field) {
            None | Some(Value::Null) => {
                self.fail(field, "is missing");
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.fail(field, "is empty");
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.fail(field, format!("must be a string, not {}", kind(other)));
                None
            }
        }
    }

    /// Money with `exponent` decimals, as a JSON number or a decimal string; zero only when
    /// `zero_ok`.
    pub(super) fn money(&mut self, field: &str, exponent: u32, zero_ok: bool) -> Option<u64> {
        let text = match self.root.pointer(field) {
            None | Some(Value::Null) => {
                self.fail(field, "is missing");
                return None;
            }
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                self.fail(
                    field,
                    format!("must be a number or a decimal string, not {}", kind(other)),
                );
                return None;
            }
        };
        match parse_money(&text, exponent) {
            Ok(0) if !zero_ok => {
                self.fail(field, "must be more than zero");
                None
            }
            Ok(m) => Some(m),
            Err(why) => {
                self.fail(field, why);
                None
            }
        }
    }

    /// A whole number from `min` to `max`, as a JSON number or a string.
    pub(super) fn whole(&mut self, field: &str, min: u64, max: u64) -> Option<u32> {
        let n = match self.root.pointer(field) {
            None | Some(Value::Null) => {
                self.fail(field, "is missing");
                return None;
            }
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
            Some(_) => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n as u32),
            _ => {
                self.fail(field, format!("must be a whole number from {min} to {max}"));
                None
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
