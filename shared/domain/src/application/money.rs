//! Money: exact conversion of a decimal amount to minor units of a supported currency.

/// Supported currencies and their number of decimals.
pub const CURRENCIES: &[(&str, u32)] = &[
    ("EUR", 2),
    ("USD", 2),
    ("GBP", 2),
    ("CHF", 2),
    ("SEK", 2),
    ("NOK", 2),
    ("DKK", 2),
    ("PLN", 2),
    ("JPY", 0),
];

/// The supported currency codes, for error messages.
pub(super) fn codes() -> String {
    CURRENCIES
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Converts a decimal text to minor units with `exponent` decimals, exactly.
/// `Err` names what is wrong.
pub fn parse_money(text: &str, exponent: u32) -> Result<u64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("is empty".into());
    }
    if t.starts_with('-') {
        return Err("must not be negative".into());
    }
    let (whole, frac) = match t.split_once('.') {
        Some((w, f)) => (w, f),
        None => (t, ""),
    };
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(
            "is not a plain decimal amount (digits and one '.', no separators or exponent)".into(),
        );
    }
    if t.ends_with('.') {
        return Err("ends with '.'".into());
    }
    if frac.len() as u32 > exponent {
        return Err(format!("has more than {exponent} decimals"));
    }
    let scale = 10u64.pow(exponent);
    let w: u64 = whole.parse().map_err(|_| "is too large".to_string())?;
    let mut f: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| "is too large".to_string())?
    };
    f *= 10u64.pow(exponent - frac.len() as u32);
    w.checked_mul(scale)
        .and_then(|x| x.checked_add(f))
        .filter(|x| *x <= 1_000_000_000_000_000)
        .ok_or_else(|| "is too large".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_table() {
        let cases: &[(&str, u32, Result<u64, &str>)] = &[
            ("0", 2, Ok(0)),
            ("1", 2, Ok(100)),
            ("1.5", 2, Ok(150)),
            ("1.05", 2, Ok(105)),
            ("  12.34 ", 2, Ok(1234)),
            ("1000", 0, Ok(1000)),
            ("1.5", 0, Err("more than 0 decimals")),
            ("1.005", 2, Err("more than 2 decimals")),
            ("1,000.00", 2, Err("not a plain decimal")),
            ("1e5", 2, Err("not a plain decimal")),
            ("-3", 2, Err("negative")),
            ("", 2, Err("empty")),
            ("1.", 2, Err("ends with")),
            (".5", 2, Err("not a plain decimal")),
            ("99999999999999999999", 2, Err("too large")),
        ];
        for (text, exp, want) in cases {
            let got = parse_money(text, *exp);
            match want {
                Ok(n) => assert_eq!(got, Ok(*n), "{text}"),
                Err(part) => assert!(
                    got.as_ref().is_err_and(|e| e.contains(part)),
                    "{text}: {got:?}"
                ),
            }
        }
    }
}
