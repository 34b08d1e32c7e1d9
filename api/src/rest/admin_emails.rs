//! `/api/v1/admin/emails`: the send log and dead letters.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AdminUser;
use crate::error::{ApiResult, Problem};
use crate::state::AppState;
use souk_actors::email::service::{DeadLetterView, SendView};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1..=100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SendPage {
    pub items: Vec<SendView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterPage {
    pub items: Vec<DeadLetterView>,
    pub next_cursor: Option<String>,
}

/// Recent sends, newest first, with their status.
#[utoipa::path(get, path = "/api/v1/admin/emails", operation_id = "admin_list_email_sends", tag = "admin", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = SendPage)))]
pub async fn list_sends(
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let page = state
        .email
        .list_sends(query.cursor.as_deref(), query.limit)
        .await?;
    Ok(HttpResponse::Ok().json(SendPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Events whose mails failed every attempt, newest first.
#[utoipa::path(get, path = "/api/v1/admin/emails/dead-letters", operation_id = "admin_list_dead_letters", tag = "admin", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = DeadLetterPage)))]
pub async fn dead_letters(
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let page = state
        .email
        .dead_letters(query.cursor.as_deref(), query.limit)
        .await?;
    Ok(HttpResponse::Ok().json(DeadLetterPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Publishes the dead letter's event again (once); its unsent mails get a new round of
/// attempts.
#[utoipa::path(post, path = "/api/v1/admin/emails/dead-letters/{id}/replay", operation_id = "admin_replay_dead_letter", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 202, description = "queued again", body = DeadLetterView), (status = 409, description = "already_replayed", body = Problem), (status = 503, body = Problem)))]
pub async fn replay(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let letter = state.email.replay(&id).await?;
    Ok(HttpResponse::Accepted().json(letter))
}
