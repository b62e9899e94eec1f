//! `make demo`: the guarded-delivery scenario on the local stack. Orders flow to a flaky
//! portal, the portal goes down while orders keep arriving, then comes back. Progress and the
//! gate's transitions are shown as they happen; every figure in the report is counted (at the
//! fake portal, on the event bus, in the queues), none assumed.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::local::{order, Local, Options};
use crate::portal::Mode;

pub struct DemoConfig {
    pub orders: usize,
    pub outage: Duration,
}

/// A line above the progress bar; plain stdout when the bar is hidden (not a terminal).
pub(crate) fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        println!("{line}");
    } else {
        bar.println(line);
    }
}

/// Time since `start`, as the demo's line prefix.
pub(crate) fn t(start: Instant) -> String {
    format!("[{:>6.1}s]", start.elapsed().as_secs_f64())
}

/// Prints gate and mapping changes as they happen, until `stop`; returns the mapping's
/// MaximumConcurrency as it changed (the ramp-up after a resume).
async fn watch_transitions(
    l: Arc<Local>,
    bar: ProgressBar,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<i32> {
    let mut last_gate = String::from("Flowing");
    let mut last_mapping = String::from("Enabled");
    let mut last_probes = 0usize;
    let mut concurrency: Vec<i32> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        if let Ok(Some(c)) = l.mapping_concurrency("processor").await {
            if concurrency.last() != Some(&c) {
                if let Some(before) = concurrency.last() {
                    let why = if c < *before {
                        "ramping up after the resume"
                    } else {
                        "ramp-up done"
                    };
                    say(
                        &bar,
                        format!(
                            "{} mapping   MaximumConcurrency {before} → {c} ({why})",
                            t(start)
                        ),
                    );
                }
                concurrency.push(c);
            }
        }
        if let Ok(Some((state, epoch, attempt))) = l.gate().await {
            if state != last_gate {
                // A resumed gate resets its attempt: name only the halt then.
                let detail = if state == "Flowing" {
                    format!("halt #{epoch} over")
                } else {
                    format!("halt #{epoch}, probe {attempt}")
                };
                say(
                    &bar,
                    format!("{} gate      {last_gate} → {state} ({detail})", t(start)),
                );
                last_gate = state;
            }
        }
        if let Ok(m) = l.mapping_state("processor").await {
            if m != last_mapping {
                say(&bar, format!("{} mapping   {last_mapping} → {m}", t(start)));
                last_mapping = m;
            }
        }
        let probes: Vec<u16> = l
            .portal
            .seen()
            .iter()
            .filter(|s| s.path == "/health")
            .map(|s| s.status)
            .collect();
        for status in &probes[last_probes.min(probes.len())..] {
            say(
                &bar,
                format!("{} probe     portal answered {status}", t(start)),
            );
        }
        last_probes = probes.len();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    concurrency
}

/// A Secrets Manager secret holding a random bearer token for the portal; its ARN.
async fn token_secret() -> Result<String> {
    let emu = crate::aws::Emulator::connect(&crate::aws::Emulator::endpoint_from_env()).await;
    let out = emu
        .secrets
        .create_secret()
        .name(format!(
            "steadfast-demo-token-{:08x}",
            rand::random::<u32>()
        ))
        .secret_string(format!("tok-{:016x}", rand::random::<u64>()))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("CreateSecret: {}", crate::aws::describe(&e)))?;
    out.arn
        .ok_or_else(|| anyhow::anyhow!("CreateSecret gave no ARN"))
}

pub async fn run(cfg: DemoConfig) -> Result<Value> {
    if cfg.orders < 20 {
        bail!("--orders must be at least 20 (got {})", cfg.orders);
    }
    println!("Steadfast demo: guarded delivery to an unreliable portal");
    println!(
        "  deploying the local stack to LocalStack at {} (CloudFormation; LocalStack runs the functions)…",
        crate::aws::Emulator::endpoint_from_env()
    );
    // The target's token comes from Secrets Manager, as in production: a real secret flows
    // through the functions (and must never reach a log line).
    let token_secret_arn = token_secret().await?;
    let l = Arc::new(
        Local::up(Options {
            prefix: "demo".into(),
            parameters: [("TargetTokenSecretArn".to_owned(), token_secret_arn.clone())].into(),
            ..Options::default()
        })
        .await?,
    );
    println!(
        "  stack {} ready; backoff 1 s doubling to 8 s, MAX_ATTEMPTS 5\n",
        l.stack.name
    );
    let start = Instant::now();
    let bar = ProgressBar::new(cfg.orders as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} delivered  {msg}").expect("template"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch_transitions(
        l.clone(),
        bar.clone(),
        start,
        stop.clone(),
    ));

    let ids: Vec<String> = (0..cfg.orders).map(|i| format!("ORD-{i:05}")).collect();
    let half = cfg.orders / 2;
    let delivered = |l: &Local| -> usize {
        let created = l.portal.created_orders();
        ids.iter().filter(|id| created.contains_key(*id)).count()
    };

    // Phase 1: a flaky portal (20% 503): in-process retries absorb it.
    say(
        &bar,
        format!(
            "{} portal    flaky (20% answer 503); sending {half} orders",
            t(start)
        ),
    );
    l.portal.set(Mode::Flaky { percent: 20 });
    for chunk in ids[..half].chunks(10) {
        l.send(&chunk.iter().map(|id| order(id)).collect::<Vec<_>>())
            .await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        bar.set_position(delivered(&l) as u64);
    }
    let phase1_deadline = Instant::now() + Duration::from_secs(90);
    while delivered(&l) < half && Instant::now() < phase1_deadline {
        bar.set_position(delivered(&l) as u64);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Phase 2: the portal goes down; orders keep arriving.
    l.portal.set(Mode::Up);
    let down_at = crate::now_ms();
    l.portal.set(Mode::Down);
    say(
        &bar,
        format!(
            "{} portal    DOWN for {} s; {} more orders arrive meanwhile",
            t(start),
            cfg.outage.as_secs(),
            cfg.orders - half
        ),
    );
    let outage_end = Instant::now() + cfg.outage;
    let rest = &ids[half..];
    let per_tick = rest.len().div_ceil(10).max(1);
    for chunk in rest.chunks(per_tick) {
        l.send(&chunk.iter().map(|id| order(id)).collect::<Vec<_>>())
            .await?;
        bar.set_position(delivered(&l) as u64);
        let (v, f, _) = l.depth("OrdersQueue").await?;
        bar.set_message(format!("queued {}", v + f));
        tokio::time::sleep(cfg.outage / 12).await;
    }
    while Instant::now() < outage_end {
        let (v, f, _) = l.depth("OrdersQueue").await?;
        bar.set_message(format!("queued {}", v + f));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Phase 3: the portal is back; Steadfast finds out by itself.
    let up_at = crate::now_ms();
    l.portal.set(Mode::Up);
    say(&bar, format!("{} portal    UP again", t(start)));
    let drain_deadline = Instant::now() + Duration::from_secs(120);
    let ramp_deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let n = delivered(&l);
        bar.set_position(n as u64);
        let (v, f, d) = l.depth("OrdersQueue").await?;
        bar.set_message(format!("queued {}", v + f + d));
        if n == cfg.orders && v + f + d == 0 {
            break;
        }
        if Instant::now() > drain_deadline {
            say(
                &bar,
                "  the queue did not drain within 120 s; reporting what was counted".to_string(),
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drained_at = crate::now_ms();
    // The ramp-up ends after RampUpSuccesses deliveries or RampUpSeconds: wait to show it.
    while l.mapping_concurrency("processor").await? != Some(5) && Instant::now() < ramp_deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let concurrency = watcher.await.unwrap_or_default();
    bar.finish();

    // Count.
    let seen = l.portal.seen();
    let created = l.portal.created_orders();
    let sent: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let delivered_unique = ids.iter().filter(|id| created.contains_key(*id)).count();
    let duplicates: u32 = created
        .iter()
        .filter(|(k, _)| sent.contains(k.as_str()))
        .map(|(_, n)| n.saturating_sub(1))
        .sum();
    let parked = l.take_parked().await?.len();
    let (qv, qf, qd) = l.depth("OrdersQueue").await?;
    let (dlq, _, _) = l.depth("OrdersDLQ").await?;
    let still_queued = (qv + qf + qd + dlq) as usize;
    let lost = cfg
        .orders
        .saturating_sub(delivered_unique + parked + still_queued);
    let during: Vec<_> = seen
        .iter()
        .filter(|s| s.at_ms >= down_at && s.at_ms < up_at)
        .collect();
    let api_calls_during_outage = during.len();
    let order_calls_during_outage = during.iter().filter(|s| s.path == "/orders").count();
    let probes = seen.iter().filter(|s| s.path == "/health").count();
    let events = l.events().await?;
    let count = |ty: &str| events.iter().filter(|e| e.detail_type == ty).count();
    let first_delivery_after_up = seen
        .iter()
        .filter(|s| s.at_ms >= up_at && s.created)
        .map(|s| s.at_ms)
        .min();
    let recovery_lag_s = first_delivery_after_up.map(|ms| (ms - up_at) as f64 / 1000.0);
    let in_process_retries = seen
        .iter()
        .filter(|s| s.path == "/orders" && s.at_ms < down_at && s.status == 503)
        .count();
    let report = json!({
        "stack": l.stack.name,
        "token_secret_arn": token_secret_arn,
        "orders_sent": cfg.orders,
        "delivered_unique": delivered_unique,
        "duplicates": duplicates,
        "lost": lost,
        "parked": parked,
        "still_queued": still_queued,
        "api_calls_during_outage": api_calls_during_outage,
        "order_calls_during_outage": order_calls_during_outage,
        "probes": probes,
        "halted": count("FlowHalted"),
        "resumed": count("FlowResumed"),
        "delivery_failed_events": count("DeliveryFailed"),
        "recovery_lag_s": recovery_lag_s,
        "drain_after_recovery_s": (drained_at.saturating_sub(up_at)) as f64 / 1000.0,
        "outage_s": cfg.outage.as_secs_f64(),
        "flaky_503s_absorbed_before_outage": in_process_retries,
        "portal_requests_total": seen.len(),
        "processor_invocations": l.invocations_of("processor"),
        "mapping_max_concurrency": concurrency,
        "close_invocations_from_timers": l.invocations_of("close"),
    });
    println!("\nSummary (counted at the fake portal, on the bus and in the queues):");
    println!("  orders sent                {}", cfg.orders);
    println!("  delivered, unique          {delivered_unique}");
    println!("  duplicates created         {duplicates}");
    println!("  lost                       {lost}");
    println!("  portal calls during outage {api_calls_during_outage} ({probes} probes in all, {order_calls_during_outage} order calls)");
    println!(
        "  halts / resumes            {} / {}",
        count("FlowHalted"),
        count("FlowResumed")
    );
    println!(
        "  MaximumConcurrency         {}",
        concurrency
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(" → ")
    );
    match recovery_lag_s {
        Some(s) => {
            println!("  recovery lag               {s:.1} s from portal up to first delivery")
        }
        None => println!("  recovery lag               no delivery after recovery"),
    }
    let l = Arc::try_unwrap(l).map_err(|_| anyhow::anyhow!("stack still in use"))?;
    l.down().await;
    Ok(report)
}
