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
    /// letters and digits count; everything else separates words. At most 200
    /// characters.
    #[param(max_length = 200)]
    q: Option<String>,
    /// Category id; includes its sub-categories.
    category: Option<String>,
    /// Minimum price in minor units, inclusive.
    #[param(minimum = 0)]
    price_min: Option<i64>,
    /// Maximum price in minor units, inclusive.
    #[param(minimum = 0)]
    price_max: Option<i64>,
    /// ISO 4217 code.
    currency: Option<String>,
    /// Repeatable, at most 10; every tag must be present.
    #[param(max_items = 10)]
    tag: Option<Vec<String>>,
    /// Repeatable `name:value`, at most 10; every attribute must match.
    #[param(max_items = 10)]
    attr: Option<Vec<String>>,
    /// Comma-separated statuses; anything but `active` is for admins.
    status: Option<String>,
    /// `relevance` (default with `q`), `newest` (default otherwise), `price_asc`, `price_desc`, `name`.
    #[param(value_type = Option<SortOrder>)]
    sort: Option<String>,
    /// 1..=100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
    /// `true`: only products with available stock (never served from the cache).
    in_stock: Option<bool>,
}

/// The orders of a product list, for the document (`sort` is parsed with the rest of
/// the query by the catalog).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum SortOrder {
    Relevance,
    Newest,
    PriceAsc,
    PriceDesc,
    Name,
}

fn is_admin(user: &MaybeUser) -> bool {
    user.0.as_ref().is_some_and(|user| user.role == Role::Admin)
}

#[utoipa::path(get, path = "/api/v1/products", operation_id = "list_products", tag = "catalog", params(ProductListQuery), security((), ("bearer" = [])),
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

#[utoipa::path(get, path = "/api/v1/products/{id}", operation_id = "get_product", tag = "catalog", params(("id" = String, Path)), security((), ("bearer" = [])),
    responses((status = 200, body = ProductView)))]
pub async fn get(
    state: web::Data<AppState>,
    user: MaybeUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let product = state.catalog.get_product(&id, is_admin(&user)).await?;
    Ok(HttpResponse::Ok().json(product))
}

#[utoipa::path(get, path = "/api/v1/products/sku/{sku}", operation_id = "get_product_by_sku", tag = "catalog", params(("sku" = String, Path)), security((), ("bearer" = [])),
    responses((status = 200, body = ProductView)))]
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

#[utoipa::path(get, path = "/api/v1/categories", operation_id = "list_categories", tag = "catalog", responses((status = 200, body = CategoryTree)))]
pub async fn categories(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let items = state.catalog.category_tree().await?;
    Ok(HttpResponse::Ok().json(CategoryTree {
        items,
        next_cursor: None,
    }))
}
