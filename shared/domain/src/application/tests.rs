//! Tests of the whole transform: a full application field by field, every invalid field named,
//! and properties over generated applications.

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
        (
            "/applicant/dateOfBirth",
            json!("2015-01-01"),
            "must be 18 to 120 years before submittedAt",
        ),
        ("/applicant/dateOfBirth", json!("1985-02-30"), "not a date"),
        ("/applicant/firstName", json!(42), "must be a string"),
        ("/loan/amount", json!("0"), "more than zero"),
        ("/loan/amount", json!(true), "number or a decimal string"),
        ("/loan/currency", json!("XBT"), "not a supported currency"),
        ("/applicant/lastName", json!("Jansen2"), "only letters"),
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
        // The reason is logged and parked: it names the field and the rule, never the value.
        if let Some(value) = bad.as_str().filter(|s| s.len() >= 3) {
            assert!(!err.to_string().contains(value), "{field}: {err}");
        }
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
