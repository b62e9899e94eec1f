//! The error every port returns: which operation failed, a kind the caller can match on, what
//! the service said, and the source error itself (kept, not turned into text).

use std::error::Error;
use std::sync::Arc;

/// What kind of failure a port call met; callers decide by this, never by the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A conditional write refused because the item is not as expected. Adapters usually turn
    /// this into an answer (`Ok(false)`, `None`); it is an error only where it is unexpected.
    ConditionRefused,
    /// The service throttled the call: it may work later.
    Throttled,
    /// The resource (table, queue, function, schedule) does not exist.
    NotFound,
    /// The request itself is refused as invalid (a key over the size limit, a bad parameter):
    /// retrying it can never help.
    Validation,
    /// What came back cannot be read (an item with a required attribute missing or
    /// malformed): retrying it can never help.
    Malformed,
    /// Anything else: an outage, a network error.
    Other,
}

/// A failed call to the outside world.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct PortError {
    /// The operation and what it was about (`UpdateItem claim APP-1 in outbox`).
    pub operation: String,
    pub kind: ErrorKind,
    /// What went wrong, for logs (the source's whole chain of causes).
    pub message: String,
    #[source]
    pub source: Option<Arc<dyn Error + Send + Sync + 'static>>,
}

impl PartialEq for PortError {
    fn eq(&self, other: &Self) -> bool {
        self.operation == other.operation
            && self.kind == other.kind
            && self.message == other.message
    }
}

impl Eq for PortError {}

impl PortError {
    /// A failure of kind [`ErrorKind::Other`] with no source error.
    pub fn new(operation: impl Into<String>, message: impl std::fmt::Display) -> Self {
        PortError::of(ErrorKind::Other, operation, message)
    }

    /// A failure of the given kind with no source error.
    pub fn of(
        kind: ErrorKind,
        operation: impl Into<String>,
        message: impl std::fmt::Display,
    ) -> Self {
        PortError {
            operation: operation.into(),
            kind,
            message: message.to_string(),
            source: None,
        }
    }

    /// A request refused as invalid: retrying it can never help.
    pub fn invalid(operation: impl Into<String>, message: impl std::fmt::Display) -> Self {
        PortError::of(ErrorKind::Validation, operation, message)
    }

    /// Keeps `source` as this error's cause.
    pub fn caused_by(mut self, source: impl Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    pub fn is_invalid(&self) -> bool {
        self.kind == ErrorKind::Validation
    }
}

pub type PortResult<T> = Result<T, PortError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_is_kept_and_the_kind_decides() {
        let io = std::io::Error::other("socket closed");
        let e = PortError::of(ErrorKind::Throttled, "Query outbox", "slow down").caused_by(io);
        assert_eq!(e.to_string(), "Query outbox: slow down");
        assert_eq!(
            e.source().map(|s| s.to_string()).as_deref(),
            Some("socket closed")
        );
        assert!(!e.is_invalid());
        assert!(PortError::invalid("GetItem", "key too long").is_invalid());
    }
}
