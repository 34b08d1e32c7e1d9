//! The system and cluster pages. The supervision tree shown here is a placeholder built
//! from what the node reports today (the services it runs, the live-actor gauges and
//! restart counters of its metrics, its worker pool, the services it calls); the full
//! tree will come from `GET /api/v1/admin/system/tree` once that exists. The cluster
//! page says "single node" until the cluster does.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::page::{self, Chrome, ConsoleError};
use super::session::AdminSession;
use crate::state::AppState;
use crate::topology::Service;

/// One branch of the tree: a label, what it reports, its children.
pub struct Branch {
    pub label: String,
    pub detail: String,
    pub children: Vec<Branch>,
}

impl Branch {
    fn leaf(label: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            detail: detail.into(),
            children: Vec::new(),
        }
    }
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

/// The sum of a metric over its label sets in Prometheus text, if it was recorded.
fn metric(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        if let Some(value) = rest
            .rsplit(' ')
            .next()
            .and_then(|value| value.parse::<f64>().ok())
        {
            *found.get_or_insert(0.0) += value;
        }
    }
    found
}

fn count(text: &str, name: &str) -> String {
    format!("{}", metric(text, name).unwrap_or(0.0).max(0.0) as u64)
}

/// The address this node serves HTTP on (the bound one, not a configured port 0).
fn node_address(request: &HttpRequest) -> String {
    request.app_config().local_addr().to_string()
}

fn tree(state: &AppState, node: &str) -> Vec<Branch> {
    let text = state.metrics.render();
    let config = &state.config;
    let mut children = Vec::new();
    if state.services.contains(Service::Inventory) {
        children.push(Branch::leaf(
            "inventory supervisor",
            format!(
                "{} SKU actors live; {} restarts, {} passivations, {} fenced writes",
                count(&text, "souk_inventory_actors_live"),
                count(&text, "souk_inventory_actor_restarts_total"),
                count(&text, "souk_inventory_actor_passivations_total"),
                count(&text, "souk_inventory_fenced_total"),
            ),
        ));
    }
    if state.services.contains(Service::Order) {
        children.push(Branch::leaf(
            "order supervisor",
            format!(
                "{} order actors live; expiry sweeper every second",
                count(&text, "souk_order_actors_live")
            ),
        ));
    }
    if state.services.contains(Service::Email) {
        children.push(Branch::leaf(
            "email workers",
            format!(
                "{} workers; {} restarts; {} sent, {} dead-lettered",
                config.email_workers,
                count(&text, "souk_email_worker_restarts_total"),
                count(&text, "souk_emails_sent_total"),
                count(&text, "souk_emails_dead_lettered_total"),
            ),
        ));
    }
    if config.outbox_relay {
        children.push(Branch::leaf(
            "outbox relay",
            format!(
                "polls every {} ms; {} events published",
                config.outbox_poll_ms,
                count(&text, "souk_outbox_published_total")
            ),
        ));
    }
    let stateless: Vec<&str> = [Service::User, Service::Auth, Service::Product]
        .into_iter()
        .filter(|service| state.services.contains(*service))
        .map(Service::as_str)
        .collect();
    if !stateless.is_empty() {
        children.push(Branch::leaf("stateless services", stateless.join(", ")));
    }
    children.push(Branch::leaf(
        "console live hub",
        format!(
            "{} open live consoles",
            count(&text, "souk_console_live_viewers")
        ),
    ));
    vec![Branch {
        label: "node".to_owned(),
        detail: node.to_owned(),
        children,
    }]
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
        tree: tree(&state, &node),
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
    };
    Ok(page::render(StatusCode::OK, &template))
}

#[cfg(test)]
mod tests {
    use super::metric;

    #[test]
    fn sums_a_metric_over_its_labels() {
        let text = "# TYPE souk_x_total counter\nsouk_x_total{reason=\"a\"} 2\nsouk_x_total{reason=\"b\"} 3\nsouk_x_totality 9\nsouk_y 1.5\n";
        assert_eq!(metric(text, "souk_x_total"), Some(5.0));
        assert_eq!(metric(text, "souk_y"), Some(1.5));
        assert_eq!(metric(text, "souk_z"), None);
    }
}
