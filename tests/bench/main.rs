//! `make bench`: Steadfast measured, side by side with naive send-and-retry. Writes
//! `target/steadfast/bench-report.json`, prints the figures as tables, and draws the chart the
//! README shows (`docs/bench.svg`).
//!
//! Parts: `outage` (the outage policy in simulated time; `outage.rs`), then on one local stack
//! with the release functions and the schedules at their deployed rate: per pipeline, `n`
//! messages for throughput (beside the emulator's raw rate, `raw.rs`) and the cost per message
//! counted at the AWS client (`flow.rs`, `cost.rs`); latency with and without the stream
//! triggers (`latency.rs`); the functions' footprint (`footprint.rs`). `bench outage` runs the
//! first alone (no emulator needed).

use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;
use serde_json::{json, Map, Value};
use steadfast_domain::Backoff;

mod chart;
mod cost;
mod flow;
mod footprint;
mod latency;
mod outage;
mod pipelines;
mod raw;

use outage::{ambiguous, naive, steadfast, Naive, Scenario};

#[derive(Parser)]
#[command(
    about = "Steadfast beside naive send-and-retry: outage, cost, latency, throughput, footprint"
)]
struct Args {
    /// `outage` runs the simulated outage alone (no emulator needed).
    only: Option<String>,
    /// Messages per pipeline for throughput, cost and peak memory.
    #[arg(long, default_value_t = 1000)]
    messages: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(other) = args.only.as_deref().filter(|o| *o != "outage") {
        anyhow::bail!("bench: unknown part {other:?} (only `outage` runs alone)");
    }
    let started = Instant::now();
    let mut report = json!({
        "generated_at_ms": steadfast_local::now_ms(),
        "cores": std::thread::available_parallelism().map_or(0, usize::from),
        "functions_build": std::env::var("PROFILE").unwrap_or_else(|_| "debug".into()),
        "outage": outage_part(),
    });
    print(&report);
    if args.only.as_deref() != Some("outage") {
        let stacked = on_the_stack(args.messages).await?;
        for (k, v) in stacked {
            report[k] = v;
        }
        print_cost(&report["cost"]);
        print_rest(&report);
    }
    report["seconds"] = json!(flow::round1(started.elapsed().as_secs_f64()));
    steadfast_local::write_report("bench-report.json", &report)?;
    println!("\nreport: target/steadfast/bench-report.json");
    if !report["latency"].is_null() {
        let svg = steadfast_local::workspace_root().join("docs/bench.svg");
        std::fs::create_dir_all(svg.parent().expect("docs/"))?;
        std::fs::write(&svg, chart::draw(&report))?;
        println!("chart: docs/bench.svg");
    }
    Ok(())
}

/// Everything measured on one local stack: throughput and cost per pipeline, latency, footprint.
async fn on_the_stack(n: usize) -> Result<Map<String, Value>> {
    let l = steadfast_tests::stack("bench", &[], &[], None).await?;
    let result = async {
        // Latency first, on a stack that has carried nothing yet: after the loads below, the
        // tables' streams hold thousands of claim and settle records ahead of a new one.
        println!("\n== latency");
        let latency = latency::part(&l).await?;
        let (mut throughput, mut cost) = (Map::new(), Map::new());
        for p in pipelines::ALL {
            println!("\n== {}: {n} messages", p.name());
            let (t, c) = flow::measure(&l, p, n).await?;
            throughput.insert(p.name().into(), t);
            cost.insert(p.name().into(), c);
        }
        cost.insert("messages_per_pipeline".into(), json!(n));
        cost.insert("prices_usd_per_million".into(), cost::prices());
        println!("== footprint");
        let footprint = footprint::part(&l).await?;
        let mut out = Map::new();
        out.insert("throughput".into(), Value::Object(throughput));
        out.insert("cost".into(), Value::Object(cost));
        out.insert("latency".into(), latency);
        out.insert("footprint".into(), footprint);
        anyhow::Ok(out)
    }
    .await;
    l.down().await;
    result
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
    println!(
        "\nCost per delivered message, healthy path ({} messages, counted at the AWS client)",
        cost["messages_per_pipeline"]
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

fn print_rest(report: &Value) {
    println!("\nThroughput (messages/s, all sent at once) and the emulator's raw rate");
    for p in pipelines::ALL {
        let t = &report["throughput"][p.name()];
        println!(
            "  {:<8} {:>6} msg/s in {:>6} s; raw {:>6} msg/s one at a time (ratio {}), {:>6} msg/s by {} (ratio {})",
            p.name(),
            t["per_second"],
            t["seconds_to_last_delivery"],
            t["emulator_raw"]["one_at_a_time"]["per_second"],
            t["ratio_to_raw"],
            t["emulator_raw"]["at_mapping_concurrency"]["per_second"],
            t["emulator_raw"]["at_mapping_concurrency"]["workers"],
            t["ratio_to_raw_at_mapping_concurrency"]
        );
    }
    let l = &report["latency"];
    println!("\nLatency (ms, sent one at a time)");
    for (what, v) in [
        (
            "outbox record → published, stream",
            &l["outbox"]["record_to_published_ms"]["stream"],
        ),
        (
            "outbox record → published, sweep only",
            &l["outbox"]["record_to_published_ms"]["sweep_only"],
        ),
        (
            "inbox message → delivered, stream",
            &l["inbox"]["message_to_delivered_ms"]["stream"],
        ),
        (
            "inbox message → delivered, sweep only",
            &l["inbox"]["message_to_delivered_ms"]["sweep_only"],
        ),
    ] {
        println!("  {what:<40} p50 {:>6}  p99 {:>6}", v["p50"], v["p99"]);
    }
    println!("  bounds: {}", l["bounds"]);
    println!(
        "\nFootprint ({} functions)",
        report["functions_build"].as_str().unwrap_or("unknown")
    );
    println!(
        "  {:<16} {:>10} {:>14} {:>12}",
        "", "bytes", "cold init ms", "peak RSS kB"
    );
    for f in footprint::FUNCTIONS {
        let v = &report["footprint"][f];
        println!(
            "  {f:<16} {:>10} {:>14} {:>12}",
            v["bytes"], v["cold_init_ms"], v["peak_rss_kb"]
        );
    }
}
