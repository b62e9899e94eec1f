//! Logging the Lambda way: the template's `LoggingConfig` sets `AWS_LAMBDA_LOG_FORMAT` and
//! `AWS_LAMBDA_LOG_LEVEL`. `JSON` gives one JSON object per line (`level`, and the event's
//! `fields` with its `message`), which Lambda filters by level; anything else gives readable
//! text (with ANSI colours unless `NO_COLOR` is set). The level is `AWS_LAMBDA_LOG_LEVEL`,
//! default `INFO`; `RUST_LOG`, when it holds valid directives (`info`, `warn,steadfast=debug`),
//! replaces it. Payload bodies are never logged at info.
//!
//! The same format as lambda_runtime's own `init_default_subscriber`, with a target filter
//! instead of its regex-based env filter (a smaller binary: no regex engine).

use std::str::FromStr;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// Installs the subscriber, and a panic hook that logs the panic through it; once, at cold
/// start.
pub fn init() {
    init_with_writer(std::io::stdout);
}

/// [`init`] with the lines going to `writer`.
pub fn init_with_writer<W>(writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let var = |name: &str| std::env::var(name).ok();
    let (filter, refused) = filter(
        var("AWS_LAMBDA_LOG_LEVEL").as_deref(),
        var("RUST_LOG").as_deref(),
    );
    let lines = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_writer(writer);
    let json = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry();
    if json {
        registry.with(lines.json().with_filter(filter)).init();
    } else {
        registry.with(lines.with_filter(filter)).init();
    }
    for directive in refused {
        tracing::warn!(
            directive,
            "RUST_LOG: a directive that is not `level` or `target=level` was left out"
        );
    }
    // A release build aborts on panic (Cargo.toml): the process ends, the invocation fails
    // and its batch comes back; the log says where, within the invocation's span.
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "the function panicked; its process ends and the invocation fails");
    }));
}

/// The level filter: `AWS_LAMBDA_LOG_LEVEL` (Lambda's `FATAL` read as error; default INFO),
/// then `RUST_LOG`'s directives on top (`info`, `warn,steadfast=debug`): empty entries are
/// skipped, invalid ones left out and returned.
fn filter(lambda_level: Option<&str>, rust_log: Option<&str>) -> (Targets, Vec<String>) {
    let level = match lambda_level.map(str::trim) {
        Some(l) if l.eq_ignore_ascii_case("fatal") => LevelFilter::ERROR,
        Some(l) => LevelFilter::from_str(l).unwrap_or(LevelFilter::INFO),
        None => LevelFilter::INFO,
    };
    let mut targets = Targets::new().with_default(level);
    let mut refused = vec![];
    for directive in rust_log.unwrap_or_default().split(',').map(str::trim) {
        if directive.is_empty() {
            continue;
        }
        let (target, level) = match directive.split_once('=') {
            Some((t, l)) => (Some(t.trim()), l.trim()),
            None => (None, directive),
        };
        match (target, LevelFilter::from_str(level)) {
            (None, Ok(l)) => targets = targets.with_default(l),
            (Some(t), Ok(l)) if !t.is_empty() => targets = targets.with_target(t, l),
            _ => refused.push(directive.to_owned()),
        }
    }
    (targets, refused)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// What the subscriber writes, kept for the test to read.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The only test here that installs the global subscriber.
    #[test]
    fn with_lambdas_json_format_each_event_is_a_json_line_with_its_level_and_fields() {
        // GIVEN Lambda's logging controls at JSON and INFO, and no RUST_LOG
        std::env::set_var("AWS_LAMBDA_LOG_FORMAT", "JSON");
        std::env::set_var("AWS_LAMBDA_LOG_LEVEL", "INFO");
        std::env::remove_var("RUST_LOG");
        let out = Captured::default();
        let writer = out.clone();
        super::init_with_writer(move || writer.clone());
        // WHEN a function logs at info and at debug
        tracing::info!(delivered = 3, "logging test: batch done");
        tracing::debug!("logging test: not shown");
        // THEN the info event is one JSON line, its message and fields under `fields` (what
        // the end-to-end tests read from the functions' logs), and the debug event is left out
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let ours: Vec<serde_json::Value> = text
            .lines()
            .filter(|l| l.contains("logging test"))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(ours.len(), 1, "{text}");
        assert_eq!(ours[0]["level"], "INFO");
        assert_eq!(ours[0]["fields"]["message"], "logging test: batch done");
        assert_eq!(ours[0]["fields"]["delivered"], 3);
    }

    #[test]
    fn rust_log_directives_refine_lambdas_level_and_bad_or_empty_ones_are_left_out() {
        use tracing_subscriber::filter::LevelFilter;
        // an empty RUST_LOG, or one of commas, changes nothing (it does not open TRACE)
        for empty in ["", " , ,", ","] {
            let (t, refused) = super::filter(Some("WARN"), Some(empty));
            assert_eq!(t.default_level(), Some(LevelFilter::WARN), "{empty:?}");
            assert!(refused.is_empty());
        }
        // Lambda's FATAL reads as error; a bare level replaces it; a target refines it
        let (t, _) = super::filter(Some("FATAL"), None);
        assert_eq!(t.default_level(), Some(LevelFilter::ERROR));
        let (t, refused) =
            super::filter(Some("INFO"), Some("warn,steadfast=debug,bogus=loud,=info"));
        assert_eq!(t.default_level(), Some(LevelFilter::WARN));
        assert!(t
            .iter()
            .any(|(target, l)| target == "steadfast" && l == LevelFilter::DEBUG));
        assert_eq!(refused, vec!["bogus=loud".to_owned(), "=info".to_owned()]);
        // nothing set: INFO
        assert_eq!(
            super::filter(None, None).0.default_level(),
            Some(LevelFilter::INFO)
        );
    }
}
