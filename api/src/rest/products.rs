//! `/api/v1/products` and `/api/v1/categories`: the shopper's catalog.

use actix_web::{web, HttpResponse};

use crate::auth::MaybeUser;
use crate::error::{ApiResult, Error, Problem};
use crate::state::AppState;
use souk_actors::catalog::model::parse_sku;
use souk_actors::catalog::query::parse_search_params;
use souk_actors::catalog::service::{CategoryView, ProductView, SearchPage};
use souk_actors::identity::Role;

/// Query parameters of the product list, documented for OpenAPI; parsed by hand because
/// `tag` and `attr` repeat.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ProductListQuery {
    /// Full-text search over name, description and tags, ranked by relevance. Only
    /// letters and digits count; everything else separates words.
    q: Option<String>,
    /// Category id; includes its sub-categories.
    category: Option<String>,
    /// Minimum price in minor units, inclusive.
    price_min: Option<i64>,
    /// Maximum price in minor units, inclusive.
    price_max: Option<i64>,
    /// ISO 4217 code.
    currency: Option<String>,
    /// Repeatable; every tag must be present.
    tag: Option<Vec<String>>,
    /// Repeatable `name:value`; every attribute must match.
    attr: Option<Vec<String>>,
    /// Comma-separated statuses; anything but `active` is for admins.
    status: Option<String>,
    /// `relevance` (default with `q`), `newest` (default otherwise), `price_asc`, `price_desc`, `name`.
    sort: Option<String>,
    /// 1..=100, default 20.
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// `true`: only products with available stock (never served from the cache).
    in_stock: Option<bool>,
}

fn is_admin(user: &MaybeUser) -> bool {
    user.0.as_ref().is_some_and(|user| user.role == Role::Admin)
}

#[utoipa::path(get, path = "/api/v1/products", tag = "catalog", params(ProductListQuery),
    responses((status = 200, body = SearchPage), (status = 400, description = "invalid_query or invalid_cursor", body = Problem),
              (status = 401, description = "a token was sent and is invalid", body = Problem), (status = 403, description = "non-admin asked for non-active products", body = Problem)))]
pub async fn list(
    state: web::Data<AppState>,
    user: MaybeUser,
    query: web::Query<Vec<(String, String)>>,
) -> ApiResult<HttpResponse> {
    let params = parse_search_params(&query)?;
    let page = state.catalog.search(params, is_admin(&user)).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "catalog", params(("id" = String, Path)),
    responses((status = 200, body = ProductView), (status = 404, body = Problem)))]
pub async fn get(
    state: web::Data<AppState>,
    user: MaybeUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let product = state.catalog.get_product(&id, is_admin(&user)).await?;
    Ok(HttpResponse::Ok().json(product))
}

#[utoipa::path(get, path = "/api/v1/products/sku/{sku}", tag = "catalog", params(("sku" = String, Path)),
    responses((status = 200, body = ProductView), (status = 404, body = Problem)))]
pub async fn get_by_sku(
    state: web::Data<AppState>,
    user: MaybeUser,
    sku: web::Path<String>,
) -> ApiResult<HttpResponse> {
    if parse_sku(&sku).is_err() {
        return Err(Error::not_found("product").into());
    }
    let product = state
        .catalog
        .get_product_by_sku(&sku, is_admin(&user))
        .await?;
    Ok(HttpResponse::Ok().json(product))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct CategoryTree {
    /// Root categories, each with its `children`.
    pub items: Vec<CategoryView>,
    /// Always null: the tree comes whole.
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/categories", tag = "catalog", responses((status = 200, body = CategoryTree)))]
pub async fn categories(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let items = state.catalog.category_tree().await?;
    Ok(HttpResponse::Ok().json(CategoryTree {
        items,
        next_cursor: None,
    }))
}
