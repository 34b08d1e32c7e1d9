//! The one error type of Souk, as a gRPC status: the code follows from the
//! [`ErrorCode`](crate::error::ErrorCode), the stable problem code travels as
//! `ErrorInfo.reason`, invalid fields as `BadRequest` field violations, and the pause
//! REST sends as `Retry-After` as `RetryInfo.retry_delay`.

use std::collections::HashMap;
use std::time::Duration;

use tonic_types::{ErrorDetails, StatusExt};

use crate::error::{Error, ErrorCode, FieldError};

/// The `ErrorInfo.domain` of every Souk status.
pub const ERROR_DOMAIN: &str = "souk";

/// The gRPC status code of an error code, derived from its HTTP status so the two
/// edges can never disagree.
pub fn grpc_code(code: ErrorCode) -> tonic::Code {
    use tonic::Code;
    match (code, code.http_status()) {
        (
            ErrorCode::EmailTaken
            | ErrorCode::SkuTaken
            | ErrorCode::SlugTaken
            | ErrorCode::ShippingMethodTaken,
            _,
        ) => Code::AlreadyExists,
        (ErrorCode::RouteNotFound | ErrorCode::MethodNotAllowed, _) => Code::Unimplemented,
        (_, 400 | 413 | 415 | 422) => Code::InvalidArgument,
        (_, 401) => Code::Unauthenticated,
        (_, 408) => Code::DeadlineExceeded,
        (_, 403) => Code::PermissionDenied,
        (_, 404) => Code::NotFound,
        (_, 402 | 409) => Code::FailedPrecondition,
        (_, 429) => Code::ResourceExhausted,
        (_, 503) => Code::Unavailable,
        _ => Code::Internal,
    }
}

/// What a gRPC handler may fail with: a domain error, or a status it built itself.
pub trait IntoStatus {
    fn into_status(self) -> tonic::Status;
}

impl IntoStatus for Error {
    fn into_status(self) -> tonic::Status {
        let mut details = ErrorDetails::new();
        details.set_error_info(self.code().as_str(), ERROR_DOMAIN, HashMap::new());
        for field in self.field_errors() {
            details.add_bad_request_violation(field.field.clone(), field.message.clone());
        }
        if let Some(seconds) = self.retry_after_secs() {
            details.set_retry_info(Some(Duration::from_secs(seconds)));
        }
        tonic::Status::with_error_details(grpc_code(self.code()), self.detail(), details)
    }
}

impl IntoStatus for tonic::Status {
    fn into_status(self) -> tonic::Status {
        self
    }
}

impl IntoStatus for souk_db::DbError {
    fn into_status(self) -> tonic::Status {
        Error::from(self).into_status()
    }
}

/// For `.map_err(to_status)?` in handlers.
pub fn to_status(error: impl IntoStatus) -> tonic::Status {
    error.into_status()
}

/// The Souk error carried by a status from another Souk service; a status without
/// Souk details (a transport failure) becomes `fallback`.
pub fn error_from_status(status: &tonic::Status, fallback: ErrorCode) -> Error {
    let code = status
        .get_details_error_info()
        .filter(|info| info.domain == ERROR_DOMAIN)
        .and_then(|info| {
            ErrorCode::ALL
                .iter()
                .copied()
                .find(|code| code.as_str() == info.reason)
        })
        .unwrap_or(fallback);
    let fields = status
        .get_details_bad_request()
        .map(|bad_request| {
            bad_request
                .field_violations
                .into_iter()
                .map(|violation| FieldError::new(violation.field, violation.description))
                .collect()
        })
        .unwrap_or_default();
    let retry_after_secs = status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .map(|delay| delay.as_secs_f64().ceil() as u64);
    let error = match retry_after_secs {
        Some(seconds) => Error::unavailable_retry_after(code, status.message(), seconds),
        None => Error::new(code, status.message()),
    };
    error.with_fields(fields)
}

/// Whether a failed call may have never reached a Souk handler (connection refused,
/// deadline, overload): those are the failures worth a retry or a circuit breaker. A
/// status a Souk service wrote (its `ErrorInfo` domain `souk`, or a service's own such
/// as `souk.inventory`) is that service's answer, even when it says "retry".
pub fn is_transport_failure(status: &tonic::Status) -> bool {
    let from_souk = status.get_details_error_info().is_some_and(|info| {
        info.domain == ERROR_DOMAIN
            || info
                .domain
                .strip_prefix(ERROR_DOMAIN)
                .is_some_and(|service| service.starts_with('.'))
    });
    !from_souk
        && matches!(
            status.code(),
            tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Unknown
                | tonic::Code::Cancelled
                | tonic::Code::ResourceExhausted
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_keep_their_code_and_fields_across_the_wire() {
        let error = Error::validation(vec![FieldError::new(
            "items[0].quantity",
            "must be 1 to 100",
        )]);
        let status = to_status(error);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let back = error_from_status(&status, ErrorCode::Internal);
        assert_eq!(back.code(), ErrorCode::ValidationFailed);
        assert_eq!(back.field_errors()[0].field, "items[0].quantity");
    }

    #[test]
    fn the_pause_before_a_retry_crosses_the_wire() {
        let status = to_status(Error::rate_limited(7));
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(
            status
                .get_details_retry_info()
                .and_then(|info| info.retry_delay),
            Some(Duration::from_secs(7))
        );
        let back = error_from_status(&status, ErrorCode::Internal);
        assert_eq!(back.code(), ErrorCode::RateLimited);
        assert_eq!(back.retry_after_secs(), Some(7));
        let without = error_from_status(&to_status(Error::not_found("order")), ErrorCode::Internal);
        assert_eq!(without.retry_after_secs(), None);
    }

    #[test]
    fn every_code_has_a_grpc_code_matching_its_http_family() {
        for code in ErrorCode::ALL {
            let grpc = grpc_code(*code);
            assert_ne!(grpc, tonic::Code::Ok, "{}", code.as_str());
            if code.http_status() >= 500 {
                assert!(
                    matches!(grpc, tonic::Code::Internal | tonic::Code::Unavailable),
                    "{} maps to {grpc:?}",
                    code.as_str()
                );
            }
        }
        assert_eq!(grpc_code(ErrorCode::NotFound), tonic::Code::NotFound);
        assert_eq!(
            grpc_code(ErrorCode::MissingToken),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            grpc_code(ErrorCode::Forbidden),
            tonic::Code::PermissionDenied
        );
    }

    #[test]
    fn transport_failures_are_told_apart_from_souk_refusals() {
        assert!(is_transport_failure(&tonic::Status::unavailable(
            "connection refused"
        )));
        let refusal = to_status(Error::new(ErrorCode::ServiceUnavailable, "db down"));
        assert!(!is_transport_failure(&refusal));
    }
}
