//! `/api/v1/admin/products` and `/api/v1/admin/categories`: catalog management.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::auth::AdminUser;
use crate::error::{ApiResult, Error, ErrorCode, FieldError, Problem};
use crate::http::json::Json;
use crate::state::AppState;
use souk_actors::catalog::model::ProductStatus;
use souk_actors::catalog::service::{
    CategoryChanges, CategoryInput, CategoryView, ImportReport, MoneyInput, ProductChanges,
    ProductInput, ProductView,
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
    responses((status = 200, body = ProductView), (status = 422, body = Problem)))]
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
    responses((status = 200, description = "archived: hidden from shoppers", body = ProductView)))]
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
    responses((status = 200, description = "back to draft, for review before it is active again", body = ProductView)))]
pub async fn restore_product(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let product = state.catalog.set_status(&id, ProductStatus::Draft).await?;
    Ok(HttpResponse::Ok().json(product))
}

/// One CSV line. `tags` and `images` separate their items with `|`; `attributes` are
/// `name=value` pairs separated by `|`; `category` is a category slug.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvRow {
    sku: String,
    name: String,
    #[serde(default)]
    description: String,
    price_amount: String,
    currency: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    attributes: String,
    #[serde(default)]
    images: String,
    #[serde(default)]
    status: String,
}

fn split_list(raw: &str) -> Vec<String> {
    raw.split('|')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

impl CsvRow {
    fn into_input(self) -> Result<ProductInput, Vec<FieldError>> {
        let mut errors = Vec::new();
        let amount = self.price_amount.trim().parse::<i64>().unwrap_or_else(|_| {
            errors.push(FieldError::new(
                "price_amount",
                "must be an integer amount in minor units",
            ));
            0
        });
        let mut attributes = std::collections::BTreeMap::new();
        for pair in split_list(&self.attributes) {
            match pair.split_once('=') {
                Some((name, value)) => {
                    attributes.insert(name.trim().to_owned(), value.trim().to_owned());
                }
                None => errors.push(FieldError::new(
                    "attributes",
                    format!("{pair:?} is not name=value"),
                )),
            }
        }
        let status = match self.status.trim() {
            "" => None,
            raw => match ProductStatus::parse(raw) {
                Some(status) => Some(status),
                None => {
                    errors.push(FieldError::new("status", format!("unknown status {raw:?}")));
                    None
                }
            },
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ProductInput {
            sku: self.sku,
            name: self.name,
            description: self.description,
            price: MoneyInput {
                amount,
                currency: self.currency,
            },
            category_id: None,
            category: Some(self.category).filter(|slug| !slug.trim().is_empty()),
            tags: split_list(&self.tags),
            attributes,
            images: split_list(&self.images),
            status,
        })
    }
}

type ParsedRows = Vec<(usize, Result<ProductInput, Vec<FieldError>>)>;

fn parse_csv(body: &[u8]) -> Result<ParsedRows, Error> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::Headers)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|error| {
            Error::new(
                ErrorCode::InvalidBody,
                format!("cannot read the CSV header: {error}"),
            )
        })?
        .clone();
    for required in ["sku", "name", "price_amount", "currency"] {
        if !headers.iter().any(|header| header == required) {
            return Err(Error::new(
                ErrorCode::InvalidBody,
                format!("the CSV header lacks the {required} column"),
            ));
        }
    }
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        // The reader knows where each record (or its error) starts; a quoted field may
        // span lines, so counting records would drift.
        let line = match &record {
            Ok(record) => record.position().map(|position| position.line() as usize),
            Err(error) => error.position().map(|position| position.line() as usize),
        }
        .unwrap_or(index + 2);
        let parsed = record
            .map_err(|error| vec![FieldError::new("line", error.to_string())])
            .and_then(|record| {
                record
                    .deserialize::<CsvRow>(Some(&headers))
                    .map_err(|error| vec![FieldError::new("line", error.to_string())])
            })
            .and_then(CsvRow::into_input);
        rows.push((line, parsed));
    }
    Ok(rows)
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
        sku,name,description,price_amount,currency,category,tags,attributes,images,status; list columns separate items with `|`, attributes are `name=value`.",
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
