//! Latency on the local stack, before any load: messages sent one at a time, 2.5 a second,
//! one pipeline at a time (not a burst, so no message waits behind a queue of others):
//! - outbox: record → published, the record's `recordedAt` to the event's arrival at the
//!   consumer queue (its `SentTimestamp`);
//! - inbox: message → delivered, the send of the ERP message to the portal applying it.
//!
//! Once with the stream triggers (the deployed path), once with the stream mappings disabled,
//! so that the one-minute sweep alone carries them. Beside it, what bounds the stream path:
//! the emulator's own time per call (GetItem, straight and through the fault proxy the
//! functions use) and the mappings' polling.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use steadfast_local::load::percentiles;
use steadfast_local::local::Local;
use steadfast_local::now_ms;

use crate::pipelines::Pipeline;

/// Messages per pipeline with the streams (p99 of 100 is the second highest) and the gap
/// between two sends, one pipeline at a time; then with the sweep alone (its period is a
/// minute: fewer messages, both pipelines at once, its p99 is the highest).
const MESSAGES: usize = 100;
const GAP: Duration = Duration::from_millis(400);
const SWEEP_MESSAGES: usize = 30;
const SWEEP_GAP: Duration = Duration::from_millis(500);

pub async fn part(l: &Local) -> Result<Value> {
    // A warm-up: the first invocations start the functions' processes.
    phase(l, "U", &[Pipeline::Outbox, Pipeline::Inbox], 3, GAP).await?;
    let outbox = phase(l, "S", &[Pipeline::Outbox], MESSAGES, GAP).await?;
    let inbox = phase(l, "S", &[Pipeline::Inbox], MESSAGES, GAP).await?;
    l.set_stream_enabled("outbox-relay", false).await?;
    l.set_stream_enabled("inbox-processor", false).await?;
    let both = [Pipeline::Outbox, Pipeline::Inbox];
    let sweep = phase(l, "W", &both, SWEEP_MESSAGES, SWEEP_GAP).await;
    l.set_stream_enabled("outbox-relay", true).await?;
    l.set_stream_enabled("inbox-processor", true).await?;
    let sweep = sweep?;
    Ok(json!({
        "messages_per_phase": {"stream": MESSAGES, "sweep": SWEEP_MESSAGES},
        "send_gap_ms": {"stream": GAP.as_millis() as u64, "sweep": SWEEP_GAP.as_millis() as u64},
        "outbox": {"record_to_published_ms": {"stream": outbox[0], "sweep_only": sweep[0]},
                   "record_to_relay_publish_ms": {"stream": relay_lag(l, "LS")?}},
        "inbox": {"message_to_delivered_ms": {"stream": inbox[0], "sweep_only": sweep[1]}},
        "bounds": bounds(l).await?,
    }))
}

/// Sends `n` messages to each of `pipelines`, one of each every `gap`, and waits for all; the
/// latency percentiles of each pipeline, in order.
async fn phase(
    l: &Local,
    tag: &str,
    pipelines: &[Pipeline],
    n: usize,
    gap: Duration,
) -> Result<Vec<Value>> {
    let ids: Vec<String> = (0..n).map(|i| format!("L{tag}-{i:03}")).collect();
    let mut sent_at = HashMap::new();
    for id in &ids {
        let tick = Instant::now();
        for p in pipelines {
            if *p == Pipeline::Inbox {
                sent_at.insert(format!("customer/{id}"), now_ms());
            }
            l.send_text_to(p.queue(), &[p.body(id)]).await?;
        }
        tokio::time::sleep(gap.saturating_sub(tick.elapsed())).await;
    }
    l.wait_for(
        "the latency messages delivered",
        Duration::from_secs(180),
        || async {
            for p in pipelines {
                if p.delivered(l, &ids).await? < n {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )
    .await?;
    let mut out = vec![];
    for p in pipelines {
        let lags = match p {
            Pipeline::Outbox => outbox_lags(l, &ids).await?,
            _ => inbox_lags(l, &sent_at),
        };
        if lags.len() != n {
            bail!(
                "latency {tag}, {}: {} of {n} deliveries matched their messages",
                p.name(),
                lags.len()
            );
        }
        out.push(percentiles(lags));
    }
    Ok(out)
}

/// Record written (`recordedAt`) → the event's first arrival at the consumer queue.
async fn outbox_lags(l: &Local, ids: &[String]) -> Result<Vec<u64>> {
    let mut first = HashMap::new();
    for a in l
        .approvals()
        .await?
        .iter()
        .filter(|a| ids.contains(&a.application_id))
    {
        if a.recorded_ms == 0 {
            bail!(
                "the event of {} carries no readable recordedAt",
                a.application_id
            );
        }
        let lag = a.arrived_ms.saturating_sub(a.recorded_ms);
        let at = first.entry(a.application_id.clone()).or_insert(lag);
        *at = (*at).min(lag);
    }
    Ok(first.into_values().collect())
}

/// Message sent → its first delivery applied at the portal.
fn inbox_lags(l: &Local, sent_at: &HashMap<String, u64>) -> Vec<u64> {
    let mut first: HashMap<&str, u64> = HashMap::new();
    let deliveries = l.portal.record_deliveries();
    for d in &deliveries {
        if sent_at.contains_key(&d.id) {
            let at = first.entry(d.id.as_str()).or_insert(d.at_ms);
            *at = (*at).min(d.at_ms);
        }
    }
    first
        .iter()
        .map(|(id, at)| at.saturating_sub(sent_at[*id]))
        .collect()
}

/// The relay's own lag (record written → its PutEvents answered) for the records of a phase,
/// from its log lines: what the stream and the relay take, without the bus's delivery.
fn relay_lag(l: &Local, tag: &str) -> Result<Value> {
    let lags: Vec<u64> = l
        .function_log("outbox-relay")?
        .iter()
        .filter(|line| line["fields"]["outcome"] == "published")
        .filter(|line| {
            line["fields"]["id"]
                .as_str()
                .is_some_and(|id| id.starts_with(&format!("{tag}-")))
        })
        .filter_map(|line| line["fields"]["lag_ms"].as_u64())
        .collect();
    if lags.is_empty() {
        bail!("the relay logged no lag for the {tag} records");
    }
    Ok(percentiles(lags))
}

/// The emulator's time per call, straight and through the fault proxy; the mappings' polling.
async fn bounds(l: &Local) -> Result<Value> {
    let table = l.stack.reference("OutboxTable")?;
    let direct = get_items(&l.emu.dynamodb, table).await?;
    let proxied = {
        let conf = l
            .emu
            .dynamodb
            .config()
            .to_builder()
            .endpoint_url(l.faults.endpoint())
            .build();
        get_items(&aws_sdk_dynamodb::Client::from_conf(conf), table).await?
    };
    Ok(json!({
        "dynamodb_get_item_ms": {"direct": direct, "through_fault_proxy": proxied},
        // As infra/local/emulator.sh and the template set them.
        "mapping_poll": "LocalStack's pollers: every 0.05 s, backing off to 0.5 s when idle",
        "stream_batching_window_s": 0,
        "sweep_period_s": 60,
    }))
}

/// p50 and p99 of 50 GetItem calls.
async fn get_items(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<Value> {
    let mut ms = Vec::with_capacity(50);
    for i in 0..50 {
        let t = Instant::now();
        client
            .get_item()
            .table_name(table)
            .key("id", AttributeValue::S(format!("bench-{i}")))
            .send()
            .await
            .map_err(|e| anyhow!("GetItem: {e:?}"))?;
        ms.push((t.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0);
    }
    ms.sort_by(f64::total_cmp);
    Ok(json!({"p50": ms[ms.len() / 2], "p99": ms[ms.len() * 99 / 100]}))
}
