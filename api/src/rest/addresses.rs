//! `/api/v1/users/me/addresses`: the caller's address book.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AuthUser;
use crate::error::{ApiResult, Problem};
use crate::http::json::Json;
use crate::state::AppState;
use souk_actors::identity::{AddressFields, AddressView};

/// A new address. Text is trimmed; `country` is an ISO 3166-1 alpha-2 code (either
/// case); `postal_code` is required for AU, CA, DE, FR, GB, JP, NL and US.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    /// The recipient: 1 to 100 characters, at least one visible.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 100)]
    pub name: Option<String>,
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200)]
    pub line1: Option<String>,
    #[schema(max_length = 200)]
    pub line2: Option<String>,
    #[schema(value_type = String, required = true, min_length = 1, max_length = 100)]
    pub city: Option<String>,
    /// State, province or county.
    #[schema(max_length = 100)]
    pub region: Option<String>,
    /// Letters, digits, spaces and hyphens; stored upper case.
    #[schema(max_length = 12)]
    pub postal_code: Option<String>,
    #[schema(value_type = String, required = true, min_length = 2, max_length = 2)]
    pub country: Option<String>,
    /// 4 to 15 digits, an optional leading `+`, and spaces, `-`, `.`, `/`, parentheses.
    #[schema(max_length = 32)]
    pub phone: Option<String>,
}

/// Only the fields given change; an empty string clears an optional field. The
/// address that results is validated whole (a new `country` may need `postal_code`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressChanges {
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    pub line1: Option<String>,
    #[schema(max_length = 200)]
    pub line2: Option<String>,
    #[schema(min_length = 1, max_length = 100)]
    pub city: Option<String>,
    #[schema(max_length = 100)]
    pub region: Option<String>,
    #[schema(max_length = 12)]
    pub postal_code: Option<String>,
    #[schema(min_length = 2, max_length = 2)]
    pub country: Option<String>,
    #[schema(max_length = 32)]
    pub phone: Option<String>,
}

impl From<AddressInput> for AddressFields {
    fn from(input: AddressInput) -> Self {
        Self {
            name: input.name,
            line1: input.line1,
            line2: input.line2,
            city: input.city,
            region: input.region,
            postal_code: input.postal_code,
            country: input.country,
            phone: input.phone,
        }
    }
}

impl From<AddressChanges> for AddressFields {
    fn from(changes: AddressChanges) -> Self {
        Self {
            name: changes.name,
            line1: changes.line1,
            line2: changes.line2,
            city: changes.city,
            region: changes.region,
            postal_code: changes.postal_code,
            country: changes.country,
            phone: changes.phone,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AddressPage {
    pub items: Vec<AddressView>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AddressesQuery {
    /// 1..=100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/users/me/addresses", operation_id = "list_addresses", tag = "users", security(("bearer" = [])), params(AddressesQuery),
    responses((status = 200, description = "the caller's addresses, oldest first", body = AddressPage)))]
pub async fn list(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<AddressesQuery>,
) -> ApiResult<HttpResponse> {
    let page = state
        .addresses
        .list(&user.id, query.cursor.as_deref(), query.limit)
        .await?;
    Ok(HttpResponse::Ok().json(AddressPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(post, path = "/api/v1/users/me/addresses", operation_id = "create_address", tag = "users", security(("bearer" = [])), request_body = AddressInput,
    responses((status = 201, body = AddressView), (status = 409, description = "address_limit: the address book is full (users.max_addresses)", body = Problem),
              (status = 422, description = "validation_failed, naming each invalid field", body = Problem)))]
pub async fn create(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Json<AddressInput>,
) -> ApiResult<HttpResponse> {
    let address = state
        .addresses
        .create(&user.id, body.into_inner().into())
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            "Location",
            format!("/api/v1/users/me/addresses/{}", address.id),
        ))
        .json(address))
}

#[utoipa::path(get, path = "/api/v1/users/me/addresses/{id}", operation_id = "get_address", tag = "users", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = AddressView), (status = 404, description = "also for another user's address", body = Problem)))]
pub async fn get(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.addresses.get(&user.id, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/users/me/addresses/{id}", operation_id = "update_address", tag = "users", security(("bearer" = [])), params(("id" = String, Path)), request_body = AddressChanges,
    responses((status = 200, body = AddressView), (status = 404, description = "also for another user's address", body = Problem),
              (status = 422, description = "validation_failed, naming each invalid field", body = Problem),
              (status = 503, description = "service_unavailable: concurrent edits kept winning; retry", body = Problem)))]
pub async fn update(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
    body: Json<AddressChanges>,
) -> ApiResult<HttpResponse> {
    let address = state
        .addresses
        .update(&user.id, &id, body.into_inner().into())
        .await?;
    Ok(HttpResponse::Ok().json(address))
}

#[utoipa::path(delete, path = "/api/v1/users/me/addresses/{id}", operation_id = "delete_address", tag = "users", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204, description = "deleted; orders that used it keep their copy"), (status = 404, description = "also for another user's address", body = Problem)))]
pub async fn delete(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    state.addresses.delete(&user.id, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}
