//! Tracing setup: JSON lines in Lambda (and whenever `LOG_FORMAT=json`), readable text
//! elsewhere. Level from `RUST_LOG`, default `info`. Payload bodies are never logged at info.

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT")
        .map(|v| v == "json")
        .unwrap_or(false)
        || std::env::var("AWS_LAMBDA_FUNCTION_NAME").is_ok()
            && std::env::var("AWS_LAMBDA_RUNTIME_API").is_ok()
            && std::env::var("LOG_FORMAT").is_err();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if json {
        let _ = builder.json().without_time().try_init();
    } else {
        let _ = builder.with_ansi(false).try_init();
    }
}
