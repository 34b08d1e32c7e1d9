//! `/api/v1/cart` and `/api/v1/carts/guest`: the caller's cart. A signed-in caller
//! (bearer token) reaches their own cart; a guest reaches the cart of the token
//! `POST /api/v1/carts/guest` gave, sent as `Souk-Cart-Token`. Checkout and merging
//! need a signed-in caller.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{AuthUser, MaybeUser};
use crate::error::{ApiResult, Error, ErrorCode, Problem};
use crate::http::client_ip::client_ip;
use crate::http::json::{Json, OptionalJson};
use crate::rest::headers::idempotency_key;
use crate::state::AppState;
use souk_actors::cart::{CartCheckout, CartOwner, CartView, GuestCart};
use souk_actors::orders::OrderView;

/// The header that carries a guest cart's token.
pub const CART_TOKEN_HEADER: &str = "Souk-Cart-Token";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartItemInput {
    /// 0 to 100; 0 removes the line.
    #[schema(minimum = 0, maximum = 100)]
    pub quantity: i64,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartCheckoutInput {
    /// The id of one of the caller's saved addresses; the order keeps a copy.
    pub shipping_address_id: Option<String>,
    /// As `shipping_address_id`; when absent, the shipping address bills too.
    pub billing_address_id: Option<String>,
    /// The code of a shipping method (`GET /api/v1/shipping-methods`) serving the
    /// shipping address's country; it needs `shipping_address_id`.
    pub shipping_method: Option<String>,
}

fn guest_token(request: &HttpRequest) -> Option<String> {
    request
        .headers()
        .get(CART_TOKEN_HEADER)
        .map(|value| value.to_str().unwrap_or("").trim().to_owned())
}

/// Whose cart: the signed-in caller's when a bearer token is sent (a cart token next
/// to it is ignored), else the guest cart of `Souk-Cart-Token`; neither is 401.
fn owner(user: MaybeUser, request: &HttpRequest) -> Result<CartOwner, Error> {
    if let Some(user) = user.0 {
        return Ok(CartOwner::User(user.id));
    }
    guest_token(request).map(CartOwner::Guest).ok_or_else(|| {
        Error::new(
            ErrorCode::MissingToken,
            "send an access token as Authorization: Bearer <token>, or a guest cart's token as Souk-Cart-Token",
        )
    })
}

#[utoipa::path(post, path = "/api/v1/carts/guest", operation_id = "create_guest_cart", tag = "cart",
    responses((status = 201, description = "a new, empty guest cart; send its token as Souk-Cart-Token", body = GuestCart),
              (status = 429, description = "rate_limited: too many guest carts from this address; see Retry-After", body = Problem)))]
pub async fn create_guest(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let ip = client_ip(&request, state.config.http.trust_forwarded_for);
    state.auth.admit_guest_cart(&ip).await?;
    Ok(HttpResponse::Created().json(state.carts.create_guest().await?))
}

#[utoipa::path(get, path = "/api/v1/cart", operation_id = "get_cart", tag = "cart", security(("bearer" = []), ("cart_token" = [])),
    responses((status = 200, description = "the cart, priced and checked against the stock now", body = CartView),
              (status = 404, description = "not_found: the guest cart token is unknown or expired", body = Problem)))]
pub async fn get(
    state: web::Data<AppState>,
    user: MaybeUser,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let owner = owner(user, &request)?;
    Ok(HttpResponse::Ok().json(state.carts.get(&owner).await?))
}

#[utoipa::path(put, path = "/api/v1/cart/items/{sku}", operation_id = "set_cart_item", tag = "cart", security(("bearer" = []), ("cart_token" = [])),
    params(("sku" = String, Path, description = "the product's SKU")), request_body = CartItemInput,
    responses((status = 200, body = CartView), (status = 404, description = "not_found: the guest cart token is unknown or expired", body = Problem),
              (status = 409, description = "cart_limit: a new line past 50", body = Problem),
              (status = 422, description = "validation_failed naming sku (malformed or not an active product) or quantity (0 to 100)", body = Problem),
              (status = 503, description = "service_unavailable: concurrent edits kept winning; retry", body = Problem)))]
pub async fn set_item(
    state: web::Data<AppState>,
    user: MaybeUser,
    request: HttpRequest,
    sku: web::Path<String>,
    body: Json<CartItemInput>,
) -> ApiResult<HttpResponse> {
    let owner = owner(user, &request)?;
    let cart = state
        .carts
        .set_item(&owner, &sku, body.into_inner().quantity)
        .await?;
    Ok(HttpResponse::Ok().json(cart))
}

#[utoipa::path(delete, path = "/api/v1/cart/items/{sku}", operation_id = "remove_cart_item", tag = "cart", security(("bearer" = []), ("cart_token" = [])),
    params(("sku" = String, Path, description = "the product's SKU")),
    responses((status = 200, body = CartView), (status = 404, description = "not_found: the cart has no such line, or the guest cart token is unknown or expired", body = Problem),
              (status = 503, description = "service_unavailable: concurrent edits kept winning; retry", body = Problem)))]
pub async fn remove_item(
    state: web::Data<AppState>,
    user: MaybeUser,
    request: HttpRequest,
    sku: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let owner = owner(user, &request)?;
    Ok(HttpResponse::Ok().json(state.carts.remove_item(&owner, &sku).await?))
}

#[utoipa::path(delete, path = "/api/v1/cart", operation_id = "clear_cart", tag = "cart", security(("bearer" = []), ("cart_token" = [])),
    responses((status = 204, description = "every line removed (a guest's token stays valid)"),
              (status = 404, description = "not_found: the guest cart token is unknown or expired", body = Problem),
              (status = 503, description = "service_unavailable: concurrent edits kept winning; retry", body = Problem)))]
pub async fn clear(
    state: web::Data<AppState>,
    user: MaybeUser,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let owner = owner(user, &request)?;
    state.carts.clear(&owner).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/cart/merge", operation_id = "merge_cart", tag = "cart", security(("bearer" = [])),
    params(("Souk-Cart-Token" = String, Header, description = "the guest cart to merge into the caller's; it is deleted after")),
    responses((status = 200, description = "the caller's cart with the guest's lines added (quantities add up to at most 100; lines past 50 are dropped)", body = CartView),
              (status = 404, description = "not_found: the guest cart token is unknown or expired", body = Problem),
              (status = 422, description = "validation_failed: no Souk-Cart-Token header", body = Problem)))]
pub async fn merge(
    state: web::Data<AppState>,
    user: AuthUser,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let token = guest_token(&request).ok_or_else(|| {
        Error::validation(vec![souk_actors::FieldError::new(
            CART_TOKEN_HEADER,
            "send the guest cart's token to merge",
        )])
    })?;
    Ok(HttpResponse::Ok().json(state.carts.merge(&user.id, &token).await?))
}

#[utoipa::path(post, path = "/api/v1/cart/checkout", operation_id = "checkout_cart", tag = "cart", security(("bearer" = [])), request_body = Option<CartCheckoutInput>,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe checkout: a retry with the same key returns the same order")),
    responses((status = 201, description = "the order placed for the cart's lines, which leave the cart", body = OrderView),
              (status = 200, description = "a retry with the same Idempotency-Key", body = OrderView),
              (status = 409, description = "cart_empty; insufficient_stock or purchase_limit (naming the SKU); unpaid_order_limit", body = Problem),
              (status = 422, description = "validation_failed (a line no longer sold, an address that is not the caller's, mixed currencies) or idempotency_key_reused", body = Problem),
              (status = 503, body = Problem)))]
pub async fn checkout(
    state: web::Data<AppState>,
    user: AuthUser,
    request: HttpRequest,
    body: OptionalJson<CartCheckoutInput>,
) -> ApiResult<HttpResponse> {
    let key = idempotency_key(&request)?;
    let body = body.0.unwrap_or_default();
    let choices = CartCheckout {
        shipping_address_id: body.shipping_address_id,
        billing_address_id: body.billing_address_id,
        shipping_method: body.shipping_method,
    };
    let (order, created) = state.carts.checkout(&user.id, choices, key).await?;
    Ok(super::orders::placed(order, created))
}
