//! `/api/v1/payments/webhook`: where the payment provider posts its events.

use actix_web::{web, HttpRequest, HttpResponse};
use souk_actors::orders::webhook_signature::SIGNATURE_HEADER;
use souk_actors::orders::{PaymentEvent, WebhookReceipt};

use crate::error::{ApiResult, Problem};
use crate::http::json::{parse, JsonBytes};
use crate::state::AppState;

/// Takes one payment event (captured, failed, refunded) signed by the provider. The
/// signature is checked on the body as sent, before it is parsed; a redelivered event
/// (same `id`) answers its first outcome and changes nothing.
#[utoipa::path(post, path = "/api/v1/payments/webhook", operation_id = "payment_webhook", tag = "payments",
    params(("Souk-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\"> under the webhook secret; several v1 allowed")),
    request_body = PaymentEvent,
    responses((status = 200, description = "the event was applied, or had been (duplicate: true)", body = WebhookReceipt),
              (status = 401, description = "invalid_signature: missing, wrong, or outside payments.webhook_tolerance_secs", body = Problem),
              (status = 409, description = "event_in_progress: another delivery of this event is being processed; retry", body = Problem),
              (status = 422, description = "validation_failed: a field is wrong for the event type", body = Problem),
              (status = 503, description = "service_unavailable: the order could not be changed now; retry", body = Problem)))]
pub async fn webhook(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: JsonBytes,
) -> ApiResult<HttpResponse> {
    let signature = request
        .headers()
        .get(SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok());
    state.payments.verify(signature, &body.0)?;
    let event: PaymentEvent = parse(&body.0)?;
    Ok(HttpResponse::Ok().json(state.payments.receive(&event).await?))
}
