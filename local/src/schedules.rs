//! The one thing the local stack does that no emulator does: firing EventBridge Scheduler
//! schedules. The stack's schedules are read through the Scheduler API, as deployed by
//! CloudFormation, and acted on as Scheduler would:
//! - a one-time `at(...)` schedule whose time has come sends its input to its target (the
//!   timers queue) once, and is deleted when its ActionAfterCompletion says DELETE;
//! - a `rate(...)` schedule invokes its target function asynchronously (InvocationType Event)
//!   with its input, at its own period or, for tests and the demo, a compressed one;
//! - a DISABLED schedule does not fire.
//!
//! Everything else (queue and stream mappings, async invokes, their retries) is LocalStack's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::aws::{describe, Emulator};
use crate::stack::Stack;

/// What was fired, for reports.
#[derive(Debug, Default)]
pub struct Counters {
    /// One-time schedules fired.
    pub schedules_fired: AtomicU64,
    /// Rate schedules fired.
    pub rate_ticks: AtomicU64,
}

pub struct Scheduler {
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
    pub counters: Arc<Counters>,
}

/// `rate(N unit)` as a duration.
pub fn parse_rate(expr: &str) -> Option<Duration> {
    let inner = expr.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (n, unit) = inner.trim().split_once(' ')?;
    let n: u64 = n.parse().ok()?;
    let secs = match unit.trim().trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n * secs))
}

/// `at(yyyy-mm-ddThh:mm:ss)` (UTC) as ms since the Unix epoch.
pub fn parse_at(expr: &str) -> Option<u64> {
    let inner = expr.strip_prefix("at(")?.strip_suffix(')')?;
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let t = time::PrimitiveDateTime::parse(inner, f).ok()?.assume_utc();
    Some((t.unix_timestamp() as u64) * 1000)
}

impl Scheduler {
    /// Fires `stack`'s schedules until stopped; `rate_every` replaces every rate's period.
    pub fn start(emu: &Emulator, stack: &Stack, rate_every: Option<Duration>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(run(
            emu.clone(),
            stack.clone(),
            rate_every,
            stop.clone(),
            counters.clone(),
        ));
        Scheduler {
            stop,
            task,
            counters,
        }
    }

    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// A scheduled event, for a target without an input of its own.
fn scheduled_event() -> Value {
    json!({
        "version": "0",
        "id": format!("{:032x}", rand::random::<u128>()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "time": crate::now_ms(),
        "detail": {},
    })
}

async fn run(
    emu: Emulator,
    stack: Stack,
    rate_every: Option<Duration>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) {
    let started = Instant::now();
    // Next firing of each rate schedule, by name.
    let mut next_rate: HashMap<String, Instant> = HashMap::new();
    // One-time schedules already fired, with the version (expression, last change) they fired
    // for: a schedule kept after completion (or whose deletion failed) fires again only once
    // it is updated or created anew.
    let mut fired_at: HashMap<String, String> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut token = None;
        loop {
            let page = match emu
                .scheduler
                .list_schedules()
                .set_next_token(token)
                .send()
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    debug!(error = %describe(&e), "ListSchedules failed");
                    break;
                }
            };
            for summary in page.schedules {
                let (Some(name), Some(target)) = (summary.name, summary.target) else {
                    continue;
                };
                let group = summary.group_name.unwrap_or_else(|| "default".into());
                let queue = stack
                    .resources
                    .values()
                    .find(|r| r.arn.as_deref() == Some(target.arn.as_str()))
                    .filter(|r| r.kind == "AWS::SQS::Queue")
                    .map(|r| r.physical.clone());
                let function = stack.binary_of(&target.arn).is_some();
                if queue.is_none() && !function {
                    continue; // another stack's
                }
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
                if s.state.as_ref().is_some_and(|st| st.as_str() == "DISABLED") {
                    continue;
                }
                let expr = s.schedule_expression.unwrap_or_default();
                let version = format!("{expr} {:?}", s.last_modification_date);
                let input = s.target.and_then(|t| t.input);
                if let Some(at) = parse_at(&expr) {
                    let key = format!("{group}/{name}");
                    if at > crate::now_ms() || fired_at.get(&key) == Some(&version) {
                        continue;
                    }
                    if fire(&emu, queue.as_deref(), &target.arn, input.as_deref()).await {
                        counters.schedules_fired.fetch_add(1, Ordering::Relaxed);
                        fired_at.insert(key, version);
                        let delete = s
                            .action_after_completion
                            .is_some_and(|a| a.as_str() == "DELETE");
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
                } else if let Some(period) = parse_rate(&expr) {
                    let every = rate_every.unwrap_or(period);
                    let due = *next_rate
                        .entry(name.clone())
                        .or_insert_with(|| started + every);
                    if Instant::now() >= due {
                        next_rate.insert(name.clone(), Instant::now() + every);
                        if fire(&emu, queue.as_deref(), &target.arn, input.as_deref()).await {
                            counters.rate_ticks.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
    }
}

/// Sends the schedule's input to its queue, or invokes its function asynchronously with it.
async fn fire(emu: &Emulator, queue: Option<&str>, target_arn: &str, input: Option<&str>) -> bool {
    let result = match queue {
        Some(url) => emu
            .sqs
            .send_message()
            .queue_url(url)
            .message_body(input.unwrap_or("{}"))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe(&e)),
        None => {
            let payload = input
                .map(str::to_owned)
                .unwrap_or_else(|| scheduled_event().to_string());
            emu.lambda
                .invoke()
                .function_name(target_arn)
                .invocation_type(InvocationType::Event)
                .payload(Blob::new(payload))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| describe(&e))
        }
    };
    match result {
        Ok(()) => true,
        Err(e) => {
            warn!(target = target_arn, error = %e, "firing a schedule failed; will retry");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_parse() {
        assert_eq!(parse_rate("rate(1 minute)"), Some(Duration::from_secs(60)));
        assert_eq!(parse_rate("rate(2 hours)"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_rate("cron(0 * * * ? *)"), None);
        assert_eq!(parse_at("at(2023-11-14T22:13:21)"), Some(1_700_000_001_000));
    }
}
