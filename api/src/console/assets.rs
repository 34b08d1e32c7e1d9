//! The console's own script and stylesheet, compiled into the binary (no CDN, no build
//! step). They hold no secrets, so they are served without a session.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use super::page::ConsoleError;

const SCRIPT: &str = include_str!("assets/console.js");
const STYLESHEET: &str = include_str!("assets/console.css");

/// `GET /admin/assets/{name}`
pub async fn asset(name: web::Path<String>) -> Result<HttpResponse, ConsoleError> {
    let (body, content_type) = match name.as_str() {
        "console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "console.css" => (STYLESHEET, "text/css; charset=utf-8"),
        other => {
            return Err(ConsoleError::NotFound(format!(
                "no console asset {other:?}"
            )))
        }
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body))
}
