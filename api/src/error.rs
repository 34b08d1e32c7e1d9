//! The REST edge of the domain error: every [`souk_actors::Error`] becomes an RFC 9457
//! `application/problem+json` response whose status comes from its code's table entry.
//! Handlers return [`ApiResult`]; `?` on a domain result converts.

use std::fmt;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

pub use souk_actors::error::{Error, ErrorCode, FieldError, FieldErrors};

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

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

impl Problem {
    pub fn of(error: &Error) -> Self {
        let code = error.code();
        Problem {
            type_uri: format!("/api/v1/docs#error-{}", code.as_str()),
            title: code.title().to_owned(),
            status: code.http_status(),
            code: code.as_str().to_owned(),
            detail: error.detail().to_owned(),
            errors: error.field_errors().to_vec(),
        }
    }
}

/// A domain error on its way out of a REST handler.
#[derive(Debug)]
pub struct ApiError(pub Error);

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self(Error::new(code, detail))
    }

    pub fn error(&self) -> &Error {
        &self.0
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        Self(error)
    }
}

impl From<souk_db::DbError> for ApiError {
    fn from(error: souk_db::DbError) -> Self {
        Self(Error::from(error))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(formatter)
    }
}

/// The HTTP status of an error code.
pub fn http_status(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        http_status(self.0.code())
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.content_type(PROBLEM_CONTENT_TYPE);
        if let Some(seconds) = self.0.retry_after_secs() {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(seconds)));
        }
        if matches!(
            self.0.code(),
            ErrorCode::MissingToken | ErrorCode::InvalidToken | ErrorCode::TokenExpired
        ) {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        response.json(Problem::of(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_to_a_valid_error_status() {
        for code in ErrorCode::ALL {
            let status = http_status(*code);
            assert_eq!(status.as_u16(), code.http_status(), "{}", code.as_str());
            assert!(status.is_client_error() || status.is_server_error());
        }
    }
}
