//! Logging the Lambda way, through lambda_runtime's own tracing setup: the template's
//! `LoggingConfig` sets `AWS_LAMBDA_LOG_FORMAT` and `AWS_LAMBDA_LOG_LEVEL`. `JSON` gives one
//! JSON object per line (`level`, and the event's `fields` with its `message`), which Lambda
//! filters by level; anything else gives readable text (with ANSI colours unless `NO_COLOR` is
//! set). The level is `AWS_LAMBDA_LOG_LEVEL`, default `INFO`; `RUST_LOG`, when it holds valid
//! directives, replaces it. Payload bodies are never logged at info.

/// Installs the subscriber; once, at cold start.
pub fn init() {
    lambda_runtime::tracing::init_default_subscriber();
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
        lambda_runtime::tracing::init_default_subscriber_with_writer(move || writer.clone());
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
}
