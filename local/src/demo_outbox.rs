//! `make demo`, outbox scenario: mortgage applications flow from the applications queue through
//! the outbox to the event bus while the bus glitches: partial PutEvents failures, throttling,
//! a full outage, slow answers. Every figure is counted at the consumer (the approval queue
//! the template's rule delivers to), in the outbox table, at the fault proxy and on the
//! parking queue; none is assumed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::demo::{say, t};
use crate::faults::BusFaults;
use crate::local::{application, Local, Options};

pub struct OutboxDemoConfig {
    pub applications: usize,
    pub outage: Duration,
}

/// The `p` quantile (0.0–1.0) of sorted values, nearest rank; `None` when there are none.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    Some(sorted[((sorted.len() as f64 - 1.0) * p).round() as usize])
}

/// Unique application ids published, and how often each event id arrived.
async fn published(l: &Local) -> Result<(HashSet<String>, HashMap<String, u32>)> {
    let mut ids = HashSet::new();
    let mut per_event = HashMap::new();
    for a in l.approvals().await? {
        ids.insert(a.application_id.clone());
        *per_event.entry(a.event_id).or_insert(0) += 1;
    }
    Ok((ids, per_event))
}

/// Outbox records not yet published: to be processed, or in progress.
fn pending_of(statuses: &BTreeMap<String, u64>) -> u64 {
    statuses.get("ToBeProcessed").copied().unwrap_or(0)
        + statuses.get("InProgress").copied().unwrap_or(0)
}

/// In the outage phase: once half of `outage` has passed since `phase_start`, the throttling
/// bus goes down (said once).
fn down_after_half(
    l: &Local,
    bar: &ProgressBar,
    start: Instant,
    phase_start: Instant,
    outage: Duration,
) {
    if phase_start.elapsed() > outage / 2 && !l.faults.bus().down {
        say(bar, format!("{} bus       DOWN", t(start)));
        l.faults.set_bus(BusFaults {
            down: true,
            ..Default::default()
        });
    }
}

pub async fn run(cfg: OutboxDemoConfig) -> Result<Value> {
    if cfg.applications < 40 {
        bail!(
            "--applications must be at least 40 (got {})",
            cfg.applications
        );
    }
    println!("\nSteadfast demo: transactional outbox to a glitching event bus");
    let l = Local::up(Options {
        prefix: "demo-ob".into(),
        ..Options::default()
    })
    .await?;
    println!(
        "  stack {} ready; relay on the table's stream, sweep every 2 s (compressed from 1 minute)",
        l.stack.name
    );
    // Warm-up: one application through the whole path, so the figures below are not the
    // local Runtime API server's first process starts. Not counted.
    l.send_to("ApplicationsQueue", &[application("WARMUP-0")])
        .await?;
    l.wait_for(
        "the warm-up application published",
        Duration::from_secs(60),
        || async { Ok(published(&l).await?.0.contains("WARMUP-0")) },
    )
    .await?;
    println!("  warm-up application published\n");

    let start = Instant::now();
    let n = cfg.applications;
    let ids: Vec<String> = (0..n).map(|i| format!("APP-{i:05}")).collect();
    let bar = ProgressBar::new(n as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} published  {msg}").expect("template"),
    );

    // Four phases of a quarter each, sent in a steady trickle of 5 every 250 ms.
    let quarter = n.div_ceil(4);
    let phases: [(&str, BusFaults); 4] = [
        ("bus healthy", BusFaults::default()),
        (
            "bus refuses 25% of entries (partial PutEvents failures)",
            BusFaults {
                fail_ratio: 0.25,
                ..Default::default()
            },
        ),
        (
            "bus THROTTLING, then DOWN",
            BusFaults {
                throttle: true,
                ..Default::default()
            },
        ),
        (
            "bus slow (400 ms answers)",
            BusFaults {
                delay: Duration::from_millis(400),
                ..Default::default()
            },
        ),
    ];
    let mut invalid_sent = 0usize;
    let mut resubmitted = 0usize;
    let mut healthy_ids: HashSet<String> = HashSet::new();
    for (p, (what, faults)) in phases.iter().enumerate() {
        let chunk = &ids[(p * quarter).min(n)..((p + 1) * quarter).min(n)];
        say(
            &bar,
            format!("{} {what}; {} applications arrive", t(start), chunk.len()),
        );
        l.faults.set_bus(faults.clone());
        if p == 0 {
            healthy_ids.extend(chunk.iter().cloned());
        }
        let phase_start = Instant::now();
        for (k, group) in chunk.chunks(5).enumerate() {
            let mut bodies: Vec<Value> = group.iter().map(|id| application(id)).collect();
            // Now and then: a resubmission of an earlier application, and an invalid one.
            if k % 4 == 1 && p * quarter + k * 5 > 5 {
                bodies.push(application(&ids[p * quarter + k * 5 - 5]));
                resubmitted += 1;
            }
            if k % 6 == 2 {
                let mut bad = application(&format!("BAD-{p}-{k}"));
                bad["loan"]["amount"] = json!("1,000,000");
                bodies.push(bad);
                invalid_sent += 1;
            }
            l.send_to("ApplicationsQueue", &bodies).await?;
            if p == 2 {
                down_after_half(&l, &bar, start, phase_start, cfg.outage);
            }
            let (got, _) = published(&l).await?;
            bar.set_position(ids.iter().filter(|id| got.contains(*id)).count() as u64);
            bar.set_message(format!("refused by the bus so far {}", l.faults.refused()));
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        if p == 2 {
            // The outage lasts its full length, whatever the sending took.
            while phase_start.elapsed() < cfg.outage {
                down_after_half(&l, &bar, start, phase_start, cfg.outage);
                bar.set_message(format!("refused by the bus so far {}", l.faults.refused()));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            say(&bar, format!("{} bus       back", t(start)));
        }
    }
    l.faults.set_bus(BusFaults::default());
    say(
        &bar,
        format!("{} bus healthy; waiting for the outbox to drain", t(start)),
    );
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (got, _) = published(&l).await?;
        let done = ids.iter().filter(|id| got.contains(*id)).count();
        bar.set_position(done as u64);
        let pending = pending_of(&l.outbox_statuses().await?);
        bar.set_message(format!("pending in the outbox {pending}"));
        if done == n && pending == 0 {
            break;
        }
        if Instant::now() > deadline {
            say(
                &bar,
                "  the outbox did not drain within 180 s; reporting what was counted".into(),
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Late duplicates would arrive now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    bar.finish();

    // Count.
    let approvals: Vec<_> = l
        .approvals()
        .await?
        .into_iter()
        .filter(|a| a.application_id != "WARMUP-0")
        .collect();
    let mut per_event: HashMap<&str, u32> = HashMap::new();
    for a in &approvals {
        *per_event.entry(a.event_id.as_str()).or_insert(0) += 1;
    }
    let got: HashSet<&str> = approvals
        .iter()
        .map(|a| a.application_id.as_str())
        .collect();
    let published_unique = ids.iter().filter(|id| got.contains(id.as_str())).count();
    let duplicates_published: u32 = per_event.values().map(|c| c - 1).sum();
    let statuses = l.outbox_statuses().await?;
    let pending = pending_of(&statuses);
    let failed = statuses.get("Failed").copied().unwrap_or(0);
    // Less the warm-up.
    let records = statuses.values().sum::<u64>().saturating_sub(1);
    // Lost: sent, valid, not published, and neither pending nor Failed in the outbox.
    let lost = (n as u64).saturating_sub(published_unique as u64 + pending + failed);
    let parked = l.take_parked().await?;
    let parked_invalid = parked
        .iter()
        .filter(|p| p["body"].as_str().is_some_and(|b| b.contains("BAD-")))
        .count();
    let mut lat: Vec<u64> = approvals
        .iter()
        .map(|a| a.arrived_ms.saturating_sub(a.recorded_ms))
        .collect();
    lat.sort_unstable();
    let mut lat_healthy: Vec<u64> = approvals
        .iter()
        .filter(|a| healthy_ids.contains(&a.application_id))
        .map(|a| a.arrived_ms.saturating_sub(a.recorded_ms))
        .collect();
    lat_healthy.sort_unstable();
    let c = &l.faults.counters;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let report = json!({
        "stack": l.stack.name,
        "applications": n,
        "published_unique": published_unique,
        "duplicates_published": duplicates_published,
        "lost": lost,
        "pending_at_end": pending,
        "failed": failed,
        "outbox_records": records,
        "resubmissions_sent": resubmitted,
        "invalid_sent": invalid_sent,
        "invalid_parked": parked_invalid,
        "publish_failures_injected": l.faults.refused(),
        "put_events_calls": load(&c.put_events_calls),
        "put_events_calls_refused_whole": load(&c.calls_refused),
        "entries_reaching_the_bus": load(&c.entries_forwarded),
        "p50_latency_ms": percentile(&lat, 0.5),
        "p99_latency_ms": percentile(&lat, 0.99),
        "p50_latency_ms_bus_healthy": percentile(&lat_healthy, 0.5),
        "p99_latency_ms_bus_healthy": percentile(&lat_healthy, 0.99),
        "outage_s": cfg.outage.as_secs_f64(),
        "relay_invocations": l.invocations_of("outbox-relay"),
        "stream_records_to_relay": l.log_sum("outbox-relay", "relay run done", "from_stream")?,
    });
    let ms = |v: Option<u64>| v.map(|x| format!("{x} ms")).unwrap_or_else(|| "-".into());
    println!("\nSummary (counted at the consumer queue, in the outbox and at the fault proxy):");
    println!(
        "  applications sent (valid)   {n}   + {resubmitted} resubmissions, {invalid_sent} invalid"
    );
    println!("  published, unique           {published_unique}");
    println!("  duplicates published        {duplicates_published}");
    println!("  lost                        {lost}");
    println!("  outbox records              {records} (resubmissions created none)");
    println!("  invalid, parked with reason {parked_invalid}");
    println!(
        "  entries refused by the bus  {} (injected)",
        l.faults.refused()
    );
    println!(
        "  latency record → consumer   p50 {} / p99 {} (bus healthy: p50 {} / p99 {})",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(percentile(&lat_healthy, 0.5)),
        ms(percentile(&lat_healthy, 0.99))
    );
    l.down().await;
    Ok(report)
}
