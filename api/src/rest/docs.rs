//! The OpenAPI document and a self-contained documentation page (no CDN, so it works
//! offline and behind strict networks).

use std::sync::OnceLock;

use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::error::ErrorCode;

static OPENAPI_JSON: OnceLock<String> = OnceLock::new();

/// The docs page loads nothing from elsewhere, may only fetch this API's own OpenAPI
/// document, and may not be framed.
const DOCS_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub async fn openapi_json() -> HttpResponse {
    let body = OPENAPI_JSON.get_or_init(|| {
        crate::openapi::document()
            .to_pretty_json()
            .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"))
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.clone())
}

pub struct ErrorRow {
    pub code: &'static str,
    pub status: u16,
    pub kind: &'static str,
    pub title: &'static str,
}

#[derive(Template)]
#[template(path = "docs.html")]
pub struct DocsPage {
    pub errors: Vec<ErrorRow>,
}

pub async fn docs_page() -> HttpResponse {
    let page = DocsPage {
        errors: ErrorCode::ALL
            .iter()
            .map(|code| ErrorRow {
                code: code.as_str(),
                status: code.http_status(),
                kind: code.kind(),
                title: code.title(),
            })
            .collect(),
    };
    match page.render() {
        Ok(html) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header(("Content-Security-Policy", DOCS_CSP))
            .insert_header(("Referrer-Policy", "no-referrer"))
            .body(html),
        Err(error) => {
            crate::error::ApiError::from(crate::error::Error::internal(error)).error_response()
        }
    }
}
