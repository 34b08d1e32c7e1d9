//! What every console page shares: the layout's data, rendering a template into a
//! response, the console's error pages (HTML, never problem+json), and small
//! formatting helpers for templates.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use super::session::{self, AdminSession};
use crate::error::{Error, ErrorCode};

/// The layout's data: which section is open and the token of the sign-out form.
pub struct Chrome {
    pub active: &'static str,
    pub csrf: String,
}

impl Chrome {
    pub fn new(active: &'static str, session: &AdminSession) -> Self {
        Self {
            active,
            csrf: session.csrf.clone(),
        }
    }
}

/// Renders a page; pages are never cached (they show live stock and carry tokens).
pub fn render(status: StatusCode, template: &impl Template) -> HttpResponse {
    match template.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(html),
        Err(error) => {
            tracing::error!(%error, "console template failed");
            ConsoleError::Internal.error_response()
        }
    }
}

/// A 303 to another console page (after a form, and to the sign-in page).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    detail: &'a str,
}

/// Why a console request failed; rendered as a plain page.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No valid admin session: off to the sign-in page.
    #[error("sign in first")]
    SignIn,
    /// A form without the right CSRF token, or another refusal.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadForm(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Service(#[from] Error),
    #[error("internal error")]
    Internal,
}

impl ConsoleError {
    pub fn missing_csrf() -> Self {
        ConsoleError::Forbidden(
            "this form has no valid security token (it may be from another tab or an old \
             session); reload the page and try again"
                .to_owned(),
        )
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::SignIn => StatusCode::SEE_OTHER,
            ConsoleError::Forbidden(_) => StatusCode::FORBIDDEN,
            ConsoleError::BadForm(_) => StatusCode::BAD_REQUEST,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::Service(error) => crate::error::http_status(error.code()),
            ConsoleError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ConsoleError::SignIn = self {
            let mut response = see_other("/admin/login");
            let _ = response.add_cookie(&session::removal());
            return response;
        }
        let (title, detail) = match self {
            ConsoleError::Forbidden(detail) => ("Refused", detail.clone()),
            ConsoleError::BadForm(detail) => ("Bad request", detail.clone()),
            ConsoleError::NotFound(detail) => ("Not found", detail.clone()),
            ConsoleError::Service(error) if error.code() == ErrorCode::Internal => (
                "Something went wrong",
                "the error is logged; try again".to_owned(),
            ),
            ConsoleError::Service(error) => (error.code().title(), error.detail().to_owned()),
            _ => (
                "Something went wrong",
                "the error is logged; try again".to_owned(),
            ),
        };
        let page = ErrorPage {
            title,
            detail: &detail,
        };
        match page.render() {
            Ok(html) => HttpResponse::build(self.status_code())
                .content_type("text/html; charset=utf-8")
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(html),
            Err(_) => HttpResponse::build(self.status_code()).body(detail),
        }
    }
}

/// `/admin`: the stock table is the console's home.
pub async fn home(_session: AdminSession) -> HttpResponse {
    see_other("/admin/stock")
}

pub async fn not_found(request: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    Err(ConsoleError::NotFound(format!(
        "no console page at {}",
        request.path()
    )))
}

/// Microseconds or RFC 3339 text → `2026-11-30 12:04:05 UTC`, as tables show times.
pub fn short_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|time| {
            time.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_owned())
}

/// A query string value, percent-encoded for a link.
pub fn encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}
