//! `make demo`, inbox scenario: an ERP floods the inbox with copies of its customer, product
//! and order records (fresh message ids, new export metadata, shuffled members, `1500` vs
//! `1500.0`), genuine updates, and late copies of old versions, from four concurrent senders,
//! while the portal turns flaky and then goes down. Every figure is counted at the fake
//! portal, in the inbox table and on the parking queue; none is assumed.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::demo::{say, t};
use crate::erp::{late_copies, storm};
use crate::local::{Local, Options};
use crate::portal::Mode;

pub struct InboxDemoConfig {
    pub records: usize,
    pub max_copies: usize,
    pub outage: Duration,
}

pub async fn run(cfg: InboxDemoConfig) -> Result<Value> {
    if cfg.records < 30 || cfg.max_copies < 3 {
        bail!(
            "--records must be at least 30 and --max-copies at least 3 (got {} and {})",
            cfg.records,
            cfg.max_copies
        );
    }
    println!("\nSteadfast demo: inbox for a noisy ERP");
    let l = Local::up(Options {
        prefix: "demo-ib".into(),
        ..Options::default()
    })
    .await?;
    println!(
        "  stack {} ready; processor on the table's stream, sweep every 2 s (compressed from 1 minute)",
        l.stack.name
    );
    // Warm-up: one record through the whole path (process starts), not counted.
    let warm = json!({"entity": "customer", "customerNo": "WARMUP", "name": "w",
                      "changedAt": "2026-01-01T00:00:00Z"});
    l.send_text_to("ErpRecordsQueue", &[warm.to_string()])
        .await?;
    l.wait_for(
        "the warm-up record delivered",
        Duration::from_secs(90),
        || async { Ok(l.portal.record_states().contains_key("customer/WARMUP")) },
    )
    .await?;
    let warm_deliveries = l.portal.record_deliveries().len();
    println!("  warm-up record delivered\n");

    let seed = crate::now_ms();
    let plan = storm(cfg.records, cfg.max_copies, seed);
    let expected = plan.expected();
    let bodies: Vec<String> = plan.messages.iter().map(|m| m.2.clone()).collect();
    let late = late_copies(&plan, seed + 1);
    let start = Instant::now();
    let bar = ProgressBar::new(expected.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} records at their newest version  {msg}")
            .expect("template"),
    );
    let at_newest = || {
        let states = l.portal.record_states();
        expected
            .iter()
            .filter(|(id, rec)| states.get(*id).is_some_and(|s| &s.record == *rec))
            .count() as u64
    };
    say(
        &bar,
        format!(
            "{} {} records, {} distinct versions, {} noisy copies from 4 senders",
            t(start),
            expected.len(),
            plan.distinct_changes(),
            bodies.len()
        ),
    );
    // Three thirds: portal healthy, flaky (20% 503), then down for the outage.
    let third = bodies.len().div_ceil(3);
    let phases = [
        ("portal healthy", Mode::Up),
        ("portal FLAKY (20% 503)", Mode::Flaky { percent: 20 }),
        ("portal DOWN", Mode::Down),
    ];
    let mut halted_calls = 0usize;
    for (p, (what, mode)) in phases.iter().enumerate() {
        let chunk = &bodies[(p * third).min(bodies.len())..((p + 1) * third).min(bodies.len())];
        say(
            &bar,
            format!("{} {what}; {} copies arrive", t(start), chunk.len()),
        );
        l.portal.set(mode.clone());
        let quarter = chunk.len().div_ceil(4).max(1);
        let sends = chunk
            .chunks(quarter)
            .map(|c| l.send_text_to("ErpRecordsQueue", c));
        for r in futures::future::join_all(sends).await {
            r?;
        }
        if *mode == Mode::Down {
            let down_at = l.portal.seen().len();
            let until = Instant::now() + cfg.outage;
            while Instant::now() < until {
                bar.set_position(at_newest());
                bar.set_message(gate_line(&l).await);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            halted_calls = l
                .portal
                .seen()
                .iter()
                .skip(down_at)
                .filter(|s| s.path.starts_with("/inbox/"))
                .count();
            say(
                &bar,
                format!(
                    "{} portal back UP ({} inbox calls reached it while down)",
                    t(start),
                    halted_calls
                ),
            );
            l.portal.set(Mode::Up);
        } else {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        bar.set_position(at_newest());
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let done = at_newest();
        bar.set_position(done);
        bar.set_message(gate_line(&l).await);
        if done == expected.len() as u64 {
            break;
        }
        if Instant::now() > deadline {
            say(
                &bar,
                format!("{} gave up waiting after 5 minutes", t(start)),
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    say(
        &bar,
        format!(
            "{} {} late copies of old versions arrive",
            t(start),
            late.len()
        ),
    );
    l.send_text_to("ErpRecordsQueue", &late).await?;
    l.wait_drained("ErpRecordsQueue", Duration::from_secs(120))
        .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    bar.set_position(at_newest());
    bar.finish_with_message(format!("done in {}", t(start)));

    // Count.
    let deliveries: Vec<_> = l
        .portal
        .record_deliveries()
        .into_iter()
        .skip(warm_deliveries)
        .collect();
    let states = l.portal.record_states();
    let lost = expected
        .iter()
        .filter(|(id, rec)| states.get(*id).is_none_or(|s| &s.record != *rec))
        .count();
    let duplicates = deliveries.iter().filter(|d| d.duplicate).count();
    let stale = deliveries.iter().filter(|d| d.stale_overwrite).count();
    let rows = l.inbox_rows().await?;
    let versions_stored: u64 = rows
        .iter()
        .filter(|(id, _)| expected.contains_key(*id))
        .map(|(_, r)| r.version)
        .sum();
    let parked = l.take_parked().await?.len();
    let halts = l.count_events("FlowHalted").await?;
    let resumes = l.count_events("FlowResumed").await?;
    let messages_in = bodies.len() + late.len();
    let report = json!({
        "stack": l.stack.name,
        "records": expected.len(),
        "messages_in": messages_in,
        "late_copies_in": late.len(),
        "distinct_changes": plan.distinct_changes(),
        "versions_stored": versions_stored,
        "deliveries": deliveries.len(),
        "versions_superseded": plan.distinct_changes().saturating_sub(deliveries.len()),
        "duplicates_delivered": duplicates,
        "stale_overwrites": stale,
        "lost": lost,
        "parked": parked,
        "gate_halts": halts,
        "gate_resumes": resumes,
        "inbox_calls_while_portal_down": halted_calls,
        "outage_s": cfg.outage.as_secs_f64(),
        "receiver_invocations": l.invocations_of("inbox-receiver"),
        "processor_invocations": l.invocations_of("inbox-processor"),
        "elapsed_s": start.elapsed().as_secs_f64(),
    });
    println!("\nSummary (counted at the portal, in the inbox table and on the parking queue):");
    println!(
        "  messages in                 {messages_in} ({} late copies of old versions)",
        late.len()
    );
    println!("  records                     {}", expected.len());
    println!(
        "  distinct changes            {} (versions stored: {versions_stored})",
        plan.distinct_changes()
    );
    println!(
        "  deliveries to the portal    {} ({} versions superseded: a newer one came first or before the claim)",
        deliveries.len(),
        plan.distinct_changes().saturating_sub(deliveries.len())
    );
    println!("  duplicates delivered        {duplicates}");
    println!("  stale overwrites            {stale}");
    println!("  lost                        {lost}");
    println!("  gate halts / resumes        {halts} / {resumes}");
    l.down().await;
    Ok(report)
}

async fn gate_line(l: &Local) -> String {
    match l.gate().await {
        Ok(Some((state, epoch, _))) => format!("gate {state} (epoch {epoch})"),
        _ => "gate Flowing".into(),
    }
}
