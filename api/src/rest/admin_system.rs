//! `/api/v1/admin/system` and `/api/v1/admin/cluster`: what the node runs — its
//! supervision tree — and the cluster it is part of.

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

#[utoipa::path(get, path = "/api/v1/admin/cluster", tag = "admin", operation_id = "admin_cluster",
    security(("bearer" = [])),
    responses((status = 200, description = "the members as the answering node sees them, the shards each holds with their owner epochs, and the shards it is handing over; `enabled: false` on a node that is not clustered", body = crate::cluster::ClusterView)))]
pub async fn cluster(state: web::Data<AppState>, _admin: AdminUser) -> ApiResult<HttpResponse> {
    let view = match &state.cluster {
        Some(cluster) => cluster.view(),
        None => crate::cluster::ClusterView::single(&state.config.node_name()),
    };
    Ok(HttpResponse::Ok().json(view))
}
