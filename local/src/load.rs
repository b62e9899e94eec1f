//! `make load`: 10 000 messages through each pipeline on the local stack, with the time to
//! deliver them all, the throughput, and the functions' peak memory, then the accounting
//! (sent = delivered + parked, nothing twice at the target, nothing held, the DLQs empty).
//! A measurement, not a test: nothing here is asserted against a time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::demo::say;
use crate::erp::storm;
use crate::local::{application, order, Local, Options};

pub struct LoadConfig {
    /// Messages per pipeline.
    pub messages: usize,
    /// Concurrent senders.
    pub senders: usize,
    /// Pipelines to load (default: all).
    pub only: Vec<String>,
}

/// The functions of each pipeline whose peak memory the report gives.
const FUNCTIONS: [(&str, &[&str]); 3] = [
    ("orders", &["processor"]),
    ("outbox", &["outbox-writer", "outbox-relay"]),
    ("inbox", &["inbox-receiver", "inbox-processor"]),
];

/// Runs the chosen pipelines one after the other, each on a stack of its own.
pub async fn run(cfg: LoadConfig) -> Result<Value> {
    if cfg.messages < 10 {
        bail!("--messages must be at least 10 (got {})", cfg.messages);
    }
    let mut report = serde_json::Map::new();
    for (pipeline, _) in FUNCTIONS {
        if !cfg.only.is_empty() && !cfg.only.iter().any(|o| o == pipeline) {
            continue;
        }
        println!("\n== {pipeline}: {} messages", cfg.messages);
        let l = Local::up(Options {
            prefix: format!("load-{}", &pipeline[..2]),
            ..Options::default()
        })
        .await?;
        let result = match pipeline {
            "orders" => orders(&l, &cfg).await,
            "outbox" => outbox(&l, &cfg).await,
            _ => inbox(&l, &cfg).await,
        };
        let mut r = result?;
        r["peak_memory_mb"] = memory(&l, pipeline);
        r["accounting"] = accounting(&l).await?;
        print_summary(pipeline, &r);
        report.insert(pipeline.to_owned(), r);
        // Kept after each pipeline: a run stopped later still has what it measured.
        crate::write_report("load-report.partial.json", &Value::Object(report.clone()))?;
        l.down().await;
    }
    Ok(Value::Object(report))
}

async fn orders(l: &Local, cfg: &LoadConfig) -> Result<Value> {
    let ids: Vec<String> = (0..cfg.messages).map(|i| format!("LD-{i:06}")).collect();
    let bodies: Vec<String> = ids.iter().map(|id| order(id).to_string()).collect();
    let start = Instant::now();
    let sent = send_all(l, "OrdersQueue", &bodies, cfg.senders).await?;
    wait_counting(l, "orders created at the portal", ids.len(), || async {
        Ok(l.portal.created_orders().len())
    })
    .await?;
    let created = l.portal.created_orders();
    let twice = created.values().filter(|n| **n > 1).count();
    let parked = l.take_parked().await?.len();
    Ok(figures(cfg.messages, sent, start, parked, twice))
}

async fn outbox(l: &Local, cfg: &LoadConfig) -> Result<Value> {
    let ids: Vec<String> = (0..cfg.messages).map(|i| format!("LA-{i:06}")).collect();
    let bodies: Vec<String> = ids.iter().map(|id| application(id).to_string()).collect();
    let start = Instant::now();
    let sent = send_all(l, "ApplicationsQueue", &bodies, cfg.senders).await?;
    wait_counting(l, "events at the consumer", ids.len(), || async {
        let ids: HashSet<String> = l
            .approvals()
            .await?
            .into_iter()
            .map(|a| a.event_id)
            .collect();
        Ok(ids.len())
    })
    .await?;
    let approvals = l.approvals().await?;
    let mut per_event: HashMap<&str, u32> = HashMap::new();
    for a in &approvals {
        *per_event.entry(a.event_id.as_str()).or_default() += 1;
    }
    let twice = per_event.values().filter(|n| **n > 1).count();
    let lags: Vec<u64> = approvals
        .iter()
        .map(|a| a.arrived_ms.saturating_sub(a.recorded_ms))
        .collect();
    let parked = l.take_parked().await?.len();
    let mut r = figures(cfg.messages, sent, start, parked, twice);
    r["lag_ms"] = percentiles(lags);
    Ok(r)
}

/// ERP records in up to 3 versions with up to 4 noisy copies each: as many records as make
/// at least `messages` messages; one delivery is due per record at its newest version.
async fn inbox(l: &Local, cfg: &LoadConfig) -> Result<Value> {
    let mut records = cfg.messages / 5;
    let s = loop {
        let s = storm(records.max(1), 4, 11);
        if s.messages.len() >= cfg.messages {
            break s;
        }
        records += records / 10 + 1;
    };
    let bodies: Vec<String> = s.messages.iter().map(|m| m.2.clone()).collect();
    let expected = s.expected();
    let start = Instant::now();
    let sent = send_all(l, "ErpRecordsQueue", &bodies, cfg.senders).await?;
    wait_counting(
        l,
        "records at their newest version at the portal",
        expected.len(),
        || async {
            let states = l.portal.record_states();
            Ok(expected
                .iter()
                .filter(|(id, rec)| states.get(*id).is_some_and(|s| &s.record == *rec))
                .count())
        },
    )
    .await?;
    let deliveries = l.portal.record_deliveries();
    // The same content applied twice (a known Idempotency-Key is refused by the portal).
    let twice = deliveries.iter().filter(|d| d.duplicate).count();
    let parked = l.take_parked().await?.len();
    let mut r = figures(bodies.len(), sent, start, parked, twice);
    r["stale_overwrites"] = json!(deliveries.iter().filter(|d| d.stale_overwrite).count());
    r["records"] = json!(expected.len());
    r["distinct_changes"] = json!(s.distinct_changes());
    r["deliveries"] = json!(deliveries.len());
    Ok(r)
}

/// Sends `bodies` from `senders` concurrent senders, in batches of 10; how long it took.
pub async fn send_all(
    l: &Local,
    queue: &str,
    bodies: &[String],
    senders: usize,
) -> Result<Duration> {
    let start = Instant::now();
    let size = bodies.len().div_ceil(senders.max(1)).max(1);
    let sends = bodies
        .chunks(size)
        .map(|chunk| l.send_text_to(queue, chunk));
    for r in futures::future::join_all(sends).await {
        r?;
    }
    println!(
        "   sent {} messages to {queue} in {:.1} s",
        bodies.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(start.elapsed())
}

/// Shows `count` rising towards `total` until it gets there or stops moving for two minutes;
/// the time it took.
pub async fn wait_counting<F, Fut>(
    l: &Local,
    what: &str,
    total: usize,
    count: F,
) -> Result<Duration>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<usize>>,
{
    let start = Instant::now();
    let bar = ProgressBar::new(total as u64);
    bar.set_style(ProgressStyle::with_template("   {bar:40} {pos}/{len} {msg}").expect("template"));
    bar.set_message(what.to_owned());
    let (mut last, mut moved, mut said) = (0, Instant::now(), Instant::now());
    loop {
        let n = count().await?;
        bar.set_position(n as u64);
        if n >= total {
            bar.finish();
            return Ok(start.elapsed());
        }
        if n != last {
            (last, moved) = (n, Instant::now());
        }
        if moved.elapsed() > Duration::from_secs(120) {
            bar.abandon();
            bail!(
                "{what}: stuck at {n} of {total} for two minutes; function logs: {}/{}-*.log",
                crate::local::lambda_log_dir().display(),
                l.stack.name
            );
        }
        if bar.is_hidden() && said.elapsed() > Duration::from_secs(15) {
            said = Instant::now();
            say(&bar, format!("   {n}/{total} {what}"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The figures of one run: from the first send to the last delivery.
fn figures(messages: usize, sent: Duration, start: Instant, parked: usize, twice: usize) -> Value {
    let total = start.elapsed().as_secs_f64();
    json!({
        "messages": messages,
        "send_seconds": round(sent.as_secs_f64()),
        "seconds_to_last_delivery": round(total),
        "throughput_per_second": round(messages as f64 / total.max(0.001)),
        "parked": parked,
        "delivered_twice": twice,
    })
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// p50, p95, p99 and max of a list of milliseconds.
pub fn percentiles(mut v: Vec<u64>) -> Value {
    v.sort_unstable();
    let at = |q: f64| {
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    json!({"p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "max": at(1.0), "count": v.len()})
}

/// Peak memory (MB) and invocations of the pipeline's functions.
fn memory(l: &Local, pipeline: &str) -> Value {
    let functions = FUNCTIONS
        .iter()
        .find(|(p, _)| *p == pipeline)
        .map_or(&[][..], |(_, f)| *f);
    let mut out = BTreeMap::new();
    for f in functions {
        let (peak, reports) = l.peak_memory_mb(f);
        out.insert(
            f.to_string(),
            json!({"peak_mb": peak, "invocations": reports}),
        );
    }
    json!(out)
}

/// The accounting once the load is through: nothing held, no gate unprobed, no dead letter.
async fn accounting(l: &Local) -> Result<Value> {
    let a = l.accounting(10_000).await?;
    Ok(json!({
        "clean": a.is_clean(),
        "held_past_lease": a.held_past_lease,
        "unprobed_gates": a.unprobed_gates,
        "dead_letters": a.dead_letters,
    }))
}

fn print_summary(pipeline: &str, r: &Value) {
    println!(
        "   {pipeline}: {} messages, last delivered after {} s ({} msg/s), parked {}, delivered twice {}, accounting clean: {}",
        r["messages"], r["seconds_to_last_delivery"], r["throughput_per_second"], r["parked"],
        r["delivered_twice"], r["accounting"]["clean"]
    );
    println!("   peak memory: {}", r["peak_memory_mb"]);
}
