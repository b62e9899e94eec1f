//! The logs of a full demo run (all three scenarios, with their faults) as an operator would
//! capture them: no order body, no application field value, no ERP record content and no
//! secret anywhere; and every line about a message carries its correlation id.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::Value;
use steadfast_local::local::lambda_log_dir;
use steadfast_tests::{emulator, init};

/// Values of the bodies the demo sends that must never be logged: the application's personal
/// data (`local/src/local/bodies.rs`), an order's line, an ERP record's content.
const NEVER_LOGGED: [&str; 10] = [
    "VAN DER berg",
    "1985-03-14",
    "Anna@Example.com",
    "1234 ab",
    "\"72000\"",
    "\"sku\"",
    "SKU-",
    " rev ",
    "\"annual\"",
    // the demo's invalid loan amount
    "1,000,000",
];

/// Fields that make a log line one about a message or a record.
const ABOUT_A_MESSAGE: [&str; 4] = ["message_id", "identity", "id", "key"];

/// Every log file of a stack's functions.
fn logs_of(stack: &str) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(lambda_log_dir())? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with(&format!("{stack}-")) && name.ends_with(".log") {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            out.push((path, text));
        }
    }
    Ok(out)
}

/// The correlation id a JSON log line carries (in its fields, as the README promises).
fn correlation_id(line: &Value) -> Option<&str> {
    line["fields"]["correlation_id"].as_str()
}

fn about_a_message(line: &Value) -> bool {
    ABOUT_A_MESSAGE.iter().any(|f| !line["fields"][f].is_null())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_demo_run_logs_no_body_no_personal_value_no_secret_and_every_message_line_has_its_correlation_id(
) -> Result<()> {
    init();
    let breaker = steadfast_local::demo::run(steadfast_local::demo::DemoConfig {
        orders: 40,
        outage: Duration::from_secs(10),
    })
    .await?;
    let outbox =
        steadfast_local::demo_outbox::run(steadfast_local::demo_outbox::OutboxDemoConfig {
            applications: 40,
            outage: Duration::from_secs(6),
        })
        .await?;
    let inbox = steadfast_local::demo_inbox::run(steadfast_local::demo_inbox::InboxDemoConfig {
        records: 30,
        max_copies: 4,
        outage: Duration::from_secs(6),
    })
    .await?;
    // The run itself kept its promise.
    assert_eq!(
        (&breaker["lost"], &breaker["duplicates"]),
        (&0.into(), &0.into()),
        "{breaker}"
    );
    assert_eq!(outbox["lost"], 0, "{outbox}");
    assert_eq!(inbox["lost"], 0, "{inbox}");
    let secret = emulator()
        .await
        .secrets
        .get_secret_value()
        .secret_id(breaker["token_secret_arn"].as_str().unwrap_or_default())
        .send()
        .await?
        .secret_string
        .unwrap_or_default();
    assert!(secret.starts_with("tok-"), "the demo's token secret");

    let mut lines = 0usize;
    let mut message_lines = 0usize;
    let mut leaks = Vec::new();
    let mut uncorrelated = Vec::new();
    for report in [&breaker, &outbox, &inbox] {
        let stack = report["stack"].as_str().unwrap_or_default();
        let logs = logs_of(stack)?;
        assert!(logs.len() >= 2, "no function logs for stack {stack}");
        for (path, text) in logs {
            let file = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            for line in text.lines() {
                lines += 1;
                if line.contains(&secret) || NEVER_LOGGED.iter().any(|v| line.contains(v)) {
                    leaks.push(format!("{file}: {line}"));
                }
                let Ok(json) = serde_json::from_str::<Value>(line) else {
                    continue;
                };
                if about_a_message(&json) {
                    message_lines += 1;
                    if correlation_id(&json).is_none_or(str::is_empty) {
                        uncorrelated.push(format!("{file}: {line}"));
                    }
                }
            }
        }
    }
    assert!(
        lines > 500 && message_lines > 100,
        "{lines} lines, {message_lines} about a message"
    );
    assert!(
        leaks.is_empty(),
        "{} lines leak a body, a personal value or the secret:\n{}",
        leaks.len(),
        leaks[..leaks.len().min(5)].join("\n")
    );
    assert!(
        uncorrelated.is_empty(),
        "{} of {message_lines} lines about a message carry no correlation id:\n{}",
        uncorrelated.len(),
        uncorrelated[..uncorrelated.len().min(5)].join("\n")
    );
    Ok(())
}
