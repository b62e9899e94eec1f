//! `steadfast replay parked|dlq`: messages back on their source queue, body unchanged.
//!
//! The body goes back unchanged, with the message's `correlation_id` attribute (parked
//! messages carry it), so the replayed message keeps its correlation id.
//!
//! Dead letters move with SQS's own message move task (to the queue they were dead-lettered
//! from); with `--limit` or `--dry-run`, and for the parking queue (not a redrive DLQ), by
//! receive, send, then delete. A crash between the send and the delete leaves the message in
//! both queues; replaying it again is harmless, because every pipeline drops a copy it has
//! already delivered (the ledger, the outbox's conditional write, the inbox's hash).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, Result};
use aws_sdk_sqs::types::{Message, MessageAttributeValue, QueueAttributeName};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::aws::{describe, number, Aws};
use crate::stack::{queue_name, Stack};
use crate::{ReplayFrom, SourceQueue};

/// How long a message being moved stays hidden from other readers.
const HOLD_S: i32 = 60;

#[derive(Debug, Default, Serialize)]
pub struct Replayed {
    pub from: String,
    pub dry_run: bool,
    /// `move-task` or `receive-and-send`, per queue read.
    pub method: BTreeMap<String, String>,
    /// Messages moved (or, in a dry run, that would move), by destination queue.
    pub moved: BTreeMap<String, u64>,
    /// Messages left where they were: another source, or past the limit.
    pub skipped: u64,
    /// Messages that could not be moved (left in place).
    pub failed: u64,
    /// What went wrong, queue by queue (the other queues were still replayed).
    pub errors: Vec<String>,
}

pub async fn run(
    stack: &Stack,
    aws: &Aws,
    from: ReplayFrom,
    source: Option<SourceQueue>,
    limit: Option<usize>,
    dry_run: bool,
) -> Result<Replayed> {
    let mut r = Replayed {
        from: format!("{from:?}").to_lowercase(),
        dry_run,
        ..Replayed::default()
    };
    let mut budget = limit.unwrap_or(usize::MAX);
    match from {
        ReplayFrom::Parked => {
            let url = stack.physical("ParkingQueue")?;
            r.method
                .insert("ParkingQueue".into(), "receive-and-send".into());
            let dest = |m: &Message| parked_destination(stack, m, source);
            move_messages(aws, url, dest, &mut budget, dry_run, &mut r).await?;
        }
        ReplayFrom::Dlq => {
            let sources = source.map_or(SourceQueue::ALL.to_vec(), |s| vec![s]);
            for s in sources {
                let dlq = stack.physical(s.dead_letters())?;
                let to = stack.physical(s.queue())?;
                if limit.is_none() && !dry_run {
                    r.method.insert(s.dead_letters().into(), "move-task".into());
                    match move_task(aws, dlq, to).await {
                        Ok(n) => *r.moved.entry(s.queue().into()).or_insert(0) += n,
                        Err((moved, e)) => {
                            *r.moved.entry(s.queue().into()).or_insert(0) += moved;
                            r.failed += 1;
                            r.errors.push(format!("{}: {e:#}", s.dead_letters()));
                        }
                    }
                } else {
                    r.method
                        .insert(s.dead_letters().into(), "receive-and-send".into());
                    let dest = |_: &Message| Some((s.queue().to_owned(), to.to_owned()));
                    move_messages(aws, dlq, dest, &mut budget, dry_run, &mut r).await?;
                }
            }
        }
    }
    Ok(r)
}

/// Where a parked message goes back to: the queue its `source_arn` names, else its source's
/// queue; `None` when it is not from `only` (or names no queue of the stack).
fn parked_destination(
    stack: &Stack,
    m: &Message,
    only: Option<SourceQueue>,
) -> Option<(String, String)> {
    let attr = |k: &str| {
        m.message_attributes()
            .and_then(|a| a.get(k))
            .and_then(|v| v.string_value())
    };
    let source = SourceQueue::ALL
        .into_iter()
        .find(|s| Some(s.name()) == attr("source"));
    if only.is_some() && source != only {
        return None;
    }
    if let Some(arn) = attr("source_arn") {
        let wanted = queue_name(arn);
        if let Some((logical, url)) = stack
            .of_kind("AWS::SQS::Queue")
            .find(|(_, url)| queue_name(url) == wanted)
        {
            return Some((logical.to_owned(), url.to_owned()));
        }
    }
    let s = source?;
    Some((
        s.queue().to_owned(),
        stack.physical(s.queue()).ok()?.to_owned(),
    ))
}

/// Receives from `from` and sends each message to where `dest` says, then deletes it; a
/// message `dest` has no place for (or past the budget, or in a dry run) is held until the
/// queue has nothing more to give, then released.
async fn move_messages(
    aws: &Aws,
    from: &str,
    dest: impl Fn(&Message) -> Option<(String, String)>,
    budget: &mut usize,
    dry_run: bool,
    r: &mut Replayed,
) -> Result<()> {
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    // Messages left in place stay held until the end, so the queue runs dry of new ones.
    let mut held = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut done = 0u64;
    while *budget > 0 {
        let out = aws
            .sqs
            .receive_message()
            .queue_url(from)
            .max_number_of_messages(10)
            .visibility_timeout(HOLD_S)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| anyhow!("ReceiveMessage {}: {}", queue_name(from), describe(&e)))?;
        // A message seen before came back (its hold ran out during a long pass): the queue has
        // nothing new left.
        let (fresh, repeated): (Vec<&Message>, Vec<&Message>) = out
            .messages()
            .iter()
            .partition(|m| seen.insert(m.message_id().unwrap_or_default().to_owned()));
        held.extend(
            repeated
                .iter()
                .map(|m| m.receipt_handle().unwrap_or_default().to_owned()),
        );
        if fresh.is_empty() {
            break;
        }
        for m in fresh {
            let receipt = m.receipt_handle().unwrap_or_default().to_owned();
            let target = if *budget > 0 { dest(m) } else { None };
            let (label, url) = match (target, dry_run) {
                (None, _) => {
                    r.skipped += 1;
                    held.push(receipt);
                    continue;
                }
                (Some((label, _)), true) => {
                    *r.moved.entry(label).or_insert(0) += 1;
                    *budget -= 1;
                    held.push(receipt);
                    continue;
                }
                (Some(found), false) => found,
            };
            let id = m.message_id().unwrap_or_default();
            // The message's correlation id travels on, so its story stays one thread.
            // (a message without one was correlated by its own message id)
            let correlation = m
                .message_attributes()
                .and_then(|a| a.get("correlation_id"))
                .filter(|v| v.string_value().is_some())
                .cloned()
                .or_else(|| {
                    MessageAttributeValue::builder()
                        .data_type("String")
                        .string_value(id)
                        .build()
                        .ok()
                });
            let sent = aws
                .sqs
                .send_message()
                .queue_url(&url)
                .message_body(m.body().unwrap_or_default())
                .set_message_attributes(
                    correlation.map(|c| [("correlation_id".to_owned(), c)].into()),
                )
                .send()
                .await;
            if let Err(e) = sent {
                eprintln!("could not send {id} to {label}: {}", describe(&e));
                r.failed += 1;
                held.push(receipt);
                continue;
            }
            let deleted = aws
                .sqs
                .delete_message()
                .queue_url(from)
                .receipt_handle(&receipt)
                .send()
                .await;
            if let Err(e) = deleted {
                eprintln!(
                    "sent {id} to {label} but could not delete it from {}: {} (replaying it again is harmless)",
                    queue_name(from),
                    describe(&e)
                );
            }
            *r.moved.entry(label).or_insert(0) += 1;
            *budget -= 1;
            done += 1;
            bar.set_message(format!("{done} moved from {}", queue_name(from)));
            bar.tick();
        }
    }
    for receipt in held {
        release(aws, from, &receipt).await;
    }
    bar.finish_and_clear();
    Ok(())
}

/// Makes a held message visible again at once (best effort: it reappears after the hold).
async fn release(aws: &Aws, queue: &str, receipt: &str) {
    let _ = aws
        .sqs
        .change_message_visibility()
        .queue_url(queue)
        .receipt_handle(receipt)
        .visibility_timeout(0)
        .send()
        .await;
}

async fn arn(aws: &Aws, url: &str) -> Result<String> {
    let attrs = aws
        .queue_attributes(url, QueueAttributeName::QueueArn)
        .await?;
    attrs
        .get(&QueueAttributeName::QueueArn)
        .cloned()
        .ok_or_else(|| anyhow!("{} has no ARN", queue_name(url)))
}

/// SQS's message move task from a dead-letter queue to `to` (or the one already running
/// there); waits until it ends, and returns how many it moved, or, when it failed, how many it
/// had moved and why. A task that moves nothing for 5 minutes is left running and reported.
async fn move_task(aws: &Aws, dlq: &str, to: &str) -> Result<u64, (u64, anyhow::Error)> {
    let source_arn = arn(aws, dlq).await.map_err(|e| (0, e))?;
    let destination_arn = arn(aws, to).await.map_err(|e| (0, e))?;
    let depth = depth(aws, dlq).await.map_err(|e| (0, e))?;
    let running = latest_task(aws, &source_arn, dlq)
        .await
        .map_err(|e| (0, e))?
        .is_some_and(|t| t.status() == Some("RUNNING"));
    if depth == 0 && !running {
        return Ok(0);
    }
    if !running {
        aws.sqs
            .start_message_move_task()
            .source_arn(&source_arn)
            .destination_arn(&destination_arn)
            .send()
            .await
            .map_err(|e| {
                (
                    0,
                    anyhow!("StartMessageMoveTask {}: {}", queue_name(dlq), describe(&e)),
                )
            })?;
    }
    let bar = ProgressBar::new(depth).with_style(
        ProgressStyle::with_template("move {bar:30} {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut moved, mut progress_at) = (0u64, std::time::Instant::now());
    let result = loop {
        let t = match latest_task(aws, &source_arn, dlq).await {
            Ok(Some(t)) => t,
            Ok(None) => {
                break Err(anyhow!(
                    "the move task of {} is not listed",
                    queue_name(dlq)
                ))
            }
            Err(e) => break Err(e),
        };
        let now_moved = t.approximate_number_of_messages_moved().max(0) as u64;
        if now_moved > moved {
            (moved, progress_at) = (now_moved, std::time::Instant::now());
        }
        bar.set_position(moved);
        match t.status() {
            Some("COMPLETED") => break Ok(moved),
            Some("RUNNING" | "CANCELLING") | None if progress_at.elapsed() > STALLED => {
                break Err(anyhow!(
                    "the move task of {} moved nothing for {} s; it is left running",
                    queue_name(dlq),
                    STALLED.as_secs()
                ))
            }
            Some("RUNNING" | "CANCELLING") | None => {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            Some(other) => {
                break Err(anyhow!(
                    "the move task of {} ended {other}: {}",
                    queue_name(dlq),
                    t.failure_reason().unwrap_or("no reason given")
                ))
            }
        }
    };
    bar.finish_and_clear();
    result.map_err(|e| (moved, e))
}

/// A move task that moves nothing for this long is reported, not waited for.
const STALLED: Duration = Duration::from_secs(300);

async fn depth(aws: &Aws, url: &str) -> Result<u64> {
    let name = QueueAttributeName::ApproximateNumberOfMessages;
    let attrs = aws.queue_attributes(url, name.clone()).await?;
    Ok(number(&attrs, name))
}

/// The newest message move task of a queue, if any.
async fn latest_task(
    aws: &Aws,
    source_arn: &str,
    dlq: &str,
) -> Result<Option<aws_sdk_sqs::types::ListMessageMoveTasksResultEntry>> {
    let tasks = aws
        .sqs
        .list_message_move_tasks()
        .source_arn(source_arn)
        .max_results(1)
        .send()
        .await
        .map_err(|e| anyhow!("ListMessageMoveTasks {}: {}", queue_name(dlq), describe(&e)))?;
    Ok(tasks.results().first().cloned())
}

pub fn render(r: &Replayed) -> String {
    let verb = if r.dry_run { "would move" } else { "moved" };
    let total: u64 = r.moved.values().sum();
    let mut out = format!("{verb} {total} message(s) from {}", r.from);
    let methods: Vec<String> = r
        .method
        .iter()
        .map(|(q, m)| format!("{q} by {m}"))
        .collect();
    out += &format!(" ({})\n", methods.join(", "));
    for (q, n) in &r.moved {
        out += &format!("  {n} → {q}\n");
    }
    if r.skipped > 0 {
        out += &format!(
            "  {} left in place (another source, or past the limit)\n",
            r.skipped
        );
    }
    if r.failed > 0 {
        out += &format!(
            "  {} message(s) or move task(s) failed; what was not moved stays where it was\n",
            r.failed
        );
    }
    for e in &r.errors {
        out += &format!("  error: {e}\n");
    }
    out
}
