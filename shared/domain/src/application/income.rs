//! The `income` section: the annual income.

use super::fields::Checker;

/// `/income/annual`: money in the loan's currency, zero allowed.
pub(super) fn annual(c: &mut Checker, exponent: u32) -> Option<u64> {
    c.money("/income/annual", exponent, true)
}
