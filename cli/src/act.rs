//! The operator's actions: halt and resume a target's flow (through `close` and `open`, the
//! same conditional transitions the functions use), and requeue `Failed` records.

use anyhow::{anyhow, bail, Result};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_smithy_types::Blob;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::json;
use steadfast_domain::lease::shard_of;

use crate::aws::{describe, Aws};
use crate::stack::Stack;
use crate::status::{self, GateRow};
use crate::{ago, now_ms, Table};

/// A gate after an action.
#[derive(Debug, Serialize)]
pub struct GateReport {
    pub target: String,
    pub state: String,
    pub manual: bool,
    pub reason: String,
    pub mapping_state: Option<String>,
    pub at_ms: u64,
    pub since_ms: u64,
}

fn known_target(stack: &Stack, target: &str) -> Result<()> {
    let targets: Vec<String> = stack.targets().into_iter().map(|t| t.name).collect();
    if !targets.iter().any(|t| t == target) {
        bail!(
            "unknown target `{target}`: stack {} guards {}",
            stack.name,
            targets.join(", ")
        );
    }
    Ok(())
}

/// Invokes a function of the stack and waits for its answer; a function error is an error.
async fn invoke(stack: &Stack, aws: &Aws, logical: &str, event: serde_json::Value) -> Result<()> {
    let function = stack.physical(logical)?;
    let out = aws
        .lambda
        .invoke()
        .function_name(function)
        .payload(Blob::new(event.to_string()))
        .send()
        .await
        .map_err(|e| anyhow!("Invoke {function}: {}", describe(&e)))?;
    if let Some(kind) = out.function_error() {
        let answer = out
            .payload()
            .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned())
            .unwrap_or_default();
        bail!("{function} failed ({kind}): {answer}");
    }
    Ok(())
}

async fn report(stack: &Stack, aws: &Aws, target: &str) -> Result<GateReport> {
    let status = status::read_gate(stack, aws, target).await?;
    let GateRow {
        target,
        state,
        manual,
        reason,
        since_ms,
        mapping,
        ..
    } = status;
    Ok(GateReport {
        target,
        state,
        manual,
        reason,
        mapping_state: mapping.map(|m| m.state),
        at_ms: now_ms(),
        since_ms,
    })
}

/// `close` with a manual trip: the gate halts (or a running halt becomes manual); no probes.
pub async fn halt(stack: &Stack, aws: &Aws, target: &str, reason: &str) -> Result<GateReport> {
    known_target(stack, target)?;
    let event = json!({"kind": "trip", "target": target, "reason": reason, "manual": true});
    invoke(stack, aws, "CloseFunction", event).await?;
    report(stack, aws, target).await
}

/// `open` with an operator's resume (no epoch): lifts any halt, manual or not.
pub async fn resume(stack: &Stack, aws: &Aws, target: &str) -> Result<GateReport> {
    known_target(stack, target)?;
    invoke(stack, aws, "OpenFunction", json!({"target": target})).await?;
    report(stack, aws, target).await
}

pub fn render_gate(r: &GateReport) -> String {
    let manual = if r.manual {
        " (manual: only `steadfast resume` lifts it)"
    } else {
        ""
    };
    let mapping = r
        .mapping_state
        .as_deref()
        .map(|m| format!("; mapping {m}"))
        .unwrap_or_default();
    let since = if r.since_ms > 0 {
        format!(" since {}", ago(r.since_ms, r.at_ms))
    } else {
        String::new()
    };
    format!(
        "{}: {}{manual}{since}{mapping}\n  reason: {}\n",
        r.target, r.state, r.reason
    )
}

/// What `requeue` did, record by record.
#[derive(Debug, Serialize)]
pub struct RequeueReport {
    pub table: String,
    pub records: Vec<Requeued>,
}

/// What became of one record asked to be requeued.
#[derive(Debug, Serialize)]
pub struct Requeued {
    pub id: String,
    /// `requeued`, `not-failed` (with its status) or `not-found`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// `Failed` → `ToBeProcessed`, due now, attempts reset; only if still `Failed` (a conditional
/// write), so a record delivered or requeued meanwhile is left alone.
pub async fn requeue(
    stack: &Stack,
    aws: &Aws,
    table: Table,
    ids: Vec<String>,
    all_failed: bool,
) -> Result<RequeueReport> {
    let name = stack.physical(table.logical())?;
    let ids = if all_failed {
        failed_ids(aws, name).await?
    } else {
        ids
    };
    let shards = stack.shards(table);
    let bar = ProgressBar::new(ids.len() as u64).with_style(
        ProgressStyle::with_template("requeue {bar:30} {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut out = Vec::new();
    for id in ids {
        out.push(requeue_one(aws, name, &id, shards).await?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(RequeueReport {
        table: name.to_owned(),
        records: out,
    })
}

async fn requeue_one(aws: &Aws, table: &str, id: &str, shards: u32) -> Result<Requeued> {
    let now = now_ms();
    let sent = aws
        .dynamodb
        .update_item()
        .table_name(table)
        .key("id", AttributeValue::S(id.to_owned()))
        .condition_expression("#s = :failed")
        .update_expression(
            "SET #s = :due, attempts = :zero, due_shard = :shard, due_at = :now, requeued_at_ms = :now REMOVE failed_at_ms",
        )
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":failed", AttributeValue::S("Failed".into()))
        .expression_attribute_values(":due", AttributeValue::S("ToBeProcessed".into()))
        .expression_attribute_values(":zero", AttributeValue::N("0".into()))
        .expression_attribute_values(":shard", AttributeValue::S(shard_of(id, shards).to_string()))
        .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await;
    let (outcome, status) = match sent {
        Ok(_) => ("requeued", None),
        Err(e) => match e.as_service_error() {
            Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c)) => {
                match c.item().and_then(|i| i.get("status")).and_then(|s| s.as_s().ok()) {
                    Some(s) => ("not-failed", Some(s.clone())),
                    None => ("not-found", None),
                }
            }
            _ => bail!("UpdateItem {id} in {table}: {}", describe(&e)),
        },
    };
    Ok(Requeued {
        id: id.to_owned(),
        outcome: outcome.into(),
        status,
    })
}

async fn failed_ids(aws: &Aws, table: &str) -> Result<Vec<String>> {
    let mut pages = aws
        .dynamodb
        .scan()
        .table_name(table)
        .filter_expression("#s = :failed")
        .projection_expression("id")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":failed", AttributeValue::S("Failed".into()))
        .into_paginator()
        .items()
        .send();
    let mut ids = Vec::new();
    while let Some(item) = pages.next().await {
        let item = item.map_err(|e| anyhow!("Scan {table}: {}", describe(&e)))?;
        if let Some(AttributeValue::S(id)) = item.get("id") {
            ids.push(id.clone());
        }
    }
    Ok(ids)
}

pub fn render_requeue(report: &RequeueReport) -> String {
    let r = &report.records;
    if r.is_empty() {
        return "nothing to requeue: no Failed record\n".into();
    }
    let done = r.iter().filter(|x| x.outcome == "requeued").count();
    let mut out = format!(
        "{done} of {} record(s) requeued (due now, attempts reset)\n",
        r.len()
    );
    for x in r.iter().filter(|x| x.outcome != "requeued") {
        let status = x
            .status
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        out += &format!("  {}: {}{status}\n", x.id, x.outcome);
    }
    out
}
