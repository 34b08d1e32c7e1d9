//! The one error type of every domain. Each failure has a stable [`ErrorCode`] from one
//! table, with its HTTP status number, family and title; the edges (`souk-api`) map it
//! to `application/problem+json` and to a gRPC status. Clients branch on `code`, people
//! read `detail`.

use std::fmt;

use serde::Serialize;
use utoipa::ToSchema;

macro_rules! error_codes {
    ($( $variant:ident => ($code:literal, $status:literal, $kind:literal, $title:literal), )*) => {
        /// Stable machine-readable error codes. Never rename one: add a new one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $( $variant, )* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            pub fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )* }
            }

            /// The HTTP status number of this failure (the gRPC status derives from it).
            pub fn http_status(self) -> u16 {
                match self { $( ErrorCode::$variant => $status, )* }
            }

            /// Broad family: `invalid_request`, `auth`, `conflict`, `system`.
            pub fn kind(self) -> &'static str {
                match self { $( ErrorCode::$variant => $kind, )* }
            }

            pub fn title(self) -> &'static str {
                match self { $( ErrorCode::$variant => $title, )* }
            }
        }
    };
}

error_codes! {
    MalformedJson => ("malformed_json", 400, "invalid_request", "The body is not valid JSON"),
    InvalidBody => ("invalid_body", 400, "invalid_request", "The body does not have the expected shape"),
    ValidationFailed => ("validation_failed", 422, "invalid_request", "One or more fields are invalid"),
    InvalidQuery => ("invalid_query", 400, "invalid_request", "The query string is invalid"),
    InvalidCursor => ("invalid_cursor", 400, "invalid_request", "The pagination cursor is invalid"),
    UnsupportedMediaType => ("unsupported_media_type", 415, "invalid_request", "The body must be application/json"),
    PayloadTooLarge => ("payload_too_large", 413, "invalid_request", "The body is too large"),
    RequestTimeout => ("request_timeout", 408, "invalid_request", "The body was not received in time"),
    RouteNotFound => ("route_not_found", 404, "invalid_request", "No such endpoint"),
    MethodNotAllowed => ("method_not_allowed", 405, "invalid_request", "Method not allowed on this endpoint"),
    MissingToken => ("missing_token", 401, "auth", "Authentication required"),
    InvalidToken => ("invalid_token", 401, "auth", "The access token is invalid"),
    TokenExpired => ("token_expired", 401, "auth", "The access token has expired"),
    InvalidCredentials => ("invalid_credentials", 401, "auth", "Wrong email or password"),
    InvalidRefreshToken => ("invalid_refresh_token", 401, "auth", "The refresh token is invalid, expired or revoked"),
    RefreshTokenReused => ("refresh_token_reused", 401, "auth", "The refresh token was already used; the session is revoked"),
    AccountDisabled => ("account_disabled", 403, "auth", "The account is disabled"),
    Forbidden => ("forbidden", 403, "auth", "Not allowed"),
    WrongPassword => ("wrong_password", 403, "auth", "The current password is wrong"),
    AlreadyVerified => ("already_verified", 409, "auth", "The email address is already verified"),
    InvalidVerificationToken => ("invalid_verification_token", 400, "auth", "The email-verification token is invalid, used or expired"),
    AlreadyReplayed => ("already_replayed", 409, "conflict", "The dead letter was already replayed"),
    InvalidResetToken => ("invalid_reset_token", 400, "auth", "The password-reset token is invalid, used or expired"),
    RateLimited => ("rate_limited", 429, "auth", "Too many attempts; retry later"),
    NotFound => ("not_found", 404, "invalid_request", "Not found"),
    EmailTaken => ("email_taken", 409, "conflict", "The email address is already registered"),
    SkuTaken => ("sku_taken", 409, "conflict", "The SKU is already used by another product"),
    SlugTaken => ("slug_taken", 409, "conflict", "The slug is already used by another category"),
    CategoryNotEmpty => ("category_not_empty", 409, "conflict", "The category still has sub-categories or products"),
    CategoryCycle => ("category_cycle", 409, "conflict", "A category cannot be placed under itself or its descendants"),
    IllegalTransition => ("illegal_transition", 409, "conflict", "The order cannot make this transition now"),
    OrderExpired => ("order_expired", 409, "conflict", "The order expired before it was paid"),
    PaymentDeclined => ("payment_declined", 402, "conflict", "The payment was declined"),
    InvalidSignature => ("invalid_signature", 401, "auth", "The webhook signature is missing, wrong or outside the time tolerance"),
    ReturnWindowClosed => ("return_window_closed", 409, "conflict", "The order was delivered too long ago to be returned"),
    EventInProgress => ("event_in_progress", 409, "conflict", "The event is being processed; retry it later"),
    IdempotencyKeyReused => ("idempotency_key_reused", 422, "invalid_request", "The Idempotency-Key was used with a different request"),
    InsufficientStock => ("insufficient_stock", 409, "conflict", "Not enough stock available"),
    PurchaseLimit => ("purchase_limit", 409, "conflict", "The customer already holds the most units of this SKU allowed in unpaid orders"),
    UnpaidOrderLimit => ("unpaid_order_limit", 409, "conflict", "The customer already has the most unpaid orders allowed"),
    ShippingMethodTaken => ("shipping_method_taken", 409, "conflict", "The code is already used by another shipping method"),
    AddressLimit => ("address_limit", 409, "conflict", "The address book already holds the most addresses allowed"),
    CartLimit => ("cart_limit", 409, "conflict", "The cart already holds the most lines allowed"),
    CartEmpty => ("cart_empty", 409, "conflict", "The cart is empty; there is nothing to check out"),
    BelowReserved => ("below_reserved", 409, "conflict", "On-hand stock cannot go below what is reserved"),
    CannotModifySelf => ("cannot_modify_self", 409, "conflict", "Admins cannot do this to their own account"),
    ServiceUnavailable => ("service_unavailable", 503, "system", "A dependency is unavailable"),
    DependencyUnavailable => ("dependency_unavailable", 503, "system", "A Souk service this one depends on is unreachable"),
    StaleOwner => ("stale_owner", 503, "system", "Another node serves this entity now; retry"),
    Internal => ("internal", 500, "system", "Internal error"),
}

/// One invalid field of a request, named by its JSON path.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq, ToSchema)]
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

/// Collects every field's problem before answering, so a form can show them all at
/// once. The one collector of field errors.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// Keeps the parsed value, or records the field's problem and gives `None`.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(message) => {
                self.0.push(FieldError::new(field, message));
                None
            }
        }
    }

    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }

    /// `Ok` when no field failed, else one `validation_failed` error naming them all.
    pub fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::validation(self.0))
        }
    }
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

    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after_secs
    }

    /// This node no longer serves the entity (its shard moved, or a later owner claimed
    /// the row): the router sends the request again to the current owner.
    pub fn stale_owner() -> Self {
        Self::unavailable_retry_after(
            ErrorCode::StaleOwner,
            "another node serves this entity now; retry",
            1,
        )
    }

    /// A retryable refusal: the caller may send the same request again after a pause.
    pub fn unavailable_retry_after(
        code: ErrorCode,
        detail: impl Into<String>,
        retry_after_secs: u64,
    ) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs.max(1)),
            ..Self::new(code, detail)
        }
    }
}

/// An [`Error`] as another node of the cluster receives it: the same code, detail,
/// fields and pause.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct WireError {
    pub code: String,
    pub detail: String,
    #[serde(default)]
    pub field_errors: Vec<FieldError>,
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
}

impl ErrorCode {
    /// The code whose [`ErrorCode::as_str`] is `code`.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|known| known.as_str() == code)
    }
}

impl From<&Error> for WireError {
    fn from(error: &Error) -> Self {
        Self {
            code: error.code.as_str().to_owned(),
            detail: error.detail.clone(),
            field_errors: error.field_errors.clone(),
            retry_after_secs: error.retry_after_secs,
        }
    }
}

impl From<WireError> for Error {
    /// A code this build does not know (a newer node) is an internal error.
    fn from(wire: WireError) -> Self {
        let Some(code) = ErrorCode::parse(&wire.code) else {
            return Error::internal(format!(
                "another node answered the unknown error code {:?}",
                wire.code
            ));
        };
        Self {
            code,
            detail: wire.detail,
            field_errors: wire.field_errors,
            retry_after_secs: wire.retry_after_secs,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.code.as_str(), self.detail)
    }
}

impl std::error::Error for Error {}

impl From<souk_db::DbError> for Error {
    /// A database that cannot be reached (pool exhausted or closed, connection lost),
    /// or a transaction that gave way to a concurrent one, is `service_unavailable`,
    /// retryable after a second; anything else is an internal error.
    fn from(error: souk_db::DbError) -> Self {
        match error {
            souk_db::DbError::Sqlx(
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed,
            ) => {
                tracing::warn!(%error, "database unavailable");
                Error::unavailable_retry_after(
                    ErrorCode::ServiceUnavailable,
                    "the database is not answering",
                    1,
                )
            }
            souk_db::DbError::Contention(_) => {
                tracing::warn!(%error, "transaction gave way to a concurrent one");
                Error::unavailable_retry_after(
                    ErrorCode::ServiceUnavailable,
                    "the write met a concurrent one; retry it",
                    1,
                )
            }
            other => Error::internal(other),
        }
    }
}

impl From<crate::entity::HostError> for Error {
    fn from(error: crate::entity::HostError) -> Self {
        if error == crate::entity::HostError::NotOwner {
            return Error::stale_owner();
        }
        let retry_after_secs = match error {
            crate::entity::HostError::Restarting { retry_after_ms } => {
                retry_after_ms.div_ceil(1000)
            }
            _ => 1,
        };
        Error::unavailable_retry_after(
            ErrorCode::ServiceUnavailable,
            error.to_string(),
            retry_after_secs,
        )
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
            assert!((400..600).contains(&code.http_status()));
        }
    }

    #[test]
    fn a_database_that_is_not_answering_is_retryable_after_a_pause() {
        let transient = [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::WorkerCrashed,
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        ];
        for cause in transient {
            let error = Error::from(souk_db::DbError::Sqlx(cause));
            assert_eq!(error.code(), ErrorCode::ServiceUnavailable, "{error}");
            assert_eq!(error.retry_after_secs(), Some(1), "{error}");
        }
        let broken = Error::from(souk_db::DbError::Sqlx(sqlx::Error::Protocol(
            "garbled".into(),
        )));
        assert_eq!(broken.code(), ErrorCode::Internal);
    }
}
