//! `steadfast`: see and steer a running Steadfast stack.
//!
//! | command | does |
//! |---|---|
//! | `status` | gates, queues, tables, parked and dead-lettered messages, and what needs attention (exit 1 if anything does) |
//! | `halt TARGET [--reason TEXT]` | an operator's halt: no probes, lifted only by `resume` |
//! | `resume TARGET` | an operator's resume (the mapping is enabled, ramping up) |
//! | `replay parked\|dlq [--source S] [--limit N] [--dry-run]` | parked or dead-lettered messages back to their source queue, unchanged |
//! | `requeue outbox\|inbox (ID…\|--failed)` | `Failed` records due again, attempts reset |
//! | `inspect outbox\|inbox\|order KEY` | one record's story |
//!
//! Exit codes: 0 done (and, for `status`, nothing needs attention); 1 `status` found
//! something that needs attention, or not everything asked could be done; 2 the stack could
//! not be read or a call failed.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;

mod act;
mod aws;
mod inspect;
mod replay;
mod stack;
mod status;

pub use aws::Aws;
pub use stack::{Source, Stack};

#[derive(Debug, Parser)]
#[command(
    name = "steadfast",
    version,
    about = "See and steer a running Steadfast stack"
)]
pub struct Cli {
    /// A deployed stack, by its CloudFormation name (read through the usual AWS configuration).
    #[arg(long, global = true, env = "STEADFAST_STACK")]
    pub stack: Option<String>,
    /// The file `make stack` writes (default: target/steadfast/stack.json when present).
    #[arg(long, global = true, env = "STEADFAST_STACK_FILE")]
    pub stack_file: Option<PathBuf>,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Is anything stuck, halted, parked or at risk, and since when? Exit 0 if not, 1 if so.
    Status {
        /// How late a probe or a lease may be before it counts as stuck, seconds.
        #[arg(long, default_value_t = 120)]
        grace: u64,
    },
    /// Halt a target's flow by hand: no probes run; only `resume` lifts it.
    Halt {
        target: String,
        #[arg(long, default_value = "halted by an operator")]
        reason: String,
    },
    /// Resume a target's flow by hand (a manual halt or one waiting for its probes).
    Resume { target: String },
    /// Put parked or dead-lettered messages back on their source queue, unchanged.
    Replay {
        from: ReplayFrom,
        /// Only messages from this source.
        #[arg(long)]
        source: Option<SourceQueue>,
        /// At most this many messages.
        #[arg(long)]
        limit: Option<usize>,
        /// Count what would move, move nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Make `Failed` outbox or inbox records due again (attempts reset).
    Requeue {
        table: Table,
        /// Record ids.
        #[arg(required_unless_present = "failed", conflicts_with = "failed")]
        ids: Vec<String>,
        /// Every `Failed` record of the table.
        #[arg(long)]
        failed: bool,
    },
    /// One record's story: status, version, attempts, last error, times, delivery key.
    Inspect { kind: InspectKind, key: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReplayFrom {
    Parked,
    Dlq,
}

/// The queues messages come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceQueue {
    Orders,
    Applications,
    ErpRecords,
}

impl SourceQueue {
    pub const ALL: [SourceQueue; 3] = [
        SourceQueue::Orders,
        SourceQueue::Applications,
        SourceQueue::ErpRecords,
    ];

    /// The name parked messages carry in their `source` attribute.
    pub fn name(self) -> &'static str {
        match self {
            SourceQueue::Orders => "orders",
            SourceQueue::Applications => "applications",
            SourceQueue::ErpRecords => "erp-records",
        }
    }

    pub fn queue(self) -> &'static str {
        match self {
            SourceQueue::Orders => "OrdersQueue",
            SourceQueue::Applications => "ApplicationsQueue",
            SourceQueue::ErpRecords => "ErpRecordsQueue",
        }
    }

    pub fn dead_letters(self) -> &'static str {
        match self {
            SourceQueue::Orders => "OrdersDLQ",
            SourceQueue::Applications => "ApplicationsDLQ",
            SourceQueue::ErpRecords => "ErpRecordsDLQ",
        }
    }
}

/// The leased-record tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Table {
    Outbox,
    Inbox,
}

impl Table {
    pub fn logical(self) -> &'static str {
        match self {
            Table::Outbox => "OutboxTable",
            Table::Inbox => "InboxTable",
        }
    }

    pub fn pipeline(self) -> &'static str {
        match self {
            Table::Outbox => "outbox",
            Table::Inbox => "inbox",
        }
    }

    /// The attribute that says since when a record waits.
    pub fn since_attribute(self) -> &'static str {
        match self {
            Table::Outbox => "created_at_ms",
            Table::Inbox => "updated_at_ms",
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum InspectKind {
    Outbox,
    Inbox,
    Order,
}

/// Runs one command; what it prints goes to `out`, errors to stderr. Returns the exit code.
pub async fn run(cli: Cli, out: &mut dyn Write) -> i32 {
    match execute(cli, out).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}

async fn execute(cli: Cli, out: &mut dyn Write) -> Result<i32> {
    let source = Source::choose(cli.stack.clone(), cli.stack_file.clone())?;
    let aws = Aws::new(source.file_endpoint()?).await;
    let stack = Stack::load(&source, &aws).await?;
    let json = cli.json;
    match cli.command {
        Command::Status { grace } => {
            let s = status::read(&stack, &aws, grace).await?;
            emit(out, json, &s, status::render)?;
            Ok(i32::from(!s.attention.is_empty()))
        }
        Command::Halt { target, reason } => {
            let r = act::halt(&stack, &aws, &target, &reason).await?;
            emit(out, json, &r, act::render_gate)?;
            if !r.manual {
                eprintln!("the halt did not take: the gate is {} (try again)", r.state);
            }
            Ok(i32::from(!r.manual))
        }
        Command::Resume { target } => {
            let r = act::resume(&stack, &aws, &target).await?;
            emit(out, json, &r, act::render_gate)?;
            Ok(i32::from(r.state != "Flowing"))
        }
        Command::Replay {
            from,
            source,
            limit,
            dry_run,
        } => {
            let r = replay::run(&stack, &aws, from, source, limit, dry_run).await?;
            emit(out, json, &r, replay::render)?;
            Ok(i32::from(r.failed > 0))
        }
        Command::Requeue { table, ids, failed } => {
            let r = act::requeue(&stack, &aws, table, ids, failed).await?;
            emit(out, json, &r, act::render_requeue)?;
            Ok(i32::from(r.records.iter().any(|x| x.outcome != "requeued")))
        }
        Command::Inspect { kind, key } => {
            let r = inspect::run(&stack, &aws, kind, &key).await?;
            emit(out, json, &r, inspect::render)?;
            Ok(i32::from(!r.found))
        }
    }
}

/// JSON (pretty, one document) or the human rendering.
fn emit<T: Serialize>(
    out: &mut dyn Write,
    json: bool,
    value: &T,
    human: fn(&T) -> String,
) -> Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
    } else {
        write!(out, "{}", human(value))?;
    }
    Ok(())
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A time as `2026-11-29 06:40:12 UTC`.
pub fn at(ms: u64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// How long ago `ms` was, as of `now`: `3m 20s ago`.
pub fn ago(ms: u64, now: u64) -> String {
    format!("{} ago", status::human(now.saturating_sub(ms) / 1000))
}
