//! What AWS's managed glue does and the emulators do not:
//! - for every event source mapping that is **Enabled in the emulator**, poll its queue,
//!   invoke the mapped function with a real SQS event, and delete exactly the messages the
//!   function did not report in `batchItemFailures` (nothing, if the invocation failed);
//! - fire Scheduler schedules whose `at(...)` time has come, by sending their input to their
//!   SQS target, then delete them (ActionAfterCompletion=DELETE);
//! - for every DynamoDB stream mapping that is Enabled, read the stream's shards and invoke the
//!   mapped function with the records that pass the mapping's filters (a failed invocation is
//!   retried with the same records, as Lambda does for streams);
//! - run `rate(...)` schedules, optionally compressed to a shorter period.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::aws::{describe, Emulator};
use crate::stack::{Mapping, RateSchedule, Stack, StreamMapping};

/// Counters, for reports.
#[derive(Debug, Default)]
pub struct Counters {
    pub invocations: AtomicU64,
    pub invocation_errors: AtomicU64,
    pub messages_deleted: AtomicU64,
    pub messages_handed_back: AtomicU64,
    pub schedules_fired: AtomicU64,
    pub stream_records: AtomicU64,
    pub rate_ticks: AtomicU64,
}

pub struct Plumbing {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    pub counters: Arc<Counters>,
    /// Invocations per function binary.
    pub per_function: Arc<HashMap<String, AtomicU64>>,
}

impl Plumbing {
    /// `rate_every`: run every rate schedule at this period instead of its own (time
    /// compression for tests and the demo).
    pub fn start(
        emu: &Emulator,
        stack: &Stack,
        invoke_base: &str,
        rate_every: Option<Duration>,
    ) -> Self {
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
        let url_of =
            |binary: &str| format!("{invoke_base}/2015-03-31/functions/{binary}/invocations");
        for sm in &stack.streams {
            tasks.push(tokio::spawn(poll_stream(
                emu.clone(),
                http.clone(),
                sm.clone(),
                url_of(&sm.function.binary),
                stop.clone(),
                counters.clone(),
                per_function.clone(),
            )));
        }
        for rs in &stack.schedules {
            tasks.push(tokio::spawn(run_rate(
                http.clone(),
                rs.clone(),
                rate_every.unwrap_or(rs.every),
                url_of(&rs.function.binary),
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
        if checked.elapsed() >= Duration::from_millis(500) {
            enabled = mapping_enabled(&emu, &m.uuid).await;
            checked = std::time::Instant::now();
        }
        if !enabled {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let messages = match receive_batch(&emu, &m).await {
            Ok(messages) => messages,
            Err(e) => {
                warn!(queue = %m.queue_url, error = %e, "ReceiveMessage failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        count_invocation(&counters, &per_function, &m.function.binary);
        let event = sqs_event(&m, &messages);
        // A transport error (nothing answered) is retried a few times, as AWS's poller does;
        // an answer, even an error, is final for this batch.
        let timeout = Duration::from_secs(m.function.timeout_s + 30);
        let failed: Option<Vec<String>> = match invoke_json(&http, &url, timeout, &event).await {
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

/// One batch for a mapping: up to its batch size (10 at most per receive), gathered for up to
/// its batching window, as Lambda's poller does.
async fn receive_batch(
    emu: &Emulator,
    m: &Mapping,
) -> Result<Vec<aws_sdk_sqs::types::Message>, String> {
    let want = m.batch_size.clamp(1, 10) as usize;
    let until = std::time::Instant::now() + Duration::from_secs(m.batching_window_s);
    let mut batch = Vec::new();
    loop {
        let out = emu
            .sqs
            .receive_message()
            .queue_url(&m.queue_url)
            .max_number_of_messages((want - batch.len()) as i32)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        batch.extend(out.messages.unwrap_or_default());
        if batch.len() >= want || std::time::Instant::now() >= until {
            return Ok(batch);
        }
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
        tokio::time::sleep(Duration::from_millis(500)).await;
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

/// Posts `event` to a function behind the Runtime API server and returns its answer. Transport
/// errors (nothing answered) are retried a few times; an answer, even an error, is final.
pub async fn invoke_json(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
    event: &Value,
) -> Result<Value, String> {
    for attempt in 0..3u64 {
        match http.post(url).timeout(timeout).json(event).send().await {
            Err(e) if !e.is_timeout() && attempt < 2 => {
                debug!(url, error = %e, "invoke transport error; retrying");
                tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
            }
            Err(e) => return Err(e.to_string()),
            Ok(r) if r.status().is_success() => {
                return r.json::<Value>().await.map_err(|e| e.to_string())
            }
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                return Err(format!(
                    "{status}: {}",
                    body.chars().take(300).collect::<String>()
                ));
            }
        }
    }
    Err("no answer".into())
}

/// One invocation of `binary`, in the totals and per function.
fn count_invocation(counters: &Counters, per_function: &HashMap<String, AtomicU64>, binary: &str) {
    counters.invocations.fetch_add(1, Ordering::Relaxed);
    if let Some(c) = per_function.get(binary) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// A stream attribute value in DynamoDB's JSON form, as Lambda hands it to functions.
fn attribute_json(v: &aws_sdk_dynamodbstreams::types::AttributeValue) -> Value {
    use aws_sdk_dynamodbstreams::types::AttributeValue as A;
    match v {
        A::S(s) => json!({"S": s}),
        A::N(n) => json!({"N": n}),
        A::Bool(b) => json!({"BOOL": b}),
        A::Null(_) => json!({"NULL": true}),
        A::Ss(v) => json!({"SS": v}),
        A::Ns(v) => json!({"NS": v}),
        A::L(v) => json!({"L": v.iter().map(attribute_json).collect::<Vec<_>>()}),
        A::M(m) => json!({"M": item_json(m)}),
        _ => Value::Null,
    }
}

fn item_json(m: &HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), attribute_json(v)))
            .collect(),
    )
}

fn stream_record_json(r: &aws_sdk_dynamodbstreams::types::Record, stream_arn: &str) -> Value {
    let d = r.dynamodb.as_ref();
    let mut dynamodb = serde_json::Map::new();
    if let Some(d) = d {
        if let Some(k) = &d.keys {
            dynamodb.insert("Keys".into(), item_json(k));
        }
        if let Some(n) = &d.new_image {
            dynamodb.insert("NewImage".into(), item_json(n));
        }
        if let Some(o) = &d.old_image {
            dynamodb.insert("OldImage".into(), item_json(o));
        }
        if let Some(s) = &d.sequence_number {
            dynamodb.insert("SequenceNumber".into(), json!(s));
        }
        if let Some(v) = &d.stream_view_type {
            dynamodb.insert("StreamViewType".into(), json!(v.as_str()));
        }
    }
    json!({
        "eventID": r.event_id,
        "eventName": r.event_name.as_ref().map(|e| e.as_str()),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": Value::Object(dynamodb),
        "eventSourceARN": stream_arn,
    })
}

/// Does `record` match an event-filter `pattern`? Supports what mappings here use: nested
/// objects, and lists of exact values or `{"prefix": ...}` / `{"exists": bool}`.
pub fn pattern_matches(pattern: &Value, record: &Value) -> bool {
    let Some(p) = pattern.as_object() else {
        return false;
    };
    p.iter().all(|(k, want)| {
        let got = record.get(k);
        match want {
            Value::Object(_) => got.is_some_and(|g| pattern_matches(want, g)),
            Value::Array(options) => options.iter().any(|o| match o {
                Value::Object(m) if m.contains_key("prefix") => got
                    .and_then(Value::as_str)
                    .zip(m["prefix"].as_str())
                    .is_some_and(|(g, p)| g.starts_with(p)),
                Value::Object(m) if m.contains_key("exists") => {
                    m["exists"].as_bool() == Some(got.is_some())
                }
                other => got == Some(other),
            }),
            _ => false,
        }
    })
}

async fn poll_stream(
    emu: Emulator,
    http: reqwest::Client,
    sm: StreamMapping,
    url: String,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    per_function: Arc<HashMap<String, AtomicU64>>,
) {
    use aws_sdk_dynamodbstreams::types::ShardIteratorType;
    // Per shard: the next iterator (None once closed) and the last sequence number handed over.
    let mut shards: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
    let mut described = std::time::Instant::now() - Duration::from_secs(60);
    let mut enabled = false;
    let mut checked = std::time::Instant::now() - Duration::from_secs(60);
    let first_position = if sm.starting_position == "LATEST" {
        ShardIteratorType::Latest
    } else {
        ShardIteratorType::TrimHorizon
    };
    let timeout = Duration::from_secs(sm.function.timeout_s + 30);
    while !stop.load(Ordering::Relaxed) {
        if checked.elapsed() >= Duration::from_millis(500) {
            enabled = mapping_enabled(&emu, &sm.uuid).await;
            checked = std::time::Instant::now();
        }
        if described.elapsed() >= Duration::from_secs(2) {
            described = std::time::Instant::now();
            match emu
                .streams
                .describe_stream()
                .stream_arn(&sm.stream_arn)
                .send()
                .await
            {
                Ok(d) => {
                    for shard in d
                        .stream_description
                        .and_then(|s| s.shards)
                        .unwrap_or_default()
                    {
                        let Some(id) = shard.shard_id else { continue };
                        if shards.contains_key(&id) {
                            continue;
                        }
                        // Shards found after the first describe are read from their start.
                        let kind = if shards.is_empty() {
                            first_position.clone()
                        } else {
                            ShardIteratorType::TrimHorizon
                        };
                        match emu
                            .streams
                            .get_shard_iterator()
                            .stream_arn(&sm.stream_arn)
                            .shard_id(&id)
                            .shard_iterator_type(kind)
                            .send()
                            .await
                        {
                            Ok(it) => {
                                shards.insert(id, (it.shard_iterator, None));
                            }
                            Err(e) => {
                                warn!(shard = id, error = %describe(&e), "GetShardIterator failed")
                            }
                        }
                    }
                }
                Err(e) => {
                    warn!(stream = %sm.stream_arn, error = %describe(&e), "DescribeStream failed")
                }
            }
        }
        if !enabled {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let mut handed = 0usize;
        let ids: Vec<String> = shards.keys().cloned().collect();
        for id in ids {
            let (Some(iterator), last) = shards[&id].clone() else {
                continue;
            };
            let out = match emu
                .streams
                .get_records()
                .shard_iterator(&iterator)
                .limit(sm.batch_size.clamp(1, 1000))
                .send()
                .await
            {
                Ok(o) => o,
                Err(e) => {
                    // An expired or trimmed iterator: start again after the last record handed over.
                    debug!(shard = id, error = %describe(&e), "GetRecords failed; renewing the iterator");
                    let req = emu
                        .streams
                        .get_shard_iterator()
                        .stream_arn(&sm.stream_arn)
                        .shard_id(&id);
                    let req = match &last {
                        Some(seq) => req
                            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                            .sequence_number(seq),
                        None => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
                    };
                    if let Ok(it) = req.send().await {
                        shards.insert(id.clone(), (it.shard_iterator, last));
                    }
                    continue;
                }
            };
            let records = out.records.unwrap_or_default();
            let next = out.next_shard_iterator;
            if records.is_empty() {
                shards.insert(id, (next, last));
                continue;
            }
            let last_seq = records
                .last()
                .and_then(|r| r.dynamodb.as_ref())
                .and_then(|d| d.sequence_number.clone())
                .or(last.clone());
            let events: Vec<Value> = records
                .iter()
                .map(|r| stream_record_json(r, &sm.stream_arn))
                .filter(|r| {
                    sm.filters.is_empty() || sm.filters.iter().any(|f| pattern_matches(f, r))
                })
                .collect();
            if !events.is_empty() {
                let n = events.len();
                let event = json!({ "Records": events });
                // Lambda retries a stream batch until it succeeds; here a few times, then it
                // is logged and passed (the outbox's sweep is the safety net).
                let mut ok = false;
                let started = std::time::Instant::now();
                let newest = records
                    .iter()
                    .filter_map(|r| {
                        r.dynamodb
                            .as_ref()?
                            .approximate_creation_date_time
                            .map(|t| t.to_millis().unwrap_or(0))
                    })
                    .max()
                    .unwrap_or(0);
                debug!(function = %sm.function.binary, records = n, behind_ms = crate::now_ms().saturating_sub(newest as u64), "stream records handed");
                for attempt in 0..5u64 {
                    count_invocation(&counters, &per_function, &sm.function.binary);
                    match invoke_json(&http, &url, timeout, &event).await {
                        Ok(_) => {
                            ok = true;
                            break;
                        }
                        Err(e) => {
                            counters.invocation_errors.fetch_add(1, Ordering::Relaxed);
                            warn!(function = %sm.function.binary, error = %e, attempt, "stream invocation failed; retrying the same records");
                            tokio::time::sleep(Duration::from_millis(500 * (attempt + 1))).await;
                        }
                    }
                }
                if ok {
                    counters
                        .stream_records
                        .fetch_add(n as u64, Ordering::Relaxed);
                }
                if std::env::var("PLUMBING_TRACE").is_ok() {
                    eprintln!("stream: {n} records, newest {} ms old when read, invocation took {} ms, ok {ok}",
                        crate::now_ms().saturating_sub(newest as u64).saturating_sub(started.elapsed().as_millis() as u64),
                        started.elapsed().as_millis());
                }
                handed += n;
            }
            shards.insert(id, (next, last_seq));
        }
        if handed == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn run_rate(
    http: reqwest::Client,
    rs: RateSchedule,
    every: Duration,
    url: String,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    per_function: Arc<HashMap<String, AtomicU64>>,
) {
    let timeout = Duration::from_secs(rs.function.timeout_s + 30);
    let mut next = tokio::time::Instant::now() + every;
    while !stop.load(Ordering::Relaxed) {
        if tokio::time::Instant::now() < next {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        next += every;
        let event = match rs.input.as_deref().map(serde_json::from_str::<Value>) {
            Some(Ok(input)) => input,
            _ => json!({
                "version": "0",
                "id": format!("{:032x}", rand::random::<u128>()),
                "detail-type": "Scheduled Event",
                "source": "aws.scheduler",
                "time": crate::now_ms(),
                "detail": {},
            }),
        };
        counters.rate_ticks.fetch_add(1, Ordering::Relaxed);
        count_invocation(&counters, &per_function, &rs.function.binary);
        if let Err(e) = invoke_json(&http, &url, timeout, &event).await {
            counters.invocation_errors.fetch_add(1, Ordering::Relaxed);
            warn!(function = %rs.function.binary, schedule = %rs.expression, error = %e, "scheduled invocation failed");
        }
        // A run longer than the period does not cause a burst of catch-up runs.
        next = next.max(tokio::time::Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_patterns_match_like_lambda_filters() {
        let insert = json!({"eventName": "INSERT", "dynamodb": {"Keys": {"id": {"S": "A-1"}}}});
        assert!(pattern_matches(&json!({"eventName": ["INSERT"]}), &insert));
        assert!(!pattern_matches(
            &json!({"eventName": ["MODIFY", "REMOVE"]}),
            &insert
        ));
        assert!(pattern_matches(
            &json!({"dynamodb": {"Keys": {"id": {"S": [{"prefix": "A-"}]}}}}),
            &insert
        ));
        assert!(!pattern_matches(
            &json!({"dynamodb": {"NewImage": {"x": [{"exists": true}]}}}),
            &insert
        ));
    }
}
