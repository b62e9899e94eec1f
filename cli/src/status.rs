//! `steadfast status`: gates, queues, tables and parked messages, and what needs attention.
//! Exit code 0 when nothing does, 1 otherwise (2 when the stack cannot be read).

use std::collections::BTreeMap;

use anyhow::{anyhow, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde::Serialize;
use steadfast_domain::{Gate, GateState};

use crate::aws::{describe, number, Aws};
use crate::stack::{queue_name, Stack, Target};
use crate::{ago, at, now_ms, Table};

/// A queue older than this share of its retention is at risk of losing messages.
const NEAR_RETENTION: f64 = 0.8;
/// Parked and dead-lettered messages sampled for their reasons and ages.
const SAMPLE: usize = 100;

#[derive(Debug, Serialize)]
pub struct Status {
    pub stack: String,
    pub at_ms: u64,
    pub gates: Vec<GateRow>,
    pub queues: Vec<QueueRow>,
    pub tables: Vec<TableRow>,
    /// Every event source mapping of the stack.
    pub mappings: Vec<MappingInfo>,
    pub parked: Parked,
    pub attention: Vec<Attention>,
}

#[derive(Debug, Serialize)]
pub struct MappingInfo {
    pub logical: String,
    pub uuid: String,
    pub state: String,
    /// The target whose gate switches this mapping (it is off while that gate is halted).
    pub switched_by: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct GateRow {
    pub target: String,
    /// `Flowing`, `Halted` or `Probing` (`Flowing` for a gate never written).
    pub state: String,
    pub manual: bool,
    pub since_ms: u64,
    /// The gate's last transition.
    pub changed_at_ms: u64,
    pub reason: String,
    pub epoch: u64,
    pub attempt: u32,
    /// When the next probe is due (halted gates with probes only).
    pub next_probe_at_ms: Option<u64>,
    pub mapping: Option<MappingRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MappingRow {
    pub uuid: String,
    pub state: String,
    pub maximum_concurrency: Option<i32>,
}

#[derive(Debug, Serialize)]
pub struct QueueRow {
    pub logical: String,
    pub name: String,
    /// `source`, `dead-letter`, `parking`, `timers` or `events`.
    pub role: String,
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
    /// The oldest message's age in seconds (CloudWatch for the sources, a sample for parked
    /// and dead-lettered messages); `None` when not known.
    pub oldest_age_s: Option<u64>,
    /// Why the oldest age could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_age_error: Option<String>,
    pub retention_s: u64,
    /// The age past which the template's alarm fires (`QueueAgeAlarmSeconds`, sources only).
    pub age_alarm_s: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct TableRow {
    pub pipeline: String,
    pub table: String,
    pub by_status: BTreeMap<String, u64>,
    /// Age of the oldest record still pending (`ToBeProcessed`, `InProgress`), seconds.
    pub oldest_pending_age_s: Option<u64>,
    /// `InProgress` records whose lease ended more than the grace ago (ids, at most 10).
    pub stuck: Vec<String>,
    pub stuck_count: u64,
    /// `ToBeProcessed` records due more than the grace ago and not taken (ids, at most 10).
    pub overdue: Vec<String>,
    pub overdue_count: u64,
}

#[derive(Debug, Serialize)]
pub struct Parked {
    pub count: u64,
    /// The most frequent reasons among up to 100 parked messages.
    pub top_reasons: Vec<Reason>,
    /// Messages in each dead-letter queue, by logical name.
    pub dead_letters: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct Reason {
    pub reason: String,
    pub count: u64,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Attention {
    /// `halted`, `no-probe`, `mapping`, `stuck`, `overdue`, `failed`, `old-messages`,
    /// `near-retention`, `unreadable`, `dead-letters`, `parked`.
    pub kind: String,
    pub subject: String,
    pub cause: String,
}

fn attention(kind: &str, subject: &str, cause: String) -> Attention {
    Attention {
        kind: kind.into(),
        subject: subject.into(),
        cause,
    }
}

/// Reads everything and works out what needs attention. `grace_s`: how late a probe or a
/// lease may be before it counts as stuck.
pub async fn read(stack: &Stack, aws: &Aws, grace_s: u64) -> Result<Status> {
    let now = now_ms();
    let gates_table = stack.physical("GateTable")?;
    // Every mapping read once: the gates show theirs, the list shows them all.
    let rows = mapping_rows(aws, stack).await?;
    let targets = stack.targets();
    let switching = |uuid: &str| targets.iter().find(|t| t.mapping.as_deref() == Some(uuid));
    let mut gates = Vec::new();
    for t in &targets {
        let row = rows
            .iter()
            .find(|(_, r)| t.mapping.as_deref() == Some(&r.uuid));
        gates.push(gate(aws, gates_table, t, row.map(|(_, r)| r.clone())).await?);
    }
    let mappings = rows
        .iter()
        .map(|(logical, r)| MappingInfo {
            logical: logical.clone(),
            uuid: r.uuid.clone(),
            state: r.state.clone(),
            switched_by: switching(&r.uuid).map(|t| t.name.clone()),
        })
        .collect();
    let age_alarm_s = stack
        .parameter("QueueAgeAlarmSeconds")
        .and_then(|v| v.parse().ok());
    let mut queues = Vec::new();
    for (logical, url) in stack.of_kind("AWS::SQS::Queue") {
        queues.push(queue(aws, logical, url, now, age_alarm_s).await?);
    }
    let mut tables = Vec::new();
    for t in [Table::Outbox, Table::Inbox] {
        let name = stack.physical(t.logical())?;
        tables.push(table(aws, t, name, now, grace_s).await?);
    }
    let parked = parked(aws, stack, &queues).await?;
    let mut s = Status {
        stack: stack.name.clone(),
        at_ms: now,
        gates,
        queues,
        tables,
        mappings,
        parked,
        attention: Vec::new(),
    };
    s.attention = needs(&s, grace_s);
    Ok(s)
}

/// One target's gate, with its mapping as read (`mapping`).
async fn gate(aws: &Aws, table: &str, t: &Target, mapping: Option<MappingRow>) -> Result<GateRow> {
    let out = aws
        .dynamodb
        .get_item()
        .table_name(table)
        .key("target", AttributeValue::S(t.name.clone()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| anyhow!("GetItem gate {} from {table}: {}", t.name, describe(&e)))?;
    let g: Gate = match out.item {
        Some(item) => serde_dynamo::from_item(item)
            .map_err(|e| anyhow!("gate {} in {table} cannot be read: {e}", t.name))?,
        None => Gate::new(&t.name),
    };
    let halted = g.state != GateState::Flowing;
    Ok(GateRow {
        target: t.name.clone(),
        state: format!("{:?}", g.state),
        manual: g.manual,
        since_ms: if halted {
            g.halted_at_ms
        } else {
            g.changed_at_ms
        },
        changed_at_ms: g.changed_at_ms,
        reason: g.reason.clone(),
        epoch: g.epoch,
        attempt: g.attempt,
        next_probe_at_ms: (halted && !g.manual && g.next_probe_at_ms > 0)
            .then_some(g.next_probe_at_ms),
        mapping,
    })
}

fn role(logical: &str) -> &'static str {
    match logical {
        "OrdersQueue" | "ApplicationsQueue" | "ErpRecordsQueue" => "source",
        "ParkingQueue" => "parking",
        "TimersQueue" => "timers",
        l if l.ends_with("DLQ") => "dead-letter",
        _ => "events",
    }
}

/// One event source mapping's state and MaximumConcurrency.
async fn mapping(aws: &Aws, uuid: &str) -> Result<MappingRow> {
    let m = aws
        .lambda
        .get_event_source_mapping()
        .uuid(uuid)
        .send()
        .await
        .map_err(|e| anyhow!("GetEventSourceMapping {uuid}: {}", describe(&e)))?;
    Ok(MappingRow {
        uuid: uuid.to_owned(),
        state: m.state().unwrap_or("unknown").to_owned(),
        maximum_concurrency: m.scaling_config().and_then(|s| s.maximum_concurrency()),
    })
}

/// Every event source mapping of the stack, by logical name.
async fn mapping_rows(aws: &Aws, stack: &Stack) -> Result<Vec<(String, MappingRow)>> {
    let mut out = Vec::new();
    for (logical, uuid) in stack.of_kind("AWS::Lambda::EventSourceMapping") {
        out.push((logical.to_owned(), mapping(aws, uuid).await?));
    }
    Ok(out)
}

async fn queue(
    aws: &Aws,
    logical: &str,
    url: &str,
    now: u64,
    age_alarm_s: Option<u64>,
) -> Result<QueueRow> {
    let attrs = aws.queue_attributes(url, QueueAttributeName::All).await?;
    let role = role(logical);
    let visible = number(&attrs, QueueAttributeName::ApproximateNumberOfMessages);
    let (oldest_age_s, oldest_age_error) = match role {
        // Receiving from a source would count towards its redrive; CloudWatch tells instead.
        "source" | "timers" | "events" => {
            match oldest_from_cloudwatch(aws, queue_name(url), now).await {
                Ok(age) => (age, None),
                Err(e) => (None, Some(e)),
            }
        }
        _ if visible > 0 => (
            sample(aws, url, SAMPLE)
                .await?
                .iter()
                .map(|m| m.sent_ms)
                .min()
                .map(|t| now.saturating_sub(t) / 1000),
            None,
        ),
        _ => (None, None),
    };
    Ok(QueueRow {
        logical: logical.to_owned(),
        name: queue_name(url).to_owned(),
        role: role.to_owned(),
        visible,
        in_flight: number(
            &attrs,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        ),
        delayed: number(
            &attrs,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ),
        oldest_age_s,
        oldest_age_error,
        retention_s: number(&attrs, QueueAttributeName::MessageRetentionPeriod),
        age_alarm_s: age_alarm_s.filter(|_| role == "source"),
    })
}

/// `ApproximateAgeOfOldestMessage` of the last 10 minutes (the largest), if CloudWatch has it;
/// an error when CloudWatch cannot be read.
async fn oldest_from_cloudwatch(aws: &Aws, queue: &str, now: u64) -> Result<Option<u64>, String> {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, Statistic};
    let secs = (now / 1000) as i64;
    let out = aws
        .cloudwatch
        .get_metric_statistics()
        .namespace("AWS/SQS")
        .metric_name("ApproximateAgeOfOldestMessage")
        .dimensions(Dimension::builder().name("QueueName").value(queue).build())
        .start_time(DateTime::from_secs(secs - 600))
        .end_time(DateTime::from_secs(secs))
        .period(60)
        .statistics(Statistic::Maximum)
        .send()
        .await
        .map_err(|e| format!("CloudWatch GetMetricStatistics: {}", describe(&e)))?;
    Ok(out
        .datapoints()
        .iter()
        .filter_map(|d| d.maximum())
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
        .map(|v| v as u64))
}

/// A message seen without taking it: its send time and, when parked, why.
#[derive(Debug, Clone)]
pub struct Peeked {
    pub sent_ms: u64,
    pub reason: Option<String>,
}

/// Up to `max` messages of a queue that no function consumes (parked, dead letters), looked at
/// without being taken (a visibility timeout of 0).
async fn sample(aws: &Aws, url: &str, max: usize) -> Result<Vec<Peeked>> {
    let mut seen = BTreeMap::new();
    for _ in 0..max.div_ceil(10) {
        let out = aws
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| anyhow!("ReceiveMessage {}: {}", queue_name(url), describe(&e)))?;
        let before = seen.len();
        for m in out.messages() {
            let sent_ms = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let reason = m
                .message_attributes()
                .and_then(|a| a.get("reason"))
                .and_then(|v| v.string_value())
                .map(str::to_owned);
            seen.insert(
                m.message_id().unwrap_or_default().to_owned(),
                Peeked { sent_ms, reason },
            );
        }
        if seen.len() == before || seen.len() >= max {
            break;
        }
    }
    Ok(seen.into_values().collect())
}

async fn table(aws: &Aws, t: Table, name: &str, now: u64, grace_s: u64) -> Result<TableRow> {
    let mut by_status = BTreeMap::new();
    let mut oldest: Option<u64> = None;
    let (mut stuck, mut stuck_count) = (Vec::new(), 0);
    let (mut overdue, mut overdue_count) = (Vec::new(), 0);
    let late = |due: Option<u64>| due.is_some_and(|d| d + grace_s * 1000 < now);
    let mut pages = aws
        .dynamodb
        .scan()
        .table_name(name)
        .projection_expression("id, #s, due_at, #t")
        .expression_attribute_names("#s", "status")
        .expression_attribute_names("#t", t.since_attribute())
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        let item = item.map_err(|e| anyhow!("Scan {name}: {}", describe(&e)))?;
        let text = |k: &str| match item.get(k) {
            Some(AttributeValue::S(s)) => s.clone(),
            _ => String::new(),
        };
        let number = |k: &str| match item.get(k) {
            Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
            _ => None,
        };
        let status = text("status");
        if status == "ToBeProcessed" || status == "InProgress" {
            if let Some(since) = number(t.since_attribute()) {
                let age = now.saturating_sub(since) / 1000;
                oldest = Some(oldest.map_or(age, |o| o.max(age)));
            }
        }
        if late(number("due_at")) {
            let (ids, n) = match status.as_str() {
                "InProgress" => (&mut stuck, &mut stuck_count),
                _ => (&mut overdue, &mut overdue_count),
            };
            *n += 1;
            if ids.len() < 10 {
                ids.push(text("id"));
            }
        }
        *by_status.entry(status).or_insert(0) += 1;
    }
    Ok(TableRow {
        pipeline: t.pipeline().to_owned(),
        table: name.to_owned(),
        by_status,
        oldest_pending_age_s: oldest,
        stuck,
        stuck_count,
        overdue,
        overdue_count,
    })
}

async fn parked(aws: &Aws, stack: &Stack, queues: &[QueueRow]) -> Result<Parked> {
    let count = queues
        .iter()
        .find(|q| q.role == "parking")
        .map_or(0, |q| q.visible + q.in_flight + q.delayed);
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    if count > 0 {
        for m in sample(aws, stack.physical("ParkingQueue")?, SAMPLE).await? {
            *reasons
                .entry(m.reason.unwrap_or_else(|| "(no reason)".into()))
                .or_insert(0) += 1;
        }
    }
    let mut top_reasons: Vec<Reason> = reasons
        .into_iter()
        .map(|(reason, count)| Reason { reason, count })
        .collect();
    top_reasons.sort_by(|a, b| b.count.cmp(&a.count).then(a.reason.cmp(&b.reason)));
    top_reasons.truncate(5);
    let dead_letters = queues
        .iter()
        .filter(|q| q.role == "dead-letter")
        .map(|q| (q.logical.clone(), q.visible + q.in_flight + q.delayed))
        .collect();
    Ok(Parked {
        count,
        top_reasons,
        dead_letters,
    })
}

/// What needs attention, each with its cause.
pub fn needs(s: &Status, grace_s: u64) -> Vec<Attention> {
    let now = s.at_ms;
    let grace_ms = grace_s * 1000;
    let mut out = Vec::new();
    for g in &s.gates {
        let mapping_on = g.mapping.as_ref().map(|m| m.state.as_str());
        if g.state != "Flowing" {
            let who = if g.manual { "an operator" } else { "failures" };
            let state = g.state.to_lowercase();
            let since = ago(g.since_ms, now);
            out.push(attention(
                "halted",
                &g.target,
                format!("{state} by {who} {since}: {}", g.reason),
            ));
        }
        match (g.state.as_str(), g.next_probe_at_ms) {
            ("Halted", Some(due)) if due + grace_ms < now => out.push(attention(
                "no-probe",
                &g.target,
                format!(
                    "probe {} was due {} and has not run",
                    g.attempt,
                    ago(due, now)
                ),
            )),
            ("Probing", _) if g.changed_at_ms + grace_ms < now => out.push(attention(
                "no-probe",
                &g.target,
                format!(
                    "probe {} began {} and has not ended",
                    g.attempt,
                    ago(g.changed_at_ms, now)
                ),
            )),
            ("Flowing", _) if matches!(mapping_on, Some("Disabled" | "Disabling")) => {
                out.push(attention(
                    "mapping",
                    &g.target,
                    "the gate is flowing but its mapping is disabled: nothing is consumed".into(),
                ))
            }
            _ => {}
        }
    }
    for m in s.mappings.iter().filter(|m| m.switched_by.is_none()) {
        if m.state != "Enabled" {
            out.push(attention(
                "mapping",
                &m.logical,
                format!("the mapping is {}: its source is not consumed", m.state),
            ));
        }
    }
    for t in &s.tables {
        let first = |ids: &[String]| ids.first().cloned().unwrap_or_default();
        if t.stuck_count > 0 {
            out.push(attention(
                "stuck",
                &t.table,
                format!(
                    "{} InProgress record(s) past their lease, e.g. {}",
                    t.stuck_count,
                    first(&t.stuck)
                ),
            ));
        }
        if t.overdue_count > 0 {
            out.push(attention(
                "overdue",
                &t.table,
                format!(
                    "{} record(s) due more than {} ago and not taken, e.g. {} (is the sweep or the stream mapping running? is the gate halted?)",
                    t.overdue_count,
                    human(grace_s),
                    first(&t.overdue)
                ),
            ));
        }
        let failed = t.by_status.get("Failed").copied().unwrap_or(0);
        if failed > 0 {
            out.push(attention(
                "failed",
                &t.table,
                format!(
                    "{failed} record(s) Failed; once the cause is fixed: steadfast requeue {} --failed",
                    t.pipeline
                ),
            ));
        }
    }
    for q in &s.queues {
        if let Some(e) = &q.oldest_age_error {
            out.push(attention(
                "unreadable",
                &q.name,
                format!("the oldest message's age cannot be read: {e}"),
            ));
        }
        let Some(age) = q.oldest_age_s else { continue };
        if q.retention_s > 0 && age as f64 >= NEAR_RETENTION * q.retention_s as f64 {
            out.push(attention(
                "near-retention",
                &q.name,
                format!(
                    "oldest message is {} old of a {} retention",
                    human(age),
                    human(q.retention_s)
                ),
            ));
        } else if q.age_alarm_s.is_some_and(|limit| age >= limit) {
            out.push(attention(
                "old-messages",
                &q.name,
                format!(
                    "oldest message is {} old (the age alarm is at {})",
                    human(age),
                    human(q.age_alarm_s.unwrap_or(0))
                ),
            ));
        }
    }
    for (dlq, n) in &s.parked.dead_letters {
        if *n > 0 {
            out.push(attention(
                "dead-letters",
                dlq,
                format!("{n} message(s) dead-lettered"),
            ));
        }
    }
    if s.parked.count > 0 {
        let top = s
            .parked
            .top_reasons
            .first()
            .map(|r| format!("; most often: {}", r.reason))
            .unwrap_or_default();
        out.push(attention(
            "parked",
            "ParkingQueue",
            format!("{} message(s) parked{top}", s.parked.count),
        ));
    }
    out
}

/// Seconds as `1h 05m`, `3m 20s`, `42s`, `14d 0h`.
pub fn human(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The status for people: one table each for gates, queues, tables; then parked and attention.
pub fn render(s: &Status) -> String {
    use comfy_table::{presets::UTF8_BORDERS_ONLY, Table as T};
    let now = s.at_ms;
    let opt = |v: Option<u64>| v.map_or("—".to_owned(), human);
    let mut out = format!("Stack {} at {}\n\nGates\n", s.stack, at(now));
    let mut t = T::new();
    t.load_preset(UTF8_BORDERS_ONLY).set_header([
        "target",
        "state",
        "since",
        "attempt",
        "next probe",
        "mapping",
        "max conc.",
    ]);
    for g in &s.gates {
        let state = if g.manual {
            format!("{} (manual)", g.state)
        } else {
            g.state.clone()
        };
        let since = if g.since_ms == 0 {
            "—".into()
        } else {
            ago(g.since_ms, now)
        };
        let next = g.next_probe_at_ms.map_or("—".into(), at);
        let (m, c) = g.mapping.as_ref().map_or(("—".into(), "—".into()), |m| {
            (
                m.state.clone(),
                m.maximum_concurrency.map_or("—".into(), |c| c.to_string()),
            )
        });
        t.add_row([
            g.target.clone(),
            state,
            since,
            g.attempt.to_string(),
            next,
            m,
            c,
        ]);
    }
    out += &format!("{t}\n\nQueues\n");
    let mut t = T::new();
    t.load_preset(UTF8_BORDERS_ONLY).set_header([
        "queue",
        "role",
        "visible",
        "in flight",
        "delayed",
        "oldest",
        "retention",
    ]);
    for q in &s.queues {
        t.add_row([
            q.logical.clone(),
            q.role.clone(),
            q.visible.to_string(),
            q.in_flight.to_string(),
            q.delayed.to_string(),
            opt(q.oldest_age_s),
            human(q.retention_s),
        ]);
    }
    out += &format!("{t}\n\nTables\n");
    let mut t = T::new();
    t.load_preset(UTF8_BORDERS_ONLY).set_header([
        "pipeline",
        "ToBeProcessed",
        "InProgress",
        "Processed",
        "Failed",
        "oldest pending",
        "stuck",
        "overdue",
    ]);
    for r in &s.tables {
        let n = |k: &str| r.by_status.get(k).copied().unwrap_or(0).to_string();
        t.add_row([
            r.pipeline.clone(),
            n("ToBeProcessed"),
            n("InProgress"),
            n("Processed"),
            n("Failed"),
            opt(r.oldest_pending_age_s),
            r.stuck_count.to_string(),
            r.overdue_count.to_string(),
        ]);
    }
    let off: Vec<String> = s
        .mappings
        .iter()
        .filter(|m| m.state != "Enabled")
        .map(|m| match &m.switched_by {
            Some(target) => format!("{} {} (by the gate of {target})", m.logical, m.state),
            None => format!("{} {}", m.logical, m.state),
        })
        .collect();
    let mappings = match off.is_empty() {
        true => format!("all {} enabled", s.mappings.len()),
        false => off.join(", "),
    };
    out += &format!("{t}\n\nMappings: {mappings}\nParked: {}", s.parked.count);
    for r in &s.parked.top_reasons {
        out += &format!("\n  {:>4} × {}", r.count, r.reason);
    }
    let dead: Vec<String> = s
        .parked
        .dead_letters
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(q, n)| format!("{q} {n}"))
        .collect();
    out += &format!(
        "\nDead letters: {}\n\nAttention",
        if dead.is_empty() {
            "none".into()
        } else {
            dead.join(", ")
        }
    );
    if s.attention.is_empty() {
        out += ": nothing needs attention\n";
    } else {
        out += "\n";
        for a in &s.attention {
            out += &format!("  [{}] {}: {}\n", a.kind, a.subject, a.cause);
        }
    }
    out
}

/// One target's gate (and mapping) as `status` shows it.
pub async fn read_gate(stack: &Stack, aws: &Aws, target: &str) -> Result<GateRow> {
    let t = stack
        .targets()
        .into_iter()
        .find(|t| t.name == target)
        .ok_or_else(|| anyhow!("stack {} has no target {target}", stack.name))?;
    let mapping = match &t.mapping {
        Some(uuid) => Some(mapping(aws, uuid).await?),
        None => None,
    };
    gate(aws, stack.physical("GateTable")?, &t, mapping).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Status {
        Status {
            stack: "s".into(),
            at_ms: 10_000_000,
            gates: vec![GateRow {
                target: "portal".into(),
                state: "Flowing".into(),
                manual: false,
                since_ms: 0,
                changed_at_ms: 0,
                reason: String::new(),
                epoch: 0,
                attempt: 0,
                next_probe_at_ms: None,
                mapping: Some(MappingRow {
                    uuid: "u".into(),
                    state: "Enabled".into(),
                    maximum_concurrency: Some(5),
                }),
            }],
            queues: vec![],
            tables: vec![],
            mappings: vec![],
            parked: Parked {
                count: 0,
                top_reasons: vec![],
                dead_letters: BTreeMap::new(),
            },
            attention: vec![],
        }
    }

    #[test]
    fn a_healthy_stack_needs_nothing() {
        assert!(needs(&status(), 60).is_empty());
        assert!(render(&status()).contains("nothing needs attention"));
    }

    #[test]
    fn a_halted_gate_whose_probe_is_overdue_needs_attention_twice() {
        let mut s = status();
        let g = &mut s.gates[0];
        g.state = "Halted".into();
        g.since_ms = 9_000_000;
        g.reason = "5 failures: HTTP 503".into();
        g.next_probe_at_ms = Some(9_500_000);
        let kinds: Vec<String> = needs(&s, 60).into_iter().map(|a| a.kind).collect();
        assert_eq!(kinds, ["halted", "no-probe"]);
    }

    #[test]
    fn a_flowing_gate_with_its_mapping_off_dead_letters_parked_and_old_queues_need_attention() {
        let mut s = status();
        s.gates[0].mapping.as_mut().unwrap().state = "Disabled".into();
        s.parked.count = 2;
        s.parked.dead_letters.insert("OrdersDLQ".into(), 1);
        s.queues.push(QueueRow {
            logical: "OrdersDLQ".into(),
            name: "s-orders-dlq".into(),
            role: "dead-letter".into(),
            visible: 1,
            in_flight: 0,
            delayed: 0,
            oldest_age_s: Some(900),
            oldest_age_error: None,
            retention_s: 1000,
            age_alarm_s: None,
        });
        s.tables.push(TableRow {
            pipeline: "outbox".into(),
            table: "s-outbox".into(),
            by_status: BTreeMap::new(),
            oldest_pending_age_s: None,
            stuck: vec!["a-1".into()],
            stuck_count: 1,
            overdue: vec![],
            overdue_count: 0,
        });
        let kinds: Vec<String> = needs(&s, 60).into_iter().map(|a| a.kind).collect();
        assert_eq!(
            kinds,
            [
                "mapping",
                "stuck",
                "near-retention",
                "dead-letters",
                "parked"
            ]
        );
    }

    #[test]
    fn failed_and_overdue_records_old_sources_unreadable_ages_off_mappings_and_long_probes_need_attention(
    ) {
        let mut s = status();
        s.gates[0].state = "Probing".into();
        s.gates[0].changed_at_ms = 9_000_000;
        s.mappings.push(MappingInfo {
            logical: "OutboxWriterFunctionApplications".into(),
            uuid: "w".into(),
            state: "Disabled".into(),
            switched_by: None,
        });
        s.tables.push(TableRow {
            pipeline: "inbox".into(),
            table: "s-inbox".into(),
            by_status: BTreeMap::from([("Failed".into(), 2), ("ToBeProcessed".into(), 1)]),
            oldest_pending_age_s: Some(4000),
            stuck: vec![],
            stuck_count: 0,
            overdue: vec!["customer/1".into()],
            overdue_count: 1,
        });
        let source = |name: &str, age, error: Option<&str>| QueueRow {
            logical: name.into(),
            name: name.into(),
            role: "source".into(),
            visible: 1,
            in_flight: 0,
            delayed: 0,
            oldest_age_s: age,
            oldest_age_error: error.map(str::to_owned),
            retention_s: 1_209_600,
            age_alarm_s: Some(3600),
        };
        s.queues.push(source("orders", Some(4000), None));
        s.queues.push(source("applications", Some(100), None));
        s.queues.push(source("erp", None, Some("AccessDenied")));
        let found: Vec<(String, String)> = needs(&s, 60)
            .into_iter()
            .map(|a| (a.kind, a.subject))
            .collect();
        let want = [
            ("halted", "portal"),
            ("no-probe", "portal"),
            ("mapping", "OutboxWriterFunctionApplications"),
            ("overdue", "s-inbox"),
            ("failed", "s-inbox"),
            ("old-messages", "orders"),
            ("unreadable", "erp"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, s)| (k.to_string(), s.to_string()))
            .collect();
        assert_eq!(found, want);
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(human(42), "42s");
        assert_eq!(human(200), "3m 20s");
        assert_eq!(human(3900), "1h 05m");
        assert_eq!(human(1_209_600), "14d 0h");
    }
}
