//! Steadfast's adapters: the one place that speaks AWS and HTTP. Each module implements a
//! port of `steadfast_domain::ports`, behind the crate feature of the service it speaks to
//! (`dynamodb`, `sqs`, `eventbridge`, `scheduler`, `lambda`, `http`), so a function builds and
//! links only the SDK clients it uses.

pub mod clients;
pub mod config;
pub mod error;
pub mod logging;
pub mod metrics;
pub mod tls;

#[cfg(feature = "dynamodb")]
pub mod gates;
#[cfg(feature = "dynamodb")]
pub mod inbox;
#[cfg(feature = "dynamodb")]
pub mod items;
#[cfg(feature = "dynamodb")]
pub mod leased;
#[cfg(feature = "dynamodb")]
pub mod ledger;
#[cfg(feature = "dynamodb")]
pub mod outbox;

#[cfg(feature = "eventbridge")]
pub mod events;

#[cfg(feature = "sqs")]
pub mod parking;
#[cfg(feature = "sqs")]
pub mod probe;

#[cfg(feature = "scheduler")]
pub mod timers;

#[cfg(feature = "lambda")]
pub mod invoke;
#[cfg(feature = "lambda")]
pub mod switch;

#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "http")]
pub mod token;

pub use clients::Clients;
pub use config::{ConfigError, Env};
#[cfg(feature = "dynamodb")]
pub(crate) use error::{or_refused, SdkResultExt};

/// A function's cold start: logging on, the environment read, the AWS configuration loaded.
pub async fn start() -> (Env, Clients) {
    logging::init();
    let env = Env::process();
    let clients = Clients::load(&env).await;
    (env, clients)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// An SDK error with its whole chain of causes, for logs and port errors.
pub(crate) fn describe<E: std::error::Error>(e: &E) -> String {
    aws_smithy_types::error::display::DisplayErrorContext(e).to_string()
}

/// The end of an invocation as an `Instant`, from the context's deadline (ms since the Unix
/// epoch). A deadline that has already passed when the invocation starts cannot be real (some
/// local Runtime API servers send one): then `fallback` from now is used.
pub fn deadline_from(deadline_ms: u64, fallback: std::time::Duration) -> std::time::Instant {
    let now = now_ms();
    if deadline_ms <= now {
        tracing::debug!(
            deadline_ms,
            now,
            "no usable deadline from the runtime; using the configured timeout"
        );
        return std::time::Instant::now() + fallback;
    }
    std::time::Instant::now() + std::time::Duration::from_millis(deadline_ms - now)
}
