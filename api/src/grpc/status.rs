//! The one error type of Souk, as a gRPC status: the code follows from the
//! [`ErrorCode`](crate::error::ErrorCode), the stable problem code travels as
//! `ErrorInfo.reason`, and invalid fields as `BadRequest` field violations.

use std::collections::HashMap;

use tonic_types::{ErrorDetails, StatusExt};

use crate::error::{Error, ErrorCode, FieldError};

/// The `ErrorInfo.domain` of every Souk status.
pub const ERROR_DOMAIN: &str = "souk";

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        let mut details = ErrorDetails::new();
        details.set_error_info(error.code().as_str(), ERROR_DOMAIN, HashMap::new());
        for field in error.field_errors() {
            details.add_bad_request_violation(field.field.clone(), field.message.clone());
        }
        tonic::Status::with_error_details(error.code().grpc_code(), error.detail(), details)
    }
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
    Error::new(code, status.message()).with_fields(fields)
}

/// Whether a failed call may have never reached a Souk handler (connection refused,
/// deadline, overload): those are the failures worth a retry or a circuit breaker.
pub fn is_transport_failure(status: &tonic::Status) -> bool {
    let from_souk = status
        .get_details_error_info()
        .is_some_and(|info| info.domain == ERROR_DOMAIN);
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
        let status = tonic::Status::from(error);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let back = error_from_status(&status, ErrorCode::Internal);
        assert_eq!(back.code(), ErrorCode::ValidationFailed);
        assert_eq!(back.field_errors()[0].field, "items[0].quantity");
    }

    #[test]
    fn every_code_has_a_grpc_code_matching_its_http_family() {
        for code in ErrorCode::ALL {
            let grpc = code.grpc_code();
            assert_ne!(grpc, tonic::Code::Ok, "{}", code.as_str());
            if code.status().is_server_error() {
                assert!(
                    matches!(grpc, tonic::Code::Internal | tonic::Code::Unavailable),
                    "{} maps to {grpc:?}",
                    code.as_str()
                );
            }
        }
        assert_eq!(ErrorCode::NotFound.grpc_code(), tonic::Code::NotFound);
        assert_eq!(
            ErrorCode::MissingToken.grpc_code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            ErrorCode::Forbidden.grpc_code(),
            tonic::Code::PermissionDenied
        );
    }

    #[test]
    fn transport_failures_are_told_apart_from_souk_refusals() {
        assert!(is_transport_failure(&tonic::Status::unavailable(
            "connection refused"
        )));
        let refusal = tonic::Status::from(Error::new(ErrorCode::ServiceUnavailable, "db down"));
        assert!(!is_transport_failure(&refusal));
    }
}
