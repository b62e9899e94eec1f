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
//!
//! Each section of the input has its file (`header`: id and submission time, `applicant`,
//! `loan`, `property`, `income`); `fields` holds the shared field readers, `money` and `names`
//! the two conversions above.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

mod applicant;
mod fields;
mod header;
mod income;
mod loan;
mod money;
mod names;
mod property;

pub use applicant::Applicant;
pub use loan::Loan;
pub use money::{parse_money, CURRENCIES};
pub use names::{normalise_name, PARTICLES};
pub use property::Property;

use fields::Checker;

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
    let v = crate::json::parse(raw).map_err(|e| ApplicationError::NotJson(e.to_string()))?;
    transform_value(&v)
}

/// As [`transform`], from parsed JSON.
pub fn transform_value(v: &Value) -> Result<ApprovalApplication, ApplicationError> {
    if !v.is_object() {
        return Err(ApplicationError::NotObject);
    }
    let mut c = Checker::new(v);
    let fields = Fields::read(&mut c);
    c.finish()?;
    within_size(fields.complete()?)
}

/// Every field as read, `None` where it had a problem.
struct Fields {
    application_id: Option<String>,
    submitted: Option<OffsetDateTime>,
    currency: Option<(String, u32)>,
    amount: Option<u64>,
    value: Option<u64>,
    income: Option<u64>,
    term_months: Option<u32>,
    purpose: Option<String>,
    postcode: Option<String>,
    country: Option<String>,
    applicants: Vec<Applicant>,
}

impl Fields {
    /// Reads every field, in the order its problems are reported. The money amounts need the
    /// loan's currency, so they come right after it, before the rest of the loan.
    fn read(c: &mut Checker) -> Fields {
        let application_id = header::application_id(c);
        let submitted = header::submitted_at(c);
        let currency = loan::currency(c);
        let exponent = currency.as_ref().map(|(_, e)| *e);
        let amount = exponent.and_then(|e| loan::amount(c, e));
        let value = exponent.and_then(|e| property::value(c, e));
        let income = exponent.and_then(|e| income::annual(c, e));
        let term_months = loan::term_months(c);
        let purpose = loan::purpose(c);
        let postcode = property::postcode(c);
        let country = property::country(c);
        let applicants = applicant::applicants(c, submitted.map(header::utc_date));
        Fields {
            application_id,
            submitted,
            currency,
            amount,
            value,
            income,
            term_months,
            purpose,
            postcode,
            country,
            applicants,
        }
    }

    /// The application in the approval system's schema. Every field is present once no error
    /// was recorded.
    fn complete(self) -> Result<ApprovalApplication, ApplicationError> {
        let (
            Some(application_id),
            Some(submitted),
            Some((currency, _)),
            Some(amount),
            Some(value),
            Some(income),
            Some(term_months),
            Some(purpose),
            Some(postcode),
            Some(country),
        ) = (
            self.application_id,
            self.submitted,
            self.currency,
            self.amount,
            self.value,
            self.income,
            self.term_months,
            self.purpose,
            self.postcode,
            self.country,
        )
        else {
            return Err(ApplicationError::Invalid(vec![FieldError {
                field: "/".into(),
                reason: "incomplete".into(),
            }]));
        };
        let ltv = (u128::from(amount) * 10_000 / u128::from(value)) as u64;
        Ok(ApprovalApplication {
            schema_version: 1,
            application_id,
            submitted_at: header::utc_iso(submitted),
            applicants: self.applicants,
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
        })
    }
}

/// Refuses an application too large for the event bus.
fn within_size(out: ApprovalApplication) -> Result<ApprovalApplication, ApplicationError> {
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

#[cfg(test)]
mod tests;
