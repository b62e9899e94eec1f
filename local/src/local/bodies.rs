//! Message bodies the tests and the demo send: orders, and lender applications.

use serde_json::Value;

/// An order body: `{"orderId": id, "sku": ..., "quantity": ..., "messageId": <noise>}`.
pub fn order(id: &str) -> Value {
    serde_json::json!({
        "orderId": id,
        "sku": format!("SKU-{}", id.len()),
        "quantity": 1 + (id.len() % 5),
        "messageId": format!("{:016x}", rand::random::<u64>()),
    })
}

/// A valid lender application with id `id` (see `shared/domain/src/application/mod.rs`).
pub fn application(id: &str) -> Value {
    let n = id
        .bytes()
        .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
    serde_json::json!({
        "applicationId": id,
        "submittedAt": "2026-11-28T10:15:00+01:00",
        "applicant": {"firstName": "anna", "lastName": "VAN DER berg",
                      "dateOfBirth": "1985-03-14", "email": "Anna@Example.com"},
        "loan": {"amount": format!("{}.{:02}", 150_000 + n % 300_000, n % 100), "currency": "EUR",
                 "termMonths": 360, "purpose": "purchase"},
        "property": {"value": 500_000, "postcode": "1234 ab", "country": "nl"},
        "income": {"annual": "72000"},
        "lenderMeta": {"messageId": format!("{:016x}", rand::random::<u64>())}
    })
}
