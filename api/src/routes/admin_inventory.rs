//! `/api/v1/admin/inventory`: stock levels, adjustments and the movement ledger.

use actix_web::{web, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AdminUser;
use crate::domain::catalog::parse_sku;
use crate::error::{Error, ErrorCode, Problem};
use crate::http::json::Json;
use crate::http::pagination::{checked_limit, decode_cursor, encode_cursor};
use crate::services::inventory::{MovementView, StockView};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InventoryListQuery {
    /// Only SKUs whose available stock is below their threshold.
    pub low_stock: Option<bool>,
    /// 1..=100, default 20.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MovementsQuery {
    pub limit: Option<u32>,
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
    pub delta: i64,
    /// Why, for the ledger: 1 to 200 characters.
    pub reason: String,
    /// Below this many available units the SKU is low on stock (0 turns it off).
    pub low_stock_threshold: Option<i64>,
}

fn sku_cursor(cursor: Option<&str>) -> Result<Option<String>, Error> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let invalid = || {
        Error::new(
            ErrorCode::InvalidCursor,
            "the cursor is not one this API issued",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let sku = text.strip_prefix("sku:").ok_or_else(invalid)?;
    parse_sku(sku).map(Some).map_err(|_| invalid())
}

/// Admins adjust stock only for SKUs of the catalog.
pub(crate) async fn known_sku(state: &AppState, raw: &str) -> Result<String, Error> {
    let sku = parse_sku(raw).map_err(|_| Error::not_found("sku"))?;
    state
        .catalog
        .get_product_by_sku(&sku, true)
        .await
        .map_err(|_| Error::not_found("sku"))?;
    Ok(sku)
}

#[utoipa::path(get, path = "/api/v1/admin/inventory", tag = "admin", security(("bearer" = [])), params(InventoryListQuery),
    responses((status = 200, body = StockPage), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list(
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: web::Query<InventoryListQuery>,
) -> Result<HttpResponse, Error> {
    let limit = checked_limit(query.limit)?;
    let after = sku_cursor(query.cursor.as_deref())?;
    let mut rows = state
        .inventory
        .list(query.low_stock.unwrap_or(false), after.as_deref(), limit)
        .await?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = has_more
        .then(|| {
            rows.last()
                .map(|item| URL_SAFE_NO_PAD.encode(format!("sku:{}", item.sku)))
        })
        .flatten();
    Ok(HttpResponse::Ok().json(StockPage {
        items: rows.into_iter().map(StockView::from).collect(),
        next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/v1/admin/inventory/{sku}", tag = "admin", security(("bearer" = [])), params(("sku" = String, Path)),
    responses((status = 200, body = StockView), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 503, body = Problem)))]
pub async fn get(
    state: web::Data<AppState>,
    _admin: AdminUser,
    sku: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let sku = known_sku(&state, &sku).await?;
    Ok(HttpResponse::Ok().json(state.inventory.stock(&sku).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/inventory/{sku}/adjust", tag = "admin", security(("bearer" = [])), params(("sku" = String, Path)),
    request_body = AdjustRequest,
    responses((status = 200, description = "committed; the ledger holds the movement", body = StockView), (status = 400, body = Problem),
              (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, description = "below_reserved", body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
pub async fn adjust(
    state: web::Data<AppState>,
    admin: AdminUser,
    sku: web::Path<String>,
    body: Json<AdjustRequest>,
) -> Result<HttpResponse, Error> {
    let reason = crate::services::inventory::validate_adjustment(
        body.delta,
        &body.reason,
        body.low_stock_threshold,
    )?;
    let sku = known_sku(&state, &sku).await?;
    let stock = state
        .inventory
        .adjust(
            &sku,
            body.delta,
            &reason,
            body.low_stock_threshold,
            &admin.0.id,
        )
        .await?;
    Ok(HttpResponse::Ok().json(stock))
}

#[utoipa::path(get, path = "/api/v1/admin/inventory/{sku}/movements", tag = "admin", security(("bearer" = [])),
    params(("sku" = String, Path), MovementsQuery),
    responses((status = 200, body = MovementPage), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
pub async fn movements(
    state: web::Data<AppState>,
    _admin: AdminUser,
    sku: web::Path<String>,
    query: web::Query<MovementsQuery>,
) -> Result<HttpResponse, Error> {
    let sku = known_sku(&state, &sku).await?;
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
