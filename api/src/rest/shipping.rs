//! `/api/v1/shipping-methods` (what shoppers may choose for a country) and, for admins,
//! `/api/v1/admin/shipping-methods` and `/api/v1/admin/tax-rates`.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AdminUser;
use crate::error::{ApiResult, Problem};
use crate::http::json::Json;
use crate::state::AppState;
use souk_actors::shipping::{
    ShippingMethodChanges, ShippingMethodInput, ShippingMethodView, TaxRateInput, TaxRateView,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct ShippingMethodList {
    pub items: Vec<ShippingMethodView>,
    /// Always null: the list comes whole.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaxRateList {
    pub items: Vec<TaxRateView>,
    /// Always null: the list comes whole.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ShippingMethodsQuery {
    /// ISO 3166-1 alpha-2 (either case): only the methods that ship there. Absent:
    /// every active method.
    #[param(min_length = 2, max_length = 2)]
    pub country: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/shipping-methods", operation_id = "list_shipping_methods", tag = "orders", params(ShippingMethodsQuery),
    responses((status = 200, description = "the active methods (serving `country` when given), by code", body = ShippingMethodList),
              (status = 422, description = "validation_failed: `country` is not an ISO 3166-1 alpha-2 code", body = Problem)))]
pub async fn available(
    state: web::Data<AppState>,
    query: web::Query<ShippingMethodsQuery>,
) -> ApiResult<HttpResponse> {
    let items = state.shipping.available(query.country.as_deref()).await?;
    Ok(HttpResponse::Ok().json(ShippingMethodList {
        items,
        next_cursor: None,
    }))
}

#[utoipa::path(get, path = "/api/v1/admin/shipping-methods", operation_id = "admin_list_shipping_methods", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "every method, active or not, by code", body = ShippingMethodList)))]
pub async fn admin_list(state: web::Data<AppState>, _admin: AdminUser) -> ApiResult<HttpResponse> {
    let items = state.shipping.list().await?;
    Ok(HttpResponse::Ok().json(ShippingMethodList {
        items,
        next_cursor: None,
    }))
}

#[utoipa::path(post, path = "/api/v1/admin/shipping-methods", operation_id = "admin_create_shipping_method", tag = "admin", security(("bearer" = [])), request_body = ShippingMethodInput,
    responses((status = 201, body = ShippingMethodView), (status = 409, description = "shipping_method_taken: another method has the code", body = Problem),
              (status = 422, description = "validation_failed, naming each invalid field", body = Problem)))]
pub async fn create(
    state: web::Data<AppState>,
    _admin: AdminUser,
    body: Json<ShippingMethodInput>,
) -> ApiResult<HttpResponse> {
    let method = state.shipping.create(body.into_inner()).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!("/api/v1/admin/shipping-methods/{}", method.code),
        ))
        .json(method))
}

#[utoipa::path(patch, path = "/api/v1/admin/shipping-methods/{code}", operation_id = "admin_update_shipping_method", tag = "admin", security(("bearer" = [])), params(("code" = String, Path)), request_body = ShippingMethodChanges,
    responses((status = 200, body = ShippingMethodView), (status = 422, description = "validation_failed, naming each invalid field", body = Problem),
              (status = 503, description = "service_unavailable: concurrent edits kept winning; retry", body = Problem)))]
pub async fn update(
    state: web::Data<AppState>,
    _admin: AdminUser,
    code: web::Path<String>,
    body: Json<ShippingMethodChanges>,
) -> ApiResult<HttpResponse> {
    let method = state.shipping.update(&code, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(method))
}

#[utoipa::path(delete, path = "/api/v1/admin/shipping-methods/{code}", operation_id = "admin_delete_shipping_method", tag = "admin", security(("bearer" = [])), params(("code" = String, Path)),
    responses((status = 204, description = "deleted; orders placed with it keep its code and name")))]
pub async fn delete(
    state: web::Data<AppState>,
    _admin: AdminUser,
    code: web::Path<String>,
) -> ApiResult<HttpResponse> {
    state.shipping.delete(&code).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(get, path = "/api/v1/admin/tax-rates", operation_id = "admin_list_tax_rates", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "every country's rate, by country", body = TaxRateList)))]
pub async fn tax_rates(state: web::Data<AppState>, _admin: AdminUser) -> ApiResult<HttpResponse> {
    let items = state.shipping.tax_rates().await?;
    Ok(HttpResponse::Ok().json(TaxRateList {
        items,
        next_cursor: None,
    }))
}

#[utoipa::path(put, path = "/api/v1/admin/tax-rates/{country}", operation_id = "admin_put_tax_rate", tag = "admin", security(("bearer" = [])),
    params(("country" = String, Path, description = "ISO 3166-1 alpha-2 (either case)")), request_body = TaxRateInput,
    responses((status = 200, description = "the country's rate, changed", body = TaxRateView), (status = 201, description = "the country's rate, new", body = TaxRateView),
              (status = 422, description = "validation_failed: `country` is not an ISO 3166-1 alpha-2 code, or `rate_bps` is not 0 to 10000", body = Problem)))]
pub async fn put_tax_rate(
    state: web::Data<AppState>,
    _admin: AdminUser,
    country: web::Path<String>,
    body: Json<TaxRateInput>,
) -> ApiResult<HttpResponse> {
    let (rate, created) = state
        .shipping
        .put_tax_rate(&country, body.into_inner().rate_bps)
        .await?;
    Ok(if created {
        HttpResponse::Created().json(rate)
    } else {
        HttpResponse::Ok().json(rate)
    })
}

#[utoipa::path(delete, path = "/api/v1/admin/tax-rates/{country}", operation_id = "admin_delete_tax_rate", tag = "admin", security(("bearer" = [])),
    params(("country" = String, Path, description = "ISO 3166-1 alpha-2 (either case)")),
    responses((status = 204, description = "deleted: orders to the country carry no tax"),
              (status = 422, description = "validation_failed: `country` is not an ISO 3166-1 alpha-2 code", body = Problem)))]
pub async fn delete_tax_rate(
    state: web::Data<AppState>,
    _admin: AdminUser,
    country: web::Path<String>,
) -> ApiResult<HttpResponse> {
    state.shipping.delete_tax_rate(&country).await?;
    Ok(HttpResponse::NoContent().finish())
}
