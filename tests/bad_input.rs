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
//! - at least one of the entry function's batches held both a good and a parked message, and
//!   none handed a message back;
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
/// SQS's most messages in one `SendMessageBatch`.
const BATCH_MESSAGES: usize = 10;
/// How long the pipeline may take, after the last send, to account for every message.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);
/// With the source queue empty and nothing changing for this long, nothing more will come.
const QUIET: Duration = Duration::from_secs(10);
/// How long to wait, once all is accounted for, for a duplicate still on its way.
const AFTERCARE: Duration = Duration::from_secs(3);

/// The bad-input corpus folder.
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
                record_contains,
            } => {
                write!(f, "delivered once as {:?}", short(id))?;
                match record_contains {
                    Some(t) => write!(f, ", its record containing {t:?}"),
                    None => Ok(()),
                }
            }
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
    /// The identity it must be delivered under, if it must be delivered.
    fn delivered_id(&self) -> Option<&str> {
        match &self.expect {
            Expect::Delivered { id, .. } => Some(id),
            _ => None,
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
        if let Some(case) = case_for(c, pipeline, localstack)? {
            out.push(case);
        }
    }
    each_names_one(&out)?;
    Ok(out)
}

/// One entry of `cases.json` as a case of `pipeline` (`None`: it has no entry for it).
fn case_for(c: &Value, pipeline: &str, localstack: bool) -> Result<Option<Case>> {
    let file = c["file"]
        .as_str()
        .ok_or_else(|| anyhow!("a case without a file: {c}"))?;
    let Some(mut e) = c["entries"].get(pipeline) else {
        return Ok(None);
    };
    let mut emulator_note = None;
    if let (true, Some(instead)) = (localstack, e.get("localstack")) {
        emulator_note = Some(instead["why"].as_str().unwrap_or_default().to_owned());
        e = instead;
    }
    let expect = expect_of(e, file, pipeline)?;
    let marker = c["marker"].as_str().map(str::to_owned);
    let body = read_body(file, marker.as_deref())?;
    Ok(Some(Case {
        file: file.to_owned(),
        body,
        marker,
        expect,
        emulator_note,
    }))
}

/// The outcome the entry `e` of `file` expects on `pipeline`.
fn expect_of(e: &Value, file: &str, pipeline: &str) -> Result<Expect> {
    let text = |k: &str| {
        e[k].as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("{file}: the {pipeline} entry has no {k}"))
    };
    Ok(match e["outcome"].as_str() {
        Some("parked") => Expect::Parked(text("reason")?),
        Some("refused") => Expect::Refused(text("reason")?),
        Some("delivered") => Expect::Delivered {
            id: text("id")?,
            record_contains: e["record_contains"].as_str().map(str::to_owned),
        },
        other => bail!("{file}: unknown outcome {other:?} for {pipeline}"),
    })
}

/// The body in `file`, checked to hold its `marker`.
fn read_body(file: &str, marker: Option<&str>) -> Result<String> {
    let bytes = std::fs::read(fixtures().join(file)).with_context(|| file.to_owned())?;
    let body = String::from_utf8(bytes).with_context(|| format!("{file} is not UTF-8"))?;
    if let Some(m) = marker {
        if !body.contains(m) {
            bail!("{file}: its body does not hold its marker {m}");
        }
    }
    Ok(body)
}

/// Fails unless each case's marker (or body) matches its own body and no other case's.
fn each_names_one(cases: &[Case]) -> Result<()> {
    for c in cases {
        let owners: Vec<&str> = cases
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
    Ok(())
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
    /// The table whose records it leaves behind.
    table: Table,
}

/// The table a pipeline keeps its records in, if any.
#[derive(Clone, Copy)]
enum Table {
    None,
    Outbox,
    Inbox,
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

/// The orders the portal created.
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

/// The application events the outbox published to the bus.
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

/// The records the portal was handed.
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
    table: Table::None,
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
    table: Table::Outbox,
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
    table: Table::Inbox,
};

/// A message on its way: a good one (with its identity and body) or a case.
#[derive(Clone)]
enum Sent {
    Good { id: String, body: String },
    Case(usize),
}

impl Sent {
    /// The body it carries.
    fn body<'s>(&'s self, cases: &'s [Case]) -> &'s str {
        match self {
            Sent::Good { body, .. } => body,
            Sent::Case(i) => &cases[*i].body,
        }
    }
    /// The identity of a good message.
    fn good_id(&self) -> Option<&str> {
        match self {
            Sent::Good { id, .. } => Some(id),
            Sent::Case(_) => None,
        }
    }
    /// The case it is, if it is one.
    fn case(&self) -> Option<usize> {
        match self {
            Sent::Case(i) => Some(*i),
            Sent::Good { .. } => None,
        }
    }
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

/// The reasons parked messages carry.
fn reasons<'v>(parked: &[&'v Value]) -> Vec<&'v str> {
    parked
        .iter()
        .map(|p| p["reason"].as_str().unwrap_or(""))
        .collect()
}

/// What was sent: every message SQS took, and the cases it refused (with its error).
#[derive(Default)]
struct Sending {
    sent: Vec<Sent>,
    refused: HashMap<usize, String>,
}

impl Sending {
    /// The identities of the good messages sent.
    fn good(&self) -> Vec<&str> {
        self.sent.iter().filter_map(Sent::good_id).collect()
    }
    /// The identities something sent must be delivered under: the good ones and the cases'.
    fn expected_ids<'s>(&'s self, cases: &'s [Case]) -> HashSet<&'s str> {
        let sent_cases = self.sent.iter().filter_map(Sent::case);
        let cases_ids = sent_cases.filter_map(|i| cases[i].delivered_id());
        self.good().into_iter().chain(cases_ids).collect()
    }
    /// Whether every message sent has been delivered or parked as expected.
    fn accounted(&self, seen: &Seen, cases: &[Case]) -> bool {
        self.sent.iter().all(|s| match s {
            Sent::Good { id, .. } => !seen.delivered_as(id).is_empty(),
            Sent::Case(i) => match cases[*i].delivered_id() {
                Some(id) => !seen.delivered_as(id).is_empty(),
                None => !seen.parked_as(&cases[*i]).is_empty(),
            },
        })
    }
}

/// What was seen of the pipeline at one moment.
#[derive(Default)]
struct Seen {
    parked: Vec<Value>,
    deliveries: Vec<Delivery>,
}

impl Seen {
    /// The parked messages that are case `c`.
    fn parked_as(&self, c: &Case) -> Vec<&Value> {
        self.parked
            .iter()
            .filter(|p| c.is(p["body"].as_str().unwrap_or_default()))
            .collect()
    }
    /// The parked messages that are the good message `id`.
    fn parked_good(&self, id: &str) -> Vec<&Value> {
        let key = quoted_key(id);
        self.parked
            .iter()
            .filter(|p| p["body"].as_str().unwrap_or_default().contains(&key))
            .collect()
    }
    /// The deliveries under identity `id`.
    fn delivered_as(&self, id: &str) -> Vec<&Delivery> {
        self.deliveries.iter().filter(|d| d.id == id).collect()
    }
}

/// The counts of one `batch done` log line of the entry function.
struct BatchTally {
    /// Messages done with as good (delivered, stored, ...).
    done: u64,
    parked: u64,
    handed_back: u64,
}

/// The batches in which good and parked messages met.
fn mixed(batches: &[BatchTally]) -> usize {
    batches
        .iter()
        .filter(|b| b.done > 0 && b.parked > 0)
        .count()
}

/// The messages to batch (a good one before each case), and the cases SQS must refuse.
fn interleave(p: &Pipeline, cases: &[Case]) -> (Vec<Sent>, Vec<usize>) {
    let mut queue = Vec::new();
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
    (queue, refusals)
}

/// `queue` in batches of up to ten, within SQS's batch size.
fn batches(queue: Vec<Sent>, cases: &[Case]) -> Vec<Vec<Sent>> {
    let mut batches: Vec<Vec<Sent>> = vec![vec![]];
    let mut size = 0;
    for s in queue {
        let n = s.body(cases).len();
        let last = batches.last_mut().expect("a batch");
        if !last.is_empty() && (last.len() == BATCH_MESSAGES || size + n > BATCH_BYTES) {
            batches.push(vec![]);
            size = 0;
        }
        batches.last_mut().expect("a batch").push(s);
        size += n;
    }
    batches
}

/// One line of the report: a case and what became of it.
fn report_line(c: &Case, parked: &[&Value], seen: &Seen, refused: Option<&String>) -> String {
    let delivered = c
        .delivered_id()
        .filter(|id| !seen.delivered_as(id).is_empty());
    let observed = match (refused, delivered) {
        (Some(err), _) => format!("refused: {}", short(err)),
        _ if !parked.is_empty() => format!("parked: {:?}", reasons(parked)),
        (None, Some(id)) => format!("delivered as {:?}", short(id)),
        (None, None) => "neither parked nor delivered as expected".to_owned(),
    };
    let note = match &c.emulator_note {
        Some(_) => " (the emulator's outcome)",
        None => "",
    };
    format!("{:<52} {observed}{note}", c.file)
}

/// One pipeline's run on a deployed stack: its cases, and every failure found so far.
struct Run<'a> {
    l: &'a Local,
    p: &'a Pipeline,
    cases: &'a [Case],
    localstack: bool,
    failures: Vec<String>,
}

/// Sends every case of `p` among good messages, waits until each is accounted for (or nothing
/// moves any more), checks what became of them, and returns every failure found.
async fn run(l: &Local, p: &Pipeline, cases: &[Case], localstack: bool) -> Result<Vec<String>> {
    let mut r = Run {
        l,
        p,
        cases,
        localstack,
        failures: Vec::new(),
    };
    let (queue, refusals) = interleave(p, cases);
    let mut sending = r.send_batches(batches(queue, cases)).await;
    r.send_refusals(&refusals, &mut sending).await?;
    let (seen, settled) = r.settle(&sending).await?;
    let report = r.check_cases(&seen, &sending.refused);
    r.check_good(&sending, &seen);
    let expected_ids = sending.expected_ids(cases);
    r.check_unexpected(&sending, &expected_ids, &seen);
    r.check_totals(&sending, &seen);
    let batches = r.check_batches()?;
    r.check_queues().await?;
    r.check_table(expected_ids.len() as u64).await?;
    r.print_summary(&sending, &seen, settled, &batches, &report);
    Ok(r.failures)
}

impl Run<'_> {
    /// Records a failure of case `c`: what it should have become, and `why` it did not.
    fn fail_case(&mut self, c: &Case, why: &str) {
        self.failures.push(match &c.emulator_note {
            Some(n) => format!(
                "{}: expected {} on this emulator ({n}); {why}",
                c.file, c.expect
            ),
            None => format!("{}: expected {}; {why}", c.file, c.expect),
        });
    }

    /// Sends the batches; a batch SQS does not wholly take is a failure, and not sent.
    async fn send_batches(&mut self, batches: Vec<Vec<Sent>>) -> Sending {
        let mut sending = Sending::default();
        for batch in batches {
            let bodies: Vec<String> = batch
                .iter()
                .map(|s| s.body(self.cases).to_owned())
                .collect();
            match self.l.send_text_to(self.p.queue, &bodies).await {
                Ok(()) => sending.sent.extend(batch),
                Err(e) => {
                    let files: Vec<&str> = batch
                        .iter()
                        .filter_map(Sent::case)
                        .map(|i| self.cases[i].file.as_str())
                        .collect();
                    let failure = format!(
                        "a batch with {files:?} was not (wholly) accepted by {}: {e:#}",
                        self.p.queue
                    );
                    self.failures.push(failure);
                }
            }
        }
        sending
    }

    /// Sends each case SQS must refuse on its own, recording its error (or failing if taken).
    async fn send_refusals(&mut self, refusals: &[usize], sending: &mut Sending) -> Result<()> {
        let url = self.l.queue_url(self.p.queue)?;
        for &i in refusals {
            let c = &self.cases[i];
            let send = self.l.emu.sqs.send_message().queue_url(&url);
            match send.message_body(&c.body).send().await {
                Err(e) => {
                    sending.refused.insert(i, describe(&e));
                }
                Ok(_) => {
                    self.failures.push(format!(
                        "{}: expected to be refused by SQS, but {} accepted it",
                        c.file, self.p.queue
                    ));
                    sending.sent.push(Sent::Case(i));
                }
            }
        }
        Ok(())
    }

    /// Waits until all sent is accounted for, or nothing moves; returns what was seen, and when.
    async fn settle(&mut self, sending: &Sending) -> Result<(Seen, Duration)> {
        let mut seen = Seen::default();
        let start = Instant::now();
        let mut last_change = Instant::now();
        let mut last_counts = (usize::MAX, usize::MAX);
        loop {
            self.look(&mut seen).await?;
            let counts = (seen.parked.len(), seen.deliveries.len());
            if counts != last_counts {
                last_counts = counts;
                last_change = Instant::now();
            }
            let (v, f, d) = self.l.depth(self.p.queue).await?;
            let drained = v + f + d == 0;
            if drained && sending.accounted(&seen, self.cases) && self.idle().await? {
                // Anything still on its way would show up as a duplicate now.
                tokio::time::sleep(AFTERCARE).await;
                self.look(&mut seen).await?;
                break;
            }
            if drained && last_change.elapsed() > QUIET && self.idle().await? {
                break;
            }
            if start.elapsed() > SETTLE_LIMIT {
                self.failures.push(format!(
                    "not settled within {SETTLE_LIMIT:?}: {} still on {} (visible, in flight, delayed)",
                    v + f + d,
                    self.p.queue
                ));
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok((seen, start.elapsed()))
    }

    /// Adds what was parked since the last look to `seen`, and every delivery so far.
    async fn look(&self, seen: &mut Seen) -> Result<()> {
        seen.parked.extend(self.l.take_parked().await?);
        seen.deliveries = (self.p.delivered)(self.l).await?;
        Ok(())
    }

    /// Whether no record of the pipeline's outbox or inbox is still to publish or deliver.
    async fn idle(&self) -> Result<bool> {
        let (l, settled) = (self.l, |s: &str| s == "Processed" || s == "Failed");
        Ok(match self.p.table {
            Table::Outbox => l.outbox_statuses().await?.keys().all(|s| settled(s)),
            Table::Inbox => l.inbox_rows().await?.values().all(|r| settled(&r.status)),
            Table::None => true,
        })
    }

    /// Checks each case where `cases.json` says; returns a report line per case.
    fn check_cases(&mut self, seen: &Seen, refused: &HashMap<usize, String>) -> Vec<String> {
        let mut report = Vec::new();
        for (i, c) in self.cases.iter().enumerate() {
            let parked = seen.parked_as(c);
            report.push(report_line(c, &parked, seen, refused.get(&i)));
            match &c.expect {
                Expect::Refused(want) => self.check_refused(c, want, refused.get(&i)),
                Expect::Parked(want) => self.check_parked(c, want, &parked),
                Expect::Delivered {
                    id,
                    record_contains,
                } => self.check_delivered(c, id, record_contains.as_deref(), &parked, seen),
            }
        }
        report
    }

    /// A case SQS must refuse: refused with the expected error (one accepted fails at send).
    fn check_refused(&mut self, c: &Case, want: &str, refused: Option<&String>) {
        match refused {
            Some(err) if err.contains(want) => {}
            Some(err) => self.fail_case(c, &format!("refused with {err:?}")),
            None => {} // accepted: reported at send
        }
    }

    /// A case to park: parked once, with the expected reason, its own body and the source.
    fn check_parked(&mut self, c: &Case, want: &str, parked: &[&Value]) {
        let reasons = reasons(parked);
        if parked.is_empty() {
            let why = "it was not parked (delivered under some identity, dropped, or still queued)";
            self.fail_case(c, why);
        } else if parked.len() > 1 {
            self.fail_case(c, &format!("parked {} times: {reasons:?}", parked.len()));
        } else if !reasons[0].contains(want) {
            self.fail_case(c, &format!("parked with reason {:?}", reasons[0]));
        }
        for m in parked {
            // Only LocalStack's event source mapping re-encodes bodies (see the module doc).
            if !self.localstack && m["body"].as_str() != Some(c.body.as_str()) {
                let body = short(m["body"].as_str().unwrap_or_default());
                self.fail_case(c, &format!("parked with another body: {body:?}"));
            }
            if m["source"] != self.p.source {
                let (got, want) = (&m["source"], self.p.source);
                self.fail_case(c, &format!("parked with source {got}, not {want:?}"));
            }
        }
    }

    /// A case to deliver: delivered once under `id`, its record holding `record_contains`.
    fn check_delivered(
        &mut self,
        c: &Case,
        id: &str,
        record_contains: Option<&str>,
        parked: &[&Value],
        seen: &Seen,
    ) {
        let got = seen.delivered_as(id);
        if !parked.is_empty() {
            self.fail_case(c, &format!("parked instead: {:?}", reasons(parked)));
        } else if got.is_empty() {
            self.fail_case(c, "no delivery under that identity (delivered under another, dropped, or still queued)");
        } else if got.len() > 1 {
            self.fail_case(c, &format!("delivered {} times", got.len()));
        }
        if let (Some(text), Some(d)) = (record_contains, got.first()) {
            let record = d.record.as_deref().unwrap_or("");
            if !record.contains(text) {
                self.fail_case(c, &format!("the delivered record is {}", short(record)));
            }
        }
    }

    /// Every good message delivered exactly once, none parked.
    fn check_good(&mut self, sending: &Sending, seen: &Seen) {
        for id in sending.good() {
            let n = seen.delivered_as(id).len();
            if n != 1 {
                self.failures
                    .push(format!("good message {id:?} delivered {n} times, not once"));
            }
            for m in seen.parked_good(id) {
                self.failures
                    .push(format!("good message {id:?} was parked: {}", m["reason"]));
            }
        }
    }

    /// Nothing delivered or parked that nobody sent that way.
    fn check_unexpected(&mut self, sending: &Sending, expected_ids: &HashSet<&str>, seen: &Seen) {
        for d in &seen.deliveries {
            if !expected_ids.contains(d.id.as_str()) {
                self.failures.push(format!(
                    "unexpected delivery under {:?} (a case delivered under an identity it was not sent with?)",
                    short(&d.id)
                ));
            }
        }
        let good_keys: Vec<String> = sending.good().into_iter().map(quoted_key).collect();
        for m in &seen.parked {
            let body = m["body"].as_str().unwrap_or("");
            let known =
                self.cases.iter().any(|c| c.is(body)) || good_keys.iter().any(|k| body.contains(k));
            if !known {
                self.failures.push(format!(
                    "unexpected parked message, reason {:?}, body {:?}",
                    m["reason"],
                    short(body)
                ));
            }
        }
    }

    /// The accounting: sent = delivered + parked.
    fn check_totals(&mut self, sending: &Sending, seen: &Seen) {
        let (n_sent, n_delivered, n_parked) =
            (sending.sent.len(), seen.deliveries.len(), seen.parked.len());
        if n_sent != n_delivered + n_parked {
            self.failures.push(format!(
                "sent {n_sent} != delivered {n_delivered} + parked {n_parked}: {} unaccounted",
                n_sent as i64 - (n_delivered + n_parked) as i64
            ));
        }
    }

    /// Bad and good messages met in a batch of the function, no batch handed any back.
    fn check_batches(&mut self) -> Result<Vec<BatchTally>> {
        let batches = self.batch_tallies()?;
        if mixed(&batches) == 0 {
            self.failures.push(format!(
                "no {} batch held both a good and a parked message ({} batches): the interleaving was not exercised",
                self.p.function,
                batches.len()
            ));
        }
        let handed_back: u64 = batches.iter().map(|b| b.handed_back).sum();
        if handed_back > 0 {
            self.failures.push(format!(
                "{} handed {handed_back} messages back to {}: a bad message held back its batch?",
                self.p.function, self.p.queue
            ));
        }
        Ok(batches)
    }

    /// The counts of every batch the entry function logged as done.
    fn batch_tallies(&self) -> Result<Vec<BatchTally>> {
        let p = self.p;
        let log = self.l.function_log(p.function)?;
        Ok(log
            .iter()
            .filter(|line| line["fields"]["message"] == "batch done")
            .map(|line| BatchTally {
                done: p.done_fields.iter().map(|f| tally_count(line, f)).sum(),
                parked: tally_count(line, "parked"),
                handed_back: tally_count(line, "handed_back"),
            })
            .collect())
    }

    /// Nothing dead-lettered, nothing left on the source queue.
    async fn check_queues(&mut self) -> Result<()> {
        self.check_empty(self.p.dlq, "holds").await?;
        self.check_empty(self.p.queue, "still holds").await
    }

    /// The queue `logical` holds no message (visible, in flight or delayed).
    async fn check_empty(&mut self, logical: &str, holds: &str) -> Result<()> {
        let depth = self.l.depth(logical).await?;
        if depth != (0, 0, 0) {
            self.failures.push(format!(
                "{logical} {holds} messages (visible, in flight, delayed): {depth:?}"
            ));
        }
        Ok(())
    }

    /// Nothing left behind in the pipeline's table: `want_stored` records, all settled.
    async fn check_table(&mut self, want_stored: u64) -> Result<()> {
        match self.p.table {
            Table::Outbox => self.check_outbox(want_stored).await,
            Table::Inbox => self.check_inbox(want_stored).await,
            Table::None => Ok(()),
        }
    }

    /// One outbox record per delivered application, none left to publish.
    async fn check_outbox(&mut self, want_stored: u64) -> Result<()> {
        let statuses = self.l.outbox_statuses().await?;
        if statuses.contains_key("InProgress") || statuses.contains_key("ToBeProcessed") {
            self.failures
                .push(format!("outbox records left unpublished: {statuses:?}"));
        }
        if statuses.values().sum::<u64>() != want_stored {
            self.failures.push(format!(
                "{want_stored} outbox records expected (one per delivered application), found {statuses:?}"
            ));
        }
        Ok(())
    }

    /// One inbox record per delivered record, each `Processed`.
    async fn check_inbox(&mut self, want_stored: u64) -> Result<()> {
        let rows = self.l.inbox_rows().await?;
        let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
        for r in rows.values() {
            *by_status.entry(r.status.as_str()).or_insert(0) += 1;
        }
        if by_status.keys().any(|s| *s != "Processed") {
            self.failures
                .push(format!("inbox records not Processed: {by_status:?}"));
        }
        if rows.len() as u64 != want_stored {
            self.failures.push(format!(
                "{want_stored} inbox records expected (one per delivered record), found {}",
                rows.len()
            ));
        }
        Ok(())
    }

    /// Prints the totals and a report line per case.
    fn print_summary(
        &self,
        sending: &Sending,
        seen: &Seen,
        settled: Duration,
        batches: &[BatchTally],
        report: &[String],
    ) {
        println!(
            "{}: {} cases, sent {} ({} good), refused {}, delivered {}, parked {}, settled in {:?}; {} batches, {} of them with good and parked messages\n{}",
            self.p.name,
            self.cases.len(),
            sending.sent.len(),
            sending.good().len(),
            sending.refused.len(),
            seen.deliveries.len(),
            seen.parked.len(),
            settled,
            batches.len(),
            mixed(batches),
            report.join("\n")
        );
    }
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
