//! What AWS's managed glue does and the emulators do not:
//! - for every event source mapping that is **Enabled in the emulator**, poll its queue,
//!   invoke the mapped function with a real SQS event, and delete exactly the messages the
//!   function did not report in `batchItemFailures` (nothing, if the invocation failed);
//! - fire Scheduler schedules whose `at(...)` time has come, by sending their input to their
//!   SQS target, then delete them (ActionAfterCompletion=DELETE).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::aws::{describe, Emulator};
use crate::stack::{Mapping, Stack};

/// Counters, for reports.
#[derive(Debug, Default)]
pub struct Counters {
    pub invocations: AtomicU64,
    pub invocation_errors: AtomicU64,
    pub messages_deleted: AtomicU64,
    pub messages_handed_back: AtomicU64,
    pub schedules_fired: AtomicU64,
}

pub struct Plumbing {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    pub counters: Arc<Counters>,
    /// Invocations per function binary.
    pub per_function: Arc<HashMap<String, AtomicU64>>,
}

impl Plumbing {
    pub fn start(emu: &Emulator, stack: &Stack, invoke_base: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let per_function: Arc<HashMap<String, AtomicU64>> = Arc::new(
            stack
                .functions
                .iter()
                .map(|f| (f.binary.clone(), AtomicU64::new(0)))
                .collect(),
        );
        // No idle connections: the Runtime API server may close one just as it is reused.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("http client");
        let mut tasks = Vec::new();
        for m in &stack.mappings {
            tasks.push(tokio::spawn(poll_mapping(
                emu.clone(),
                http.clone(),
                m.clone(),
                format!(
                    "{invoke_base}/2015-03-31/functions/{}/invocations",
                    m.function.binary
                ),
                stop.clone(),
                counters.clone(),
                per_function.clone(),
            )));
        }
        tasks.push(tokio::spawn(fire_schedules(
            emu.clone(),
            stack.queue_urls.clone(),
            stop.clone(),
            counters.clone(),
        )));
        Plumbing {
            stop,
            tasks,
            counters,
            per_function,
        }
    }

    pub fn invocations_of(&self, binary: &str) -> u64 {
        self.per_function
            .get(binary)
            .map(|c| c.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
    }
}

async fn mapping_enabled(emu: &Emulator, uuid: &str) -> bool {
    match emu
        .lambda
        .get_event_source_mapping()
        .uuid(uuid)
        .send()
        .await
    {
        Ok(m) => m.state.as_deref() == Some("Enabled"),
        Err(e) => {
            warn!(uuid, error = %describe(&e), "GetEventSourceMapping failed");
            false
        }
    }
}

fn sqs_event(m: &Mapping, messages: &[aws_sdk_sqs::types::Message]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|msg| {
            let attributes: serde_json::Map<String, Value> = msg
                .attributes
                .as_ref()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone())))
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": msg.message_id,
                "receiptHandle": msg.receipt_handle,
                "body": msg.body,
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": msg.md5_of_body,
                "eventSource": "aws:sqs",
                "eventSourceARN": m.queue_arn,
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({ "Records": records })
}

async fn poll_mapping(
    emu: Emulator,
    http: reqwest::Client,
    m: Mapping,
    url: String,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    per_function: Arc<HashMap<String, AtomicU64>>,
) {
    let mut enabled = false;
    let mut checked = std::time::Instant::now() - Duration::from_secs(10);
    while !stop.load(Ordering::Relaxed) {
        if checked.elapsed() >= Duration::from_millis(300) {
            enabled = mapping_enabled(&emu, &m.uuid).await;
            checked = std::time::Instant::now();
        }
        if !enabled {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let received = emu
            .sqs
            .receive_message()
            .queue_url(&m.queue_url)
            .max_number_of_messages(m.batch_size.clamp(1, 10))
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await;
        let messages = match received {
            Ok(r) => r.messages.unwrap_or_default(),
            Err(e) => {
                warn!(queue = %m.queue_url, error = %describe(&e), "ReceiveMessage failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        counters.invocations.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = per_function.get(&m.function.binary) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let event = sqs_event(&m, &messages);
        // A transport error (nothing answered) is retried a few times, as AWS's poller does;
        // an answer, even an error, is final for this batch.
        let mut answer = None;
        for attempt in 0..3u64 {
            let r = http
                .post(&url)
                .timeout(Duration::from_secs(m.function.timeout_s + 30))
                .json(&event)
                .send()
                .await;
            match r {
                Err(e) if !e.is_timeout() && attempt < 2 => {
                    debug!(function = %m.function.binary, error = %e, "invoke transport error; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
                }
                other => {
                    answer = Some(other);
                    break;
                }
            }
        }
        let Some(answer) = answer else { continue };
        let failed: Option<Vec<String>> = match answer {
            Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                Ok(v) => Some(
                    v.get("batchItemFailures")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                Err(e) => {
                    warn!(function = %m.function.binary, error = %e, "answer is not JSON; treating the batch as failed");
                    None
                }
            },
            Ok(r) => {
                warn!(function = %m.function.binary, status = %r.status(), "invocation failed; batch returns after its visibility timeout");
                None
            }
            Err(e) => {
                warn!(function = %m.function.binary, error = %e, "invocation failed; batch returns after its visibility timeout");
                None
            }
        };
        let Some(failed) = failed else {
            counters.invocation_errors.fetch_add(1, Ordering::Relaxed);
            counters
                .messages_handed_back
                .fetch_add(messages.len() as u64, Ordering::Relaxed);
            continue;
        };
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter(|(_, msg)| {
                !failed
                    .iter()
                    .any(|f| Some(f.as_str()) == msg.message_id.as_deref())
            })
            .filter_map(|(i, msg)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(msg.receipt_handle.clone()?)
                    .build()
                    .ok()
            })
            .collect();
        counters
            .messages_handed_back
            .fetch_add((messages.len() - done.len()) as u64, Ordering::Relaxed);
        if !done.is_empty() {
            let n = done.len() as u64;
            match emu
                .sqs
                .delete_message_batch()
                .queue_url(&m.queue_url)
                .set_entries(Some(done))
                .send()
                .await
            {
                Ok(out) => {
                    let failed_deletes = out.failed.len() as u64;
                    counters
                        .messages_deleted
                        .fetch_add(n - failed_deletes, Ordering::Relaxed);
                }
                Err(e) => {
                    warn!(error = %describe(&e), "DeleteMessageBatch failed; messages will be redelivered")
                }
            }
        }
        debug!(function = %m.function.binary, received = messages.len(), failed = failed.len(), "batch done");
    }
}

/// Parses `at(yyyy-mm-ddThh:mm:ss)` (UTC) into ms since the Unix epoch.
pub fn parse_at(expr: &str) -> Option<u64> {
    let inner = expr.strip_prefix("at(")?.strip_suffix(')')?;
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let t = time::PrimitiveDateTime::parse(inner, f).ok()?.assume_utc();
    Some((t.unix_timestamp() as u64) * 1000)
}

async fn fire_schedules(
    emu: Emulator,
    queue_urls: HashMap<String, String>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let list = match emu.scheduler.list_schedules().send().await {
            Ok(l) => l.schedules,
            Err(e) => {
                debug!(error = %describe(&e), "ListSchedules failed");
                continue;
            }
        };
        for summary in list {
            let Some(name) = summary.name else { continue };
            let group = summary.group_name.unwrap_or_else(|| "default".into());
            let Ok(s) = emu
                .scheduler
                .get_schedule()
                .name(&name)
                .group_name(&group)
                .send()
                .await
            else {
                continue;
            };
            let Some(target) = s.target else { continue };
            // Only this stack's schedules: their target is one of its queues.
            let Some(url) = queue_urls.get(&target.arn) else {
                continue;
            };
            let Some(at) = s.schedule_expression.as_deref().and_then(parse_at) else {
                continue;
            };
            if at > crate::now_ms() {
                continue;
            }
            let input = target.input.unwrap_or_default();
            if let Err(e) = emu
                .sqs
                .send_message()
                .queue_url(url)
                .message_body(input)
                .send()
                .await
            {
                warn!(schedule = name, error = %describe(&e), "firing schedule failed; will retry");
                continue;
            }
            counters.schedules_fired.fetch_add(1, Ordering::Relaxed);
            let delete = s
                .action_after_completion
                .map(|a| a.as_str() == "DELETE")
                .unwrap_or(false);
            if delete {
                let _ = emu
                    .scheduler
                    .delete_schedule()
                    .name(&name)
                    .group_name(&group)
                    .send()
                    .await;
            }
        }
    }
}
