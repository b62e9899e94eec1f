//! Mortgage applications: the lender's message, its validation, and the transform to the
//! approval system's schema. Pure: the same input always gives the same output or the same
//! reasons.
//!
//! # The lender's message (input)
//!
//! ```json
//! {
//!   "applicationId": "APP-2026-000123",
//!   "submittedAt": "2026-11-28T10:15:00+01:00",
//!   "applicant":   { "firstName": " anna ", "lastName": "VAN DER berg",
//!                    "dateOfBirth": "1985-03-14", "email": "Anna@Example.com" },
//!   "coApplicant": { ... same fields, optional ... },
//!   "loan":     { "amount": "350000.00", "currency": "eur", "termMonths": 360, "purpose": "purchase" },
//!   "property": { "value": 420000, "postcode": "1234 ab", "country": "nl" },
//!   "income":   { "annual": "85000.50" }
//! }
//! ```
//!
//! Other fields are ignored (lenders add their own metadata).
//!
//! # The approval system's schema (output), field by field
//!
//! | output | from | rule |
//! |---|---|---|
//! | `schemaVersion` | — | always `1` |
//! | `applicationId` | `applicationId` | 1–64 of `A-Z a-z 0-9 - _ .`, kept as sent |
//! | `submittedAt` | `submittedAt` | RFC 3339 with offset → ISO 8601 UTC, second precision, `Z` |
//! | `applicants[]` | `applicant`, `coApplicant` | `role` `primary` / `co`, in that order |
//! | `applicants[].givenName` | `firstName` | names normalised (below) |
//! | `applicants[].familyName` | `lastName` | names normalised, particles lower case |
//! | `applicants[].birthDate` | `dateOfBirth` | `YYYY-MM-DD` or `DD-MM-YYYY` → `YYYY-MM-DD`; 18–120 years old when submitted |
//! | `applicants[].email` | `email` | trimmed, lower case, one `@`, a dot in the domain |
//! | `loan.amountMinor` | `loan.amount` | money in minor units of `loan.currency` (below), > 0 |
//! | `loan.currency` | `loan.currency` | ISO 4217, upper case, one of [`CURRENCIES`] |
//! | `loan.termMonths` | `loan.termMonths` | whole number 12–480 |
//! | `loan.purpose` | `loan.purpose` | `PURCHASE`, `REFINANCE` or `RENOVATION` |
//! | `property.valueMinor` | `property.value` | money in the loan's currency, > 0 |
//! | `property.postcode` | `property.postcode` | upper case, spaces removed, 2–10 letters/digits |
//! | `property.country` | `property.country` | ISO 3166 alpha-2, upper case |
//! | `annualIncomeMinor` | `income.annual` | money in the loan's currency, ≥ 0 |
//! | `loanToValueBasisPoints` | — | `amountMinor · 10000 / valueMinor`, rounded down |
//!
//! **Money** is a JSON number or a decimal string with a `.` separator and at most as many
//! decimals as the currency has (2, or 0 for JPY); no thousands separators, signs or
//! exponents. It is converted exactly (never through floating point) to minor units.
//!
//! **Names**: surrounding and repeated inner whitespace removed; letters, spaces, `-`, `'`
//! and `.` only; each word capitalised after the start, a `-` or a `'` (`o'brien-smith` →
//! `O'Brien-Smith`); in family names the particles of [`PARTICLES`] are lower case
//! (`VAN DER berg` → `van der Berg`). Known limit: `MCDONALD` becomes `Mcdonald`.
//!
//! Every problem of a message is reported, each with the JSON pointer of its field.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::macros::format_description;
use time::{Date, OffsetDateTime};

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

/// Family-name particles kept in lower case.
pub const PARTICLES: &[&str] = &[
    "van", "der", "den", "de", "het", "ten", "ter", "von", "zu", "la", "le", "du", "des", "del",
    "della", "di", "da", "dos", "das", "y",
];

/// The largest transformed application accepted, in bytes of JSON: ten of them, with their
/// event envelopes, fit in one PutEvents call (256 KiB).
pub const MAX_APPROVAL_BYTES: usize = 24 * 1024;

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON pointer of the field in the lender's message.
    pub field: String,
    pub reason: String,
}

/// Why a message is not a valid application.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplicationError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a JSON object")]
    NotObject,
    #[error("invalid application: {}", list(.0))]
    Invalid(Vec<FieldError>),
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{} {}", e.field, e.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ApplicationError {
    /// The pointers of the fields at fault (empty when the message is not an object at all).
    pub fn fields(&self) -> Vec<&str> {
        match self {
            ApplicationError::Invalid(v) => v.iter().map(|e| e.field.as_str()).collect(),
            _ => vec![],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Applicant {
    pub role: String,
    pub given_name: String,
    pub family_name: String,
    pub birth_date: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Loan {
    pub amount_minor: u64,
    pub currency: String,
    pub term_months: u32,
    pub purpose: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Property {
    pub value_minor: u64,
    pub postcode: String,
    pub country: String,
}

/// An application in the approval system's schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalApplication {
    pub schema_version: u32,
    pub application_id: String,
    pub submitted_at: String,
    pub applicants: Vec<Applicant>,
    pub loan: Loan,
    pub property: Property,
    pub annual_income_minor: u64,
    pub loan_to_value_basis_points: u64,
}

/// Parses, validates and transforms one lender message.
pub fn transform(raw: &str) -> Result<ApprovalApplication, ApplicationError> {
    let v: Value =
        serde_json::from_str(raw).map_err(|e| ApplicationError::NotJson(e.to_string()))?;
    transform_value(&v)
}

/// As [`transform`], from parsed JSON.
pub fn transform_value(v: &Value) -> Result<ApprovalApplication, ApplicationError> {
    if !v.is_object() {
        return Err(ApplicationError::NotObject);
    }
    let mut c = Checker {
        root: v,
        errors: vec![],
    };

    let application_id = c.text("/applicationId").and_then(|s| {
        let ok = (1..=64).contains(&s.len())
            && s.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch));
        c.ensure(ok, "/applicationId", "must be 1-64 of A-Z a-z 0-9 - _ .")
            .then_some(s)
    });
    let submitted = c.text("/submittedAt").and_then(|s| {
        match OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339) {
            Ok(t) => Some(t),
            Err(_) => {
                c.fail(
                    "/submittedAt",
                    "must be an RFC 3339 timestamp with offset, e.g. 2026-11-28T10:15:00+01:00",
                );
                None
            }
        }
    });
    let currency = c.text("/loan/currency").and_then(|s| {
        let up = s.trim().to_ascii_uppercase();
        match CURRENCIES.iter().find(|(code, _)| *code == up) {
            Some((code, exp)) => Some((code.to_string(), *exp)),
            None => {
                c.fail(
                    "/loan/currency",
                    format!("'{s}' is not supported (supported: {})", codes()),
                );
                None
            }
        }
    });
    let exponent = currency.as_ref().map(|(_, e)| *e);
    let amount = exponent.and_then(|e| c.money("/loan/amount", e, false));
    let value = exponent.and_then(|e| c.money("/property/value", e, false));
    let income = exponent.and_then(|e| c.money("/income/annual", e, true));
    let term = c.whole("/loan/termMonths", 12, 480);
    let purpose = c.text("/loan/purpose").and_then(|s| {
        let up = s.trim().to_ascii_uppercase();
        let ok = ["PURCHASE", "REFINANCE", "RENOVATION"].contains(&up.as_str());
        c.ensure(
            ok,
            "/loan/purpose",
            "must be purchase, refinance or renovation",
        )
        .then_some(up)
    });
    let postcode = c.text("/property/postcode").and_then(|s| {
        let p: String = s
            .chars()
            .filter(|ch| !ch.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let ok = (2..=10).contains(&p.len()) && p.chars().all(|ch| ch.is_ascii_alphanumeric());
        c.ensure(ok, "/property/postcode", "must be 2-10 letters or digits")
            .then_some(p)
    });
    let country = c.text("/property/country").and_then(|s| {
        let up = s.trim().to_ascii_uppercase();
        let ok = up.len() == 2 && up.chars().all(|ch| ch.is_ascii_uppercase());
        c.ensure(
            ok,
            "/property/country",
            "must be an ISO 3166 alpha-2 code such as NL",
        )
        .then_some(up)
    });

    let mut applicants = Vec::new();
    let submitted_date = submitted.map(|t| t.to_offset(time::UtcOffset::UTC).date());
    for (base, role, required) in [
        ("/applicant", "primary", true),
        ("/coApplicant", "co", false),
    ] {
        match v.pointer(base) {
            None | Some(Value::Null) if !required => continue,
            Some(Value::Object(_)) => {}
            None | Some(Value::Null) => {
                c.fail(base, "is missing");
                continue;
            }
            Some(_) => {
                c.fail(base, "must be an object");
                continue;
            }
        }
        let given = c.name(&format!("{base}/firstName"), false);
        let family = c.name(&format!("{base}/lastName"), true);
        let birth = c.birth_date(&format!("{base}/dateOfBirth"), submitted_date);
        let email = c.email(&format!("{base}/email"));
        if let (Some(given_name), Some(family_name), Some(birth_date), Some(email)) =
            (given, family, birth, email)
        {
            applicants.push(Applicant {
                role: role.into(),
                given_name,
                family_name,
                birth_date,
                email,
            });
        }
    }

    if !c.errors.is_empty() {
        return Err(ApplicationError::Invalid(c.errors));
    }
    // Every field is present once no error was recorded.
    let (
        Some(application_id),
        Some(submitted),
        Some((currency, _)),
        Some(amount),
        Some(value),
        Some(income),
    ) = (application_id, submitted, currency, amount, value, income)
    else {
        return Err(ApplicationError::Invalid(vec![FieldError {
            field: "/".into(),
            reason: "incomplete".into(),
        }]));
    };
    let (Some(term_months), Some(purpose), Some(postcode), Some(country)) =
        (term, purpose, postcode, country)
    else {
        return Err(ApplicationError::Invalid(vec![FieldError {
            field: "/".into(),
            reason: "incomplete".into(),
        }]));
    };
    let ltv = (u128::from(amount) * 10_000 / u128::from(value)) as u64;
    let out = ApprovalApplication {
        schema_version: 1,
        application_id,
        submitted_at: utc_iso(submitted),
        applicants,
        loan: Loan {
            amount_minor: amount,
            currency,
            term_months,
            purpose,
        },
        property: Property {
            value_minor: value,
            postcode,
            country,
        },
        annual_income_minor: income,
        loan_to_value_basis_points: ltv,
    };
    let size = serde_json::to_vec(&out)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if size > MAX_APPROVAL_BYTES {
        return Err(ApplicationError::Invalid(vec![FieldError {
            field: "/".into(),
            reason: format!(
                "transformed application is {size} bytes, over the {MAX_APPROVAL_BYTES}-byte limit"
            ),
        }]));
    }
    Ok(out)
}

fn codes() -> String {
    CURRENCIES
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

fn utc_iso(t: OffsetDateTime) -> String {
    let f = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(f)
        .unwrap_or_default()
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
        return Err(format!(
            "'{t}' is not a plain decimal amount (digits and one '.', no separators or exponent)"
        ));
    }
    if t.ends_with('.') {
        return Err(format!("'{t}' ends with '.'"));
    }
    if frac.len() as u32 > exponent {
        return Err(format!("'{t}' has more than {exponent} decimals"));
    }
    let scale = 10u64.pow(exponent);
    let w: u64 = whole.parse().map_err(|_| format!("'{t}' is too large"))?;
    let mut f: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| format!("'{t}' is too large"))?
    };
    f *= 10u64.pow(exponent - frac.len() as u32);
    w.checked_mul(scale)
        .and_then(|x| x.checked_add(f))
        .filter(|x| *x <= 1_000_000_000_000_000)
        .ok_or_else(|| format!("'{t}' is too large"))
}

/// Normalises a personal name; `family` lower-cases particles. `Err` says why it is not a name.
pub fn normalise_name(raw: &str, family: bool) -> Result<String, String> {
    let words: Vec<&str> = raw.split_whitespace().collect();
    if words.is_empty() {
        return Err("is empty".into());
    }
    let joined = words.join(" ");
    if joined.chars().count() > 100 {
        return Err("is longer than 100 characters".into());
    }
    if let Some(bad) = joined
        .chars()
        .find(|ch| !(ch.is_alphabetic() || " -'.".contains(*ch)))
    {
        return Err(format!(
            "contains '{bad}'; only letters, spaces, - ' and . are allowed"
        ));
    }
    if !joined.chars().any(char::is_alphabetic) {
        return Err("has no letters".into());
    }
    let all_particles = words
        .iter()
        .all(|w| PARTICLES.contains(&w.to_lowercase().as_str()));
    let out: Vec<String> = words
        .iter()
        .map(|w| {
            let lower = w.to_lowercase();
            if family && !all_particles && PARTICLES.contains(&lower.as_str()) {
                lower
            } else {
                capitalise(&lower)
            }
        })
        .collect();
    Ok(out.join(" "))
}

fn capitalise(lower: &str) -> String {
    let mut out = String::with_capacity(lower.len());
    let mut up = true;
    for ch in lower.chars() {
        if up && ch.is_alphabetic() {
            out.extend(ch.to_uppercase());
            up = false;
        } else {
            out.push(ch);
        }
        if ch == '-' || ch == '\'' {
            up = true;
        }
    }
    out
}

struct Checker<'a> {
    root: &'a Value,
    errors: Vec<FieldError>,
}

impl Checker<'_> {
    fn fail(&mut self, field: &str, reason: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            reason: reason.into(),
        });
    }

    fn ensure(&mut self, ok: bool, field: &str, reason: &str) -> bool {
        if !ok {
            self.fail(field, reason);
        }
        ok
    }

    /// A present, non-empty string.
    fn text(&mut self, field: &str) -> Option<String> {
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

    fn money(&mut self, field: &str, exponent: u32, zero_ok: bool) -> Option<u64> {
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

    fn whole(&mut self, field: &str, min: u64, max: u64) -> Option<u32> {
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

    fn name(&mut self, field: &str, family: bool) -> Option<String> {
        let raw = self.text(field)?;
        match normalise_name(&raw, family) {
            Ok(n) => Some(n),
            Err(why) => {
                self.fail(field, why);
                None
            }
        }
    }

    fn birth_date(&mut self, field: &str, submitted: Option<Date>) -> Option<String> {
        let raw = self.text(field)?;
        let raw = raw.trim();
        let iso = format_description!("[year]-[month]-[day]");
        let dmy = format_description!("[day]-[month]-[year]");
        let Ok(d) = Date::parse(raw, iso).or_else(|_| Date::parse(raw, dmy)) else {
            self.fail(
                field,
                format!("'{raw}' is not a date as YYYY-MM-DD or DD-MM-YYYY"),
            );
            return None;
        };
        if let Some(on) = submitted {
            let mut age = on.year() - d.year();
            if (on.month() as u8, on.day()) < (d.month() as u8, d.day()) {
                age -= 1;
            }
            if !(18..=120).contains(&age) {
                self.fail(
                    field,
                    format!("gives an age of {age} when submitted; must be 18 to 120"),
                );
                return None;
            }
        }
        d.format(iso).ok()
    }

    fn email(&mut self, field: &str) -> Option<String> {
        let raw = self.text(field)?;
        let e = raw.trim().to_lowercase();
        let ok = e.len() <= 254
            && !e.contains(char::is_whitespace)
            && matches!(e.split_once('@'), Some((local, domain))
                if !local.is_empty() && !domain.contains('@') && domain.contains('.')
                   && !domain.starts_with('.') && !domain.ends_with('.'));
        self.ensure(ok, field, "is not an email address")
            .then_some(e)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({
            "applicationId": "APP-2026-000123",
            "submittedAt": "2026-11-28T10:15:00+01:00",
            "applicant": {"firstName": " anna  maria ", "lastName": "VAN DER berg",
                          "dateOfBirth": "14-03-1985", "email": " Anna@Example.COM "},
            "loan": {"amount": "350000.5", "currency": "eur", "termMonths": 360, "purpose": "purchase"},
            "property": {"value": 420000, "postcode": "1234 ab", "country": "nl"},
            "income": {"annual": "85000.55"},
            "lenderMeta": {"batch": 7}
        })
    }

    #[test]
    fn a_full_application_maps_field_by_field() {
        let out = transform_value(&valid()).unwrap();
        assert_eq!(out.schema_version, 1);
        assert_eq!(out.application_id, "APP-2026-000123");
        assert_eq!(out.submitted_at, "2026-11-28T09:15:00Z");
        assert_eq!(
            out.applicants,
            vec![Applicant {
                role: "primary".into(),
                given_name: "Anna Maria".into(),
                family_name: "van der Berg".into(),
                birth_date: "1985-03-14".into(),
                email: "anna@example.com".into(),
            }]
        );
        assert_eq!(
            out.loan,
            Loan {
                amount_minor: 35_000_050,
                currency: "EUR".into(),
                term_months: 360,
                purpose: "PURCHASE".into()
            }
        );
        assert_eq!(
            out.property,
            Property {
                value_minor: 42_000_000,
                postcode: "1234AB".into(),
                country: "NL".into()
            }
        );
        assert_eq!(out.annual_income_minor, 8_500_055);
        assert_eq!(out.loan_to_value_basis_points, 8333);
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json["loan"]["amountMinor"], 35_000_050);
        assert_eq!(json["loanToValueBasisPoints"], 8333);
    }

    #[test]
    fn a_co_applicant_comes_second() {
        let mut v = valid();
        v["coApplicant"] = json!({"firstName": "jan", "lastName": "o'brien-smith",
                                  "dateOfBirth": "1980-01-01", "email": "jan@x.nl"});
        let out = transform_value(&v).unwrap();
        assert_eq!(out.applicants.len(), 2);
        assert_eq!(out.applicants[1].role, "co");
        assert_eq!(out.applicants[1].family_name, "O'Brien-Smith");
    }

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

    #[test]
    fn names_table() {
        let cases: &[(&str, bool, Result<&str, &str>)] = &[
            ("anna", false, Ok("Anna")),
            ("  ANNA   maria ", false, Ok("Anna Maria")),
            ("van der berg", true, Ok("van der Berg")),
            ("Van Der Berg", true, Ok("van der Berg")),
            ("van", true, Ok("Van")),
            ("de la cruz", true, Ok("de la Cruz")),
            ("o'brien-smith", true, Ok("O'Brien-Smith")),
            ("josé", false, Ok("José")),
            ("van", false, Ok("Van")),
            ("", false, Err("empty")),
            ("   ", false, Err("empty")),
            ("R2D2", false, Err("contains '2'")),
            ("--", false, Err("no letters")),
        ];
        for (raw, family, want) in cases {
            let got = normalise_name(raw, *family);
            match want {
                Ok(n) => assert_eq!(got.as_deref(), Ok(*n), "{raw}"),
                Err(part) => assert!(
                    got.as_ref().is_err_and(|e| e.contains(part)),
                    "{raw}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn invalid_fields_are_all_named() {
        let cases: &[(&str, Value, &str)] = &[
            ("/applicationId", json!("has space"), "1-64"),
            ("/applicationId", Value::Null, "missing"),
            ("/submittedAt", json!("28-11-2026"), "RFC 3339"),
            (
                "/applicant/email",
                json!("anna.example.com"),
                "not an email",
            ),
            ("/applicant/dateOfBirth", json!("2015-01-01"), "age of 11"),
            ("/applicant/dateOfBirth", json!("1985-02-30"), "not a date"),
            ("/applicant/firstName", json!(42), "must be a string"),
            ("/loan/amount", json!("0"), "more than zero"),
            ("/loan/amount", json!(true), "number or a decimal string"),
            ("/loan/currency", json!("XBT"), "not supported"),
            ("/loan/termMonths", json!(600), "12 to 480"),
            ("/loan/purpose", json!("yacht"), "purchase, refinance"),
            ("/property/postcode", json!("1"), "2-10"),
            ("/property/country", json!("NLD"), "alpha-2"),
            ("/income/annual", json!("-1"), "negative"),
            ("/applicant", json!("anna"), "must be an object"),
        ];
        for (field, bad, reason) in cases {
            let mut v = valid();
            let (parent, key) = field.rsplit_once('/').unwrap();
            let target = if parent.is_empty() {
                &mut v
            } else {
                v.pointer_mut(parent).unwrap()
            };
            target[key] = bad.clone();
            let err = transform_value(&v).unwrap_err();
            let ApplicationError::Invalid(list) = &err else {
                panic!("{field}: {err}")
            };
            assert!(
                list.iter()
                    .any(|e| e.field == *field && e.reason.contains(reason)),
                "{field}: expected '{reason}', got {err}"
            );
        }
    }

    #[test]
    fn several_problems_are_reported_together() {
        let mut v = valid();
        v["loan"]["currency"] = json!("XXX");
        v["applicant"]["email"] = json!("nope");
        let err = transform_value(&v).unwrap_err();
        assert_eq!(err.fields(), vec!["/loan/currency", "/applicant/email"]);
        assert!(err
            .to_string()
            .contains("/applicant/email is not an email address"));
    }

    #[test]
    fn non_json_and_non_objects_are_refused() {
        assert!(matches!(
            transform("{nope"),
            Err(ApplicationError::NotJson(_))
        ));
        assert_eq!(transform("[1]"), Err(ApplicationError::NotObject));
    }

    fn name_part() -> impl Strategy<Value = String> {
        "[a-zA-Z]{1,12}"
    }

    prop_compose! {
        fn valid_application()(
            id in "[A-Za-z0-9_.-]{1,64}",
            first in name_part(), last in name_part(),
            year in 1930i32..2000, month in 1u8..=12, day in 1u8..=28,
            amount in 1u64..100_000_000u64, cents in 0u64..100,
            value in 1u64..100_000_000u64,
            income in 0u64..10_000_000u64,
            term in 12u32..=480,
            purpose in prop::sample::select(vec!["purchase", "Refinance", "RENOVATION"]),
            currency in prop::sample::select(vec!["EUR", "usd", "Gbp", "JPY"]),
            as_number in any::<bool>(),
        ) -> (Value, u64) {
            let jpy = currency.eq_ignore_ascii_case("jpy");
            let text = if jpy { amount.to_string() } else { format!("{amount}.{cents:02}") };
            let minor = if jpy { amount } else { amount * 100 + cents };
            let amount_json = if as_number && jpy { json!(amount) } else { json!(text) };
            (json!({
                "applicationId": id,
                "submittedAt": "2026-11-28T10:15:00Z",
                "applicant": {"firstName": first, "lastName": last,
                              "dateOfBirth": format!("{year:04}-{month:02}-{day:02}"),
                              "email": format!("{first}@example.com")},
                "loan": {"amount": amount_json, "currency": currency, "termMonths": term, "purpose": purpose},
                "property": {"value": value.to_string(), "postcode": "1234 AB", "country": "nl"},
                "income": {"annual": income.to_string()},
            }), minor)
        }
    }

    proptest! {
        #[test]
        fn every_valid_application_transforms(app in valid_application()) {
            let (v, minor) = app;
            let out = transform_value(&v);
            prop_assert!(out.is_ok(), "{:?}", out);
            let out = out.unwrap();
            prop_assert_eq!(out.loan.amount_minor, minor);
            prop_assert_eq!(&out.application_id, v["applicationId"].as_str().unwrap());
            prop_assert!(out.submitted_at.ends_with('Z'));
            prop_assert_eq!(out.applicants.len(), 1);
            prop_assert!(out.applicants[0].given_name.chars().next().unwrap().is_uppercase());
        }

        #[test]
        fn every_invalid_application_is_rejected_with_its_field(
            app in valid_application(),
            which in 0usize..8,
        ) {
            let (mut v, _) = app;
            let (field, bad) = [
                ("/applicationId", json!("")),
                ("/submittedAt", json!("yesterday")),
                ("/applicant/email", json!("no-at-sign")),
                ("/applicant/dateOfBirth", json!("2020-01-01")),
                ("/loan/amount", json!("1.234")),
                ("/loan/termMonths", json!(0)),
                ("/property/value", json!("0")),
                ("/property/country", json!("N1")),
            ][which].clone();
            *v.pointer_mut(field).unwrap() = bad;
            let err = transform_value(&v);
            prop_assert!(err.is_err());
            let err = err.unwrap_err();
            prop_assert!(err.fields().contains(&field), "{} not in {}", field, err);
        }
    }
}
