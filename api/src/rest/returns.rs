//! `/api/v1/orders/{id}/returns` (the shopper asks),
//! `/api/v1/admin/orders/{id}/returns/{return_id}/…` (an admin approves, rejects,
//! receives and refunds) and `/api/v1/admin/returns` (the admins' work queue).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use souk_actors::orders::views::{checked_reason, decode_return_cursor, encode_return_cursor};
use souk_actors::orders::{OrderItemInput, ReturnCommand, ReturnStatus, ReturnView};
use souk_actors::paging::checked_limit;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{AdminUser, AuthUser};
use crate::error::{ApiResult, Problem};
use crate::http::json::{Json, OptionalJson};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnRequest {
    /// 1 to 50 lines of the order, each at most what is left to return of its SKU.
    #[schema(min_items = 1, max_items = 50)]
    pub items: Vec<OrderItemInput>,
    /// Why, cut to 200 characters.
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectReturnRequest {
    /// Why, for the shopper's mail; cut to 200 characters.
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundReturnRequest {
    /// Minor units; default: the returned units' value (within what is left of the
    /// payment). Without it, a return with nothing left to give back is refunded 0.
    #[schema(minimum = 1)]
    pub amount: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/orders/{id}/returns", operation_id = "request_return", tag = "orders", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = ReturnRequest,
    responses((status = 201, body = ReturnView),
              (status = 409, description = "illegal_transition (the order is not delivered) or return_window_closed", body = Problem),
              (status = 422, description = "validation_failed: a SKU not in the order, or more units than are left to return", body = Problem)))]
pub async fn request(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
    body: Json<ReturnRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let reason = checked_reason(body.reason, "not given");
    let returned = state
        .orders
        .request_return(&user.id, &id, body.items, &reason)
        .await?;
    Ok(HttpResponse::Created().json(returned))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReturnsQuery {
    /// Only returns in this status (e.g. `requested`: the ones waiting for a decision).
    #[param(value_type = Option<ReturnStatus>)]
    pub status: Option<String>,
    /// 1..=100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReturnPage {
    pub items: Vec<ReturnView>,
    pub next_cursor: Option<String>,
}

/// Every order's returns, oldest first: the admins' work queue.
#[utoipa::path(get, path = "/api/v1/admin/returns", operation_id = "admin_list_returns", tag = "admin", security(("bearer" = [])), params(ReturnsQuery),
    responses((status = 200, body = ReturnPage)))]
pub async fn admin_list(
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: web::Query<ReturnsQuery>,
) -> ApiResult<HttpResponse> {
    let status = ReturnStatus::filter(query.status.as_deref())?;
    let after = decode_return_cursor(query.cursor.as_deref())?;
    let limit = checked_limit(query.limit)?;
    let (items, next) = state.orders.list_returns(status, after, limit).await?;
    Ok(HttpResponse::Ok().json(ReturnPage {
        items,
        next_cursor: encode_return_cursor(next),
    }))
}

type ReturnPath = web::Path<(String, String)>;

/// One admin step on the return the path names: `command` is built from the return's
/// id and the admin's id.
async fn step(
    state: web::Data<AppState>,
    admin: AdminUser,
    path: ReturnPath,
    command: impl FnOnce(String, String) -> ReturnCommand,
) -> ApiResult<HttpResponse> {
    let (order_id, return_id) = path.into_inner();
    let command = command(return_id.clone(), admin.0.id);
    let returned = state
        .orders
        .return_step(&order_id, &return_id, command)
        .await?;
    Ok(HttpResponse::Ok().json(returned))
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/returns/{return_id}/approve", operation_id = "approve_return", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path), ("return_id" = String, Path)),
    responses((status = 200, body = ReturnView), (status = 409, description = "illegal_transition: the return is not requested", body = Problem)))]
pub async fn approve(
    state: web::Data<AppState>,
    admin: AdminUser,
    path: ReturnPath,
) -> ApiResult<HttpResponse> {
    step(state, admin, path, |return_id, admin_id| {
        ReturnCommand::Approve {
            return_id,
            admin_id,
        }
    })
    .await
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/returns/{return_id}/reject", operation_id = "reject_return", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path), ("return_id" = String, Path)), request_body = Option<RejectReturnRequest>,
    responses((status = 200, body = ReturnView), (status = 409, description = "illegal_transition: the return is not requested", body = Problem)))]
pub async fn reject(
    state: web::Data<AppState>,
    admin: AdminUser,
    path: ReturnPath,
    body: OptionalJson<RejectReturnRequest>,
) -> ApiResult<HttpResponse> {
    let reason = checked_reason(body.0.and_then(|body| body.reason), "not given");
    step(state, admin, path, |return_id, admin_id| {
        ReturnCommand::Reject {
            return_id,
            admin_id,
            reason,
        }
    })
    .await
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/returns/{return_id}/receive", operation_id = "receive_return", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path), ("return_id" = String, Path)),
    responses((status = 200, description = "the units are back in stock", body = ReturnView),
              (status = 409, description = "illegal_transition: the return is not approved", body = Problem)))]
pub async fn receive(
    state: web::Data<AppState>,
    admin: AdminUser,
    path: ReturnPath,
) -> ApiResult<HttpResponse> {
    step(state, admin, path, |return_id, admin_id| {
        ReturnCommand::Receive {
            return_id,
            admin_id,
        }
    })
    .await
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/returns/{return_id}/refund", operation_id = "refund_return", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path), ("return_id" = String, Path)), request_body = Option<RefundReturnRequest>,
    responses((status = 200, description = "refunded through the payment provider; the order shows the refund", body = ReturnView),
              (status = 402, description = "payment_declined: the provider refused the refund", body = Problem),
              (status = 409, description = "illegal_transition: the return is not received", body = Problem),
              (status = 422, description = "validation_failed: amount", body = Problem)))]
pub async fn refund(
    state: web::Data<AppState>,
    admin: AdminUser,
    path: ReturnPath,
    body: OptionalJson<RefundReturnRequest>,
) -> ApiResult<HttpResponse> {
    let amount = body.0.and_then(|body| body.amount);
    step(state, admin, path, |return_id, admin_id| {
        ReturnCommand::Refund {
            return_id,
            admin_id,
            amount,
        }
    })
    .await
}
