//! `/api/v1/products` and `/api/v1/categories`: the shopper's catalog.

use actix_web::{web, HttpResponse};

use crate::auth::MaybeUser;
use crate::domain::catalog::{parse_sku, ProductStatus};
use crate::domain::{Currency, Role};
use crate::error::{Error, ErrorCode, Problem};
use crate::http::pagination::checked_limit;
use crate::services::catalog::{parse_sort, CategoryView, ProductView, SearchPage, SearchParams};
use crate::state::AppState;

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

fn invalid(detail: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidQuery, detail)
}

fn one<'a>(seen: &mut Vec<&'a str>, key: &'a str) -> Result<(), Error> {
    if seen.contains(&key) {
        return Err(invalid(format!("{key} may be given once")));
    }
    seen.push(key);
    Ok(())
}

fn parse_price(key: &str, value: &str) -> Result<i64, Error> {
    value
        .parse::<i64>()
        .ok()
        .filter(|amount| *amount >= 0)
        .ok_or_else(|| {
            invalid(format!(
                "{key} must be a non-negative integer amount in minor units"
            ))
        })
}

pub fn parse_search_params(pairs: &[(String, String)]) -> Result<SearchParams, Error> {
    let mut params = SearchParams::default();
    let mut seen = Vec::new();
    let mut limit = None;
    for (key, value) in pairs {
        match key.as_str() {
            "q" => {
                one(&mut seen, "q")?;
                if value.chars().count() > 200 {
                    return Err(invalid("q must be at most 200 characters"));
                }
                params.q = Some(value.clone());
            }
            "category" => {
                one(&mut seen, "category")?;
                params.category_id = Some(value.clone());
            }
            "price_min" => {
                one(&mut seen, "price_min")?;
                params.price_min = Some(parse_price(key, value)?);
            }
            "price_max" => {
                one(&mut seen, "price_max")?;
                params.price_max = Some(parse_price(key, value)?);
            }
            "currency" => {
                one(&mut seen, "currency")?;
                params.currency = Some(Currency::parse(value).map_err(invalid)?.code().to_owned());
            }
            "tag" => {
                if params.tags.len() >= 10 {
                    return Err(invalid("at most 10 tag filters"));
                }
                params.tags.push(value.trim().to_lowercase());
            }
            "attr" => {
                let (name, attribute_value) = value
                    .split_once(':')
                    .ok_or_else(|| invalid("attr must be name:value"))?;
                if params.attributes.len() >= 10 {
                    return Err(invalid("at most 10 attr filters"));
                }
                params.attributes.push((
                    name.trim().to_lowercase(),
                    attribute_value.trim().to_owned(),
                ));
            }
            "status" => {
                one(&mut seen, "status")?;
                let statuses = value
                    .split(',')
                    .map(|status| {
                        ProductStatus::parse(status.trim())
                            .ok_or_else(|| invalid(format!("unknown status {status:?}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                params.statuses = Some(statuses);
            }
            "sort" => {
                one(&mut seen, "sort")?;
                params.sort = Some(parse_sort(value).ok_or_else(|| {
                    invalid(format!("unknown sort {value:?}; use relevance, newest, price_asc, price_desc or name"))
                })?);
            }
            "limit" => {
                one(&mut seen, "limit")?;
                limit = Some(
                    value
                        .parse::<u32>()
                        .map_err(|_| invalid("limit must be between 1 and 100"))?,
                );
            }
            "cursor" => {
                one(&mut seen, "cursor")?;
                params.cursor = Some(value.clone());
            }
            "in_stock" => {
                one(&mut seen, "in_stock")?;
                params.in_stock = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid("in_stock must be true or false")),
                };
            }
            other => return Err(invalid(format!("unknown parameter {other:?}"))),
        }
    }
    if let (Some(minimum), Some(maximum)) = (params.price_min, params.price_max) {
        if minimum > maximum {
            return Err(invalid("price_min must not exceed price_max"));
        }
    }
    params.limit = checked_limit(limit)?;
    Ok(params)
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
) -> Result<HttpResponse, Error> {
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
) -> Result<HttpResponse, Error> {
    let product = state.catalog.get_product(&id, is_admin(&user)).await?;
    Ok(HttpResponse::Ok().json(product))
}

#[utoipa::path(get, path = "/api/v1/products/sku/{sku}", tag = "catalog", params(("sku" = String, Path)),
    responses((status = 200, body = ProductView), (status = 404, body = Problem)))]
pub async fn get_by_sku(
    state: web::Data<AppState>,
    user: MaybeUser,
    sku: web::Path<String>,
) -> Result<HttpResponse, Error> {
    if parse_sku(&sku).is_err() {
        return Err(Error::not_found("product"));
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
pub async fn categories(state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    let items = state.catalog.category_tree().await?;
    Ok(HttpResponse::Ok().json(CategoryTree {
        items,
        next_cursor: None,
    }))
}
