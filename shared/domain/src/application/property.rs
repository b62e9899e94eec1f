//! The `property` section: value, postcode and country.

use serde::{Deserialize, Serialize};

use super::fields::Checker;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Property {
    pub value_minor: u64,
    pub postcode: String,
    pub country: String,
}

/// `/property/value`: money in the loan's currency, more than zero.
pub(super) fn value(c: &mut Checker, exponent: u32) -> Option<u64> {
    c.money("/property/value", exponent, false)
}

/// `/property/postcode`: upper case, spaces removed, 2–10 letters or digits.
pub(super) fn postcode(c: &mut Checker) -> Option<String> {
    c.text("/property/postcode").and_then(|s| {
        let p: String = s
            .chars()
            .filter(|ch| !ch.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let ok = (2..=10).contains(&p.len()) && p.chars().all(|ch| ch.is_ascii_alphanumeric());
        c.ensure(ok, "/property/postcode", "must be 2-10 letters or digits")
            .then_some(p)
    })
}

/// `/property/country`: ISO 3166 alpha-2, upper case.
pub(super) fn country(c: &mut Checker) -> Option<String> {
    c.text("/property/country").and_then(|s| {
        let up = s.trim().to_ascii_uppercase();
        let ok = up.len() == 2 && up.chars().all(|ch| ch.is_ascii_uppercase());
        c.ensure(
            ok,
            "/property/country",
            "must be an ISO 3166 alpha-2 code such as NL",
        )
        .then_some(up)
    })
}
