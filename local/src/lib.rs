//! The local stack of Steadfast (DESIGN §6): the deployed template on LocalStack, and what a
//! user's environment would add around it.
//!
//! - [`stack`] deploys a uniquely named copy of `infra/template.yaml` through LocalStack's
//!   CloudFormation with the functions' real code (`infra/local/deploy.py`); LocalStack runs
//!   the functions as local processes (`infra/local/process_executor.py`) and drives them by
//!   its own queue and stream mappings and async invokes;
//! - [`schedules`] fires EventBridge Scheduler schedules, which no emulator does (one-time
//!   probe timers, rate sweeps, compressible);
//! - [`portal`] is the fake target API with fault modes, recording every request;
//! - [`erp`] plays a noisy ERP for the inbox (copies, updates, late copies);
//! - [`faults`] injects AWS faults and crashes between the functions and the emulator;
//! - [`template`] reads parameter defaults from the template;
//! - [`local`] puts them together.

pub mod aws;
pub mod demo;
pub mod demo_inbox;
pub mod demo_outbox;
pub mod erp;
pub mod faults;
pub mod load;
pub mod local;
pub mod portal;
pub mod schedules;
pub mod stack;
pub mod template;

pub use steadfast_aws::now_ms;

/// The workspace root (where `Cargo.toml` and `infra/` are).
pub fn workspace_root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| here.to_path_buf())
}

/// Serves `app` on `listener` in the background until `shutdown` is notified (the fake
/// portal's and the fault proxy's servers), with each connection's peer address at hand
/// (`ConnectInfo`: the fault proxy finds a calling process by it).
pub(crate) fn serve_until(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: std::sync::Arc<tokio::sync::Notify>,
) {
    tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.notified().await })
            .await;
    });
}

/// Writes a report as pretty JSON to `target/steadfast/<name>`; its path.
pub fn write_report(name: &str, report: &serde_json::Value) -> anyhow::Result<std::path::PathBuf> {
    let dir = workspace_root().join("target/steadfast");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(report)?)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(path)
}
