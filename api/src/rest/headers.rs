//! Request headers several routes read.

use actix_web::HttpRequest;
use souk_actors::orders::views::checked_idempotency_key;

use crate::error::Error;

/// The `Idempotency-Key` header, if sent: 1 to 100 visible ASCII characters.
pub fn idempotency_key(request: &HttpRequest) -> Result<Option<String>, Error> {
    let Some(value) = request.headers().get("idempotency-key") else {
        return Ok(None);
    };
    checked_idempotency_key("Idempotency-Key", value.to_str().unwrap_or("")).map(Some)
}
