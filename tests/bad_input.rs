//! The bad-input corpus (`tests/fixtures/bad-input/`) through every entry function of the
//! three pipelines on the deployed template in LocalStack: the processor (OrdersQueue), the
//! outbox-writer (ApplicationsQueue) and the inbox-receiver (ErpRecordsQueue).
//!
//! Each test deploys one stack and sends every case of its pipeline (the `any/` cases and its
//! own folder) interleaved with good messages in the same `SendMessageBatch` calls, so a bad
//! message that shares a batch with good ones is seen not to hold them back. Then it checks the
//! accounting against `cases.json` (the expectations live there, not here):
//! - every good message delivered exactly once;
//! - every case parked with a reason containing the expected text (matched by the marker
//!   `[bi:<file>]` in its body, or by the whole body where it cannot hold one), delivered
//!   exactly once under exactly the expected identity, or refused by SQS at send time with the
//!   expected error;
//! - sent = delivered + parked, nothing else delivered or parked;
//! - the pipeline's DLQ and source queue empty, no outbox or inbox record left behind
//!   (`InProgress` or never settled).
//!
//! On LocalStack an entry's `localstack` outcome, where it has one, replaces its own: LocalStack's
//! SQS event source mapping decodes and re-encodes every body Python's `json` module accepts
//! before the function sees it (see `fixtures/bad-input/README.md`), so there parked bodies are
//! not byte for byte the ones sent, and a duplicate key never reaches the function.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use steadfast_local::aws::describe;
use steadfast_local::local::{application, order, Local};
use steadfast_tests::{stack, SWEEPS};

/// SQS's largest `SendMessageBatch` (the sum of its bodies).
const BATCH_BYTES: usize = 1024 * 1024;
/// How long the pipeline may take, after the last send, to account for every message.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);
/// With the source queue empty and nothing changing for this long, nothing more will come.
const QUIET: Duration = Duration::from_secs(10);

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/bad-input")
}

/// What must become of a case on one entry function (`cases.json`).
#[derive(Debug, Clone)]
enum Expect {
    /// On the parking queue with a reason containing this.
    Parked(String),
    /// Delivered exactly once as `id`; the delivered record contains `record_contains`.
    Delivered {
        id: String,
        record_contains: Option<String>,
    },
    /// Refused by SQS at send time with an error containing this.
    Refused(String),
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Parked(r) => write!(f, "parked with a reason containing {r:?}"),
            Expect::Delivered {
                id,
                record_contains: None,
            } => write!(f, "delivered once as {:?}", short(id)),
            Expect::Delivered {
                id,
                record_contains: Some(t),
            } => write!(
                f,
                "delivered once as {:?}, its record containing {t:?}",
                short(id)
            ),
            Expect::Refused(r) => write!(f, "refused at send with an error containing {r:?}"),
        }
    }
}

#[derive(Debug, Clone)]
struct Case {
    file: String,
    body: String,
    /// Text only this case's body holds (`None`: the body is matched whole).
    marker: Option<String>,
    expect: Expect,
    /// Why the emulator's outcome replaced the entry's own, if it did.
    emulator_note: Option<String>,
}

impl Case {
    /// Whether a parked (or delivered) body is this case's.
    fn is(&self, body: &str) -> bool {
        match &self.marker {
            Some(m) => body.contains(m.as_str()),
            None => body == self.body,
        }
    }
}

/// The cases `cases.json` has for `pipeline`, with their bodies; with the `localstack`
/// outcomes where they have one when `localstack`.
fn cases_for(pipeline: &str, localstack: bool) -> Result<Vec<Case>> {
    let path = fixtures().join("cases.json");
    let all: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?,
    )
    .context("cases.json")?;
    let mut out = Vec::new();
    for c in &all {
        let file = c["file"]
            .as_str()
            .ok_or_else(|| anyhow!("a case without a file: {c}"))?;
        let Some(mut e) = c["entries"].get(pipeline) else {
            continue;
        };
        let mut emulator_note = None;
        if let (true, Some(instead)) = (localstack, e.get("localstack")) {
            emulator_note = Some(instead["why"].as_str().unwrap_or_default().to_owned());
            e = instead;
        }
        let text = |k: &str| {
            e[k].as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("{file}: the {pipeline} entry has no {k}"))
        };
        let expect = match e["outcome"].as_str() {
            Some("parked") => Expect::Parked(text("reason")?),
            Some("refused") => Expect::Refused(text("reason")?),
            Some("delivered") => Expect::Delivered {
                id: text("id")?,
                record_contains: e["record_contains"].as_str().map(str::to_owned),
            },
            other => bail!("{file}: unknown outcome {other:?} for {pipeline}"),
        };
        let bytes = std::fs::read(fixtures().join(file)).with_context(|| file.to_owned())?;
        let body = String::from_utf8(bytes).with_context(|| format!("{file} is not UTF-8"))?;
        let marker = c["marker"].as_str().map(str::to_owned);
        if let Some(m) = &marker {
            if !body.contains(m.as_str()) {
                bail!("{file}: its body does not hold its marker {m}");
            }
        }
        out.push(Case {
            file: file.to_owned(),
            body,
            marker,
            expect,
            emulator_note,
        });
    }
    for c in &out {
        let owners: Vec<&str> = out
            .iter()
            .filter(|o| c.is(&o.body))
            .map(|o| o.file.as_str())
            .collect();
        if owners.len() != 1 {
            bail!(
                "{}: its marker or body matches {owners:?}; a parked message must name one case",
                c.file
            );
        }
    }
    Ok(out)
}

/// One delivery the target took: under which identity, and the record (inbox only).
struct Delivery {
    id: String,
    record: Option<String>,
}

type Deliveries<'a> = Pin<Box<dyn Future<Output = Result<Vec<Delivery>>> + Send + 'a>>;

/// One pipeline's entry: its queues, its good messages, and what it delivered.
struct Pipeline {
    /// The key of its entries in `cases.json`.
    name: &'static str,
    queue: &'static str,
    dlq: &'static str,
    /// The `source` its parked messages carry.
    source: &'static str,
    /// Template parameters of its stack.
    params: &'static [(&'static str, &'static str)],
    /// The `i`-th good message: (its identity, its body).
    good: fn(usize) -> (String, String),
    /// Every delivery so far.
    delivered: for<'a> fn(&'a Local) -> Deliveries<'a>,
    /// The entry function, and the fields of its `batch done` log line that count messages
    /// done with as good (delivered, stored, ...).
    function: &'static str,
    done_fields: &'static [&'static str],
}

/// A count of one `batch done` log line: a field of its own, or a member of its `tally`.
fn tally_count(line: &Value, name: &str) -> u64 {
    let fields = &line["fields"];
    if let Some(n) = fields[name].as_u64() {
        return n;
    }
    let tally = fields["tally"].as_str().unwrap_or_default();
    tally
        .split(['{', ',', '}'])
        .filter_map(|part| part.trim().split_once(": "))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// `%XX` sequences decoded (the portal sees identities as header-safe keys).
fn percent_decode(key: &str) -> String {
    let b = key.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| key.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn orders_delivered(l: &Local) -> Deliveries<'_> {
    Box::pin(async move {
        Ok(l.portal
            .seen()
            .into_iter()
            .filter(|s| s.path == "/orders" && s.created)
            .map(|s| Delivery {
                id: percent_decode(s.key.as_deref().unwrap_or_default()),
                record: None,
            })
            .collect())
    })
}

fn applications_delivered(l: &Local) -> Deliveries<'_> {
    Box::pin(async move {
        Ok(l.approvals()
            .await?
            .into_iter()
            .map(|a| Delivery {
                id: a.application_id,
                record: None,
            })
            .collect())
    })
}

fn erp_delivered(l: &Local) -> Deliveries<'_> {
    Box::pin(async move {
        Ok(l.portal
            .record_deliveries()
            .into_iter()
            .map(|d| Delivery {
                id: d.id,
                record: Some(d.record),
            })
            .collect())
    })
}

const ORDERS: Pipeline = Pipeline {
    name: "orders",
    queue: "OrdersQueue",
    dlq: "OrdersDLQ",
    source: "orders",
    // The mapping gathers for 2 s, so a SendMessageBatch reaches the processor as one batch.
    params: &[("OrdersBatchingWindowSeconds", "2")],
    good: |i| {
        let id = format!("BI-GOOD-{i:03}");
        (format!("orders/{id}"), order(&id).to_string())
    },
    delivered: orders_delivered,
    function: "processor",
    done_fields: &["delivered"],
};

const APPLICATIONS: Pipeline = Pipeline {
    name: "applications",
    queue: "ApplicationsQueue",
    dlq: "ApplicationsDLQ",
    source: "applications",
    params: &[],
    good: |i| {
        let id = format!("APP-BI-GOOD-{i:03}");
        let body = application(&id).to_string();
        (id, body)
    },
    delivered: applications_delivered,
    function: "outbox-writer",
    done_fields: &["stored", "resubmissions"],
};

const ERP: Pipeline = Pipeline {
    name: "erp",
    queue: "ErpRecordsQueue",
    dlq: "ErpRecordsDLQ",
    source: "erp-records",
    params: &[],
    good: |i| {
        let key = format!("BI-GOOD-{i:03}");
        let body = json!({"entity": "customer", "customerNo": key, "name": "Good Customer",
                          "city": "Utrecht", "changedAt": "2026-11-28T09:00:00Z",
                          "messageId": format!("m-{i}"), "exportedAt": "2026-11-28T09:00:05Z",
                          "exportBatch": "B-GOOD"});
        (format!("customer/{key}"), body.to_string())
    },
    delivered: erp_delivered,
    function: "inbox-receiver",
    done_fields: &["new", "changed", "duplicates", "stale"],
};

/// A message on its way: a good one (with its identity and body) or a case.
#[derive(Clone)]
enum Sent {
    Good { id: String, body: String },
    Case(usize),
}

/// The identity of a good message, quoted as its body holds it.
fn quoted_key(id: &str) -> String {
    format!("\"{}\"", id.rsplit('/').next().unwrap_or(id))
}

/// `text` cut for a failure message.
fn short(text: &str) -> String {
    let t: String = text.chars().take(80).collect();
    if t.len() < text.len() {
        format!("{t}… ({} bytes)", text.len())
    } else {
        t
    }
}

/// What was seen of the pipeline at one moment.
#[derive(Default)]
struct Seen {
    parked: Vec<Value>,
    deliveries: Vec<Delivery>,
}

impl Seen {
    fn parked_as(&self, c: &Case) -> Vec<&Value> {
        self.parked
            .iter()
            .filter(|p| c.is(p["body"].as_str().unwrap_or_default()))
            .collect()
    }
    fn parked_good(&self, id: &str) -> Vec<&Value> {
        let key = quoted_key(id);
        self.parked
            .iter()
            .filter(|p| p["body"].as_str().unwrap_or_default().contains(&key))
            .collect()
    }
    fn delivered_as(&self, id: &str) -> Vec<&Delivery> {
        self.deliveries.iter().filter(|d| d.id == id).collect()
    }
}

/// Whether the pipeline has nothing left in flight: the outbox or inbox table holds no record
/// still to publish or deliver.
async fn idle(l: &Local, p: &Pipeline) -> Result<bool> {
    Ok(match p.name {
        "applications" => l
            .outbox_statuses()
            .await?
            .keys()
            .all(|s| s == "Processed" || s == "Failed"),
        "erp" => l
            .inbox_rows()
            .await?
            .values()
            .all(|r| r.status == "Processed" || r.status == "Failed"),
        _ => true,
    })
}

/// Sends every case of `p` with good messages between them, then waits until each sent
/// message is accounted for (or nothing moves any more), and returns every failure found.
async fn run(l: &Local, p: &Pipeline, cases: &[Case], localstack: bool) -> Result<Vec<String>> {
    let mut failures = Vec::new();
    // Interleave: good, case, good, case, ...; cases SQS must refuse are sent on their own.
    let mut queue: Vec<Sent> = Vec::new();
    let mut refusals = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        if matches!(c.expect, Expect::Refused(_)) {
            refusals.push(i);
            continue;
        }
        let (id, body) = (p.good)(i);
        queue.push(Sent::Good { id, body });
        queue.push(Sent::Case(i));
    }
    let body_of = |s: &Sent| -> String {
        match s {
            Sent::Good { body, .. } => body.clone(),
            Sent::Case(i) => cases[*i].body.clone(),
        }
    };
    // Batches of up to ten, within SQS's batch size.
    let mut batches: Vec<Vec<Sent>> = vec![vec![]];
    let mut size = 0;
    for s in queue {
        let n = body_of(&s).len();
        let last = batches.last_mut().expect("a batch");
        if !last.is_empty() && (last.len() == 10 || size + n > BATCH_BYTES) {
            batches.push(vec![]);
            size = 0;
        }
        batches.last_mut().expect("a batch").push(s);
        size += n;
    }
    let mut sent: Vec<Sent> = Vec::new();
    for batch in batches {
        let bodies: Vec<String> = batch.iter().map(body_of).collect();
        match l.send_text_to(p.queue, &bodies).await {
            Ok(()) => sent.extend(batch),
            Err(e) => {
                let files: Vec<&str> = batch
                    .iter()
                    .filter_map(|s| match s {
                        Sent::Case(i) => Some(cases[*i].file.as_str()),
                        Sent::Good { .. } => None,
                    })
                    .collect();
                failures.push(format!(
                    "a batch with {files:?} was not (wholly) accepted by {}: {e:#}",
                    p.queue
                ));
            }
        }
    }
    // The cases SQS must refuse, one SendMessage each.
    let url = l.queue_url(p.queue)?;
    let mut refused: HashMap<usize, String> = HashMap::new();
    for i in refusals {
        let c = &cases[i];
        let answer = l
            .emu
            .sqs
            .send_message()
            .queue_url(&url)
            .message_body(&c.body)
            .send()
            .await;
        match answer {
            Err(e) => {
                refused.insert(i, describe(&e));
            }
            Ok(_) => {
                failures.push(format!(
                    "{}: expected to be refused by SQS, but {} accepted it",
                    c.file, p.queue
                ));
                sent.push(Sent::Case(i));
            }
        }
    }

    // Wait until every sent message is accounted for, or nothing moves any more.
    let good: Vec<String> = sent
        .iter()
        .filter_map(|s| match s {
            Sent::Good { id, .. } => Some(id.clone()),
            Sent::Case(_) => None,
        })
        .collect();
    let sent_cases: Vec<usize> = sent
        .iter()
        .filter_map(|s| match s {
            Sent::Case(i) => Some(*i),
            Sent::Good { .. } => None,
        })
        .collect();
    let accounted = |seen: &Seen| -> bool {
        good.iter().all(|id| !seen.delivered_as(id).is_empty())
            && sent_cases.iter().all(|&i| match &cases[i].expect {
                Expect::Delivered { id, .. } => !seen.delivered_as(id).is_empty(),
                _ => !seen.parked_as(&cases[i]).is_empty(),
            })
    };
    let mut seen = Seen::default();
    let start = Instant::now();
    let mut last_change = Instant::now();
    let mut last_counts = (usize::MAX, usize::MAX);
    loop {
        seen.parked.extend(l.take_parked().await?);
        seen.deliveries = (p.delivered)(l).await?;
        let counts = (seen.parked.len(), seen.deliveries.len());
        if counts != last_counts {
            last_counts = counts;
            last_change = Instant::now();
        }
        let (v, f, d) = l.depth(p.queue).await?;
        let drained = v + f + d == 0;
        if drained && accounted(&seen) && idle(l, p).await? {
            // Anything still on its way would show up as a duplicate now.
            tokio::time::sleep(Duration::from_secs(3)).await;
            seen.parked.extend(l.take_parked().await?);
            seen.deliveries = (p.delivered)(l).await?;
            break;
        }
        if drained && last_change.elapsed() > QUIET && idle(l, p).await? {
            break;
        }
        if start.elapsed() > SETTLE_LIMIT {
            failures.push(format!(
                "not settled within {SETTLE_LIMIT:?}: {} still on {} (visible, in flight, delayed)",
                v + f + d,
                p.queue
            ));
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let settled = start.elapsed();

    // Each case where cases.json says.
    let mut report = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let parked = seen.parked_as(c);
        let reasons: Vec<&str> = parked
            .iter()
            .map(|p| p["reason"].as_str().unwrap_or(""))
            .collect();
        let observed = match (&c.expect, refused.get(&i)) {
            (_, Some(err)) => format!("refused: {}", short(err)),
            _ if !parked.is_empty() => format!("parked: {reasons:?}"),
            (Expect::Delivered { id, .. }, _) if !seen.delivered_as(id).is_empty() => {
                format!("delivered as {:?}", short(id))
            }
            _ => "neither parked nor delivered as expected".to_owned(),
        };
        let note = match &c.emulator_note {
            Some(_) => " (the emulator's outcome)",
            None => "",
        };
        report.push(format!("{:<52} {observed}{note}", c.file));
        let fail = |why: String| match &c.emulator_note {
            Some(n) => format!(
                "{}: expected {} on this emulator ({n}); {why}",
                c.file, c.expect
            ),
            None => format!("{}: expected {}; {why}", c.file, c.expect),
        };
        match &c.expect {
            Expect::Refused(want) => match refused.get(&i) {
                Some(err) if err.contains(want.as_str()) => {}
                Some(err) => failures.push(fail(format!("refused with {err:?}"))),
                None => {} // accepted: reported at send
            },
            Expect::Parked(want) => {
                if parked.is_empty() {
                    failures.push(fail(
                        "it was not parked (delivered under some identity, dropped, or still queued)"
                            .into(),
                    ));
                } else if parked.len() > 1 {
                    failures.push(fail(format!("parked {} times: {reasons:?}", parked.len())));
                } else if !reasons[0].contains(want.as_str()) {
                    failures.push(fail(format!("parked with reason {:?}", reasons[0])));
                }
                for m in &parked {
                    // Only LocalStack's event source mapping re-encodes bodies (see above).
                    if !localstack && m["body"].as_str() != Some(c.body.as_str()) {
                        failures.push(fail(format!(
                            "parked with another body: {:?}",
                            short(m["body"].as_str().unwrap_or_default())
                        )));
                    }
                    if m["source"] != p.source {
                        failures.push(fail(format!(
                            "parked with source {}, not {:?}",
                            m["source"], p.source
                        )));
                    }
                }
            }
            Expect::Delivered {
                id,
                record_contains,
            } => {
                let got = seen.delivered_as(id);
                if !parked.is_empty() {
                    failures.push(fail(format!("parked instead: {reasons:?}")));
                } else if got.is_empty() {
                    failures.push(fail(
                        "no delivery under that identity (delivered under another, dropped, or still queued)"
                            .into(),
                    ));
                } else if got.len() > 1 {
                    failures.push(fail(format!("delivered {} times", got.len())));
                }
                if let (Some(text), Some(d)) = (record_contains, got.first()) {
                    let record = d.record.as_deref().unwrap_or("");
                    if !record.contains(text.as_str()) {
                        failures.push(fail(format!("the delivered record is {}", short(record))));
                    }
                }
            }
        }
    }
    // Every good message delivered exactly once, none parked.
    for id in &good {
        let n = seen.delivered_as(id).len();
        if n != 1 {
            failures.push(format!("good message {id:?} delivered {n} times, not once"));
        }
        for m in seen.parked_good(id) {
            failures.push(format!("good message {id:?} was parked: {}", m["reason"]));
        }
    }
    // Nothing delivered or parked that nobody sent that way.
    let mut expected_ids: HashSet<&str> = good.iter().map(String::as_str).collect();
    for &i in &sent_cases {
        if let Expect::Delivered { id, .. } = &cases[i].expect {
            expected_ids.insert(id.as_str());
        }
    }
    for d in &seen.deliveries {
        if !expected_ids.contains(d.id.as_str()) {
            failures.push(format!(
                "unexpected delivery under {:?} (a case delivered under an identity it was not sent with?)",
                short(&d.id)
            ));
        }
    }
    let good_keys: Vec<String> = good.iter().map(|id| quoted_key(id)).collect();
    for m in &seen.parked {
        let body = m["body"].as_str().unwrap_or("");
        let known = cases.iter().any(|c| c.is(body)) || good_keys.iter().any(|k| body.contains(k));
        if !known {
            failures.push(format!(
                "unexpected parked message, reason {:?}, body {:?}",
                m["reason"],
                short(body)
            ));
        }
    }
    // The accounting: sent = delivered + parked.
    let (n_sent, n_delivered, n_parked) = (sent.len(), seen.deliveries.len(), seen.parked.len());
    if n_sent != n_delivered + n_parked {
        failures.push(format!(
            "sent {n_sent} != delivered {n_delivered} + parked {n_parked}: {} unaccounted",
            n_sent as i64 - (n_delivered + n_parked) as i64
        ));
    }
    // Bad and good messages met in the function's batches, and no batch handed anything back.
    let batches: Vec<(u64, u64, u64)> = l
        .function_log(p.function)?
        .iter()
        .filter(|line| line["fields"]["message"] == "batch done")
        .map(|line| {
            let done = p.done_fields.iter().map(|f| tally_count(line, f)).sum();
            (
                done,
                tally_count(line, "parked"),
                tally_count(line, "handed_back"),
            )
        })
        .collect();
    let mixed = batches
        .iter()
        .filter(|(done, parked, _)| *done > 0 && *parked > 0)
        .count();
    if mixed == 0 {
        failures.push(format!(
            "no {} batch held both a good and a parked message ({} batches): the interleaving was not exercised",
            p.function,
            batches.len()
        ));
    }
    let handed_back: u64 = batches.iter().map(|b| b.2).sum();
    if handed_back > 0 {
        failures.push(format!(
            "{} handed {handed_back} messages back to {}: a bad message held back its batch?",
            p.function, p.queue
        ));
    }
    // Nothing dead-lettered, nothing left on the queue, nothing left behind in the tables.
    let dlq = l.depth(p.dlq).await?;
    if dlq != (0, 0, 0) {
        failures.push(format!(
            "{} holds messages (visible, in flight, delayed): {dlq:?}",
            p.dlq
        ));
    }
    let left = l.depth(p.queue).await?;
    if left != (0, 0, 0) {
        failures.push(format!(
            "{} still holds messages (visible, in flight, delayed): {left:?}",
            p.queue
        ));
    }
    let want_stored = expected_ids.len() as u64;
    match p.name {
        "applications" => {
            let statuses = l.outbox_statuses().await?;
            if statuses.contains_key("InProgress") || statuses.contains_key("ToBeProcessed") {
                failures.push(format!("outbox records left unpublished: {statuses:?}"));
            }
            if statuses.values().sum::<u64>() != want_stored {
                failures.push(format!(
                    "{want_stored} outbox records expected (one per delivered application), found {statuses:?}"
                ));
            }
        }
        "erp" => {
            let rows = l.inbox_rows().await?;
            let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
            for r in rows.values() {
                *by_status.entry(r.status.as_str()).or_insert(0) += 1;
            }
            if by_status.keys().any(|s| *s != "Processed") {
                failures.push(format!("inbox records not Processed: {by_status:?}"));
            }
            if rows.len() as u64 != want_stored {
                failures.push(format!(
                    "{want_stored} inbox records expected (one per delivered record), found {}",
                    rows.len()
                ));
            }
        }
        _ => {}
    }
    println!(
        "{}: {} cases, sent {n_sent} ({} good), refused {}, delivered {n_delivered}, parked {n_parked}, settled in {:?}; {} batches, {mixed} of them with good and parked messages\n{}",
        p.name,
        cases.len(),
        good.len(),
        refused.len(),
        settled,
        batches.len(),
        report.join("\n")
    );
    Ok(failures)
}

/// Deploys a stack for `p`, runs its cases and fails with every failure found.
async fn check(p: &Pipeline) -> Result<()> {
    let l = stack("bi", p.params, &[], SWEEPS).await?;
    let localstack = l.emu.is_localstack().await;
    let result = match cases_for(p.name, localstack) {
        Ok(cases) => run(&l, p, &cases, localstack)
            .await
            .map(|failures| (cases.len(), failures)),
        Err(e) => Err(e),
    };
    l.down().await;
    let (cases, failures) = result?;
    assert!(
        failures.is_empty(),
        "{} failures for the {} {} cases:\n{}",
        failures.len(),
        cases,
        p.name,
        failures.join("\n")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_bad_order_is_parked_refused_or_delivered_intact_and_holds_back_no_good_one(
) -> Result<()> {
    check(&ORDERS).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_bad_application_is_parked_refused_or_stored_and_holds_back_no_good_one() -> Result<()>
{
    check(&APPLICATIONS).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_bad_erp_record_is_parked_refused_or_delivered_intact_and_holds_back_no_good_one(
) -> Result<()> {
    check(&ERP).await
}
