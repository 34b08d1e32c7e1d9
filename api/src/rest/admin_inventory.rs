//! `/api/v1/admin/inventory`: stock levels, adjustments and the movement ledger.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AdminUser;
use crate::error::{ApiResult, Error, ErrorCode, Problem};
use crate::http::json::Json;
use crate::rest::headers::idempotency_key;
use crate::state::AppState;
use souk_actors::catalog::model::parse_sku;
use souk_actors::inventory::service::{MovementView, OnHandChange, StockChange, StockView};
use souk_actors::paging::{
    checked_limit, decode_cursor, decode_optional, encode_cursor, encode_position,
};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InventoryListQuery {
    /// Only SKUs whose available stock is below their threshold.
    pub low_stock: Option<bool>,
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
pub struct MovementsQuery {
    /// 1..=100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StockPage {
    pub items: Vec<StockView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MovementPage {
    pub items: Vec<MovementView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustRequest {
    /// Units to add (restock) or remove (shrinkage, correction); may be 0 when only the
    /// threshold changes.
    #[schema(minimum = -1_000_000_000, maximum = 1_000_000_000)]
    pub delta: i64,
    /// Why, for the ledger: 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub reason: String,
    /// Below this many available units the SKU is low on stock (0 turns it off).
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub low_stock_threshold: Option<i64>,
}

/// The cursor of the stock list (ordered by SKU): the last SKU of the page.
fn sku_cursor(cursor: Option<&str>) -> Result<Option<String>, Error> {
    let sku: Option<String> = decode_optional("sku", cursor)?;
    sku.map(|sku| {
        parse_sku(&sku).map_err(|_| {
            Error::new(
                ErrorCode::InvalidCursor,
                "the cursor is not one this API issued",
            )
        })
    })
    .transpose()
}

#[utoipa::path(get, path = "/api/v1/admin/inventory", operation_id = "admin_list_stock", tag = "admin", security(("bearer" = [])), params(InventoryListQuery),
    responses((status = 200, body = StockPage)))]
pub async fn list(
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: web::Query<InventoryListQuery>,
) -> ApiResult<HttpResponse> {
    let limit = checked_limit(query.limit)?;
    let after = sku_cursor(query.cursor.as_deref())?;
    let mut rows = state
        .inventory
        .list(query.low_stock.unwrap_or(false), after.as_deref(), limit)
        .await?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = has_more
        .then(|| rows.last().map(|item| encode_position("sku", &item.sku)))
        .flatten();
    Ok(HttpResponse::Ok().json(StockPage {
        items: rows.into_iter().map(StockView::from).collect(),
        next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/v1/admin/inventory/{sku}", operation_id = "admin_get_stock", tag = "admin", security(("bearer" = [])), params(("sku" = String, Path)),
    responses((status = 200, body = StockView),
              (status = 503, body = Problem)))]
pub async fn get(
    state: web::Data<AppState>,
    _admin: AdminUser,
    sku: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let sku = state.inventory.known_sku(&sku).await?;
    Ok(HttpResponse::Ok().json(state.inventory.stock(&sku).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/inventory/{sku}/adjust", operation_id = "admin_adjust_stock", tag = "admin", security(("bearer" = [])),
    params(("sku" = String, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe adjustment: sent again with the same key (for this SKU, compared exactly), its delta is not applied again, whatever delta it carries; a low_stock_threshold sent with it is set again")),
    request_body = AdjustRequest,
    responses((status = 200, description = "committed (or, with an Idempotency-Key seen before for this SKU, committed earlier); the ledger holds the movement", body = StockView),
              (status = 409, description = "below_reserved", body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
pub async fn adjust(
    state: web::Data<AppState>,
    admin: AdminUser,
    sku: web::Path<String>,
    request: HttpRequest,
    body: Json<AdjustRequest>,
) -> ApiResult<HttpResponse> {
    let request_key = idempotency_key(&request)?;
    let reason = souk_actors::inventory::service::validate_adjustment(
        body.delta,
        &body.reason,
        body.low_stock_threshold,
    )?;
    let sku = state.inventory.known_sku(&sku).await?;
    let change = StockChange {
        on_hand: OnHandChange::By(body.delta),
        reason,
        low_stock_threshold: body.low_stock_threshold,
        request_key,
    };
    let stock = state.inventory.adjust(&sku, change, &admin.0.id).await?;
    Ok(HttpResponse::Ok().json(stock))
}

#[utoipa::path(get, path = "/api/v1/admin/inventory/{sku}/movements", operation_id = "admin_list_movements", tag = "admin", security(("bearer" = [])),
    params(("sku" = String, Path), MovementsQuery),
    responses((status = 200, body = MovementPage)))]
pub async fn movements(
    state: web::Data<AppState>,
    _admin: AdminUser,
    sku: web::Path<String>,
    query: web::Query<MovementsQuery>,
) -> ApiResult<HttpResponse> {
    let sku = state.inventory.known_sku(&sku).await?;
    let limit = checked_limit(query.limit)?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut rows = state
        .inventory
        .movements(&sku, after.as_deref(), limit)
        .await?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = has_more
        .then(|| rows.last().map(|movement| encode_cursor(&movement.id)))
        .flatten();
    Ok(HttpResponse::Ok().json(MovementPage {
        items: rows.into_iter().map(MovementView::from).collect(),
        next_cursor,
    }))
}
