//! The local stack's command line: `demo`, `stack`, and `send` (orders to a running stack).

use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use steadfast_local::local::{order, Local, Options};

#[derive(Parser)]
#[command(
    about = "Steadfast's local stack: the emulator provisioned from infra/template.yaml, the real function binaries, the plumbing and a fake portal"
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
    /// Starts a stack and keeps it running until Ctrl-C.
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
            let dir = steadfast_local::workspace_root().join("target/steadfast");
            std::fs::create_dir_all(&dir)?;
            let path = dir.join("demo-report.json");
            std::fs::write(&path, serde_json::to_string_pretty(&report)?)
                .with_context(|| format!("writing {}", path.display()))?;
            println!("\nreport: target/steadfast/demo-report.json");
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
        Command::Stack => {
            let l = Local::up(Options {
                prefix: "stack".into(),
                ..Options::default()
            })
            .await?;
            println!("Local stack {} is running (Ctrl-C stops it).", l.stack.name);
            println!("  emulator       {}", l.emu.endpoint);
            println!(
                "  functions      {} (cargo lambda watch; logs: {})",
                l.watch.endpoint,
                l.watch.log.display()
            );
            println!("  fake portal    {}  (POST /_portal/mode {{\"mode\":\"down\"}}, GET /_portal/stats)", l.portal.url);
            println!("  orders queue   {}", l.queue_url("OrdersQueue")?);
            println!("  parking queue  {}", l.queue_url("ParkingQueue")?);
            println!("  applications   {}", l.queue_url("ApplicationsQueue")?);
            println!(
                "  erp-records    {}  (inbox; deliveries at {}/{{entity}})",
                l.queue_url("ErpRecordsQueue")?,
                l.portal.inbox_url()
            );
            println!("\nSend orders from another terminal:");
            println!("  cargo run -q -p steadfast-local --bin steadfast-local -- send --queue-url {} --count 10", l.queue_url("OrdersQueue")?);
            println!("Take the portal down:\n  curl -s -XPOST {}/_portal/mode -H 'content-type: application/json' -d '{{\"mode\":\"down\"}}'", l.portal.url);
            tokio::signal::ctrl_c().await?;
            println!("stopping…");
            l.down().await;
        }
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
