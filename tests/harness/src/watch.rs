//! Runs the functions' real binaries behind `cargo lambda watch` on 127.0.0.1, with the
//! stack's environment, and stops it (its whole process group, by pid) when dropped.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

pub struct Watch {
    child: Child,
    pub endpoint: String,
    pub log: PathBuf,
}

/// `cargo-lambda` from `.tools/lambda-venv` (installed by the Makefile) or from PATH.
pub fn cargo_lambda() -> PathBuf {
    let local = crate::workspace_root().join(".tools/lambda-venv/bin/cargo-lambda");
    if local.exists() {
        local
    } else {
        PathBuf::from("cargo-lambda")
    }
}

pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Watch {
    /// Starts the server and waits until it accepts connections.
    /// `timeout_s` is the invocation deadline the functions see (their configured timeout).
    pub fn start(
        port: u16,
        env: &BTreeMap<String, String>,
        log_name: &str,
        concurrency: u32,
        timeout_s: u64,
    ) -> Result<Self> {
        let root = crate::workspace_root();
        let dir = root.join("target/steadfast/logs");
        std::fs::create_dir_all(&dir)?;
        let env_file = dir.join(format!("{log_name}.env"));
        let body: String = env
            .iter()
            .map(|(k, v)| format!("{k}={}\n", env_value(v)))
            .collect();
        std::fs::write(&env_file, body)?;
        let log = dir.join(format!("{log_name}.log"));
        let out = std::fs::File::create(&log)?;
        let mut cmd = Command::new(cargo_lambda());
        cmd.current_dir(&root)
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "-A",
                "127.0.0.1",
                "-P",
            ])
            .arg(port.to_string())
            .arg("--env-file")
            .arg(&env_file)
            .args(["--concurrency", &concurrency.to_string()])
            .args(["--timeout", &timeout_s.to_string()])
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0);
        // A fixed cache keeps cargo's fingerprints stable (the zig cache path is part of them).
        if std::env::var_os("XDG_CACHE_HOME").is_none() {
            cmd.env("XDG_CACHE_HOME", root.join(".tools/cache"));
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", cargo_lambda().display()))?;
        let mut w = Watch {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(w);
            }
            if let Some(status) = w.child.try_wait()? {
                bail!(
                    "cargo lambda watch exited ({status}); see {}",
                    w.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(anyhow!(
            "cargo lambda watch did not listen on {port} within 60 s; see {}",
            w.log.display()
        ))
    }

    pub fn invoke_url(&self, function: &str) -> String {
        format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.endpoint
        )
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // The server and the function processes it started share a process group led by the
        // pid we started: end that group.
        let pgid = self.child.id();
        // `--` matters: without it some `kill`s read "-<pgid>" as an option.
        let _ = Command::new("kill")
            .args(["-s", "TERM", "--"])
            .arg(format!("-{pgid}"))
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--"])
            .arg(format!("-{pgid}"))
            .status();
        let _ = self.child.wait();
    }
}

/// A value as the env file must hold it: plain when it is simple, otherwise single-quoted
/// (taken literally), or double-quoted with escapes when it holds a single quote.
fn env_value(v: &str) -> String {
    let plain = v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./:,=@+%".contains(c));
    if plain {
        v.to_owned()
    } else if !v.contains('\'') && !v.contains('\n') {
        format!("'{v}'")
    } else {
        format!(
            "\"{}\"",
            v.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        )
    }
}
