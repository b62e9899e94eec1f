//! The local stack's command line: `demo`, `stack`, and `send` (orders to a running stack).

use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use steadfast_local::local::{order, Local, Options};

#[derive(Parser)]
#[command(
    about = "Steadfast's local stack: infra/template.yaml deployed to LocalStack with the real functions, Scheduler firing, and a fake portal"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the scenarios with faults and writes target/steadfast/demo-report.json.
    Demo {
        /// Orders to send (half before, half during the outage).
        #[arg(long, default_value_t = 200)]
        orders: usize,
        /// How long the portal stays down, in seconds.
        #[arg(long, default_value_t = 30)]
        outage_seconds: u64,
        /// Applications to send through the outbox.
        #[arg(long, default_value_t = 220)]
        applications: usize,
        /// How long the event bus throttles and then is down, in seconds.
        #[arg(long, default_value_t = 12)]
        bus_outage_seconds: u64,
        /// ERP records in the inbox's duplicate storm.
        #[arg(long, default_value_t = 200)]
        records: usize,
        /// Most copies the ERP sends of one record (over its versions).
        #[arg(long, default_value_t = 20)]
        max_copies: usize,
        /// How long the portal is down during the inbox scenario, in seconds.
        #[arg(long, default_value_t = 15)]
        portal_outage_seconds: u64,
        /// Run only these scenarios (default: all).
        #[arg(long, value_delimiter = ',', value_parser = ["breaker", "outbox", "inbox"])]
        only: Vec<String>,
    },
    /// Sends N messages through each pipeline and writes target/steadfast/load-report.json:
    /// time to the last delivery, throughput, the functions' peak memory, the accounting.
    Load {
        /// Messages per pipeline.
        #[arg(long, default_value_t = 10_000)]
        messages: usize,
        /// Concurrent senders.
        #[arg(long, default_value_t = 8)]
        senders: usize,
        /// Load only these pipelines (default: all).
        #[arg(long, value_delimiter = ',', value_parser = ["orders", "outbox", "inbox"])]
        only: Vec<String>,
    },
    /// Deploys a stack and keeps it running until Ctrl-C. TARGET_URL, PROBE_URL, PORTAL_URL and
    /// PORTAL_PROBE_URL point it at an API of your own (the fake portal otherwise).
    Stack,
    /// Sends N orders to a queue (e.g. the orders queue of a running stack).
    Send {
        #[arg(long)]
        queue_url: String,
        #[arg(long, default_value_t = 10)]
        count: usize,
        #[arg(long, default_value = "MAN")]
        prefix: String,
    },
}

/// Writes a report to target/steadfast/ and says where.
fn write_report(name: &str, report: &serde_json::Value) -> Result<()> {
    steadfast_local::write_report(name, report)?;
    println!("\nreport: target/steadfast/{name}");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into()))
        .try_init();
    match Cli::parse().command {
        Command::Demo {
            orders,
            outage_seconds,
            applications,
            bus_outage_seconds,
            records,
            max_copies,
            portal_outage_seconds,
            only,
        } => {
            let wanted = |s: &str| only.is_empty() || only.iter().any(|o| o == s);
            let mut scenarios = serde_json::Map::new();
            if wanted("breaker") {
                let breaker = steadfast_local::demo::run(steadfast_local::demo::DemoConfig {
                    orders,
                    outage: Duration::from_secs(outage_seconds),
                })
                .await?;
                scenarios.insert("breaker".into(), breaker);
            }
            if wanted("outbox") {
                let outbox = steadfast_local::demo_outbox::run(
                    steadfast_local::demo_outbox::OutboxDemoConfig {
                        applications,
                        outage: Duration::from_secs(bus_outage_seconds),
                    },
                )
                .await?;
                scenarios.insert("outbox".into(), outbox);
            }
            if wanted("inbox") {
                let inbox = steadfast_local::demo_inbox::run(
                    steadfast_local::demo_inbox::InboxDemoConfig {
                        records,
                        max_copies,
                        outage: Duration::from_secs(portal_outage_seconds),
                    },
                )
                .await?;
                scenarios.insert("inbox".into(), inbox);
            }
            let report = serde_json::json!({
                "generated_at_ms": steadfast_local::now_ms(),
                "emulator": std::env::var("EMULATOR").unwrap_or_else(|_| "localstack".into()),
                "scenarios": scenarios,
            });
            write_report("demo-report.json", &report)?;
            let b = &report["scenarios"]["breaker"];
            if b.is_object() && (b["lost"] != 0 || b["duplicates"] != 0) {
                anyhow::bail!("the demo lost or duplicated orders: see the report");
            }
            let o = &report["scenarios"]["outbox"];
            if o.is_object()
                && (o["lost"] != 0
                    || o["duplicates_published"] != 0
                    || o["published_unique"] != o["applications"])
            {
                anyhow::bail!(
                    "the demo lost, duplicated or did not publish applications: see the report"
                );
            }
            let i = &report["scenarios"]["inbox"];
            if i.is_object()
                && (i["lost"] != 0 || i["duplicates_delivered"] != 0 || i["stale_overwrites"] != 0)
            {
                anyhow::bail!(
                    "the demo lost a change, delivered one twice or let an old copy win: see the report"
                );
            }
        }
        Command::Load {
            messages,
            senders,
            only,
        } => {
            let pipelines = steadfast_local::load::run(steadfast_local::load::LoadConfig {
                messages,
                senders,
                only,
            })
            .await?;
            let report = serde_json::json!({
                "generated_at_ms": steadfast_local::now_ms(),
                // The functions' build, as infra/local/zips.sh made them (make load: release).
                "functions_build": std::env::var("PROFILE").unwrap_or_else(|_| "debug".into()),
                "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
                "pipelines": pipelines,
            });
            write_report("load-report.json", &report)?;
            let broken = report["pipelines"]
                .as_object()
                .into_iter()
                .flatten()
                .any(|(_, r)| {
                    r["accounting"]["clean"] != true
                        || r["delivered_twice"] != 0
                        || r["parked"] != 0
                });
            if broken {
                anyhow::bail!("the load lost, parked, held or duplicated messages: see the report");
            }
        }
        Command::Stack => stack().await?,
        Command::Send {
            queue_url,
            count,
            prefix,
        } => {
            let endpoint = steadfast_local::aws::Emulator::endpoint_from_env();
            let emu = steadfast_local::aws::Emulator::connect(&endpoint).await;
            let stamp = steadfast_local::now_ms();
            for i in 0..count {
                let body = order(&format!("{prefix}-{stamp}-{i}"));
                emu.sqs
                    .send_message()
                    .queue_url(&queue_url)
                    .message_body(body.to_string())
                    .send()
                    .await?;
            }
            println!("sent {count} orders to {queue_url}");
        }
    }
    Ok(())
}

/// `make stack`: deploys the template with the real zips, writes target/steadfast/stack.json,
/// prints how to use it, and keeps the fake portal and the Scheduler firing until Ctrl-C.
async fn stack() -> Result<()> {
    let mut parameters = std::collections::HashMap::new();
    for (var, param) in [
        ("TARGET_URL", "TargetUrl"),
        ("PROBE_URL", "ProbeUrl"),
        ("PORTAL_URL", "PortalUrl"),
        ("PORTAL_PROBE_URL", "PortalProbeUrl"),
    ] {
        if let Some(v) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
            parameters.insert(param.to_owned(), v);
        }
    }
    let own_api = parameters.contains_key("TargetUrl");
    if own_api && !parameters.contains_key("ProbeUrl") {
        // No health URL: probe with a real queued order (ProbeMode auto).
        parameters.insert("ProbeUrl".to_owned(), String::new());
    }
    println!("Deploying infra/template.yaml to LocalStack (CloudFormation, the functions' zips)…");
    let l = Local::up(Options {
        prefix: "stack".into(),
        parameters,
        rate_every: None,
        code: steadfast_local::stack::Code::Zip,
        ..Options::default()
    })
    .await?;
    let dir = steadfast_local::workspace_root().join("target/steadfast");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("stack.json");
    let functions: serde_json::Map<String, serde_json::Value> = l
        .stack
        .functions
        .iter()
        .map(|(b, f)| (b.clone(), f.name.clone().into()))
        .collect();
    let resources: serde_json::Map<String, serde_json::Value> = l
        .stack
        .resources
        .iter()
        .map(|(k, r)| {
            (
                k.clone(),
                serde_json::json!({"type": r.kind, "physical": r.physical, "arn": r.arn}),
            )
        })
        .collect();
    let info = serde_json::json!({
        "endpoint": l.emu.endpoint,
        "stack": l.stack.name,
        "outputs": l.stack.outputs,
        "parameters": l.stack.parameters,
        "functions": functions,
        "resources": resources,
        "portal": if own_api { serde_json::Value::Null } else { l.portal.url.clone().into() },
        "function_logs": steadfast_local::local::lambda_log_dir(),
    });
    std::fs::write(&path, serde_json::to_string_pretty(&info)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let ep = &l.emu.endpoint;
    let orders = l.queue_url("OrdersQueue")?;
    println!(
        "\nStack {} is deployed ({:.1} s); LocalStack runs its functions. Ctrl-C stops it.",
        l.stack.name, l.stack.seconds
    );
    println!("  written        target/steadfast/stack.json (endpoint, outputs, function names)");
    if own_api {
        println!(
            "  target         {}",
            l.stack
                .parameters
                .get("TargetUrl")
                .cloned()
                .unwrap_or_default()
        );
    } else {
        println!(
            "  fake portal    {}  (POST /_portal/mode {{\"mode\":\"down\"}}, GET /_portal/stats)",
            l.portal.url
        );
    }
    println!(
        "  function logs  {}/{}-*.log (and CloudWatch Logs in LocalStack)",
        steadfast_local::local::lambda_log_dir().display(),
        l.stack.name
    );
    println!(
        "  operate it     cargo run -q -p steadfast-cli -- status   (halt|resume {} , replay parked, ...)",
        l.stack.name
    );
    println!("\nWith the AWS CLI (any credentials, region us-east-1):");
    println!("  # send an order");
    println!("  aws --endpoint-url {ep} sqs send-message --queue-url {orders} \\\n      --message-body '{{\"orderId\":\"A-1\",\"sku\":\"SKU-1\",\"quantity\":2}}'");
    if !own_api {
        println!("  # see it at the portal");
        println!("  curl -s {}/_portal/stats", l.portal.url);
    }
    println!("  # invoke a function (for example resume a halted flow: open)");
    for (binary, example) in [
        (
            "open",
            format!(
                "{{\"target\":\"{}\"}}",
                l.stack
                    .parameters
                    .get("TargetName")
                    .cloned()
                    .unwrap_or_default()
            ),
        ),
        ("close", "{\"kind\":\"watchdog\"}".to_owned()),
    ] {
        let f = l.stack.function(binary)?;
        println!("  aws --endpoint-url {ep} lambda invoke --function-name {} \\\n      --cli-binary-format raw-in-base64-out --payload '{example}' /dev/stdout", f.name);
    }
    println!(
        "  # the other functions: {}",
        l.stack
            .functions
            .values()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  # an application (outbox), an ERP record (inbox)");
    println!("  aws --endpoint-url {ep} sqs send-message --queue-url {} --message-body file://tests/fixtures/application.json", l.queue_url("ApplicationsQueue")?);
    println!("  aws --endpoint-url {ep} sqs send-message --queue-url {} --message-body file://tests/fixtures/erp-record.json", l.queue_url("ErpRecordsQueue")?);
    tokio::signal::ctrl_c().await?;
    println!("stopping…");
    l.down().await;
    Ok(())
}
