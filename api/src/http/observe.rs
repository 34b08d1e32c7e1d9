//! Wraps every request: assigns a request id (or keeps a sane incoming one) and echoes
//! it in `X-Request-Id`, runs the handler inside a span carrying it, logs one line per
//! request, records the request metrics by route pattern, and turns bare framework
//! errors (404, 405, …) into problem+json.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError};
use tracing::Instrument;

use crate::error::ErrorCode;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub async fn observe(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let request_id = incoming_request_id(&request).unwrap_or_else(souk_db::ids::new_id);
    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(request.method()).to_owned();
    let span = tracing::info_span!("http_request", request_id = %request_id, method = %method, route = %route);
    let started = Instant::now();

    // Handlers' and extractors' errors arrive as responses; an `Err` here comes from
    // the framework itself and is rendered by it. (Holding a clone of the request to
    // render it here would break routing, which needs the only reference.)
    let response = next.call(request).instrument(span.clone()).await?;
    let mut response = problem_for_bare_errors(response.map_into_boxed_body());

    let status = response.status();
    let elapsed = started.elapsed();
    crate::metrics::record_request(&method, &route, status.as_u16(), elapsed);
    span.in_scope(|| {
        let latency_ms = latency_ms(elapsed);
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), latency_ms, "request failed");
        } else {
            tracing::info!(status = status.as_u16(), latency_ms, "request served");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(response)
}

/// The method as a metric label and log field: one of the standard methods, or
/// `other` — never the client's raw text, which would make a new series per request.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A duration in milliseconds for a log line, to the microsecond: `3.142`, never
/// `3.1415926999`.
pub(crate) fn latency_ms(elapsed: std::time::Duration) -> f64 {
    elapsed.as_micros() as f64 / 1000.0
}

fn incoming_request_id(request: &ServiceRequest) -> Option<String> {
    let value = request.headers().get(REQUEST_ID_HEADER)?.to_str().ok()?;
    sane_request_id(value)
}

/// Accepts a caller's id only if it is short and plain, so it can be logged verbatim.
pub(crate) fn sane_request_id(value: &str) -> Option<String> {
    let plain = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    plain.then(|| value.to_owned())
}

/// actix answers unknown routes, wrong methods and a few protocol errors itself, with
/// empty or plain-text bodies; give them the same problem+json as every other error.
fn problem_for_bare_errors(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    // Only framework answers (no body type, or plain text) are rewritten; a handler's
    // own JSON, such as the readiness report, is left alone.
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if !(content_type.is_empty() || content_type.starts_with("text/plain")) {
        return response;
    }
    let code = match status.as_u16() {
        404 => ErrorCode::RouteNotFound,
        405 => ErrorCode::MethodNotAllowed,
        413 => ErrorCode::PayloadTooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        400..=499 => ErrorCode::InvalidQuery,
        503 => ErrorCode::ServiceUnavailable,
        _ => ErrorCode::Internal,
    };
    let detail = match code {
        ErrorCode::RouteNotFound => format!("no endpoint at {}", response.request().path()),
        ErrorCode::MethodNotAllowed => format!(
            "{} is not allowed on {}",
            response.request().method(),
            response.request().path()
        ),
        _ => code.title().to_owned(),
    };
    let problem = crate::error::ApiError::new(code, detail).error_response();
    let allow = response.headers().get(header::ALLOW).cloned();
    let (request, _) = response.into_parts();
    let mut response = ServiceResponse::new(request, problem);
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn latencies_are_logged_to_the_microsecond() {
        assert_eq!(latency_ms(Duration::from_nanos(3_141_592_699)), 3141.592);
        assert_eq!(
            latency_ms(Duration::from_nanos(1_234_567)).to_string(),
            "1.234"
        );
        assert_eq!(latency_ms(Duration::from_micros(100)).to_string(), "0.1");
    }

    #[test]
    fn only_plain_request_ids_are_kept() {
        assert_eq!(
            sane_request_id("trace-abc.123").as_deref(),
            Some("trace-abc.123")
        );
        assert_eq!(sane_request_id("evil\tinjected"), None);
        assert_eq!(sane_request_id(""), None);
        assert_eq!(sane_request_id(&"a".repeat(65)), None);
    }
}
