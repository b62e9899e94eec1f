//! Steadfast's adapters: the one place that speaks AWS and HTTP. Each module implements a
//! port of `steadfast_domain::ports`.

pub mod clients;
pub mod config;
pub mod events;
pub mod gates;
pub mod http;
pub mod inbox;
pub mod invoke;
pub mod items;
pub mod ledger;
pub mod logging;
pub mod metrics;
pub mod outbox;
pub mod parking;
pub mod probe;
pub mod switch;
pub mod timers;
pub mod token;

pub use clients::Clients;
pub use config::{ConfigError, Env};

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

/// A port error from an SDK error that keeps its kind: a `ValidationException` (the request
/// itself is refused, e.g. a key over DynamoDB's size limit) can never succeed.
pub(crate) fn port_error<E, R>(
    operation: impl Into<String>,
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> steadfast_domain::ports::PortError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use steadfast_domain::ports::PortError;
    let invalid = e
        .as_service_error()
        .and_then(|s| s.code())
        .is_some_and(|c| c == "ValidationException" || c == "InvalidParameterValue");
    if invalid {
        PortError::invalid(operation, describe(e))
    } else {
        PortError::new(operation, describe(e))
    }
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
