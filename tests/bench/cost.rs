//! Cost on the healthy path, counted at the AWS client: every call each pipeline's functions
//! make goes through the local stack's fault proxy, which records service, operation, caller,
//! the DynamoDB items written and the table, and whether the emulator refused a write on its
//! condition. Per delivered message: DynamoDB reads, writes (items), failed conditional
//! writes, gate writes, SQS calls, EventBridge calls and Lambda invocations; then the monthly
//! cost of a million messages a month at the us-east-1 prices below.
//!
//! Schedules run at their deployed rate (a minute), so the watchdog and the sweeps, which are
//! fixed costs and not per message, fire only a few times during a measurement; close's
//! calls (the watchdog, on a healthy path) are left out.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use steadfast_local::faults::Call;

/// us-east-1 prices, USD (2026-11): DynamoDB on-demand $0.625 per million write request units
/// and $0.125 per million read request units, a transactional write item costing 2 units
/// (https://aws.amazon.com/dynamodb/pricing/on-demand/); SQS standard $0.40 per million
/// requests (https://aws.amazon.com/sqs/pricing/); EventBridge $1.00 per million custom events
/// (https://aws.amazon.com/eventbridge/pricing/); Lambda $0.20 per million requests
/// (https://aws.amazon.com/lambda/pricing/; duration is not counted here).
const WRU: f64 = 0.625;
const RRU: f64 = 0.125;
const SQS_REQUEST: f64 = 0.40;
const EVENT: f64 = 1.00;
const LAMBDA_REQUEST: f64 = 0.20;

/// What one pipeline's functions did for `n` messages, per message.
pub fn per_message(calls: &[Call], invocations: u64, gates_table: &str, n: usize) -> Value {
    let n = n.max(1) as f64;
    let dynamo = |c: &&Call| c.service == "dynamodb";
    let reads = calls
        .iter()
        .filter(dynamo)
        .filter(|c| c.write_units == 0 && !c.operation.starts_with("Describe"))
        .count() as f64;
    let writes: u32 = calls.iter().map(|c| c.write_units).sum();
    let transact_items: u32 = calls
        .iter()
        .filter(|c| c.operation == "TransactWriteItems")
        .map(|c| c.write_units)
        .sum();
    let refused = calls.iter().filter(|c| c.refused_condition).count() as f64;
    let gate_writes: u32 = calls
        .iter()
        .filter(|c| c.table.as_deref() == Some(gates_table))
        .map(|c| c.write_units)
        .sum();
    let sqs = calls.iter().filter(|c| c.service == "sqs").count() as f64;
    let events = calls.iter().filter(|c| c.service == "events").count() as f64;
    let mut by_operation: BTreeMap<String, f64> = BTreeMap::new();
    for c in calls {
        *by_operation
            .entry(format!("{}:{}", c.service, c.operation))
            .or_insert(0.0) += 1.0 / n;
    }
    let write_units = f64::from(writes + transact_items);
    let monthly = (write_units * WRU
        + reads * RRU
        + sqs * SQS_REQUEST
        + events * EVENT
        + invocations as f64 * LAMBDA_REQUEST)
        / n;
    json!({
        "dynamodb_reads": reads / n,
        "dynamodb_writes": f64::from(writes) / n,
        "dynamodb_write_units": write_units / n,
        "dynamodb_conditional_refused": refused / n,
        "gate_writes": f64::from(gate_writes) / n,
        "sqs_calls": sqs / n,
        "eventbridge_calls": events / n,
        "lambda_invocations": invocations as f64 / n,
        "usd_per_million_messages": (monthly * 100.0).round() / 100.0,
        "by_operation": by_operation,
    })
}

/// The prices above, for the report.
pub fn prices() -> Value {
    json!({"dynamodb_write_unit": WRU, "dynamodb_read_unit": RRU, "sqs_request": SQS_REQUEST,
           "eventbridge_event": EVENT, "lambda_request": LAMBDA_REQUEST})
}
