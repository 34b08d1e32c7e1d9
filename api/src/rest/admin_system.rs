//! `/api/v1/admin/system`: what the node runs — its supervision tree.

use actix_web::{web, HttpResponse};

use crate::auth::AdminUser;
use crate::error::ApiResult;
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/admin/system/tree", tag = "admin", operation_id = "admin_system_tree",
    security(("bearer" = [])),
    responses((status = 200, description = "the node, its domains, and under them their entity hosts (active entities, restarts, last failure) and tasks", body = souk_actors::node::TreeNode)))]
pub async fn tree(state: web::Data<AppState>, _admin: AdminUser) -> ApiResult<HttpResponse> {
    let tree = state.root.tree(&state.config.node_name()).await;
    Ok(HttpResponse::Ok().json(tree))
}
