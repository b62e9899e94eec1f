//! SDK errors as port errors: the operation, a kind from the service's error code, the whole
//! chain of causes as the message, and the SDK error kept as the source.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use steadfast_domain::ports::{ErrorKind, PortError, PortResult};

/// The kind of a service error code.
pub fn kind_of(code: &str) -> ErrorKind {
    match code {
        "ConditionalCheckFailedException" => ErrorKind::ConditionRefused,
        "ThrottlingException"
        | "Throttling"
        | "ProvisionedThroughputExceededException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "ThrottledException" => ErrorKind::Throttled,
        "ResourceNotFoundException"
        | "QueueDoesNotExist"
        | "AWS.SimpleQueueService.NonExistentQueue"
        | "NotFoundException" => ErrorKind::NotFound,
        "ValidationException" | "InvalidParameterValue" | "InvalidParameterValueException" => {
            ErrorKind::Validation
        }
        _ => ErrorKind::Other,
    }
}

/// `e` as the error of `operation`.
pub fn port_error<E, R>(operation: impl Into<String>, e: SdkError<E, R>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let kind = e
        .as_service_error()
        .and_then(|s| s.code())
        .map_or(ErrorKind::Other, kind_of);
    PortError::of(kind, operation, crate::describe(&e)).caused_by(e)
}

/// `.port(|| operation)` on an SDK call's result.
pub trait SdkResultExt<T> {
    fn port(self, operation: impl FnOnce() -> String) -> PortResult<T>;
}

impl<T, E, R> SdkResultExt<T> for Result<T, SdkError<E, R>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    fn port(self, operation: impl FnOnce() -> String) -> PortResult<T> {
        self.map_err(|e| port_error(operation(), e))
    }
}

/// A conditional write's answer: `refused` when its condition failed, the error otherwise.
pub fn or_refused<T>(result: PortResult<T>, refused: T) -> PortResult<T> {
    match result {
        Err(e) if e.kind == ErrorKind::ConditionRefused => Ok(refused),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds_callers_can_match() {
        assert_eq!(
            kind_of("ConditionalCheckFailedException"),
            ErrorKind::ConditionRefused
        );
        assert_eq!(
            kind_of("ProvisionedThroughputExceededException"),
            ErrorKind::Throttled
        );
        assert_eq!(kind_of("ThrottlingException"), ErrorKind::Throttled);
        assert_eq!(kind_of("ResourceNotFoundException"), ErrorKind::NotFound);
        assert_eq!(
            kind_of("AWS.SimpleQueueService.NonExistentQueue"),
            ErrorKind::NotFound
        );
        assert_eq!(kind_of("ValidationException"), ErrorKind::Validation);
        assert_eq!(kind_of("InternalServerError"), ErrorKind::Other);
    }

    #[test]
    fn a_refused_condition_is_an_answer_and_anything_else_stays_an_error() {
        let refused = PortError::of(ErrorKind::ConditionRefused, "UpdateItem", "no");
        assert_eq!(or_refused::<bool>(Err(refused), false), Ok(false));
        let down = PortError::new("UpdateItem", "down");
        assert_eq!(or_refused::<bool>(Err(down.clone()), false), Err(down));
        assert_eq!(or_refused(Ok(true), false), Ok(true));
    }
}
