//! `make bench`: Steadfast measured, side by side with naive send-and-retry. Writes
//! `target/steadfast/bench-report.json` and prints the figures as a table.
//!
//! Parts: `outage` (the outage policy in simulated time; `outage.rs`) and `cost` (calls per
//! delivered message on the healthy path, counted at the AWS client on the local stack;
//! `cost.rs`). `bench outage` runs the first alone (no emulator needed).

use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};
use steadfast_domain::Backoff;

mod cost;
mod outage;

use outage::{ambiguous, naive, steadfast, Naive, Scenario};

#[tokio::main]
async fn main() -> Result<()> {
    let only_outage = std::env::args().nth(1).as_deref() == Some("outage");
    let cost = if only_outage {
        Value::Null
    } else {
        cost::part(100).await?
    };
    let report = json!({
        "generated_at_ms": steadfast_local::now_ms(),
        "cores": std::thread::available_parallelism().map_or(0, usize::from),
        "outage": outage_part(),
        "cost": cost,
    });
    print(&report);
    print_cost(&report["cost"]);
    steadfast_local::write_report("bench-report.json", &report)?;
    println!("\nreport: target/steadfast/bench-report.json");
    Ok(())
}

/// The outage policy: 18 hours down with an order a minute, at the default cap and others; a
/// 30-minute maintenance window announced by Retry-After; duplicates under ambiguous answers.
fn outage_part() -> Value {
    let sc = Scenario::eighteen_hours();
    let capped = |secs: u64| Backoff {
        cap: Duration::from_secs(secs),
        ..Backoff::default()
    };
    let tradeoff: Vec<Value> = [300, 1800, 3600, 4 * 3600]
        .into_iter()
        .map(|cap| {
            let r = steadfast(&sc, capped(cap));
            json!({"cap_s": cap, "api_calls_during_outage": r.api_calls_during_outage,
                   "recovery_lag_s": r.recovery_lag_s, "lost": r.lost})
        })
        .collect();
    let window = Scenario::maintenance(Duration::from_secs(1800));
    let (naive_dup, steadfast_dup) = ambiguous(1000, 0.1, 7);
    json!({
        "scenario": {"outage_s": sc.outage.as_secs(), "order_every_s": sc.every.as_secs(),
                     "naive": {"tries": Naive::default().tries, "visibility_s": Naive::default().visibility.as_secs(),
                               "max_receives": Naive::default().max_receives}},
        "steadfast": steadfast(&sc, Backoff::default()),
        "naive": naive(&sc, Naive::default()),
        "cap_tradeoff": tradeoff,
        "maintenance": {
            "window_s": 1800,
            "steadfast": {"api_calls": steadfast(&window, Backoff::default()).api_calls_during_outage},
            "naive": {"api_calls": naive(&window, Naive::default()).api_calls_during_outage},
        },
        "ambiguous": {"orders": 1000, "answers_lost_share": 0.1,
                      "naive": {"duplicates": naive_dup}, "steadfast": {"duplicates": steadfast_dup}},
    })
}

fn print(report: &Value) {
    let o = &report["outage"];
    println!("Outage, simulated: 18 h down, an order a minute");
    println!("  {:<28} {:>10} {:>10}", "", "steadfast", "naive");
    for key in [
        "api_calls_during_outage",
        "lost",
        "duplicates",
        "recovery_lag_s",
        "drain_s",
    ] {
        let (s, n) = (o["steadfast"][key].to_string(), o["naive"][key].to_string());
        println!("  {key:<28} {s:>10} {n:>10}");
    }
    println!("  cap trade-off (cap → calls during the outage, recovery lag):");
    for c in o["cap_tradeoff"].as_array().into_iter().flatten() {
        let (cap, calls) = (
            c["cap_s"].to_string(),
            c["api_calls_during_outage"].to_string(),
        );
        let lag = c["recovery_lag_s"].as_f64().unwrap_or(f64::NAN);
        println!("    {cap:>6} s → {calls:>4} calls, {lag:>8.1} s");
    }
    println!(
        "  maintenance window (30 min, Retry-After): steadfast {} calls, naive {}",
        o["maintenance"]["steadfast"]["api_calls"], o["maintenance"]["naive"]["api_calls"]
    );
    println!(
        "  ambiguous answers (10 % lost after processing, 1000 orders): duplicates steadfast {}, naive {}",
        o["ambiguous"]["steadfast"]["duplicates"], o["ambiguous"]["naive"]["duplicates"]
    );
}

fn print_cost(cost: &Value) {
    if cost.is_null() {
        return;
    }
    println!(
        "\nCost per delivered message, healthy path (100 messages, counted at the AWS client)"
    );
    let keys = [
        "dynamodb_reads",
        "dynamodb_writes",
        "dynamodb_write_units",
        "dynamodb_conditional_refused",
        "gate_writes",
        "sqs_calls",
        "eventbridge_calls",
        "lambda_invocations",
        "usd_per_million_messages",
    ];
    println!(
        "  {:<30} {:>9} {:>9} {:>9}",
        "", "breaker", "outbox", "inbox"
    );
    for key in keys {
        let v = |p: &str| format!("{:.2}", cost[p][key].as_f64().unwrap_or(f64::NAN));
        let (b, o, i) = (v("breaker"), v("outbox"), v("inbox"));
        println!("  {key:<30} {b:>9} {o:>9} {i:>9}");
    }
}
