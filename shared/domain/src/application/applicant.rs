//! The `applicant` and `coApplicant` sections: names, date of birth and email of each.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::macros::format_description;
use time::Date;

use super::fields::Checker;
use super::names::normalise_name;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Applicant {
    pub role: String,
    pub given_name: String,
    pub family_name: String,
    pub birth_date: String,
    pub email: String,
}

/// The primary applicant (required), then the co-applicant (optional). `submitted`: the day
/// ages are counted on.
pub(super) fn applicants(c: &mut Checker, submitted: Option<Date>) -> Vec<Applicant> {
    let mut applicants = Vec::new();
    for (base, role, required) in [
        ("/applicant", "primary", true),
        ("/coApplicant", "co", false),
    ] {
        if present(c, base, required) {
            applicants.extend(applicant(c, base, role, submitted));
        }
    }
    applicants
}

/// Is the section at `base` an object? A missing required one, or one of another type, is a
/// problem.
fn present(c: &mut Checker, base: &str, required: bool) -> bool {
    match c.root.pointer(base) {
        None | Some(Value::Null) if !required => false,
        Some(Value::Object(_)) => true,
        None | Some(Value::Null) => {
            c.fail(base, "is missing");
            false
        }
        Some(_) => {
            c.fail(base, "must be an object");
            false
        }
    }
}

/// One applicant; every field is read, so each of its problems is reported.
fn applicant(
    c: &mut Checker,
    base: &str,
    role: &str,
    submitted: Option<Date>,
) -> Option<Applicant> {
    let given = name(c, &format!("{base}/firstName"), false);
    let family = name(c, &format!("{base}/lastName"), true);
    let birth = birth_date(c, &format!("{base}/dateOfBirth"), submitted);
    let mail = email(c, &format!("{base}/email"));
    Some(Applicant {
        role: role.into(),
        given_name: given?,
        family_name: family?,
        birth_date: birth?,
        email: mail?,
    })
}

/// A name, normalised (see [`normalise_name`]).
fn name(c: &mut Checker, field: &str, family: bool) -> Option<String> {
    let raw = c.text(field)?;
    match normalise_name(&raw, family) {
        Ok(n) => Some(n),
        Err(why) => {
            c.fail(field, why);
            None
        }
    }
}

/// `YYYY-MM-DD` or `DD-MM-YYYY`, 18 to 120 years before `submitted`, as `YYYY-MM-DD`.
fn birth_date(c: &mut Checker, field: &str, submitted: Option<Date>) -> Option<String> {
    let raw = c.text(field)?;
    let raw = raw.trim();
    let iso = format_description!("[year]-[month]-[day]");
    let dmy = format_description!("[day]-[month]-[year]");
    let Ok(d) = Date::parse(raw, iso).or_else(|_| Date::parse(raw, dmy)) else {
        c.fail(
            field,
            "is not a date as YYYY-MM-DD or DD-MM-YYYY".to_owned(),
        );
        return None;
    };
    if let Some(on) = submitted {
        let mut age = on.year() - d.year();
        if (on.month() as u8, on.day()) < (d.month() as u8, d.day()) {
            age -= 1;
        }
        if !(18..=120).contains(&age) {
            c.fail(
                field,
                "must be 18 to 120 years before submittedAt".to_owned(),
            );
            return None;
        }
    }
    d.format(iso).ok()
}

/// Trimmed, lower case, one `@`, a dot in the domain.
fn email(c: &mut Checker, field: &str) -> Option<String> {
    let raw = c.text(field)?;
    let e = raw.trim().to_lowercase();
    let ok = e.len() <= 254
        && !e.contains(char::is_whitespace)
        && matches!(e.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.contains('@') && domain.contains('.')
               && !domain.starts_with('.') && !domain.ends_with('.'));
    c.ensure(ok, field, "is not an email address").then_some(e)
}
