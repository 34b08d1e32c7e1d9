//! `/api/v1/admin/search`: this node's search index — its state, how far it agrees with
//! the database, and a rebuild on demand.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::AdminUser;
use crate::error::{ApiResult, Error, ErrorCode, Problem};
use crate::state::AppState;

/// Most products a check may compare one by one.
const MAX_SAMPLE: u32 = 1_000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// Products to compare field by field with the database, spread over the catalog:
    /// 0..=1000, default 100.
    #[param(minimum = 0, maximum = 1000)]
    pub sample: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/admin/search", tag = "admin", operation_id = "admin_search_status",
    params(StatusQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "this node's index: state, counts, a sampled comparison with the database, size, last build", body = souk_actors::catalog::search::SearchStatus)))]
pub async fn status(
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: web::Query<StatusQuery>,
) -> ApiResult<HttpResponse> {
    let sample = query.sample.unwrap_or(100);
    if sample > MAX_SAMPLE {
        return Err(Error::new(
            ErrorCode::InvalidQuery,
            format!("sample must be at most {MAX_SAMPLE}"),
        )
        .into());
    }
    let status = state
        .catalog
        .search_engine()
        .status(&state.db, sample as usize)
        .await?;
    Ok(HttpResponse::Ok().json(status))
}

#[utoipa::path(post, path = "/api/v1/admin/search/reindex", tag = "admin", operation_id = "admin_search_reindex",
    security(("bearer" = [])),
    responses((status = 200, description = "this node's index was rebuilt from the database (searches were served meanwhile)", body = souk_actors::catalog::search::BuildReport),
              (status = 503, description = "service_unavailable: a rebuild is already running", body = Problem)))]
pub async fn reindex(state: web::Data<AppState>, _admin: AdminUser) -> ApiResult<HttpResponse> {
    let report = state.catalog.search_engine().rebuild(&state.db).await?;
    Ok(HttpResponse::Ok().json(report))
}
