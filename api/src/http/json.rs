//! A JSON body extractor whose failures are problem+json with a clear code: 415 for a
//! wrong content type, 413 past the size limit, 400 `malformed_json` for bytes that
//! are not JSON, and 400 `invalid_body` naming the field for the wrong shape. A number
//! written with a zero fraction (`2.0`) is the integer it equals, as JSON Schema (and
//! so the OpenAPI document) counts it; a body is read once unless it needs that.

use crate::error::ApiError;
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorCode, FieldError};

/// The body limit, in bytes, registered as app data. Absent means the default.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl Default for BodyLimit {
    fn default() -> Self {
        Self(64 * 1024)
    }
}

pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = JsonBytes::from_request(request, payload);
        Box::pin(async move { Ok(parse(&body.await?.0).map(Json)?) })
    }
}

/// The bytes of a JSON body, checked for content type and size as [`Json`] checks
/// them but not parsed: for a handler that must see the body exactly as sent (to
/// verify its signature) before parsing it with [`parse`].
pub struct JsonBytes(pub web::Bytes);

impl FromRequest for JsonBytes {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = request
            .app_data::<web::Data<BodyLimit>>()
            .map(|limit| limit.0)
            .unwrap_or_default();
        let content_type_ok = is_json_content_type(request);
        let declared_length = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if !content_type_ok {
                return Err(Error::new(
                    ErrorCode::UnsupportedMediaType,
                    "send the body as application/json",
                )
                .into());
            }
            if declared_length.is_some_and(|length| length > limit) {
                return Err(too_large(limit).into());
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|error| {
                    Error::new(ErrorCode::InvalidBody, format!("cannot read body: {error}"))
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(too_large(limit).into());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(JsonBytes(body.freeze()))
        })
    }
}

fn too_large(limit: usize) -> Error {
    Error::new(
        ErrorCode::PayloadTooLarge,
        format!("the body exceeds {limit} bytes"),
    )
}

/// A JSON body that may be left out entirely: a request without a body (no length, or
/// a length of 0, and no chunks; whatever its content type, which many clients send on
/// an empty POST) gives `None`, and so does the JSON `null`; anything sent is checked
/// exactly as [`Json`] checks it. A handler taking one declares its body in the API
/// document as `request_body = Option<T>`: not required (and `null` allowed).
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let declared_length = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok());
        let chunked = request.headers().contains_key(header::TRANSFER_ENCODING);
        let absent = !chunked && declared_length.unwrap_or(0) == 0;
        if absent {
            return Box::pin(async { Ok(OptionalJson(None)) });
        }
        let body = Json::<Option<T>>::from_request(request, payload);
        Box::pin(async move { Ok(OptionalJson(body.await?.into_inner())) })
    }
}

fn is_json_content_type(request: &HttpRequest) -> bool {
    let Some(value) = request.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a body, naming the offending field when the JSON is well formed but wrong.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    if body.is_empty() {
        return Err(Error::new(
            ErrorCode::MalformedJson,
            "the body is empty; send a JSON object",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| {
            let path = error.path().to_string();
            classify(path, error.into_inner())
        })
        .and_then(|value| {
            deserializer
                .end()
                .map(|()| value)
                .map_err(|error| classify(".".to_owned(), error))
        });
    match parsed {
        Err(error) if error.code() == ErrorCode::InvalidBody => {
            // The body is JSON but not the expected shape: perhaps only because a whole
            // number came as `2.0`. Only then is it read a second time.
            let mut document: serde_json::Value =
                serde_json::from_slice(body).map_err(|error| classify(".".to_owned(), error))?;
            if !integers_as_integers(&mut document) {
                return Err(error);
            }
            serde_path_to_error::deserialize(document).map_err(|error| {
                let path = error.path().to_string();
                classify(path, error.into_inner())
            })
        }
        other => other,
    }
}

/// Rewrites every number with a zero fraction, exactly representable, as an integer;
/// other numbers stay as they are (so `2.5` is still refused where an integer is due).
/// Says whether it rewrote any.
fn integers_as_integers(value: &mut serde_json::Value) -> bool {
    // Every integer below 2^53 is exact in a double; past it `2.0e16` may not be the
    // integer the client wrote.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        serde_json::Value::Number(number) => match number.as_f64() {
            Some(float) if number.is_f64() && float.fract() == 0.0 && float.abs() < EXACT => {
                *value = serde_json::Value::from(float as i64);
                true
            }
            _ => false,
        },
        serde_json::Value::Array(items) => items
            .iter_mut()
            .fold(false, |rewrote, item| integers_as_integers(item) | rewrote),
        serde_json::Value::Object(fields) => fields.values_mut().fold(false, |rewrote, field| {
            integers_as_integers(field) | rewrote
        }),
        _ => false,
    }
}

fn classify(path: String, error: serde_json::Error) -> Error {
    match error.classify() {
        serde_json::error::Category::Syntax
        | serde_json::error::Category::Eof
        | serde_json::error::Category::Io => Error::new(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {error}"),
        ),
        serde_json::error::Category::Data => {
            let field = if path == "." { "body".to_owned() } else { path };
            let message = strip_position(&error.to_string());
            Error::new(ErrorCode::InvalidBody, format!("{field}: {message}"))
                .with_fields(vec![FieldError::new(field, message)])
        }
    }
}

/// serde_json appends "at line L column C", which means nothing to a client sending
/// the field name alongside.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        age: u8,
    }

    #[test]
    fn syntax_errors_are_malformed_json() {
        let error = parse::<Body>(b"{\"email\": ").unwrap_err();
        assert_eq!(error.code(), ErrorCode::MalformedJson);
    }

    #[test]
    fn wrong_types_name_the_field() {
        let error = parse::<Body>(br#"{"email": 5, "age": 1}"#).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidBody);
        assert_eq!(error.field_errors()[0].field, "email");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let error = parse::<Body>(br#"{"email": "a", "age": 1, "role": "admin"}"#).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidBody);
        assert!(error.detail().contains("role"), "{}", error.detail());
    }

    #[test]
    fn whole_numbers_with_a_fraction_part_are_integers_and_others_are_not() {
        let body = parse::<Body>(br#"{"email": "a", "age": 42.0}"#).unwrap();
        assert_eq!(body.age, 42);
        let error = parse::<Body>(br#"{"email": "a", "age": 42.5}"#).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidBody);
        assert_eq!(error.field_errors()[0].field, "age");
        let error = parse::<Body>(br#"{"email": "a", "age": 1e300}"#).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidBody);
    }

    #[test]
    fn trailing_garbage_is_malformed() {
        let error = parse::<Body>(br#"{"email": "a", "age": 1} x"#).unwrap_err();
        assert_eq!(error.code(), ErrorCode::MalformedJson);
    }
}
