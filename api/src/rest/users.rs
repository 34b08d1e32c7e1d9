//! `/api/v1/users/me`: a user's own account.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::error::{ApiResult, Problem};
use crate::http::json::Json;
use crate::state::AppState;
use souk_actors::identity::users::ProfileChanges;
use souk_actors::identity::views::UserView;

/// Only the fields given change. Role and status are not the user's to set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfileRequest {
    /// 1 to 100 characters, at least one visible.
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// A new address takes effect only when confirmed from the link mailed to it; the
    /// current address is told of the request. Needs `current_password`.
    #[schema(min_length = 1, max_length = 254)]
    pub email: Option<String>,
    /// The account's password; required with `email`.
    #[schema(min_length = 1, max_length = 1024)]
    pub current_password: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/users/me", operation_id = "get_me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserView)))]
pub async fn get_me(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    let record = state.users.get(&user.id).await?;
    Ok(HttpResponse::Ok().json(UserView::try_from(record)?))
}

#[utoipa::path(patch, path = "/api/v1/users/me", operation_id = "update_me", tag = "users", security(("bearer" = [])), request_body = UpdateProfileRequest,
    responses((status = 200, description = "the profile as it is now: a new email address stays pending until confirmed", body = UserView),
              (status = 403, description = "wrong_password", body = Problem),
              (status = 409, description = "email_taken", body = Problem), (status = 422, body = Problem),
              (status = 429, description = "rate_limited: too many wrong passwords for this account (counted with sign-ins); see Retry-After", body = Problem)))]
pub async fn update_me(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Json<UpdateProfileRequest>,
) -> ApiResult<HttpResponse> {
    let changes = ProfileChanges::parse(
        body.email.as_deref(),
        body.name.as_deref(),
        body.current_password.as_deref(),
    )?;
    let record = state.users.update_profile(&user.id, changes).await?;
    Ok(HttpResponse::Ok().json(UserView::try_from(record)?))
}

#[utoipa::path(delete, path = "/api/v1/users/me", operation_id = "delete_me", tag = "users", security(("bearer" = [])),
    responses((status = 204, description = "the account and its sessions are deleted")))]
pub async fn delete_me(state: web::Data<AppState>, user: AuthUser) -> ApiResult<HttpResponse> {
    state.users.delete(&user.id).await?;
    Ok(HttpResponse::NoContent().finish())
}
