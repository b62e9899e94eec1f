//! The local stack of Steadfast (DESIGN §6): everything AWS would do for the functions, on one
//! machine, against LocalStack or moto.
//!
//! - [`template`] reads `infra/template.yaml` and resolves its intrinsic functions;
//! - [`stack`] provisions a uniquely named copy of it in the emulator;
//! - [`watch`] runs the functions' real binaries behind `cargo lambda watch`;
//! - [`plumbing`] polls the queues of every event source mapping that is Enabled in the
//!   emulator, invokes the mapped function with a real SQS event and deletes what it did not
//!   report as failed; fires due Scheduler schedules; feeds DynamoDB stream records to their
//!   mapped functions; runs rate schedules (compressible);
//! - [`portal`] is the fake target API with fault modes, recording every request;
//! - [`erp`] plays a noisy ERP for the inbox (copies, updates, late copies);
//! - [`busproxy`] injects event-bus faults between the functions and the emulator;
//! - [`local`] puts them together.

pub mod aws;
pub mod busproxy;
pub mod demo;
pub mod demo_inbox;
pub mod demo_outbox;
pub mod erp;
pub mod local;
pub mod plumbing;
pub mod portal;
pub mod stack;
pub mod template;
pub mod watch;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The workspace root (where `Cargo.toml` and `infra/` are).
pub fn workspace_root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(|p| p.parent())
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| here.to_path_buf())
}
