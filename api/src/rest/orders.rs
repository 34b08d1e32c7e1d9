//! `/api/v1/orders` (shoppers) and `/api/v1/admin/orders`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use souk_actors::orders::Event;
use souk_db::orders::OrderFilter;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{AdminUser, AuthUser};
use crate::error::{ApiResult, Problem};
use crate::http::json::{Json, OptionalJson};
use crate::rest::headers::idempotency_key;
use crate::state::AppState;
use souk_actors::orders::views::{
    checked_payment_method, checked_reason, decode_order_cursor, encode_order_cursor,
    AdminOrderQuery,
};
use souk_actors::orders::{Caller, CreateOrderInput, OrderStatus, OrderView};
use souk_actors::paging::checked_limit;

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub items: Vec<OrderView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    /// 1 to 100 characters. With the built-in test double: `test-card-declined` is
    /// declined, `test-card-async` is confirmed later by a webhook event (202), anything
    /// else is captured at once.
    #[schema(min_length = 1, max_length = 100)]
    pub payment_method: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Why, for the history (and the shopper's email); cut to 200 characters.
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OwnOrdersQuery {
    /// 1..=100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AdminOrdersQuery {
    #[param(value_type = Option<OrderStatus>)]
    pub status: Option<String>,
    pub user_id: Option<String>,
    /// Created at or after (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Created before (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// 1..=100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/orders", operation_id = "create_order", tag = "orders", security(("bearer" = [])), request_body = CreateOrderInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation: the same key and body return the same order")),
    responses((status = 201, body = OrderView), (status = 200, description = "a retry with the same Idempotency-Key and body", body = OrderView), (status = 409, description = "insufficient_stock or purchase_limit (naming the SKU), or unpaid_order_limit", body = Problem),
              (status = 422, description = "validation_failed (naming shipping_address_id or billing_address_id when it is not one of the caller's addresses, shipping_address_id when a shipping method is chosen without one, shipping_method when it is not an active method, does not serve the shipping country or is priced in another currency) or idempotency_key_reused", body = Problem), (status = 503, body = Problem)))]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    request: HttpRequest,
    body: Json<CreateOrderInput>,
) -> ApiResult<HttpResponse> {
    let key = idempotency_key(&request)?;
    let (order, created) = state
        .orders
        .create(&user.id, body.into_inner(), key)
        .await?;
    Ok(placed(order, created))
}

/// The answer to a checkout: `201` with the order's `Location` when it was placed now,
/// `200` when a retry with the same `Idempotency-Key` found it.
pub(crate) fn placed(order: OrderView, created: bool) -> HttpResponse {
    let mut response = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header(("Location", format!("/api/v1/orders/{}", order.id)))
        .json(order)
}

#[utoipa::path(get, path = "/api/v1/orders", operation_id = "list_orders", tag = "orders", security(("bearer" = [])), params(OwnOrdersQuery),
    responses((status = 200, body = OrderPage)))]
pub async fn list_own(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<OwnOrdersQuery>,
) -> ApiResult<HttpResponse> {
    let filter = OrderFilter {
        user_id: Some(user.id),
        before: decode_order_cursor(query.cursor.as_deref())?,
        limit: checked_limit(query.limit)?,
        ..OrderFilter::default()
    };
    let (items, next) = state.orders.list(&filter).await?;
    Ok(HttpResponse::Ok().json(OrderPage {
        items,
        next_cursor: encode_order_cursor(next),
    }))
}

#[utoipa::path(get, path = "/api/v1/orders/{id}", operation_id = "get_order", tag = "orders", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = OrderView), (status = 404, description = "also for another user's order", body = Problem)))]
pub async fn get_own(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.orders.get(&id, Some(&user.id)).await?))
}

#[utoipa::path(post, path = "/api/v1/orders/{id}/pay", operation_id = "pay_order", tag = "orders", security(("bearer" = [])), params(("id" = String, Path)), request_body = PayRequest,
    responses((status = 200, description = "paid", body = OrderView),
              (status = 202, description = "the provider confirms the payment later through its webhook; the order is still pending_payment", body = OrderView),
              (status = 402, description = "payment_declined", body = Problem),
              (status = 409, description = "illegal_transition or order_expired", body = Problem), (status = 422, description = "validation_failed: payment_method", body = Problem)))]
pub async fn pay(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
    body: Json<PayRequest>,
) -> ApiResult<HttpResponse> {
    let method = checked_payment_method(&body.payment_method)?;
    let order = state.orders.pay(&user.id, &id, &method).await?;
    if order.status == OrderStatus::PendingPayment.as_str() {
        return Ok(HttpResponse::Accepted().json(order));
    }
    Ok(HttpResponse::Ok().json(order))
}

fn reason_of(body: OptionalJson<CancelRequest>, default: &str) -> String {
    checked_reason(body.0.and_then(|body| body.reason), default)
}

#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", operation_id = "cancel_order", tag = "orders", security(("bearer" = [])), params(("id" = String, Path)), request_body = Option<CancelRequest>,
    responses((status = 200, body = OrderView), (status = 403, description = "account_disabled", body = Problem),
              (status = 409, description = "illegal_transition (shipped, delivered, or already ended)", body = Problem)))]
pub async fn cancel_own(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
    body: OptionalJson<CancelRequest>,
) -> ApiResult<HttpResponse> {
    let reason = reason_of(body, "cancelled by the shopper");
    Ok(HttpResponse::Ok().json(
        state
            .orders
            .cancel(Caller::Shopper(user.id), &id, &reason)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/admin/orders", operation_id = "admin_list_orders", tag = "admin", security(("bearer" = [])), params(AdminOrdersQuery),
    responses((status = 200, body = OrderPage)))]
pub async fn admin_list(
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: web::Query<AdminOrdersQuery>,
) -> ApiResult<HttpResponse> {
    let filter = AdminOrderQuery {
        status: query.status.as_deref(),
        user_id: query.user_id.as_deref(),
        from: query.from.as_deref(),
        to: query.to.as_deref(),
        cursor: query.cursor.as_deref(),
        limit: query.limit,
    }
    .filter()?;
    let (items, next) = state.orders.list(&filter).await?;
    Ok(HttpResponse::Ok().json(OrderPage {
        items,
        next_cursor: encode_order_cursor(next),
    }))
}

#[utoipa::path(get, path = "/api/v1/admin/orders/{id}", operation_id = "admin_get_order", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = OrderView)))]
pub async fn admin_get(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.orders.get(&id, None).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/ship", operation_id = "admin_ship_order", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = OrderView), (status = 409, description = "illegal_transition", body = Problem)))]
pub async fn ship(
    state: web::Data<AppState>,
    admin: AdminUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.orders.fulfil(&admin.0.id, &id, Event::Ship).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/deliver", operation_id = "admin_deliver_order", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = OrderView), (status = 409, description = "illegal_transition", body = Problem)))]
pub async fn deliver(
    state: web::Data<AppState>,
    admin: AdminUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(
        state
            .orders
            .fulfil(&admin.0.id, &id, Event::Deliver)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/cancel", operation_id = "admin_cancel_order", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)), request_body = Option<CancelRequest>,
    responses((status = 200, body = OrderView), (status = 409, description = "illegal_transition", body = Problem)))]
pub async fn admin_cancel(
    state: web::Data<AppState>,
    admin: AdminUser,
    id: web::Path<String>,
    body: OptionalJson<CancelRequest>,
) -> ApiResult<HttpResponse> {
    let reason = reason_of(body, "cancelled by an admin");
    Ok(HttpResponse::Ok().json(
        state
            .orders
            .cancel(Caller::Admin(admin.0.id), &id, &reason)
            .await?,
    ))
}
