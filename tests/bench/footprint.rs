//! Footprint of each function as the local stack runs it (`make bench` deploys the release
//! build): the artifact's size, the cold init (process start to the first Runtime API request,
//! on this host), and the peak resident memory of its processes over the bench's runs.
//!
//! Cold init is measured here, not in the stack: the bench starts the function's `bootstrap`
//! with the deployed function's environment and a Runtime API of its own on 127.0.0.1, and
//! times the moment the first request arrives (the median of [`COLD_STARTS`] starts). Peak
//! memory is the larger of its live processes' high-water mark (`VmHWM`, kB, read through the
//! pids LocalStack's process executor keeps) and the highest `Max Memory Used` its REPORT
//! lines gave (MB, every process, ended ones too).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};
use steadfast_local::local::{lambda_log_dir, Local};
use tokio::net::TcpListener;

/// Starts per function for its cold init.
const COLD_STARTS: usize = 5;

/// Every function of the stack, as its binary is named.
pub const FUNCTIONS: [&str; 8] = [
    "processor",
    "close",
    "open",
    "backoff",
    "outbox-writer",
    "outbox-relay",
    "inbox-receiver",
    "inbox-processor",
];

fn artifact_dir(binary: &str) -> PathBuf {
    steadfast_local::workspace_root().join(format!("target/lambda-local/{binary}"))
}

/// Size, cold init and peak memory of every function of `l`'s stack.
pub async fn part(l: &Local) -> Result<Value> {
    let mut out = BTreeMap::new();
    for binary in FUNCTIONS {
        let dir = artifact_dir(binary);
        let bytes = std::fs::metadata(dir.join("bootstrap"))
            .with_context(|| format!("{}/bootstrap", dir.display()))?
            .len();
        let zip_bytes = std::fs::metadata(dir.join("bootstrap.zip")).map_or(0, |m| m.len());
        let env = function_env(l, binary).await?;
        let mut inits = Vec::with_capacity(COLD_STARTS);
        for _ in 0..COLD_STARTS {
            inits.push(cold_init(&dir.join("bootstrap"), &env).await?);
        }
        inits.sort_by(f64::total_cmp);
        let name = &l.stack.function(binary)?.name;
        // Live processes give kB; ended ones left their REPORT lines (MB).
        let reported_kb = l.peak_memory_mb(binary).0 * 1024;
        let (peak_kb, from) = match live_peak_kb(name) {
            Some(kb) if kb >= reported_kb => (Some(kb), "VmHWM"),
            _ if reported_kb > 0 => (Some(reported_kb), "REPORT"),
            // Not invoked during the bench (the gate's functions act on faults only).
            _ => (None, "not invoked"),
        };
        out.insert(
            binary.to_owned(),
            json!({
                "bytes": bytes,
                "zip_bytes": zip_bytes,
                "cold_init_ms": round2(inits[inits.len() / 2]),
                "cold_init_ms_max": round2(inits[inits.len() - 1]),
                "peak_rss_kb": peak_kb,
                "peak_rss_from": from,
                "invocations": l.invocations_of(binary),
            }),
        );
    }
    Ok(json!(out))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The deployed function's environment as Lambda reports it, with what the Lambda service
/// adds to every environment (the runtime API comes per start).
async fn function_env(l: &Local, binary: &str) -> Result<Vec<(String, String)>> {
    let f = l.stack.function(binary)?;
    let conf = l
        .emu
        .lambda
        .get_function_configuration()
        .function_name(&f.name)
        .send()
        .await
        .map_err(|e| anyhow!("GetFunctionConfiguration {}: {e:?}", f.name))?;
    let mut env: Vec<(String, String)> = conf
        .environment
        .and_then(|e| e.variables)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let memory = conf.memory_size.unwrap_or(128).to_string();
    env.extend(
        [
            ("AWS_ENDPOINT_URL", l.emu.endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_LAMBDA_FUNCTION_NAME", f.name.as_str()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory.as_str()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
            ("RUST_LOG", "warn"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    Ok(env)
}

/// Milliseconds from spawning `bootstrap` to its first Runtime API request.
async fn cold_init(bootstrap: &Path, env: &[(String, String)]) -> Result<f64> {
    let api = TcpListener::bind("127.0.0.1:0").await?;
    let addr = api.local_addr()?;
    let start = Instant::now();
    let mut child = tokio::process::Command::new(bootstrap)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bootstrap.display()))?;
    let first = tokio::select! {
        asked = api.accept() => asked.map(|_| start.elapsed().as_secs_f64() * 1000.0).map_err(anyhow::Error::from),
        ended = child.wait() => Err(anyhow!(
            "{} ended ({}) before asking for an invocation",
            bootstrap.display(),
            ended.map_or_else(|e| e.to_string(), |s| s.to_string())
        )),
        _ = tokio::time::sleep(Duration::from_secs(20)) => Err(anyhow!(
            "{} asked for no invocation within 20 s",
            bootstrap.display()
        )),
    };
    child.kill().await.ok();
    first
}

/// The highest `VmHWM` (kB) among the function's live processes.
fn live_peak_kb(function_name: &str) -> Option<u64> {
    let dir = lambda_log_dir().join("pids").join(function_name);
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|pid| {
            let status =
                std::fs::read_to_string(format!("/proc/{}/status", pid.file_name().to_str()?))
                    .ok()?;
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .max()
}
