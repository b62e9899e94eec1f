//! The README's chart, drawn from a bench report as SVG: four panels of horizontal bars
//! (calls to a dead API, latency, cost, binary size), each value written beside its bar.

use std::fmt::Write;

use serde_json::Value;

use crate::footprint::FUNCTIONS;

const WIDTH: f64 = 760.0;
const LABEL: f64 = 230.0;
const BAR_SPACE: f64 = 420.0;
const ROW: f64 = 20.0;

struct Panel<'a> {
    title: &'a str,
    /// Label, value, and whether the bar is Steadfast's (else the comparison's).
    rows: Vec<(String, f64, bool)>,
    log: bool,
    unit: &'a str,
}

/// The chart for `report` (a full bench report).
pub fn draw(report: &Value) -> String {
    let o = &report["outage"];
    let n = |v: &Value| v.as_f64().unwrap_or(0.0);
    let mut calls = vec![(
        "naive send-and-retry".to_owned(),
        n(&o["naive"]["api_calls_during_outage"]),
        false,
    )];
    for c in o["cap_tradeoff"].as_array().into_iter().flatten() {
        let cap = n(&c["cap_s"]);
        let label = if cap >= 3600.0 {
            format!("Steadfast, probes capped at {} h", cap / 3600.0)
        } else {
            format!("Steadfast, probes capped at {} min", cap / 60.0)
        };
        calls.push((label, n(&c["api_calls_during_outage"]), true));
    }
    let l = &report["latency"];
    let mut latency = vec![];
    for (what, v, stream) in [
        (
            "outbox, stream",
            &l["outbox"]["record_to_published_ms"]["stream"],
            true,
        ),
        (
            "inbox, stream",
            &l["inbox"]["message_to_delivered_ms"]["stream"],
            true,
        ),
        (
            "outbox, sweep only",
            &l["outbox"]["record_to_published_ms"]["sweep_only"],
            false,
        ),
        (
            "inbox, sweep only",
            &l["inbox"]["message_to_delivered_ms"]["sweep_only"],
            false,
        ),
    ] {
        latency.push((format!("{what} p50"), n(&v["p50"]), stream));
        latency.push((format!("{what} p99"), n(&v["p99"]), stream));
    }
    let cost = ["breaker", "outbox", "inbox"]
        .map(|p| {
            (
                p.to_owned(),
                n(&report["cost"][p]["usd_per_million_messages"]),
                true,
            )
        })
        .to_vec();
    let build = report["functions_build"].as_str().unwrap_or("unknown");
    let size_title = format!("Function binary size ({build} build), MB; goal: at most 6");
    let size = FUNCTIONS
        .map(|f| {
            (
                f.to_owned(),
                n(&report["footprint"][f]["bytes"]) / 1_000_000.0,
                true,
            )
        })
        .to_vec();
    let panels = [
        Panel {
            title: "Calls to a dead API during an 18 h outage (simulated, log scale)",
            rows: calls,
            log: true,
            unit: "",
        },
        Panel {
            title: "Latency on the local stack, ms (log scale)",
            rows: latency,
            log: true,
            unit: " ms",
        },
        Panel {
            title: "USD per million messages, healthy path (requests only)",
            rows: cost,
            log: false,
            unit: " USD",
        },
        Panel {
            title: &size_title,
            rows: size,
            log: false,
            unit: " MB",
        },
    ];
    render(&panels)
}

fn render(panels: &[Panel]) -> String {
    let height: f64 = panels
        .iter()
        .map(|p| 40.0 + ROW * p.rows.len() as f64)
        .sum::<f64>()
        + 20.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let mut y = 20.0;
    for p in panels {
        let _ = write!(
            s,
            r#"<text x="10" y="{y}" font-weight="bold" font-size="13">{}</text>"#,
            p.title
        );
        y += 12.0;
        let max = p.rows.iter().map(|r| r.1).fold(0.0, f64::max).max(1e-9);
        for (label, value, ours) in &p.rows {
            let fraction = if p.log {
                (value.max(1.0)).ln() / max.max(1.0).ln().max(1e-9)
            } else {
                value / max
            };
            let w = (fraction * BAR_SPACE).max(1.0);
            let fill = if *ours { "#2b6cb0" } else { "#c05621" };
            let _ = write!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end">{label}</text><rect x="{LABEL}" y="{}" width="{w:.1}" height="{}" fill="{fill}"/><text x="{}" y="{}">{}{}</text>"#,
                LABEL - 6.0,
                y + 13.0,
                y + 3.0,
                ROW - 6.0,
                LABEL + w + 5.0,
                y + 13.0,
                pretty(*value),
                p.unit
            );
            y += ROW;
        }
        y += 28.0;
    }
    s.push_str("</svg>\n");
    s
}

fn pretty(v: f64) -> String {
    if v >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}
