//! One local stack: the fake portal, a uniquely named copy of `infra/template.yaml` deployed
//! to LocalStack through its CloudFormation with the functions' real code (LocalStack runs
//! them), the Scheduler firing no emulator does, and an observer queue that receives every
//! event the functions put on the bus. Helpers read what tests and the demo need to count:
//! queue depths, mapping state, the gate, events, parked messages, the functions' own logs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use serde_json::Value;

use crate::aws::{describe, Emulator};
use crate::busproxy::BusProxy;
use crate::portal::Portal;
use crate::schedules::Scheduler;
use crate::stack::{deploy, Code, Stack};

pub struct Options {
    /// Prefix of the unique stack name.
    pub prefix: String,
    /// Template parameters on top of the local defaults.
    pub parameters: HashMap<String, String>,
    /// Run `rate(...)` schedules at this period instead (time compression). Default 2 s.
    pub rate_every: Option<Duration>,
    /// Function environment on top of the template's and the local stack's.
    pub env: Vec<(String, String)>,
    /// How the functions get their code. Default [`Code::Dir`].
    pub code: Code,
    /// Serve the fake portal and point the stack at it. Default true; `false` needs
    /// `TargetUrl`, `PortalUrl` and `PortalProbeUrl` in `parameters`.
    pub portal: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prefix: "sf".into(),
            parameters: HashMap::new(),
            rate_every: Some(Duration::from_secs(2)),
            env: vec![],
            code: Code::Dir,
            portal: true,
        }
    }
}

/// An event as the observer queue received it.
#[derive(Debug, Clone)]
pub struct Observed {
    pub detail_type: String,
    pub detail: Value,
    pub received_ms: u64,
}

pub struct Local {
    pub emu: Emulator,
    pub stack: Stack,
    pub portal: Portal,
    pub scheduler: Option<Scheduler>,
    pub observer_url: String,
    /// The fault-injecting proxy every function reaches EventBridge through.
    pub bus: BusProxy,
    events: Mutex<Vec<Observed>>,
    approvals: Mutex<Vec<Approval>>,
}

/// One inbox record as the table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxRow {
    pub version: u64,
    pub status: String,
    pub delivered_version: Option<u64>,
    pub attempts: u64,
}

/// An application event as the approval queue (the consumer) received it.
#[derive(Debug, Clone)]
pub struct Approval {
    pub event_id: String,
    pub application_id: String,
    /// When the outbox record was written (the event's `recordedAt`), ms.
    pub recorded_ms: u64,
    /// When the event reached the consumer queue (`SentTimestamp`), ms.
    pub arrived_ms: u64,
    pub detail: Value,
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

/// Where LocalStack's process executor appends each function's output.
pub fn lambda_log_dir() -> std::path::PathBuf {
    crate::workspace_root().join("target/steadfast/lambda-logs")
}

impl Local {
    pub async fn up(opts: Options) -> Result<Local> {
        let endpoint = Emulator::endpoint_from_env();
        let emu = Emulator::connect(&endpoint).await;
        if !emu.is_localstack().await {
            bail!(
                "the local stack runs on LocalStack (its Lambda runs the functions); {endpoint} is not LocalStack"
            );
        }
        let portal = Portal::start(0).await?;
        let name = unique(&opts.prefix);
        let mut params: BTreeMap<String, String> = BTreeMap::from([
            ("TargetName".into(), name.clone()),
            ("AllowInsecureHttp".into(), "true".into()),
            ("OrdersVisibilityTimeout".into(), "5".into()),
            ("BackoffBaseSeconds".into(), "1".into()),
            ("BackoffCapSeconds".into(), "8".into()),
            ("ApplicationsVisibilityTimeout".into(), "10".into()),
            ("OutboxLeaseSeconds".into(), "10".into()),
            ("OutboxRetryBaseSeconds".into(), "1".into()),
            ("OutboxRetryCapSeconds".into(), "4".into()),
            ("OutboxMaxAttempts".into(), "10".into()),
            ("ErpRecordsVisibilityTimeout".into(), "10".into()),
            ("InboxLeaseSeconds".into(), "10".into()),
        ]);
        if opts.portal {
            params.insert("TargetUrl".into(), portal.orders_url());
            params.insert("ProbeUrl".into(), portal.health_url());
            params.insert("PortalUrl".into(), portal.inbox_url());
            params.insert("PortalProbeUrl".into(), portal.health_url());
        }
        params.extend(opts.parameters);

        // Every function reaches EventBridge through the fault-injecting proxy.
        let bus_proxy = BusProxy::start(&endpoint).await?;
        let mut env: BTreeMap<String, String> = BTreeMap::from([
            ("AWS_ENDPOINT_URL_EVENTBRIDGE".into(), bus_proxy.url.clone()),
            (
                "RUST_LOG".into(),
                std::env::var("FUNCTION_LOG").unwrap_or_else(|_| "info".into()),
            ),
            ("TARGET_TIMEOUT_SECONDS".into(), "3".into()),
        ]);
        env.extend(opts.env);
        let stack = {
            let (name, params, code) = (name.clone(), params.clone(), opts.code);
            tokio::task::spawn_blocking(move || deploy(&name, &params, &env, code)).await??
        };
        tracing::info!(stack = %name, seconds = stack.seconds, "stack deployed");

        // Observer: every event on the stack's bus lands on a queue of its own.
        let bus = stack.reference("EventBus")?.to_owned();
        let (observer_url, observer_arn) = emu.create_queue(&format!("{name}-observer")).await?;
        emu.events
            .put_rule()
            .name(format!("{name}-observe"))
            .event_bus_name(&bus)
            .event_pattern(r#"{"source":[{"prefix":"steadfast"}]}"#)
            .send()
            .await
            .map_err(|e| anyhow!("PutRule: {}", describe(&e)))?;
        emu.events
            .put_targets()
            .rule(format!("{name}-observe"))
            .event_bus_name(&bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("observer")
                    .arn(&observer_arn)
                    .build()?,
            )
            .send()
            .await
            .map_err(|e| anyhow!("PutTargets: {}", describe(&e)))?;
        let scheduler = Scheduler::start(&emu, &stack, opts.rate_every);
        Ok(Local {
            emu,
            stack,
            portal,
            scheduler: Some(scheduler),
            observer_url,
            bus: bus_proxy,
            events: Mutex::new(vec![]),
            approvals: Mutex::new(vec![]),
        })
    }

    /// Stops the local parts and deletes the stack (LocalStack then stops its functions).
    pub async fn down(mut self) {
        if let Some(s) = self.scheduler.take() {
            s.stop().await;
        }
        self.portal.stop();
        self.bus.stop();
        let name = self.stack.name.clone();
        let _ = tokio::task::spawn_blocking(move || crate::stack::delete(&name)).await;
    }

    /// Invokes a function through LocalStack's Lambda Invoke API (RequestResponse), as
    /// `aws lambda invoke` does; its answer, or an error with the function's error payload.
    pub async fn invoke(&self, binary: &str, event: &Value) -> Result<Value> {
        let f = self.stack.function(binary)?;
        let out = self
            .emu
            .lambda
            .invoke()
            .function_name(&f.name)
            .payload(Blob::new(event.to_string()))
            .send()
            .await
            .map_err(|e| anyhow!("Invoke {}: {}", f.name, describe(&e)))?;
        let payload = out
            .payload
            .map(|p| String::from_utf8_lossy(p.as_ref()).into_owned())
            .unwrap_or_default();
        if let Some(kind) = out.function_error {
            bail!("{} answered {kind}: {payload}", f.name);
        }
        Ok(serde_json::from_str(&payload).unwrap_or(Value::String(payload)))
    }

    /// Turns a function's stream mapping on or off in the emulator, and waits until it says so.
    pub async fn set_stream_enabled(&self, binary: &str, enabled: bool) -> Result<()> {
        let m = self.stack.stream_of(binary)?;
        self.emu
            .lambda
            .update_event_source_mapping()
            .uuid(&m.uuid)
            .enabled(enabled)
            .send()
            .await
            .map_err(|e| anyhow!("UpdateEventSourceMapping: {}", describe(&e)))?;
        let want = if enabled { "Enabled" } else { "Disabled" };
        self.wait_for(
            &format!("stream mapping {want}"),
            Duration::from_secs(30),
            || async {
                let s = self
                    .emu
                    .lambda
                    .get_event_source_mapping()
                    .uuid(&m.uuid)
                    .send()
                    .await
                    .map_err(|e| anyhow!("GetEventSourceMapping: {}", describe(&e)))?;
                Ok(s.state.as_deref() == Some(want))
            },
        )
        .await?;
        Ok(())
    }

    /// The JSON lines a function of this stack wrote so far (its own log, as LocalStack's
    /// process executor kept it), e.g. to count what it reported per invocation.
    pub fn function_log(&self, binary: &str) -> Result<Vec<Value>> {
        let f = self.stack.function(binary)?;
        let path = lambda_log_dir().join(format!("{}.log", f.name));
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        Ok(text
            .lines()
            .filter(|l| l.starts_with('{'))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    /// How many times LocalStack invoked a function of this stack so far.
    pub fn invocations_of(&self, binary: &str) -> u64 {
        let Ok(f) = self.stack.function(binary) else {
            return 0;
        };
        let path = lambda_log_dir().join(format!("{}.log", f.name));
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("START RequestId"))
            .count() as u64
    }

    /// The sum of a numeric field over a function's log lines with this message.
    pub fn log_sum(&self, binary: &str, message: &str, field: &str) -> Result<u64> {
        Ok(self
            .function_log(binary)?
            .iter()
            .filter(|l| l["fields"]["message"] == message)
            .filter_map(|l| l["fields"][field].as_u64())
            .sum())
    }

    /// Schedules fired so far (one-time probes, and rate sweeps).
    pub fn schedules_fired(&self) -> (u64, u64) {
        self.scheduler.as_ref().map_or((0, 0), |s| {
            (
                s.counters
                    .schedules_fired
                    .load(std::sync::atomic::Ordering::Relaxed),
                s.counters
                    .rate_ticks
                    .load(std::sync::atomic::Ordering::Relaxed),
            )
        })
    }

    pub fn queue_url(&self, logical: &str) -> Result<String> {
        Ok(self.stack.reference(logical)?.to_owned())
    }

    /// Sends order bodies to the orders queue, ten per call.
    pub async fn send(&self, bodies: &[Value]) -> Result<()> {
        self.send_to("OrdersQueue", bodies).await
    }

    /// Sends message bodies to a queue of the stack, ten per call.
    pub async fn send_to(&self, logical: &str, bodies: &[Value]) -> Result<()> {
        let texts: Vec<String> = bodies.iter().map(Value::to_string).collect();
        self.send_text_to(logical, &texts).await
    }

    /// Sends message bodies, as they are, to a queue of the stack, ten per call.
    pub async fn send_text_to(&self, logical: &str, bodies: &[String]) -> Result<()> {
        let url = self.queue_url(logical)?;
        for chunk in bodies.chunks(10) {
            let entries: Vec<SendMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(b)
                        .build()
                })
                .collect::<Result<_, _>>()?;
            let out = self
                .emu
                .sqs
                .send_message_batch()
                .queue_url(&url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| anyhow!("SendMessageBatch: {}", describe(&e)))?;
            if !out.failed.is_empty() {
                bail!(
                    "{} messages were not accepted by {logical}",
                    out.failed.len()
                );
            }
        }
        Ok(())
    }

    /// (visible, in flight, delayed) messages of a queue.
    pub async fn depth(&self, logical: &str) -> Result<(u64, u64, u64)> {
        let a = self
            .emu
            .sqs
            .get_queue_attributes()
            .queue_url(self.queue_url(logical)?)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| anyhow!("GetQueueAttributes: {}", describe(&e)))?
            .attributes
            .unwrap_or_default();
        let n = |k: QueueAttributeName| a.get(&k).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok((
            n(QueueAttributeName::ApproximateNumberOfMessages),
            n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            n(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        ))
    }

    /// The state of a function's mapping as the emulator reports it (`Enabled`, `Disabled`, ...).
    pub async fn mapping_state(&self, binary: &str) -> Result<String> {
        let m = self.stack.mapping_of(binary)?;
        let out = self
            .emu
            .lambda
            .get_event_source_mapping()
            .uuid(&m.uuid)
            .send()
            .await
            .map_err(|e| anyhow!("GetEventSourceMapping: {}", describe(&e)))?;
        Ok(out.state.unwrap_or_default())
    }

    /// The name of the inbox portal's gate (`InboxTargetName`, default `<stack>-inbox`).
    pub fn inbox_target(&self) -> String {
        format!("{}-inbox", self.stack.name)
    }

    /// The gate of `target` as stored, whole; `None` if never written.
    pub async fn gate_of(&self, target: &str) -> Result<Option<steadfast_domain::Gate>> {
        let out = self
            .emu
            .dynamodb
            .get_item()
            .table_name(self.stack.reference("GateTable")?)
            .key("target", AttributeValue::S(target.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| anyhow!("GetItem gate: {}", describe(&e)))?;
        out.item
            .map(|i| serde_dynamo::from_item(i).map_err(|e| anyhow!("decode gate: {e}")))
            .transpose()
    }

    /// Writes a gate item as it is (to set up the state a crash would leave).
    pub async fn put_gate(&self, gate: &steadfast_domain::Gate) -> Result<()> {
        let item = serde_dynamo::to_item(gate).map_err(|e| anyhow!("encode gate: {e}"))?;
        self.emu
            .dynamodb
            .put_item()
            .table_name(self.stack.reference("GateTable")?)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| anyhow!("PutItem gate: {}", describe(&e)))?;
        Ok(())
    }

    /// Turns a function's SQS mapping on or off in the emulator, and waits until it says so.
    pub async fn set_mapping_enabled(&self, binary: &str, enabled: bool) -> Result<()> {
        let m = self.stack.mapping_of(binary)?;
        self.emu
            .lambda
            .update_event_source_mapping()
            .uuid(&m.uuid)
            .enabled(enabled)
            .send()
            .await
            .map_err(|e| anyhow!("UpdateEventSourceMapping: {}", describe(&e)))?;
        let want = if enabled { "Enabled" } else { "Disabled" };
        self.wait_for(
            &format!("mapping {want}"),
            Duration::from_secs(30),
            || async { Ok(self.mapping_state(binary).await? == want) },
        )
        .await?;
        Ok(())
    }

    /// A function's SQS mapping's MaximumConcurrency as the emulator reports it.
    pub async fn mapping_concurrency(&self, binary: &str) -> Result<Option<i32>> {
        let m = self.stack.mapping_of(binary)?;
        let out = self
            .emu
            .lambda
            .get_event_source_mapping()
            .uuid(&m.uuid)
            .send()
            .await
            .map_err(|e| anyhow!("GetEventSourceMapping: {}", describe(&e)))?;
        Ok(out.scaling_config.and_then(|c| c.maximum_concurrency))
    }

    /// The orders gate as stored: (state, epoch, attempt); `None` if never written.
    pub async fn gate(&self) -> Result<Option<(String, u64, u64)>> {
        self.gate_summary(&self.stack.name).await
    }

    /// A gate as stored: (state, epoch, attempt); `None` if never written.
    pub async fn gate_summary(&self, target: &str) -> Result<Option<(String, u64, u64)>> {
        let out = self
            .emu
            .dynamodb
            .get_item()
            .table_name(self.stack.reference("GateTable")?)
            .key("target", AttributeValue::S(target.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| anyhow!("GetItem gate: {}", describe(&e)))?;
        Ok(out.item.map(|i| {
            let s = |k: &str| match i.get(k) {
                Some(AttributeValue::S(s)) => s.clone(),
                Some(AttributeValue::N(n)) => n.clone(),
                _ => String::new(),
            };
            (
                s("state"),
                s("epoch").parse().unwrap_or(0),
                s("attempt").parse().unwrap_or(0),
            )
        }))
    }

    /// Drains the observer queue and returns every event seen so far, oldest first.
    pub async fn events(&self) -> Result<Vec<Observed>> {
        let now = crate::now_ms();
        for body in self.emu.drain(&self.observer_url, 0).await? {
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let detail = event_detail(&v);
            self.events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Observed {
                    detail_type: v
                        .get("detail-type")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    detail,
                    received_ms: now,
                });
        }
        Ok(self
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone())
    }

    pub async fn count_events(&self, detail_type: &str) -> Result<usize> {
        Ok(self
            .events()
            .await?
            .iter()
            .filter(|e| e.detail_type == detail_type)
            .count())
    }

    /// Drains the approval queue (the consumer subscribed to the bus through the template's
    /// rule) and returns every application event received so far, in arrival order.
    pub async fn approvals(&self) -> Result<Vec<Approval>> {
        let url = self.queue_url("ApprovalQueue")?;
        let got = self.emu.drain_timed(&url, 0).await?;
        let mut all = self.approvals.lock().unwrap_or_else(|e| e.into_inner());
        for (body, sent) in got {
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let detail = event_detail(&v);
            let text = |k: &str| detail[k].as_str().unwrap_or_default().to_owned();
            all.push(Approval {
                event_id: text("eventId"),
                application_id: text("applicationId"),
                recorded_ms: steadfast_domain::outbox::parse_iso_ms(&text("recordedAt"))
                    .unwrap_or(0),
                arrived_ms: sent,
                detail,
            });
        }
        all.sort_by_key(|a| a.arrived_ms);
        Ok(all.clone())
    }

    /// Outbox records per status (a consistent scan of the outbox table).
    pub async fn outbox_statuses(&self) -> Result<BTreeMap<String, u64>> {
        let table = self.stack.reference("OutboxTable")?.to_owned();
        let mut out = BTreeMap::new();
        let mut start = None;
        loop {
            let page = self
                .emu
                .dynamodb
                .scan()
                .table_name(&table)
                .consistent_read(true)
                .projection_expression("#s")
                .expression_attribute_names("#s", "status")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| anyhow!("Scan {table}: {}", describe(&e)))?;
            for item in page.items() {
                if let Some(AttributeValue::S(s)) = item.get("status") {
                    *out.entry(s.clone()).or_insert(0) += 1;
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// Every inbox record by id (a consistent scan of the inbox table).
    pub async fn inbox_rows(&self) -> Result<BTreeMap<String, InboxRow>> {
        let table = self.stack.reference("InboxTable")?.to_owned();
        let mut out = BTreeMap::new();
        let mut start = None;
        let num = |item: &HashMap<String, AttributeValue>, k: &str| match item.get(k) {
            Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
            _ => None,
        };
        loop {
            let page = self
                .emu
                .dynamodb
                .scan()
                .table_name(&table)
                .consistent_read(true)
                .projection_expression("id, version, #s, delivered_version, attempts")
                .expression_attribute_names("#s", "status")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| anyhow!("Scan {table}: {}", describe(&e)))?;
            for item in page.items() {
                let (Some(AttributeValue::S(id)), Some(AttributeValue::S(status))) =
                    (item.get("id"), item.get("status"))
                else {
                    continue;
                };
                out.insert(
                    id.clone(),
                    InboxRow {
                        version: num(item, "version").unwrap_or(0),
                        status: status.clone(),
                        delivered_version: num(item, "delivered_version"),
                        attempts: num(item, "attempts").unwrap_or(0),
                    },
                );
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// Reads (and removes) every message on the parking queue, each as
    /// `{"body", "reason", "source", "source_arn", "message_id", "identity", "parked_at_ms"}`:
    /// the original body and the attributes the functions put beside it.
    pub async fn take_parked(&self) -> Result<Vec<Value>> {
        let url = self.queue_url("ParkingQueue")?;
        let got = self.emu.drain_messages(&url, 1).await?;
        Ok(got
            .into_iter()
            .map(|m| {
                let mut v = serde_json::json!({ "body": m.body });
                for (k, a) in m.attributes {
                    v[k] = Value::String(a);
                }
                v
            })
            .collect())
    }

    /// Waits until a queue holds no message: none visible, in flight or delayed. Polls once a
    /// second: an emulator counts a queue's messages one by one for every such call.
    pub async fn wait_drained(&self, logical: &str, limit: Duration) -> Result<Duration> {
        self.wait_for_every(
            &format!("{logical} empty"),
            limit,
            Duration::from_secs(1),
            || async {
                let (v, f, d) = self.depth(logical).await?;
                Ok(v + f + d == 0)
            },
        )
        .await
    }

    /// Waits until `check` holds, polling every 200 ms; fails with `what` after `limit`.
    pub async fn wait_for<F, Fut>(&self, what: &str, limit: Duration, check: F) -> Result<Duration>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        self.wait_for_every(what, limit, Duration::from_millis(200), check)
            .await
    }

    /// Waits until `check` holds, polling every `every`; fails with `what` after `limit`.
    pub async fn wait_for_every<F, Fut>(
        &self,
        what: &str,
        limit: Duration,
        every: Duration,
        mut check: F,
    ) -> Result<Duration>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        let start = Instant::now();
        loop {
            if check().await? {
                return Ok(start.elapsed());
            }
            if start.elapsed() > limit {
                bail!(
                    "timed out after {limit:?} waiting for: {what}; function logs: {}/{}-*.log",
                    lambda_log_dir().display(),
                    self.stack.name
                );
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// An order body: `{"orderId": id, "sku": ..., "quantity": ..., "messageId": <noise>}`.
pub fn order(id: &str) -> Value {
    serde_json::json!({
        "orderId": id,
        "sku": format!("SKU-{}", id.len()),
        "quantity": 1 + (id.len() % 5),
        "messageId": format!("{:016x}", rand::random::<u64>()),
    })
}

/// The `detail` of an EventBridge event as a target queue received it (an object, or JSON text
/// of one, depending on the emulator).
fn event_detail(event: &Value) -> Value {
    match event.get("detail") {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
        Some(d) => d.clone(),
        None => Value::Null,
    }
}

/// A valid lender application with id `id` (see `shared/domain/src/application.rs`).
pub fn application(id: &str) -> Value {
    let n = id
        .bytes()
        .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
    serde_json::json!({
        "applicationId": id,
        "submittedAt": "2026-11-28T10:15:00+01:00",
        "applicant": {"firstName": "anna", "lastName": "VAN DER berg",
                      "dateOfBirth": "1985-03-14", "email": "Anna@Example.com"},
        "loan": {"amount": format!("{}.{:02}", 150_000 + n % 300_000, n % 100), "currency": "EUR",
                 "termMonths": 360, "purpose": "purchase"},
        "property": {"value": 500_000, "postcode": "1234 ab", "country": "nl"},
        "income": {"annual": "72000"},
        "lenderMeta": {"messageId": format!("{:016x}", rand::random::<u64>())}
    })
}
