//! `/api/v1/admin/users`: user administration.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use souk_db::users::UserFilter;
use utoipa::IntoParams;

use crate::auth::AdminUser;
use crate::error::{ApiResult, Problem};
use crate::rest::views::{UserPage, UserView};
use crate::state::AppState;
use souk_actors::identity::{Role, UserStatus};
use souk_actors::paging::{checked_limit, decode_cursor, paginate};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListUsersQuery {
    /// Case-insensitive substring of the email address; `%` and `_` match literally.
    pub email: Option<String>,
    pub role: Option<Role>,
    /// 1..=100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/admin/users", operation_id = "admin_list_users", tag = "admin", security(("bearer" = [])), params(ListUsersQuery),
    responses((status = 200, body = UserPage), (status = 400, description = "invalid_query or invalid_cursor", body = Problem)))]
pub async fn list(
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: web::Query<ListUsersQuery>,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let limit = checked_limit(query.limit)?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let filter = UserFilter {
        email_contains: query
            .email
            .map(|needle| needle.trim().to_lowercase())
            .filter(|needle| !needle.is_empty()),
        role: query.role.map(|role| role.as_str().to_owned()),
        after,
        limit,
    };
    let rows = state.users.list(&filter).await?;
    let page = paginate(rows, limit, |user| &user.id, UserView::try_from);
    Ok(HttpResponse::Ok().json(UserPage {
        items: page.items.into_iter().collect::<Result<_, _>>()?,
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/v1/admin/users/{id}", operation_id = "admin_get_user", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = UserView)))]
pub async fn get(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let user = state.users.get(&id).await?;
    Ok(HttpResponse::Ok().json(UserView::try_from(user)?))
}

#[utoipa::path(post, path = "/api/v1/admin/users/{id}/disable", operation_id = "admin_disable_user", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, description = "disabled; its sessions are revoked", body = UserView), (status = 409, description = "cannot_modify_self", body = Problem)))]
pub async fn disable(
    state: web::Data<AppState>,
    admin: AdminUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let user = state
        .users
        .set_status(&admin.0.id, &id, UserStatus::Disabled)
        .await?;
    Ok(HttpResponse::Ok().json(UserView::try_from(user)?))
}

#[utoipa::path(post, path = "/api/v1/admin/users/{id}/enable", operation_id = "admin_enable_user", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, body = UserView)))]
pub async fn enable(
    state: web::Data<AppState>,
    admin: AdminUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let user = state
        .users
        .set_status(&admin.0.id, &id, UserStatus::Active)
        .await?;
    Ok(HttpResponse::Ok().json(UserView::try_from(user)?))
}
