//! Building and running a node: connections, services, the HTTP server.
//! Tests build the same `Application` on port 0 and talk to it over real sockets.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpRequest, HttpServer};
use anyhow::Context;
use souk_db::{Db, PoolSettings};

use crate::auth::rate_limit::RateLimiter;
use crate::auth::{JwtKeys, PasswordHasher};
use actix::Actor;
use souk_actors::inventory::{
    InventoryError, InventoryRouter, InventorySupervisor, LocalInventory, SupervisorSettings,
};

use crate::cache::Cache;
use crate::config::Config;
use crate::email::processor::Processor;
use crate::email::transport::Transport;
use crate::email::worker;
use crate::email::EmailService;
use crate::error::{Error, ErrorCode};
use crate::events::bus::LocalBus;
use crate::events::relay::{Publisher, Relay};
use crate::events::Names;
use crate::grpc::remote::{RemoteInventory, RemoteProducts, RemoteService};
use crate::http::json::BodyLimit;
use crate::redis_store::RedisStore;
use crate::services::inventory::InventoryService;
use crate::services::order_actors::{ExpiryListener, OrderCommand, OrderRouter, OrderSupervisor};
use crate::services::orders::{OrderService, ProductLookup};
use crate::services::payments::TestDoublePaymentProvider;
use crate::services::{AuthService, CatalogService, UserService};
use crate::state::AppState;
use crate::topology::Service;

pub struct Application {
    port: u16,
    grpc_port: u16,
    server: Server,
    grpc: GrpcTask,
    state: web::Data<AppState>,
}

/// The gRPC server task and the signal that stops it.
struct GrpcTask {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

/// Opens the database of the configuration (creating the embedded data directory when
/// needed) and applies pending migrations.
pub async fn open_database(config: &Config) -> anyhow::Result<Db> {
    if config.is_embedded() {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
    }
    let settings = PoolSettings {
        max_connections: config.database_max_connections,
        ..PoolSettings::default()
    };
    let db = Db::connect(&config.effective_database_url(), &settings)
        .await
        .context("cannot open the database (SOUK_DATABASE_URL)")?;
    db.migrate()
        .await
        .context("cannot apply database migrations")?;
    Ok(db)
}

/// The JWT signing key: configured, read from a file, or — embedded mode only —
/// generated once and kept in the data directory.
pub fn jwt_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(secret.expose().as_bytes().to_vec());
    }
    if let Some(path) = &config.jwt_secret_file {
        let secret = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read jwt_secret_file (SOUK_JWT_SECRET_FILE) {}",
                path.display()
            )
        })?;
        let secret = secret.trim();
        anyhow::ensure!(secret.len() >= 32, "invalid configuration: jwt_secret_file (SOUK_JWT_SECRET_FILE): the secret must be at least 32 bytes");
        return Ok(secret.as_bytes().to_vec());
    }
    anyhow::ensure!(
        config.is_embedded(),
        "invalid configuration: jwt_secret (SOUK_JWT_SECRET): set SOUK_JWT_SECRET or SOUK_JWT_SECRET_FILE when the database is not the embedded SQLite"
    );
    embedded_jwt_secret(&config.data_dir.join("jwt-secret"))
}

fn embedded_jwt_secret(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            return Ok(existing.as_bytes().to_vec());
        }
    }
    let secret = format!(
        "{}{}",
        crate::auth::secret_token::generate(),
        crate::auth::secret_token::generate()
    );
    write_private(path, &secret)
        .with_context(|| format!("cannot write the generated JWT key to {}", path.display()))?;
    tracing::warn!(
        path = %path.display(),
        "generated a JWT signing key for embedded mode; set SOUK_JWT_SECRET or SOUK_JWT_SECRET_FILE in production"
    );
    Ok(secret.into_bytes())
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

async fn connect_nats(url: &str) -> anyhow::Result<async_nats::Client> {
    // Retrying the first connection in the background lets the node start and report
    // not-ready while NATS is down, instead of refusing to start.
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .name("souk")
        .connect(url)
        .await
        .context("cannot connect to NATS (SOUK_NATS_URL)")
}

/// The inventory router of a node that neither runs nor calls the inventory: nothing
/// on it sends stock commands, and if something did it must not start SKU actors
/// here (they live only where the inventory service runs).
struct AbsentInventory;

impl InventoryRouter for AbsentInventory {
    fn send(
        &self,
        _sku: String,
        _command: souk_actors::inventory::Command,
    ) -> futures_util::future::BoxFuture<
        'static,
        Result<souk_actors::inventory::Outcome, InventoryError>,
    > {
        Box::pin(async {
            Err(InventoryError::Unreachable(
                "this node does not run the inventory service".into(),
            ))
        })
    }

    fn stock(
        &self,
        _sku: String,
    ) -> futures_util::future::BoxFuture<
        'static,
        Result<souk_actors::inventory::Stock, InventoryError>,
    > {
        Box::pin(async {
            Err(InventoryError::Unreachable(
                "this node does not run the inventory service".into(),
            ))
        })
    }
}

/// The services of a node, built from its configuration; also used by CLI commands.
pub async fn build_state(config: Config) -> anyhow::Result<web::Data<AppState>> {
    let db = open_database(&config).await?;
    let secret = jwt_secret(&config)?;
    let jwt = JwtKeys::new(
        &secret,
        &config.jwt_issuer,
        &config.jwt_audience,
        config.access_token_ttl_secs,
    );
    let hasher = PasswordHasher::new(config.bcrypt_cost);
    let redis = match &config.redis_url {
        Some(url) => Some(Arc::new(
            RedisStore::new(url, &config.redis_key_prefix)
                .context("invalid configuration: redis_url (SOUK_REDIS_URL)")?,
        )),
        None => None,
    };
    let nats = match &config.nats_url {
        Some(url) => Some(connect_nats(url).await?),
        None => None,
    };
    let services = config.service_set()?;
    let deadline = std::time::Duration::from_millis(config.grpc_deadline_ms);
    let service_jwt = jwt.clone();
    let remote = |service: Service| -> anyhow::Result<RemoteService> {
        let url = config.grpc_url(service).with_context(|| {
            format!(
                "invalid configuration: {service}_grpc_url (SOUK_{}_GRPC_URL): required",
                service.as_str().to_uppercase()
            )
        })?;
        RemoteService::new(
            service,
            url,
            service_jwt.clone(),
            &services.to_string(),
            deadline,
        )
        .map_err(|problem| {
            anyhow::anyhow!(
                "invalid configuration: {service}_grpc_url (SOUK_{}_GRPC_URL): {problem}",
                service.as_str().to_uppercase()
            )
        })
    };
    let mut remotes = Vec::new();
    let limiter = RateLimiter::new(redis.clone());
    let users = UserService::new(db.clone(), hasher.clone());
    let auth = AuthService::new(db.clone(), jwt, hasher, limiter, &config);
    let catalog = CatalogService::new(db.clone(), Cache::new(redis.clone()));
    // The inventory tree: one supervisor, SKU actors started on first use.
    // The inventory tells expired reservations to the orders' router, which exists only
    // once the order service (built on the inventory) does.
    let order_router_cell = Arc::new(std::sync::OnceLock::new());
    let expiry_listener = ExpiryListener {
        orders: order_router_cell.clone(),
    }
    .start();
    // SKU actors live only where the inventory service runs; elsewhere the same router
    // interface reaches them over gRPC.
    let inventory_router: Arc<dyn InventoryRouter> = if services.contains(Service::Inventory) {
        let supervisor = InventorySupervisor::new(
            db.clone(),
            SupervisorSettings::default(),
            Some(expiry_listener.recipient()),
        )
        .start();
        Arc::new(LocalInventory::new(supervisor))
    } else if !services.remote_dependencies().contains(&Service::Inventory) {
        Arc::new(AbsentInventory)
    } else {
        let client = remote(Service::Inventory)?;
        remotes.push(client.clone());
        Arc::new(RemoteInventory::new(client))
    };
    let inventory = InventoryService::new(db.clone(), inventory_router);
    let products: Arc<dyn ProductLookup> = if services.contains(Service::Product)
        || !services.remote_dependencies().contains(&Service::Product)
    {
        Arc::new(catalog.clone())
    } else {
        let client = remote(Service::Product)?;
        remotes.push(client.clone());
        Arc::new(RemoteProducts::new(client))
    };
    let orders = OrderService::new(
        db.clone(),
        products,
        inventory.clone(),
        Arc::new(TestDoublePaymentProvider),
        std::time::Duration::from_secs(config.order_reservation_ttl_secs),
    );
    let order_router = OrderRouter::new(
        OrderSupervisor::new(orders.clone(), std::time::Duration::from_secs(60)).start(),
    );
    let _ = order_router_cell.set(order_router.clone());
    let names = Names::new(&config.events_namespace);
    let publisher = match &nats {
        Some(client) => Publisher::JetStream {
            context: Box::new(async_nats::jetstream::new(client.clone())),
            names,
        },
        None => Publisher::Local(LocalBus::new()),
    };
    let email = EmailService::new(db.clone(), publisher);
    Ok(web::Data::new(AppState {
        services,
        remotes,
        config: Arc::new(config),
        db,
        users,
        auth,
        catalog,
        inventory,
        orders,
        order_router,
        email,
        redis,
        nats,
        metrics: crate::metrics::install(),
    }))
}

/// The outbox relay (when enabled) and the email worker pool, consuming what the
/// relay publishes: JetStream's shared durable consumer, or the in-process bus.
fn start_events(state: &AppState) -> anyhow::Result<()> {
    let config = &state.config;
    let publisher = state.email.publisher().clone();
    // Mail goes out where the email service runs; every node relays its own outbox (the
    // events of split services meet on NATS, which config requires for a split node).
    if state.services.contains(Service::Email) {
        let transport = Transport::from_config(config)?;
        tracing::info!(transport = %transport.describe(), workers = config.email_workers, "email workers starting");
        let processor = Arc::new(Processor::new(state.db.clone(), transport, config)?);
        worker::start_pool(config.email_workers, processor, publisher.clone());
    }
    if config.outbox_relay {
        Relay::new(state.db.clone(), publisher)
            .spawn(std::time::Duration::from_millis(config.outbox_poll_ms));
    }
    Ok(())
}

/// Once a second, for as long as the node runs: expires unpaid orders past their deadline
/// and finishes stock effects that a crash left undone.
fn spawn_order_expiry(state: web::Data<AppState>) {
    actix_rt::spawn(async move {
        let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            ticker.tick().await;
            match state.orders.due_for_expiry().await {
                Ok(due) => {
                    for order_id in due {
                        if let Err(error) = state
                            .order_router
                            .send(&order_id, OrderCommand::Expire)
                            .await
                        {
                            tracing::warn!(%order_id, %error, "cannot expire order");
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "order expiry sweep failed"),
            }
            if let Err(error) = state.orders.settle_unsettled().await {
                tracing::warn!(%error, "order settlement sweep failed");
            }
        }
    });
}

async fn route_not_found(request: HttpRequest) -> Result<actix_web::HttpResponse, Error> {
    Err(Error::new(
        ErrorCode::RouteNotFound,
        format!("no endpoint at {}", request.path()),
    ))
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.http_addr).with_context(|| {
            format!(
                "cannot listen on http_addr (SOUK_HTTP_ADDR) {}",
                config.http_addr
            )
        })?;
        let grpc_listener = tokio::net::TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on grpc_addr (SOUK_GRPC_ADDR) {}",
                    config.grpc_addr
                )
            })?;
        let state = build_state(config).await?;
        start_events(&state)?;
        if state.services.contains(Service::Order) {
            spawn_order_expiry(state.clone());
        }
        Self::serve(listener, grpc_listener, state)
    }

    fn serve(
        listener: TcpListener,
        grpc_listener: tokio::net::TcpListener,
        state: web::Data<AppState>,
    ) -> anyhow::Result<Self> {
        let port = listener.local_addr()?.port();
        let grpc_port = grpc_listener.local_addr()?.port();
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
        let body_limit = web::Data::new(BodyLimit(config.max_body_bytes));
        let app_state = state.clone();
        let console = crate::console::Console::new(&state)?;
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(body_limit.clone())
                .app_data(web::QueryConfig::default().error_handler(|error, _| {
                    Error::new(
                        ErrorCode::InvalidQuery,
                        format!("the query string is invalid: {error}"),
                    )
                    .into()
                }))
                .app_data(web::PathConfig::default().error_handler(|error, _| {
                    Error::new(ErrorCode::NotFound, format!("no such resource: {error}")).into()
                }))
                .wrap(from_fn(crate::http::observe::observe))
                .configure(|routes| crate::routes::configure(routes, &app_state.services))
                .configure(|routes| crate::console::configure(routes, &console))
                .default_service(web::to(route_not_found))
        })
        .shutdown_timeout(config.shutdown_timeout_secs)
        .listen(listener)?;
        if let Some(workers) = config.workers {
            server = server.workers(workers);
        }
        tracing::info!(
            address = %format!("http://{}:{port}", config.http_addr.ip()),
            grpc = %format!("http://{}:{grpc_port}", config.grpc_addr.ip()),
            services = %state.services,
            database = state.db.backend().name(),
            redis = config.redis_url.is_some(),
            nats = config.nats_url.is_some(),
            "souk listening"
        );
        Ok(Self {
            port,
            grpc_port,
            server: server.run(),
            grpc: GrpcTask { stop, task },
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn grpc_port(&self) -> u16 {
        self.grpc_port
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
        tracing::info!("souk stopped; closing connections");
        self.state.db.close().await;
        result
    }
}
