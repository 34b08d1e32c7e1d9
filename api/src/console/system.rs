//! The system and cluster pages. The system page shows the node root's supervision
//! tree (domains, entity hosts with their live entities and restarts, supervised
//! tasks) and the services the node calls elsewhere. The cluster page shows the members
//! with their shards and the shards this node is handing over (as
//! `GET /api/v1/admin/cluster` gives them), or says "single node".

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::page::{self, Chrome, ConsoleError};
use super::session::AdminSession;
use crate::state::AppState;
use souk_actors::node::TreeNode;

/// One branch of the tree: a label, what it reports, its children.
pub struct Branch {
    pub label: String,
    pub detail: String,
    pub children: Vec<Branch>,
}

pub struct RemoteRow {
    pub service: String,
    pub circuit: &'static str,
}

#[derive(Template)]
#[template(path = "console/system.html")]
struct SystemPage {
    chrome: Chrome,
    node: String,
    services: String,
    tree: Vec<Branch>,
    remotes: Vec<RemoteRow>,
}

/// The address this node serves HTTP on (the bound one, not a configured port 0).
fn node_address(request: &HttpRequest) -> String {
    request.app_config().local_addr().to_string()
}

/// The node root's tree (the same as `GET /api/v1/admin/system/tree`), as branches.
fn branch(node: TreeNode) -> Branch {
    let mut facts = vec![format!("{} · {}", node.kind, node.state)];
    if let Some(active) = node.active_entities {
        facts.push(format!("{active} active"));
    }
    if let Some(restarts) = node.restarts {
        facts.push(format!("{restarts} restarts"));
    }
    if let Some(failure) = &node.last_failure {
        facts.push(format!(
            "last failure: {} ({}) at {}",
            failure.key, failure.reason, failure.at
        ));
    }
    Branch {
        label: node.name,
        detail: facts.join("; "),
        children: node.children.into_iter().map(branch).collect(),
    }
}

/// `GET /admin/system`
pub async fn system_page(
    state: web::Data<AppState>,
    admin: AdminSession,
    request: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let node = node_address(&request);
    let template = SystemPage {
        chrome: Chrome::new("system", &admin),
        services: state.services.to_string(),
        tree: vec![branch(state.root.tree(&state.config.node_name()).await)],
        node,
        remotes: state
            .remotes
            .iter()
            .map(|remote| RemoteRow {
                service: remote.service().to_string(),
                circuit: if remote.breaker().is_open() {
                    "open (failing fast)"
                } else {
                    "closed"
                },
            })
            .collect(),
    };
    Ok(page::render(StatusCode::OK, &template))
}

#[derive(Template)]
#[template(path = "console/cluster.html")]
struct ClusterPage {
    chrome: Chrome,
    node: String,
    services: String,
    cluster: Option<crate::cluster::ClusterView>,
}

/// `GET /admin/cluster`
pub async fn cluster_page(
    state: web::Data<AppState>,
    admin: AdminSession,
    request: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let template = ClusterPage {
        chrome: Chrome::new("cluster", &admin),
        node: node_address(&request),
        services: state.services.to_string(),
        cluster: state.cluster.as_ref().map(|cluster| cluster.view()),
    };
    Ok(page::render(StatusCode::OK, &template))
}
