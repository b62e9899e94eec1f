//! CloudWatch metrics in the embedded metric format (EMF): at the end of an invocation a
//! function writes one JSON line on stdout per pipeline and target it worked for (a
//! [`Document`] built from its tally), which Lambda's log pipeline turns into metrics in
//! namespace `Steadfast`: no API call, no cost per call. The template's alarms and dashboard
//! read them.
//!
//! Hand-written rather than the `metrics_cloudwatch_embedded` crate: that crate is a global
//! recorder behind the `metrics` facade, flushed by wrapping the runtime loop, whereas each
//! function here already counts what it did in its tally, so a document built from the tally
//! gives one line per invocation with no global state, and the unit tests below pin the format.
//!
//! | metric | unit | dimensions | when |
//! |---|---|---|---|
//! | `Delivered` | Count | Pipeline, Target | processor: an order the target took; outbox-relay: a record published to the bus; inbox-processor: a record the portal took |
//! | `DuplicatesDropped` | Count | Pipeline, Target | processor: an order the ledger holds as delivered, or a second copy in one batch; outbox-writer: a resubmitted application; inbox-receiver: a copy with the stored content |
//! | `StaleDropped` | Count | Pipeline, Target | inbox-receiver: a copy older than the stored version |
//! | `Parked` | Count | Pipeline, Target | processor, outbox-writer, inbox-receiver: a message parked with its reason |
//! | `Retries` | Count | Pipeline, Target | processor, inbox-processor: a call that repeats a failed one within the invocation |
//! | `Halts` | Count | Pipeline, Target | close: a trip that halted the flow |
//! | `Probes` | Count | Pipeline, Target | close: a probe run (healthy, still sick, or not able to tell yet) |
//! | `Resumes` | Count | Pipeline, Target | open: the flow resumed |
//! | `GateRepairs` | Count | Pipeline, Target | close's watchdog: a fix it applied (mapping switched, timer set again, probe abandoned) |
//! | `RelayLagMs` | Milliseconds | Pipeline, Target | outbox-relay: per published record, from written to published |
//! | `ClaimConflicts` | Count | Pipeline, Target | outbox-relay, inbox-processor: a claim refused (another worker held the record, or it was not due) or a settle refused because the lease was lost |
//! | `RecordsFailed` | Count | Pipeline | outbox-relay, inbox-processor: a record that ended `Failed` (alarmed) |
//! | `GateHaltedSeconds` | Seconds | Target | close's watchdog, every run per gate: how long it has been halted, 0 while it flows (alarmed) |
//!
//! Pipelines are `orders`, `outbox` and `inbox`. The target is the gate's name for `orders`
//! (`TargetName`) and `inbox` (the inbox portal's gate), the event bus's name for `outbox`.
//! A counter that stayed at zero is left out of the line; an invocation that counted nothing
//! writes none.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "Steadfast";

/// The most values one metric may carry in one EMF document; more go on further lines.
const MAX_VALUES: usize = 100;

/// A metric Steadfast writes (see the table in the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    Delivered,
    DuplicatesDropped,
    StaleDropped,
    Parked,
    Retries,
    Halts,
    Probes,
    Resumes,
    GateRepairs,
    RelayLagMs,
    ClaimConflicts,
    RecordsFailed,
    GateHaltedSeconds,
}

impl Metric {
    /// Its name in CloudWatch.
    pub const fn name(self) -> &'static str {
        match self {
            Metric::Delivered => "Delivered",
            Metric::DuplicatesDropped => "DuplicatesDropped",
            Metric::StaleDropped => "StaleDropped",
            Metric::Parked => "Parked",
            Metric::Retries => "Retries",
            Metric::Halts => "Halts",
            Metric::Probes => "Probes",
            Metric::Resumes => "Resumes",
            Metric::GateRepairs => "GateRepairs",
            Metric::RelayLagMs => "RelayLagMs",
            Metric::ClaimConflicts => "ClaimConflicts",
            Metric::RecordsFailed => "RecordsFailed",
            Metric::GateHaltedSeconds => "GateHaltedSeconds",
        }
    }

    /// Its CloudWatch unit.
    pub const fn unit(self) -> &'static str {
        match self {
            Metric::RelayLagMs => "Milliseconds",
            Metric::GateHaltedSeconds => "Seconds",
            _ => "Count",
        }
    }

    /// The dimensions it is published under: pipeline and target, except the two metrics the
    /// template's alarms watch with the one dimension they have always had.
    pub const fn dimensions(self) -> &'static [&'static str] {
        match self {
            Metric::RecordsFailed => &["Pipeline"],
            Metric::GateHaltedSeconds => &["Target"],
            _ => &["Pipeline", "Target"],
        }
    }
}

/// What one invocation counted for one pipeline and target, written as one EMF line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pipeline: String,
    target: String,
    values: BTreeMap<Metric, Vec<u64>>,
}

impl Document {
    pub fn new(pipeline: impl Into<String>, target: impl Into<String>) -> Self {
        Document {
            pipeline: pipeline.into(),
            target: target.into(),
            values: BTreeMap::new(),
        }
    }

    /// Adds `n` to a counter; zero adds nothing (a counter never set is left out).
    pub fn count(mut self, metric: Metric, n: impl Into<u64>) -> Self {
        let n = n.into();
        if n > 0 {
            let values = self.values.entry(metric).or_default();
            match values.first_mut() {
                Some(total) => *total += n,
                None => values.push(n),
            }
        }
        self
    }

    /// Adds values of a metric that keeps each one (a distribution, e.g. `RelayLagMs`).
    pub fn samples(mut self, metric: Metric, values: impl IntoIterator<Item = u64>) -> Self {
        let mut values = values.into_iter().peekable();
        if values.peek().is_some() {
            self.values.entry(metric).or_default().extend(values);
        }
        self
    }

    /// Sets a gauge, written even at zero (e.g. `GateHaltedSeconds`).
    pub fn gauge(mut self, metric: Metric, value: u64) -> Self {
        self.values.insert(metric, vec![value]);
        self
    }

    /// The metric's values so far (a counter has one, its total); empty when never set.
    pub fn values(&self, metric: Metric) -> &[u64] {
        self.values.get(&metric).map_or(&[], Vec::as_slice)
    }

    /// A counter's total (0 when never set).
    pub fn total(&self, metric: Metric) -> u64 {
        self.values(metric).iter().sum()
    }

    /// The EMF lines at `now_ms`: one, unless a metric holds more than 100 values (the
    /// format's limit), whose rest go on further lines; none when nothing was counted.
    pub fn lines(&self, now_ms: u64) -> Vec<String> {
        let parts = self
            .values
            .values()
            .map(|v| v.len().div_ceil(MAX_VALUES))
            .max()
            .unwrap_or(0);
        (0..parts).map(|part| self.line(part, now_ms)).collect()
    }

    /// Part `part` of the document: every metric's values `part·100..(part+1)·100`.
    fn line(&self, part: usize, now_ms: u64) -> String {
        let mut root = Map::new();
        let mut directives: BTreeMap<&[&str], Vec<Value>> = BTreeMap::new();
        for (metric, values) in &self.values {
            let Some(chunk) = values.chunks(MAX_VALUES).nth(part) else {
                continue;
            };
            let value = match chunk {
                [one] => json!(one),
                many => json!(many),
            };
            root.insert(metric.name().to_owned(), value);
            directives
                .entry(metric.dimensions())
                .or_default()
                .push(json!({"Name": metric.name(), "Unit": metric.unit()}));
        }
        let directives: Vec<Value> = directives
            .into_iter()
            .map(|(dimensions, metrics)| {
                json!({"Namespace": NAMESPACE, "Dimensions": [dimensions], "Metrics": metrics})
            })
            .collect();
        root.insert("Pipeline".into(), json!(self.pipeline));
        root.insert("Target".into(), json!(self.target));
        root.insert(
            "_aws".into(),
            json!({"Timestamp": now_ms, "CloudWatchMetrics": directives}),
        );
        Value::Object(root).to_string()
    }

    /// Writes the document's lines to stdout, where Lambda's log pipeline reads them.
    pub fn emit(&self) {
        for line in self.lines(crate::now_ms()) {
            println!("{line}");
        }
    }
}

/// Which pipeline each guarded target belongs to, for the functions that serve every gate
/// (close and open).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pipelines(BTreeMap<String, &'static str>);

impl Pipelines {
    /// From the guarded targets' names (see [`crate::clients::guarded_names`]): the first is
    /// the orders target, the others the inbox portal's.
    pub fn of_guarded(names: &[String]) -> Self {
        Pipelines(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), if i == 0 { "orders" } else { "inbox" }))
                .collect(),
        )
    }

    /// The pipeline of `target`; `orders` for a name not guarded here.
    pub fn of(&self, target: &str) -> &'static str {
        self.0.get(target).copied().unwrap_or("orders")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Value {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn one_line_carries_every_counter_under_pipeline_and_target() {
        // GIVEN a batch that delivered 3, parked 1 and retried 2
        let d = Document::new("orders", "portal")
            .count(Metric::Delivered, 3u32)
            .count(Metric::Parked, 1u32)
            .count(Metric::Retries, 2u32)
            .count(Metric::Halts, 0u32);
        // WHEN it is written
        let lines = d.lines(1_000);
        // THEN it is one line, in namespace Steadfast, by Pipeline and Target
        assert_eq!(lines.len(), 1);
        let l = parse(&lines[0]);
        assert_eq!(l["_aws"]["Timestamp"], 1_000);
        let directives = l["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 1);
        assert_eq!(directives[0]["Namespace"], "Steadfast");
        assert_eq!(directives[0]["Dimensions"], json!([["Pipeline", "Target"]]));
        assert_eq!(
            directives[0]["Metrics"],
            json!([
                {"Name": "Delivered", "Unit": "Count"},
                {"Name": "Parked", "Unit": "Count"},
                {"Name": "Retries", "Unit": "Count"},
            ])
        );
        assert_eq!(
            (&l["Pipeline"], &l["Target"]),
            (&json!("orders"), &json!("portal"))
        );
        assert_eq!(
            (&l["Delivered"], &l["Parked"], &l["Retries"]),
            (&json!(3), &json!(1), &json!(2))
        );
        // AND a counter left at zero is not in it
        assert!(l.get("Halts").is_none());
    }

    #[test]
    fn counts_add_up_and_nothing_counted_writes_nothing() {
        let d = Document::new("inbox", "portal-inbox")
            .count(Metric::ClaimConflicts, 2u32)
            .count(Metric::ClaimConflicts, 3u32);
        assert_eq!(d.total(Metric::ClaimConflicts), 5);
        assert_eq!(parse(&d.lines(0)[0])["ClaimConflicts"], 5);
        let empty = Document::new("inbox", "portal-inbox").count(Metric::Delivered, 0u32);
        assert!(empty.lines(0).is_empty());
    }

    #[test]
    fn the_alarmed_metrics_keep_their_single_dimension_in_the_same_line() {
        // GIVEN a relay run that published two records and failed one
        let d = Document::new("outbox", "steadfast-bus")
            .count(Metric::Delivered, 2u32)
            .samples(Metric::RelayLagMs, [40, 70])
            .count(Metric::RecordsFailed, 1u32);
        let l = parse(&d.lines(5)[0]);
        // THEN RecordsFailed is published by Pipeline alone, the rest by Pipeline and Target
        let directives = l["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        let by_dims = |dims: Value| {
            directives
                .iter()
                .find(|d| d["Dimensions"] == dims)
                .map(|d| d["Metrics"].clone())
        };
        assert_eq!(
            by_dims(json!([["Pipeline"]])),
            Some(json!([{"Name": "RecordsFailed", "Unit": "Count"}]))
        );
        assert_eq!(
            by_dims(json!([["Pipeline", "Target"]])),
            Some(json!([
                {"Name": "Delivered", "Unit": "Count"},
                {"Name": "RelayLagMs", "Unit": "Milliseconds"},
            ]))
        );
        assert_eq!(l["RelayLagMs"], json!([40, 70]));
        assert_eq!(l["RecordsFailed"], 1);
        // AND a gauge is written even at zero, by Target alone
        let g = parse(
            &Document::new("orders", "portal")
                .gauge(Metric::GateHaltedSeconds, 0)
                .lines(5)[0],
        );
        assert_eq!(g["GateHaltedSeconds"], 0);
        assert_eq!(
            g["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Target"]])
        );
        assert_eq!(
            g["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "Seconds"
        );
        assert_eq!(g["Target"], "portal");
    }

    #[test]
    fn more_than_a_hundred_values_go_on_further_lines() {
        let d = Document::new("outbox", "bus")
            .count(Metric::Delivered, 250u32)
            .samples(Metric::RelayLagMs, 0..250);
        let lines: Vec<Value> = d.lines(0).iter().map(|l| parse(l)).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["Delivered"], 250);
        assert!(
            lines[1].get("Delivered").is_none(),
            "a counter is written once"
        );
        let sizes: Vec<usize> = lines
            .iter()
            .map(|l| l["RelayLagMs"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        assert_eq!(
            lines[2]["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name": "RelayLagMs", "Unit": "Milliseconds"}])
        );
    }

    #[test]
    fn the_first_guarded_target_is_the_orders_pipeline() {
        let p = Pipelines::of_guarded(&["portal".into(), "portal-inbox".into()]);
        assert_eq!((p.of("portal"), p.of("portal-inbox")), ("orders", "inbox"));
        assert_eq!(p.of("unknown"), "orders");
    }
}
