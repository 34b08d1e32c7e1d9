//! Operations endpoints: liveness and readiness (on the public port and the operations
//! address), Prometheus metrics (on the operations address only).

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// Each dependency: `ok`, or what is wrong with it.
    pub checks: BTreeMap<&'static str, String>,
    /// Age in seconds of the oldest event the relay has not published yet (0 when
    /// none): a detail, not a readiness condition.
    pub outbox_lag_seconds: Option<f64>,
}

/// The process is up and serving; says nothing about its dependencies.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "ops", responses((status = 200, body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Every configured dependency answers (the database always, Redis and NATS when set),
/// where the catalog is served the search index is built, and a clustered node has
/// joined, read the shard table and holds its shards (not while it leaves).
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "ops",
    responses((status = 200, body = Readiness), (status = 503, description = "a dependency is down or the search index is still being built; `checks` names it", body = Readiness)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let mut checks = BTreeMap::new();
    let database = match tokio::time::timeout(CHECK_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => "ok".to_owned(),
        Ok(Err(error)) => format!("error: {error}"),
        Err(_) => "error: timed out".to_owned(),
    };
    checks.insert("database", database);
    if let Some(redis) = &state.redis {
        let answer = match redis.ping().await {
            Ok(()) => "ok".to_owned(),
            Err(error) => format!("error: {error}"),
        };
        checks.insert("redis", answer);
    }
    if let Some(nats) = &state.nats {
        let answer = match tokio::time::timeout(CHECK_TIMEOUT, nats.flush()).await {
            Ok(Ok(())) => "ok".to_owned(),
            Ok(Err(error)) => format!("error: {error}"),
            Err(_) => format!("error: timed out ({:?})", nats.connection_state()),
        };
        checks.insert("nats", answer);
    }
    if let Some(cluster) = &state.cluster {
        let answer = match cluster.ready() {
            Ok(()) => "ok".to_owned(),
            Err(reason) => reason,
        };
        checks.insert("cluster", answer);
    }
    // Searches wait for the search index's first build.
    if state.services.contains(crate::topology::Service::Product) {
        let search = if state.catalog.search_engine().is_ready() {
            "ok"
        } else {
            "building"
        };
        checks.insert("search", search.to_owned());
    }
    // A split service is ready only if the services it calls answer their health check.
    for remote in &state.remotes {
        checks.insert(remote.service().grpc_name(), remote_health(remote).await);
    }
    let outbox_lag_seconds = souk_actors::outbox::relay::outbox_lag(&state.db).await.ok();
    if let Some(lag) = outbox_lag_seconds {
        metrics::gauge!("souk_outbox_lag_seconds").set(lag);
    }
    let ready = checks.values().all(|answer| answer == "ok");
    for (dependency, answer) in &checks {
        if answer != "ok" {
            tracing::warn!(dependency, answer = %answer, "not ready");
        }
    }
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        checks,
        outbox_lag_seconds,
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn remote_health(remote: &crate::remote::RemoteService) -> String {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let mut client = HealthClient::new(remote.channel());
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: remote.service().grpc_name().to_owned(),
    });
    request.set_timeout(CHECK_TIMEOUT);
    match tokio::time::timeout(CHECK_TIMEOUT, client.check(request)).await {
        Ok(Ok(response)) if response.get_ref().status == ServingStatus::Serving as i32 => {
            "ok".to_owned()
        }
        Ok(Ok(_)) => "error: not serving".to_owned(),
        Ok(Err(status)) => format!("error: {}", status.message()),
        Err(_) => "error: timed out".to_owned(),
    }
}

/// Prometheus text exposition; served on the operations address, not in the public
/// API document.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    crate::metrics::record_pool(&state.db);
    crate::metrics::collect_process();
    // The relay records the lag after each pass; a scrape sees it even before the first.
    if let Ok(lag) = souk_actors::outbox::relay::outbox_lag(&state.db).await {
        metrics::gauge!("souk_outbox_lag_seconds").set(lag);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
