//! Building and running a node: its state assembled (`assembly`), its background
//! tasks started (`tasks`), then its REST, gRPC and operations servers, and the stop
//! that drains them in order. Tests build the same `Application` on port 0 and talk to
//! it over real sockets.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, DefaultHeaders};
use actix_web::{web, App, HttpRequest, HttpServer};
use anyhow::Context;

use crate::config::Config;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::http::body_deadline::BodyReadTimeout;
use crate::http::json::BodyLimit;
use crate::state::AppState;

mod assembly;
mod secrets;
mod tasks;

pub use assembly::{build_state, open_database, redis_store};
pub use secrets::jwt_secret;

/// The actix `System` a node runs on (the `souk` binary's, and the benchmark harness's
/// nodes'): a multi-thread tokio runtime of `cpus` workers (`node.cpus`), beside
/// actix-web's own workers and the actor arbiters. The tasks the node spawns (the node
/// writer's commits, the outbox relay, the NATS client) run on those workers, the email
/// workers on the node's background thread; what runs on the system's own arbiter
/// stays on the thread that runs it.
pub fn node_system(cpus: usize) -> actix_rt::SystemRunner {
    actix_rt::System::with_tokio_rt(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cpus.max(1))
            .enable_all()
            .build()
            .expect("cannot build the tokio runtime")
    })
}

pub struct Application {
    port: u16,
    grpc_port: u16,
    ops_port: u16,
    server: Server,
    grpc: GrpcTask,
    /// The operations address's server: stopped last, so probes and scrapes answer
    /// while the node drains.
    ops: OpsTask,
    state: web::Data<AppState>,
}

/// The operations server's task and its handle.
struct OpsTask {
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// The gRPC server task and the signal that stops it.
struct GrpcTask {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

async fn route_not_found(request: HttpRequest) -> ApiResult<actix_web::HttpResponse> {
    Err(ApiError::new(
        ErrorCode::RouteNotFound,
        format!("no endpoint at {}", request.path()),
    ))
}

/// The operations address: probes and the Prometheus scrape, one worker, no per-request
/// log lines or request metrics (a scrape every few seconds would drown the request
/// log). It ignores signals: `run_until_stopped` stops it after the node has drained.
fn serve_ops(listener: TcpListener, state: &web::Data<AppState>) -> anyhow::Result<OpsTask> {
    let state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(DefaultHeaders::new().add(("X-Content-Type-Options", "nosniff")))
            .configure(crate::rest::configure_ops)
    })
    .workers(1)
    .keep_alive(crate::http::KEEP_ALIVE)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    Ok(OpsTask {
        handle: server.handle(),
        task: actix_rt::spawn(server),
    })
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.http.addr).with_context(|| {
            format!(
                "cannot listen on http_addr (SOUK_HTTP_ADDR) {}",
                config.http.addr
            )
        })?;
        let grpc_listener = tokio::net::TcpListener::bind(config.grpc.addr)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on grpc_addr (SOUK_GRPC_ADDR) {}",
                    config.grpc.addr
                )
            })?;
        let ops_listener = TcpListener::bind(config.http.ops_addr).with_context(|| {
            format!(
                "cannot listen on ops_addr (SOUK_OPS_ADDR) {}",
                config.http.ops_addr
            )
        })?;
        let mut config = config;
        if config.payments.test_double_webhook_url.is_none() {
            // The test double posts its events to this node's own webhook.
            let mut own = listener.local_addr()?;
            if own.ip().is_unspecified() {
                own.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            config.payments.test_double_webhook_url =
                Some(format!("http://{own}/api/v1/payments/webhook"));
        }
        let state = build_state(config).await?;
        tasks::reopen_unhandled_events(&state).await?;
        tasks::start_tasks(&state)?;
        Self::serve(listener, grpc_listener, ops_listener, state)
    }

    fn serve(
        listener: TcpListener,
        grpc_listener: tokio::net::TcpListener,
        ops_listener: TcpListener,
        state: web::Data<AppState>,
    ) -> anyhow::Result<Self> {
        let port = listener.local_addr()?.port();
        let grpc_port = grpc_listener.local_addr()?.port();
        let ops_port = ops_listener.local_addr()?.port();
        let ops = serve_ops(ops_listener, &state)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = actix_rt::spawn(crate::grpc::serve(
            grpc_listener,
            state.clone(),
            state.services.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        let config = state.config.clone();
        let body_limit = web::Data::new(BodyLimit(config.http.max_body_bytes));
        let body_read_timeout = web::Data::new(BodyReadTimeout(std::time::Duration::from_secs(
            config.http.body_read_timeout_secs,
        )));
        let app_state = state.clone();
        let console = crate::console::Console::new(&state)?;
        let account = crate::account::Account::new(&state)?;
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(body_limit.clone())
                .app_data(body_read_timeout.clone())
                .app_data(web::QueryConfig::default().error_handler(|error, _| {
                    ApiError::new(
                        ErrorCode::InvalidQuery,
                        format!("the query string is invalid: {error}"),
                    )
                    .into()
                }))
                .app_data(web::PathConfig::default().error_handler(|error, _| {
                    ApiError::new(ErrorCode::NotFound, format!("no such resource: {error}")).into()
                }))
                .wrap(from_fn(crate::http::body_deadline::body_deadline))
                .wrap(from_fn(crate::http::observe::observe))
                // No response may be sniffed into another content type.
                .wrap(DefaultHeaders::new().add(("X-Content-Type-Options", "nosniff")))
                .configure(|routes| crate::rest::configure(routes, &app_state.services))
                .configure(|routes| crate::console::configure(routes, &console))
                .configure(|routes| crate::account::configure(routes, &account))
                .default_service(web::to(route_not_found))
        })
        .keep_alive(crate::http::KEEP_ALIVE)
        .shutdown_timeout(config.http.shutdown_timeout_secs)
        .listen(listener)?
        .workers(config.http.workers.unwrap_or_else(|| config.cpus()));
        tracing::info!(
            address = %format!("http://{}:{port}", config.http.addr.ip()),
            grpc = %format!("http://{}:{grpc_port}", config.grpc.addr.ip()),
            ops = %format!("http://{}:{ops_port}", config.http.ops_addr.ip()),
            services = %state.services,
            cpus = config.cpus(),
            database = state.db.backend().name(),
            redis = config.redis.url.is_some(),
            nats = config.nats.url.is_some(),
            "souk listening"
        );
        Ok(Self {
            port,
            grpc_port,
            ops_port,
            server: server.run(),
            grpc: GrpcTask { stop, task },
            ops,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn grpc_port(&self) -> u16 {
        self.grpc_port
    }

    /// The port of the operations address (`/metrics`, `/healthz`, `/readyz`).
    pub fn ops_port(&self) -> u16 {
        self.ops_port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// A handle that stops the server gracefully (what SIGTERM does).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT (handled by actix: in-flight requests finish within
    /// `shutdown_timeout_secs`), then closes the database pool.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        // REST has drained; gRPC stops with it and lets its in-flight calls finish.
        let _ = self.grpc.stop.send(());
        match self.grpc.task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "the gRPC server stopped with an error"),
            Err(error) => tracing::warn!(%error, "the gRPC server task failed"),
        }
        // A clustered node leaves the ring and hands its shards over while its actors
        // still run (their open batches commit before the leases are released).
        if let Some(cluster) = &self.state.cluster {
            cluster.leave().await;
        }
        // Then the node's children, in order: order actors, SKU actors (open batches
        // commit), email workers, the relay (one last pass) and the sweeper.
        let grace = std::time::Duration::from_secs(self.state.config.http.shutdown_timeout_secs);
        self.state.root.shutdown(grace).await;
        // Probes and scrapes answered while the node drained; now the ops address closes.
        self.ops.handle.stop(true).await;
        match self.ops.task.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "the operations server stopped with an error"),
            Err(error) => tracing::warn!(%error, "the operations server task failed"),
        }
        tracing::info!("souk stopped; closing connections");
        self.state.db.close().await;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::node_system;

    #[test]
    fn the_node_system_has_one_runtime_worker_per_configured_cpu() {
        for cpus in [1, 3] {
            let workers = node_system(cpus)
                .block_on(async { tokio::runtime::Handle::current().metrics().num_workers() });
            assert_eq!(workers, cpus);
        }
    }
}
