//! `/api/v1/admin/products` and `/api/v1/admin/categories`: catalog management.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::auth::AdminUser;
use crate::error::{ApiResult, Error, ErrorCode, FieldError, Problem};
use crate::http::json::Json;
use crate::rest::import_csv::{parse_csv, ParsedRows};
use crate::state::AppState;
use souk_actors::catalog::model::ProductStatus;
use souk_actors::catalog::service::{
    CategoryChanges, CategoryInput, CategoryView, ImportReport, ProductChanges, ProductInput,
    ProductView,
};

/// Imports may be larger than ordinary bodies.
pub const IMPORT_MAX_BYTES: usize = 8 * 1024 * 1024;
pub const IMPORT_MAX_ROWS: usize = 10_000;

#[utoipa::path(post, path = "/api/v1/admin/products", operation_id = "admin_create_product", tag = "admin", security(("bearer" = [])), request_body = ProductInput,
    responses((status = 201, body = ProductView),
              (status = 409, description = "sku_taken", body = Problem), (status = 422, body = Problem)))]
pub async fn create_product(
    state: web::Data<AppState>,
    _admin: AdminUser,
    body: Json<ProductInput>,
) -> ApiResult<HttpResponse> {
    let mut input = body.into_inner();
    if input.category.is_some() {
        return Err(Error::validation(vec![FieldError::new(
            "category",
            "use category_id; slugs are for imports",
        )])
        .into());
    }
    input.category = None;
    let product = state.catalog.create_product(input).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/products/{}", product.id)))
        .json(product))
}

#[utoipa::path(patch, path = "/api/v1/admin/products/{id}", operation_id = "admin_update_product", tag = "admin", security(("bearer" = [])), request_body = ProductChanges,
    params(("id" = String, Path)),
    responses((status = 200, body = ProductView), (status = 409, description = "sku_taken: another product sells a SKU this one would", body = Problem), (status = 422, body = Problem)))]
pub async fn update_product(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
    body: Json<ProductChanges>,
) -> ApiResult<HttpResponse> {
    let product = state.catalog.update_product(&id, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(product))
}

#[utoipa::path(post, path = "/api/v1/admin/products/{id}/archive", operation_id = "admin_archive_product", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, description = "archived: hidden from shoppers", body = ProductView), (status = 409, description = "sku_taken: another product sells a SKU this one would", body = Problem), (status = 422, body = Problem)))]
pub async fn archive_product(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let product = state
        .catalog
        .set_status(&id, ProductStatus::Archived)
        .await?;
    Ok(HttpResponse::Ok().json(product))
}

#[utoipa::path(post, path = "/api/v1/admin/products/{id}/restore", operation_id = "admin_restore_product", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, description = "back to draft, for review before it is active again", body = ProductView), (status = 409, description = "sku_taken: another product sells a SKU this one would", body = Problem), (status = 422, body = Problem)))]
pub async fn restore_product(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let product = state.catalog.set_status(&id, ProductStatus::Draft).await?;
    Ok(HttpResponse::Ok().json(product))
}

/// A JSON import is an array of objects: a row that is not an object (`null`, a
/// number, a nested array) is no product with a bad field but a body of the wrong
/// shape, refused whole before anything is imported.
fn parse_json_rows(body: &[u8]) -> Result<ParsedRows, Error> {
    let values: Vec<serde_json::Value> = crate::http::json::parse(body)?;
    let not_objects: Vec<FieldError> = values
        .iter()
        .enumerate()
        .filter(|(_, value)| !value.is_object())
        .map(|(index, _)| FieldError::new(format!("[{index}]"), "must be a product object"))
        .collect();
    if !not_objects.is_empty() {
        return Err(Error::new(
            ErrorCode::InvalidBody,
            format!(
                "every row of a JSON import must be a product object; {} are not",
                not_objects.len()
            ),
        )
        .with_fields(not_objects));
    }
    Ok(values
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            let parsed = serde_json::from_value::<ProductInput>(value)
                .map_err(|error| vec![FieldError::new("body", error.to_string())]);
            (index + 1, parsed)
        })
        .collect())
}

#[utoipa::path(post, path = "/api/v1/admin/products/import", operation_id = "admin_import_products", tag = "admin", security(("bearer" = [])),
    request_body(description = "A JSON array of products (as for create, with `category` as a slug), or CSV (`text/csv`) with the header \
        sku,name,description,price_amount,currency,category,tags,attributes,images,status and optionally variant_of,options; list columns separate items with `|`, \
        attributes and options are `name=value`. A line with variant_of (its product's SKU, on a line above) is a variant: its sku, options, price and images.",
        content((Vec<ProductInput> = "application/json"), (String = "text/csv"))),
    responses((status = 200, description = "per-row outcome; bad rows are reported with their line and skipped", body = ImportReport)))]
pub async fn import_products(
    state: web::Data<AppState>,
    _admin: AdminUser,
    request: HttpRequest,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let rows = match content_type.as_str() {
        "application/json" => parse_json_rows(&body)?,
        "text/csv" => parse_csv(&body)?,
        _ => {
            return Err(Error::new(
                ErrorCode::UnsupportedMediaType,
                "send application/json or text/csv",
            )
            .into())
        }
    };
    if rows.len() > IMPORT_MAX_ROWS {
        return Err(Error::new(
            ErrorCode::PayloadTooLarge,
            format!("at most {IMPORT_MAX_ROWS} rows per import"),
        )
        .into());
    }
    let report = state.catalog.import(rows).await?;
    Ok(HttpResponse::Ok().json(report))
}

#[utoipa::path(post, path = "/api/v1/admin/categories", operation_id = "admin_create_category", tag = "admin", security(("bearer" = [])), request_body = CategoryInput,
    responses((status = 201, body = CategoryView),
              (status = 409, description = "slug_taken", body = Problem), (status = 422, body = Problem)))]
pub async fn create_category(
    state: web::Data<AppState>,
    _admin: AdminUser,
    body: Json<CategoryInput>,
) -> ApiResult<HttpResponse> {
    let category = state.catalog.create_category(body.into_inner()).await?;
    Ok(HttpResponse::Created().json(category))
}

#[utoipa::path(patch, path = "/api/v1/admin/categories/{id}", operation_id = "admin_update_category", tag = "admin", security(("bearer" = [])), request_body = CategoryChanges,
    params(("id" = String, Path)),
    responses((status = 200, body = CategoryView), (status = 409, description = "slug_taken or category_cycle", body = Problem), (status = 422, body = Problem)))]
pub async fn update_category(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
    body: Json<CategoryChanges>,
) -> ApiResult<HttpResponse> {
    let category = state
        .catalog
        .update_category(&id, body.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(category))
}

#[utoipa::path(delete, path = "/api/v1/admin/categories/{id}", operation_id = "admin_delete_category", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204, description = "deleted"),
              (status = 409, description = "category_not_empty", body = Problem)))]
pub async fn delete_category(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    state.catalog.delete_category(&id).await?;
    Ok(HttpResponse::NoContent().finish())
}
