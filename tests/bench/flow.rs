//! A pipeline under load on the local stack: `n` messages sent at once, the time until the
//! last is delivered (throughput), and every call its functions made on the way, per
//! delivered message (cost). Then the emulator's raw rate for the minimum calls those
//! messages need, done by the bench itself with the same SDK, for the ratio.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};
use steadfast_local::faults::Call;
use steadfast_local::load::{send_all, wait_counting};
use steadfast_local::local::Local;

use crate::cost::per_message;
use crate::pipelines::Pipeline;
use crate::raw;

/// Concurrent senders of the `n` messages.
const SENDERS: usize = 4;
/// Messages per raw run (a rate: fewer than `n` do).
const RAW_MESSAGES: usize = 300;

/// Throughput and cost of `p` for `n` messages, and the raw rate beside it.
pub async fn measure(l: &Local, p: Pipeline, n: usize) -> Result<(Value, Value)> {
    let warm: Vec<String> = (0..5).map(|i| format!("W{}-{i:03}", p.name())).collect();
    l.send_text_to(p.queue(), &bodies(p, &warm)).await?;
    l.wait_for(
        "the warm-up delivered",
        Duration::from_secs(120),
        || async { Ok(p.delivered(l, &warm).await? == warm.len()) },
    )
    .await?;
    let ids: Vec<String> = (0..n).map(|i| format!("M{}-{i:05}", p.name())).collect();
    // The warm-up's last settles and deletes are not this run's.
    quiet(l).await;
    let calls_before = l.faults.calls_seen();
    let invocations_before: u64 = p.functions().iter().map(|f| l.invocations_of(f)).sum();
    let start = Instant::now();
    send_all(l, p.queue(), &bodies(p, &ids), SENDERS).await?;
    wait_counting(l, &format!("{} delivered", p.name()), n, || async {
        p.delivered(l, &ids).await
    })
    .await?;
    let seconds = start.elapsed().as_secs_f64();
    // The last settles and deletes land after the delivery.
    quiet(l).await;
    // The proxy knows a caller by its function's name: `<stack>-<binary>`.
    let callers: Vec<String> = p
        .functions()
        .iter()
        .map(|f| format!("{}-{f}", l.stack.name))
        .collect();
    let calls: Vec<Call> = l.faults.calls()[calls_before..]
        .iter()
        .filter(|c| callers.contains(&c.caller))
        .cloned()
        .collect();
    let invocations = p
        .functions()
        .iter()
        .map(|f| l.invocations_of(f))
        .sum::<u64>()
        .saturating_sub(invocations_before);
    let cost = per_message(&calls, invocations, l.stack.reference("GateTable")?, n);
    let per_second = n as f64 / seconds.max(0.001);
    let concurrency = l
        .mapping_concurrency(p.functions()[0])
        .await?
        .map_or(1, |c| c.max(1) as usize);
    let raw_n = n.min(RAW_MESSAGES);
    let serial = raw::measure(l, p, raw_n, 1).await?;
    let parallel = raw::measure(l, p, raw_n, concurrency).await?;
    let rate = |v: &Value| v["per_second"].as_f64().filter(|r| *r > 0.0);
    let (Some(serial_rate), Some(parallel_rate)) = (rate(&serial), rate(&parallel)) else {
        anyhow::bail!(
            "the raw runs of {} measured no rate: {serial} {parallel}",
            p.name()
        );
    };
    let ratio = |raw: f64| (per_second / raw * 1000.0).round() / 1000.0;
    let throughput = json!({
        "messages": n,
        "seconds_to_last_delivery": round1(seconds),
        "per_second": round1(per_second),
        "emulator_raw": {"one_at_a_time": serial, "at_mapping_concurrency": parallel},
        "ratio_to_raw": ratio(serial_rate),
        "ratio_to_raw_at_mapping_concurrency": ratio(parallel_rate),
    });
    Ok((throughput, cost))
}

/// Waits until the functions' calls stop for two seconds (at most 30 s).
async fn quiet(l: &Local) {
    let start = Instant::now();
    let mut last = (l.faults.calls_seen(), Instant::now());
    while start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = l.faults.calls_seen();
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() >= Duration::from_secs(2) {
            return;
        }
    }
}

fn bodies(p: Pipeline, ids: &[String]) -> Vec<String> {
    ids.iter().map(|id| p.body(id)).collect()
}

pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
