//! The stack's functions: invoking one as `aws lambda invoke` does, reading the log each one
//! writes (as LocalStack's process executor keeps it), and the Scheduler's firing counts.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use anyhow::{anyhow, bail, Result};
use aws_sdk_lambda::primitives::Blob;
use serde_json::Value;

use super::Local;
use crate::aws::describe;

/// Where LocalStack's process executor appends each function's output.
pub fn lambda_log_dir() -> PathBuf {
    crate::workspace_root().join("target/steadfast/lambda-logs")
}

/// Where the process executor keeps the pids of each function's running processes.
pub fn pid_dir() -> PathBuf {
    lambda_log_dir().join("pids")
}

/// The log function `name` wrote so far; empty when it wrote none.
fn log_text(name: &str) -> String {
    std::fs::read_to_string(lambda_log_dir().join(format!("{name}.log"))).unwrap_or_default()
}

impl Local {
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

    /// The JSON lines a function of this stack wrote so far (its own log, as LocalStack's
    /// process executor kept it), e.g. to count what it reported per invocation.
    pub fn function_log(&self, binary: &str) -> Result<Vec<Value>> {
        let f = self.stack.function(binary)?;
        Ok(log_text(&f.name)
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
        log_text(&f.name)
            .lines()
            .filter(|l| l.starts_with("START RequestId"))
            .count() as u64
    }

    /// A function's peak memory over its invocations so far, in MB (the REPORT lines' Max
    /// Memory Used: each process's peak resident memory), and how many REPORT lines said so.
    pub fn peak_memory_mb(&self, binary: &str) -> (u64, u64) {
        let Ok(f) = self.stack.function(binary) else {
            return (0, 0);
        };
        let text = log_text(&f.name);
        let peaks: Vec<u64> = text
            .lines()
            .filter(|l| l.starts_with("REPORT RequestId"))
            .filter_map(|l| l.split("Max Memory Used: ").nth(1))
            .filter_map(|rest| rest.split(' ').next()?.parse().ok())
            .collect();
        (peaks.iter().copied().max().unwrap_or(0), peaks.len() as u64)
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
                s.counters.schedules_fired.load(Ordering::Relaxed),
                s.counters.rate_ticks.load(Ordering::Relaxed),
            )
        })
    }
}
