//! Building and running a node: connections, services, the HTTP server.
//! Tests build the same `Application` on port 0 and talk to it over real sockets.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use actix::Actor;
use actix_web::dev::Server;
use actix_web::middleware::{from_fn, DefaultHeaders};
use actix_web::{web, App, HttpRequest, HttpServer};
use anyhow::Context;
use futures_util::future::BoxFuture;
use souk_actors::cart::{CartService, CartStore, DbCartStore, RedisCartStore};
use souk_actors::catalog::cache::Cache;
use souk_actors::catalog::snapshots::Snapshots;
use souk_actors::catalog::{CatalogService, SearchEngine};
use souk_actors::email::processor::Processor;
use souk_actors::email::transport::Transport;
use souk_actors::email::{worker, EmailService};
use souk_actors::entity::{EntityRouter, HostSettings};
use souk_actors::identity::rate_limit::RateLimiter;
use souk_actors::identity::{
    AccessCache, AddressBook, AuthService, JwtKeys, PasswordHasher, UserService,
};
use souk_actors::inventory::{
    InventoryError, InventoryService, Sku, SkuDeps, SkuReply, SkuRequest, SkuRouter,
};
use souk_actors::node::NodeRoot;
use souk_actors::orders::actor::ExpiryListener;
use souk_actors::orders::{OrderLogic, OrderService, PaymentWebhooks};
use souk_actors::outbox::bus::LocalBus;
use souk_actors::outbox::relay::{Publisher, Relay};
use souk_actors::outbox::Names;
use souk_actors::ports::ProductLookup;
use souk_actors::redis_store::RedisStore;
use souk_actors::shipping::Shipping;
use souk_db::{Db, PoolSettings};

use souk_cluster::entities::PassivateHost;
use souk_cluster::EntityHandler;

use crate::cluster::ClusterRuntime;
use crate::config::Config;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::http::body_deadline::BodyReadTimeout;
use crate::http::json::BodyLimit;
use crate::remote::{RemoteInventory, RemoteProducts, RemoteService};
use crate::state::AppState;
use crate::topology::Service;

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

/// Opens the database of the configuration (creating the embedded data directory when
/// needed) and applies pending migrations.
pub async fn open_database(config: &Config) -> anyhow::Result<Db> {
    if config.is_embedded() {
        std::fs::create_dir_all(&config.node.data_dir).with_context(|| {
            format!(
                "cannot create data directory {}",
                config.node.data_dir.display()
            )
        })?;
    }
    let settings = PoolSettings {
        max_connections: config.database.max_connections,
        stock_connections: config.database.stock_connections,
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
    if let Some(secret) = &config.jwt.secret {
        return Ok(secret.expose().as_bytes().to_vec());
    }
    if let Some(path) = &config.jwt.secret_file {
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
    embedded_jwt_secret(&config.node.data_dir.join("jwt-secret"))
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
        souk_actors::identity::secret_token::generate(),
        souk_actors::identity::secret_token::generate()
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

impl EntityRouter<Sku> for AbsentInventory {
    fn send(
        &self,
        _sku: String,
        _request: SkuRequest,
    ) -> BoxFuture<'static, Result<SkuReply, InventoryError>> {
        Box::pin(async {
            Err(InventoryError::Unreachable(
                "this node does not run the inventory service".into(),
            ))
        })
    }
}

/// Entity hosts run their actors on a pool of arbiters sized to the machine; order
/// actors spend their time waiting on the database, so one arbiter serves them.
fn order_host_settings() -> HostSettings {
    HostSettings {
        arbiters: 1,
        ..HostSettings::default()
    }
}

/// The domains of a node, built from its configuration and owned by its node root.
pub async fn build_state(config: Config) -> anyhow::Result<web::Data<AppState>> {
    let db = open_database(&config).await?;
    let secret = jwt_secret(&config)?;
    let jwt = JwtKeys::new(
        &secret,
        &config.jwt.issuer,
        &config.jwt.audience,
        config.jwt.access_token_ttl_secs,
    );
    let hasher = PasswordHasher::new(config.auth.bcrypt_cost, config.auth.hash_threads as usize);
    let redis = redis_store(&config)?;
    let nats = match &config.nats.url {
        Some(url) => Some(connect_nats(url).await?),
        None => None,
    };
    let services = config.service_set()?;
    let cluster = match (&nats, config.cluster.enabled) {
        (Some(client), true) => {
            let mut settings = config.cluster.clone();
            settings.entity_kinds = services.entity_kinds();
            Some(Arc::new(
                ClusterRuntime::join(client.clone(), settings)
                    .await
                    .context("cannot join the cluster")?,
            ))
        }
        _ => None,
    };
    let ownership = cluster.as_ref().map(|cluster| cluster.ownership());
    let deadline = std::time::Duration::from_millis(config.grpc.deadline_ms);
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
    let mut root = NodeRoot::new(services.domains());
    let mut remotes = Vec::new();
    let limiter = RateLimiter::new(redis.clone());
    let access = AccessCache::new(std::time::Duration::from_millis(
        config.auth.access_cache_ttl_ms,
    ));
    // Carts live in Redis when it is configured (shared by every node, guest carts
    // expiring there), else in the database.
    let cart_store: Arc<dyn CartStore> = match &redis {
        Some(redis) => Arc::new(RedisCartStore::new(redis.clone())),
        None => Arc::new(DbCartStore::new(db.clone())),
    };
    let users =
        UserService::new(db.clone(), hasher.clone(), access.clone()).with_carts(cart_store.clone());
    let addresses = AddressBook::new(db.clone(), config.users.max_addresses);
    let auth = AuthService::new(
        db.clone(),
        jwt,
        hasher,
        limiter,
        config.auth_settings(),
        access,
    );
    let search = SearchEngine::open(config.search.index_dir.as_deref())
        .map_err(|error| anyhow::anyhow!("cannot open the search index: {error}"))?;
    let catalog = CatalogService::new(db.clone(), Cache::new(redis.clone()), search)
        .with_snapshots(Snapshots::new(std::time::Duration::from_millis(
            config.orders.product_snapshot_ttl_ms,
        )));
    // The inventory tells expired reservations to the orders' router, which exists only
    // once the order service (built on the inventory) does. A node without the order
    // service runs no order entity: the order service's sweeper expires those orders.
    let order_router_cell = Arc::new(std::sync::OnceLock::new());
    let expiry_listener = ExpiryListener {
        orders: order_router_cell.clone(),
    }
    .start();
    // SKU actors live only where the inventory service runs; elsewhere the same router
    // interface reaches them over gRPC.
    // Committed batches are announced on a feed where the SKU actors run (the admin
    // console's live view listens).
    let stock_feed = services
        .contains(Service::Inventory)
        .then(souk_actors::inventory::new_feed);
    let mut local_skus = None;
    let sku_router: SkuRouter = if services.contains(Service::Inventory) {
        let deps = SkuDeps {
            db: db.clone(),
            expiry_listener: services
                .contains(Service::Order)
                .then(|| expiry_listener.recipient()),
            feed: stock_feed.clone(),
        };
        let local = souk_actors::inventory::start_host_with_ownership(
            deps,
            HostSettings::default(),
            ownership.clone(),
        );
        root.own_inventory(local.host().clone());
        local_skus = Some(local.clone());
        match &cluster {
            Some(cluster) => cluster.router(local),
            None => Arc::new(local),
        }
    } else if !services.remote_dependencies().contains(&Service::Inventory) {
        Arc::new(AbsentInventory)
    } else {
        let client = remote(Service::Inventory)?;
        remotes.push(client.clone());
        Arc::new(RemoteInventory::new(client))
    };
    let mut inventory = InventoryService::new(db.clone(), sku_router, catalog.clone());
    if let Some(feed) = stock_feed {
        inventory = inventory.with_feed(feed);
    }
    let products: Arc<dyn ProductLookup> = if services.contains(Service::Product)
        || !services.remote_dependencies().contains(&Service::Product)
    {
        Arc::new(catalog.clone())
    } else {
        let client = remote(Service::Product)?;
        remotes.push(client.clone());
        Arc::new(RemoteProducts::new(client))
    };
    let webhook_signer = crate::payments::webhook_signer(&config)?;
    let logic = OrderLogic::new(
        db.clone(),
        products.clone(),
        inventory.clone(),
        Arc::new(crate::payments::test_double(&config, &webhook_signer)),
        std::time::Duration::from_secs(config.orders.reservation_ttl_secs),
        config.orders.purchase_limits(),
        addresses.clone(),
    )
    .with_return_window(std::time::Duration::from_secs(
        config.orders.return_window_secs,
    ))
    .with_prices_include_tax(config.orders.prices_include_tax);
    let shipping = Shipping::new(db.clone());
    let order_host = souk_actors::orders::start_host_with_ownership(
        logic.clone(),
        order_host_settings(),
        ownership,
    );
    root.own_orders(order_host.host().clone());
    let orders = OrderService::new(
        logic,
        match &cluster {
            Some(cluster) => cluster.router(order_host.clone()),
            None => Arc::new(order_host.clone()),
        },
    );
    if let Some(cluster) = &cluster {
        let mut handler = EntityHandler::default();
        let mut hosts: Vec<Arc<dyn PassivateHost>> = Vec::new();
        if services.contains(Service::Order) {
            handler = handler.with(order_host.clone());
            hosts.push(Arc::new(order_host));
        }
        if let Some(local) = local_skus {
            handler = handler.with(local.clone());
            hosts.push(Arc::new(local));
        }
        cluster
            .serve(handler, hosts)
            .await
            .context("cannot serve the cluster's envelopes")?;
    }
    let _ = order_router_cell.set(orders.router().clone());
    let carts = CartService::new(
        cart_store,
        products,
        inventory.clone(),
        orders.clone(),
        std::time::Duration::from_secs(config.cart.guest_ttl_secs),
    );
    let payments = PaymentWebhooks::new(
        db.clone(),
        orders.router().clone(),
        webhook_signer,
        config.payments.webhook_tolerance_secs,
    );
    let names = Names::new(&config.events.namespace);
    let publisher = match &nats {
        Some(client) => Publisher::JetStream {
            context: Box::new(async_nats::jetstream::new(client.clone())),
            names,
        },
        None => Publisher::Local(LocalBus::new()),
    };
    let email = EmailService::new(db.clone(), publisher);
    let metrics = crate::metrics::install();
    crate::metrics::register_alert_series(&services);
    Ok(web::Data::new(AppState {
        services,
        remotes,
        config: Arc::new(config),
        db,
        users,
        auth,
        addresses,
        catalog,
        inventory,
        orders,
        carts,
        shipping,
        payments,
        email,
        redis,
        nats,
        root: Arc::new(root),
        cluster,
        metrics,
    }))
}

/// The Redis store of the configuration, if one is configured.
pub fn redis_store(config: &Config) -> anyhow::Result<Option<Arc<RedisStore>>> {
    match &config.redis.url {
        Some(url) => Ok(Some(Arc::new(
            RedisStore::new(url, &config.redis.key_prefix)
                .context("invalid configuration: redis_url (SOUK_REDIS_URL)")?,
        ))),
        None => Ok(None),
    }
}

/// The node root's tasks: the outbox relay (when enabled), the email worker pool
/// (consuming what the relay publishes: JetStream's shared durable consumer, or the
/// in-process bus), the session cache's feed, the search index's build and feed, and
/// the order expiry sweeper.
fn start_tasks(state: &web::Data<AppState>) -> anyhow::Result<()> {
    let config = &state.config;
    let root = &state.root;
    let publisher = state.email.publisher().clone();
    // Mail goes out where the email service runs; every node relays its own outbox (the
    // events of split services meet on NATS, which config requires for a split node).
    if state.services.contains(Service::Email) {
        let settings =
            config.email_settings(souk_actors::orders::OrderLinks::new(&jwt_secret(config)?));
        let transport = Transport::from_settings(&settings)?;
        tracing::info!(transport = %transport.describe(), workers = config.email.workers, "email workers starting");
        let processor = Arc::new(Processor::new(state.db.clone(), transport, &settings)?);
        worker::spawn_pool(root, config.email.workers, processor, publisher.clone());
    }
    if config.outbox.relay {
        let relay = Arc::new(Relay::new(state.db.clone(), publisher.clone()));
        let poll = std::time::Duration::from_millis(config.outbox.poll_ms);
        root.spawn_task("outbox", "outbox-relay", move |stopping| {
            let relay = relay.clone();
            async move { relay.run(poll, stopping).await }
        });
    }
    // Every node authenticates, so every node's cache of live sessions forgets what the
    // access events of every node revoke.
    let access = state.auth.access().clone();
    let access_publisher = publisher.clone();
    root.spawn_task("identity", "access-cache", move |stopping| {
        access.clone().follow(access_publisher.clone(), stopping)
    });
    // The search index is built where the catalog is served, then follows the catalog
    // events of every node.
    if state.services.contains(Service::Product) {
        let catalog = state.catalog.clone();
        let publisher = publisher.clone();
        root.spawn_task("catalog", "search-index", move |stopping| {
            souk_actors::catalog::feeds::build_and_follow(
                catalog.clone(),
                publisher.clone(),
                stopping,
            )
        });
    }
    if state.services.contains(Service::Order) {
        let orders = state.orders.clone();
        root.spawn_task("orders", "expiry-sweeper", move |stopping| {
            sweep_orders(orders.clone(), stopping)
        });
    }
    Ok(())
}

/// Once a second until the node stops: expires unpaid orders past their deadline
/// (through their actors) and finishes stock effects that a crash left undone.
async fn sweep_orders(
    orders: souk_actors::orders::OrderService,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopping.wait_for(|stopped| *stopped) => return Ok(()),
        }
        if let Err(error) = orders.expire_due().await {
            tracing::warn!(%error, "order expiry sweep failed");
        }
        if let Err(error) = orders.settle_unsettled().await {
            tracing::warn!(%error, "order settlement sweep failed");
        }
    }
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
        start_tasks(&state)?;
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
        let mut server = HttpServer::new(move || {
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
        .shutdown_timeout(config.http.shutdown_timeout_secs)
        .listen(listener)?;
        if let Some(workers) = config.http.workers {
            server = server.workers(workers);
        }
        tracing::info!(
            address = %format!("http://{}:{port}", config.http.addr.ip()),
            grpc = %format!("http://{}:{grpc_port}", config.grpc.addr.ip()),
            ops = %format!("http://{}:{ops_port}", config.http.ops_addr.ip()),
            services = %state.services,
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
