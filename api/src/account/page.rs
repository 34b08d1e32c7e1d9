//! What the account pages share: rendering a template into a page, the error page
//! (HTML, never problem+json) and the stylesheet.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use crate::error::{Error, ErrorCode};

const STYLESHEET: &str = include_str!("account.css");

/// One page: a heading, a paragraph, and optionally a form posting back here.
#[derive(Template)]
#[template(path = "account/page.html")]
pub struct Page<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub form: Option<Form<'a>>,
}

/// A form of hidden values and visible fields, with one button.
pub struct Form<'a> {
    pub action: &'a str,
    pub hidden: Vec<(&'a str, &'a str)>,
    pub fields: Vec<Field<'a>>,
    pub button: &'a str,
}

pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub autocomplete: &'a str,
}

pub fn render(status: StatusCode, template: &impl Template) -> HttpResponse {
    match template.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(html),
        Err(error) => {
            tracing::error!(%error, "account page template failed");
            PageError::Internal.error_response()
        }
    }
}

/// A page with a message and nothing to do.
pub fn message(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    render(
        status,
        &Page {
            title,
            message,
            form: None,
        },
    )
}

/// Why an account page could not do what was asked; shown as a page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("{0}")]
    BadForm(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Service(#[from] Error),
    #[error("internal error")]
    Internal,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::BadForm(_) => StatusCode::BAD_REQUEST,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::Service(error) => crate::error::http_status(error.code()),
            PageError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (title, detail) = match self {
            PageError::BadForm(detail) => ("This form could not be read", detail.clone()),
            PageError::NotFound(detail) => ("Not found", detail.clone()),
            PageError::Service(error) if error.code() == ErrorCode::Internal => (
                "Something went wrong",
                "the error is logged; try again later".to_owned(),
            ),
            PageError::Service(error) => (error.code().title(), error.detail().to_owned()),
            PageError::Internal => (
                "Something went wrong",
                "the error is logged; try again later".to_owned(),
            ),
        };
        let mut response = message(self.status_code(), title, &detail);
        if let Some(seconds) = match self {
            PageError::Service(error) => error.retry_after_secs(),
            _ => None,
        } {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(STYLESHEET)
}

pub async fn not_found(request: HttpRequest) -> Result<HttpResponse, PageError> {
    Err(PageError::NotFound(format!(
        "there is no page at {}",
        request.path()
    )))
}
