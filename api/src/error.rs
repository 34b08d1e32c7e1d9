//! The one error type of Souk's boundaries. Each failure has a stable [`ErrorCode`]
//! that fixes its HTTP status (and, with the gRPC issue, its gRPC status); clients
//! branch on `code`, people read `detail`. Responses are RFC 9457
//! `application/problem+json`.

use std::fmt;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

macro_rules! error_codes {
    ($( $variant:ident => ($code:literal, $status:ident, $kind:literal, $title:literal), )*) => {
        /// Stable machine-readable error codes. Never rename one: add a new one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $( $variant, )* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            pub fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )* }
            }

            pub fn status(self) -> StatusCode {
                match self { $( ErrorCode::$variant => StatusCode::$status, )* }
            }

            /// Broad family: `invalid_request`, `auth`, `conflict`, `system`.
            pub fn kind(self) -> &'static str {
                match self { $( ErrorCode::$variant => $kind, )* }
            }

            pub fn title(self) -> &'static str {
                match self { $( ErrorCode::$variant => $title, )* }
            }

            /// The gRPC status code of the same failure, derived from the HTTP status so
            /// the two boundaries can never disagree.
            pub fn grpc_code(self) -> tonic::Code {
                grpc_code_of(self, self.status())
            }
        }
    };
}

error_codes! {
    MalformedJson => ("malformed_json", BAD_REQUEST, "invalid_request", "The body is not valid JSON"),
    InvalidBody => ("invalid_body", BAD_REQUEST, "invalid_request", "The body does not have the expected shape"),
    ValidationFailed => ("validation_failed", UNPROCESSABLE_ENTITY, "invalid_request", "One or more fields are invalid"),
    InvalidQuery => ("invalid_query", BAD_REQUEST, "invalid_request", "The query string is invalid"),
    InvalidCursor => ("invalid_cursor", BAD_REQUEST, "invalid_request", "The pagination cursor is invalid"),
    UnsupportedMediaType => ("unsupported_media_type", UNSUPPORTED_MEDIA_TYPE, "invalid_request", "The body must be application/json"),
    PayloadTooLarge => ("payload_too_large", PAYLOAD_TOO_LARGE, "invalid_request", "The body is too large"),
    RouteNotFound => ("route_not_found", NOT_FOUND, "invalid_request", "No such endpoint"),
    MethodNotAllowed => ("method_not_allowed", METHOD_NOT_ALLOWED, "invalid_request", "Method not allowed on this endpoint"),
    MissingToken => ("missing_token", UNAUTHORIZED, "auth", "Authentication required"),
    InvalidToken => ("invalid_token", UNAUTHORIZED, "auth", "The access token is invalid"),
    TokenExpired => ("token_expired", UNAUTHORIZED, "auth", "The access token has expired"),
    InvalidCredentials => ("invalid_credentials", UNAUTHORIZED, "auth", "Wrong email or password"),
    InvalidRefreshToken => ("invalid_refresh_token", UNAUTHORIZED, "auth", "The refresh token is invalid, expired or revoked"),
    RefreshTokenReused => ("refresh_token_reused", UNAUTHORIZED, "auth", "The refresh token was already used; the session is revoked"),
    AccountDisabled => ("account_disabled", FORBIDDEN, "auth", "The account is disabled"),
    Forbidden => ("forbidden", FORBIDDEN, "auth", "Not allowed"),
    WrongPassword => ("wrong_password", FORBIDDEN, "auth", "The current password is wrong"),
    InvalidVerificationToken => ("invalid_verification_token", BAD_REQUEST, "auth", "The email-verification token is invalid, used or expired"),
    AlreadyReplayed => ("already_replayed", CONFLICT, "conflict", "The dead letter was already replayed"),
    InvalidResetToken => ("invalid_reset_token", BAD_REQUEST, "auth", "The password-reset token is invalid, used or expired"),
    RateLimited => ("rate_limited", TOO_MANY_REQUESTS, "auth", "Too many attempts; retry later"),
    NotFound => ("not_found", NOT_FOUND, "invalid_request", "Not found"),
    EmailTaken => ("email_taken", CONFLICT, "conflict", "The email address is already registered"),
    SkuTaken => ("sku_taken", CONFLICT, "conflict", "The SKU is already used by another product"),
    SlugTaken => ("slug_taken", CONFLICT, "conflict", "The slug is already used by another category"),
    CategoryNotEmpty => ("category_not_empty", CONFLICT, "conflict", "The category still has sub-categories or products"),
    CategoryCycle => ("category_cycle", CONFLICT, "conflict", "A category cannot be placed under itself or its descendants"),
    IllegalTransition => ("illegal_transition", CONFLICT, "conflict", "The order cannot make this transition now"),
    OrderExpired => ("order_expired", CONFLICT, "conflict", "The order expired before it was paid"),
    PaymentDeclined => ("payment_declined", PAYMENT_REQUIRED, "conflict", "The payment was declined"),
    IdempotencyKeyReused => ("idempotency_key_reused", UNPROCESSABLE_ENTITY, "invalid_request", "The Idempotency-Key was used with a different request"),
    InsufficientStock => ("insufficient_stock", CONFLICT, "conflict", "Not enough stock available"),
    BelowReserved => ("below_reserved", CONFLICT, "conflict", "On-hand stock cannot go below what is reserved"),
    CannotModifySelf => ("cannot_modify_self", CONFLICT, "conflict", "Admins cannot do this to their own account"),
    ServiceUnavailable => ("service_unavailable", SERVICE_UNAVAILABLE, "system", "A dependency is unavailable"),
    DependencyUnavailable => ("dependency_unavailable", SERVICE_UNAVAILABLE, "system", "A Souk service this one depends on is unreachable"),
    Internal => ("internal", INTERNAL_SERVER_ERROR, "system", "Internal error"),
}

fn grpc_code_of(code: ErrorCode, status: StatusCode) -> tonic::Code {
    use tonic::Code;
    match (code, status.as_u16()) {
        (ErrorCode::EmailTaken | ErrorCode::SkuTaken | ErrorCode::SlugTaken, _) => {
            Code::AlreadyExists
        }
        (ErrorCode::RouteNotFound | ErrorCode::MethodNotAllowed, _) => Code::Unimplemented,
        (_, 400 | 413 | 415 | 422) => Code::InvalidArgument,
        (_, 401) => Code::Unauthenticated,
        (_, 403) => Code::PermissionDenied,
        (_, 404) => Code::NotFound,
        (_, 402 | 409) => Code::FailedPrecondition,
        (_, 429) => Code::ResourceExhausted,
        (_, 503) => Code::Unavailable,
        _ => Code::Internal,
    }
}

/// One invalid field of a request, named by its JSON path.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Link to this code's entry in the served documentation.
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    /// Stable machine code, e.g. `validation_failed`.
    pub code: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Debug)]
pub struct Error {
    code: ErrorCode,
    detail: String,
    field_errors: Vec<FieldError>,
    retry_after_secs: Option<u64>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            field_errors: Vec::new(),
            retry_after_secs: None,
        }
    }

    /// An error whose detail is its code's title.
    pub fn from_code(code: ErrorCode) -> Self {
        Self::new(code, code.title())
    }

    pub fn validation(field_errors: Vec<FieldError>) -> Self {
        let detail = field_errors
            .iter()
            .map(|error| format!("{}: {}", error.field, error.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            field_errors,
            ..Self::new(ErrorCode::ValidationFailed, detail)
        }
    }

    pub fn with_fields(mut self, field_errors: Vec<FieldError>) -> Self {
        self.field_errors = field_errors;
        self
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs.max(1)),
            ..Self::new(
                ErrorCode::RateLimited,
                format!("too many attempts; retry in {} s", retry_after_secs.max(1)),
            )
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// Logs the cause with its details and answers a bare 500: causes can hold data
    /// that is not the client's to see.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::from_code(ErrorCode::Internal)
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    pub fn field_errors(&self) -> &[FieldError] {
        &self.field_errors
    }

    pub fn problem(&self) -> Problem {
        Problem {
            type_uri: format!("/api/v1/docs#error-{}", self.code.as_str()),
            title: self.code.title().to_owned(),
            status: self.code.status().as_u16(),
            code: self.code.as_str().to_owned(),
            detail: self.detail.clone(),
            errors: self.field_errors.clone(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.code.as_str(), self.detail)
    }
}

impl std::error::Error for Error {}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.content_type(PROBLEM_CONTENT_TYPE);
        if let Some(seconds) = self.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        if self.code == ErrorCode::MissingToken
            || self.code == ErrorCode::InvalidToken
            || self.code == ErrorCode::TokenExpired
        {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        response.json(self.problem())
    }
}

impl From<souk_db::DbError> for Error {
    fn from(error: souk_db::DbError) -> Self {
        match error {
            souk_db::DbError::Sqlx(sqlx::Error::PoolTimedOut) => {
                tracing::warn!("database pool timed out");
                Error::new(
                    ErrorCode::ServiceUnavailable,
                    "the database is not answering",
                )
            }
            other => Error::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            assert!(
                seen.insert(code.as_str()),
                "duplicate code {}",
                code.as_str()
            );
            assert!(code
                .as_str()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }
}
