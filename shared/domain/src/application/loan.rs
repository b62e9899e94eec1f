//! The `loan` section: currency, amount, term and purpose.

use serde::{Deserialize, Serialize};

use super::fields::Checker;
use super::money::{codes, CURRENCIES};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Loan {
    pub amount_minor: u64,
    pub currency: String,
    pub term_months: u32,
    pub purpose: String,
}

/// `/loan/currency`: the ISO 4217 code, upper case, and its number of decimals.
pub(super) fn currency(c: &mut Checker) -> Option<(String, u32)> {
    c.text("/loan/currency").and_then(|s| {
        let up = s.trim().to_ascii_uppercase();
        match CURRENCIES.iter().find(|(code, _)| *code == up) {
            Some((code, exp)) => Some((code.to_string(), *exp)),
            None => {
                c.fail(
                    "/loan/currency",
                    format!("is not a supported currency (supported: {})", codes()),
                );
                None
            }
        }
    })
}

/// `/loan/amount`: money with `exponent` decimals, more than zero.
pub(super) fn amount(c: &mut Checker, exponent: u32) -> Option<u64> {
    c.money("/loan/amount", exponent, false)
}

/// `/loan/termMonths`: a whole number 12–480.
pub(super) fn term_months(c: &mut Checker) -> Option<u32> {
    c.whole("/loan/termMonths", 12, 480)
}

/// `/loan/purpose`: `PURCHASE`, `REFINANCE` or `RENOVATION`.
pub(super) fn purpose(c: &mut Checker) -> Option<String> {
    c.text("/loan/purpose").and_then(|s| {
        let up = s.trim().to_ascii_uppercase();
        let ok = ["PURCHASE", "REFINANCE", "RENOVATION"].contains(&up.as_str());
        c.ensure(
            ok,
            "/loan/purpose",
            "must be purchase, refinance or renovation",
        )
        .then_some(up)
    })
}
