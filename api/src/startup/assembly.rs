//! Assembling a node's domains from its configuration: the database, keys, Redis,
//! NATS and the cluster it joins, then every service — local where `--services` runs
//! it, a gRPC client where another process does — owned by the node root.

use std::sync::Arc;

use actix::Actor;
use actix_web::web;
use anyhow::Context;
use futures_util::future::BoxFuture;
use souk_actors::cart::{CartService, CartStore, DbCartStore, RedisCartStore};
use souk_actors::catalog::cache::Cache;
use souk_actors::catalog::snapshots::Snapshots;
use souk_actors::catalog::{CatalogService, SearchEngine};
use souk_actors::email::EmailService;
use souk_actors::entity::{EntityRouter, HostSettings};
use souk_actors::identity::rate_limit::{AccountGuesses, RateLimiter};
use souk_actors::identity::{
    AccessCache, AddressBook, AuthService, JwtKeys, PasswordHasher, UserService,
};
use souk_actors::inventory::{
    InventoryError, InventoryService, Sku, SkuDeps, SkuReply, SkuRequest, SkuRouter,
};
use souk_actors::node::NodeRoot;
use souk_actors::orders::actor::ExpiryListener;
use souk_actors::orders::{
    Order, OrderCommand, OrderLogic, OrderRouter, OrderService, OrderView, PaymentWebhooks,
};
use souk_actors::outbox::bus::LocalBus;
use souk_actors::outbox::relay::Publisher;
use souk_actors::outbox::Names;
use souk_actors::ports::ProductLookup;
use souk_actors::redis_store::RedisStore;
use souk_actors::shipping::Shipping;
use souk_db::{Db, PoolSettings};

use souk_cluster::entities::PassivateHost;
use souk_cluster::EntityHandler;

use super::secrets::jwt_secret;
use crate::cluster::ClusterRuntime;
use crate::config::Config;
use crate::remote::{RemoteInventory, RemoteProducts, RemoteService};
use crate::state::AppState;
use crate::topology::Service;

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
    // The email workers' own connections: one per event they handle at once.
    let mail_connections = if config.service_set()?.contains(Service::Email) {
        u32::try_from(config.email.workers.saturating_mul(config.email.in_flight))
            .unwrap_or(u32::MAX)
    } else {
        0
    };
    let settings = PoolSettings {
        max_connections: config.database.max_connections,
        stock_connections: config.database.stock_connections,
        mail_connections,
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

    fn serves_here(&self, _sku: &str) -> bool {
        false
    }
}

/// The order router of a node without the order service: nothing on it sends order
/// commands (its REST and gRPC order routes and the sweeper run only with the
/// service), and if something did it must not start order actors here.
struct AbsentOrders;

impl EntityRouter<Order> for AbsentOrders {
    fn send(
        &self,
        _order_id: String,
        _command: OrderCommand,
    ) -> BoxFuture<'static, Result<Option<OrderView>, souk_actors::Error>> {
        Box::pin(async {
            Err(souk_actors::Error::new(
                souk_actors::ErrorCode::DependencyUnavailable,
                "this node does not run the order service",
            ))
        })
    }

    fn serves_here(&self, _order_id: &str) -> bool {
        false
    }
}

/// SKU actors run on a pool of arbiters sized to `node.cpus`; order
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
    let hasher = PasswordHasher::new(config.auth.bcrypt_cost, config.hash_threads());
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
    let auth_settings = config.auth_settings();
    let guesses = AccountGuesses::new(
        limiter.clone(),
        auth_settings.limits.max_failures_per_account,
        auth_settings.limits.window,
    );
    let users = UserService::new(db.clone(), hasher.clone(), guesses, access.clone())
        .with_carts(cart_store.clone());
    let addresses = AddressBook::new(db.clone(), config.users.max_addresses);
    let auth = AuthService::new(db.clone(), jwt, hasher, limiter, auth_settings, access);
    let search = SearchEngine::open(config.search.index_dir.as_deref())
        .map_err(|error| anyhow::anyhow!("cannot open the search index: {error}"))?;
    let catalog = CatalogService::new(db.clone(), Cache::new(redis.clone()), search)
        .with_snapshots(Snapshots::new(std::time::Duration::from_millis(
            config.orders.product_snapshot_ttl_ms,
        )));
    // Where a node runs both the inventory and the order service, its SKU actors tell
    // expired reservations to the orders' router, which exists only once the order
    // service (built on the inventory) does. A node without the order service runs no
    // order entity and no listener: the order service's sweeper expires those orders.
    let order_router_cell = Arc::new(std::sync::OnceLock::new());
    let expiry_listener =
        (services.contains(Service::Inventory) && services.contains(Service::Order)).then(|| {
            ExpiryListener {
                orders: order_router_cell.clone(),
            }
            .start()
        });
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
            expiry_listener: expiry_listener.map(|listener| listener.recipient()),
            feed: stock_feed.clone(),
        };
        let local = souk_actors::inventory::start_host_with_ownership(
            deps,
            HostSettings {
                arbiters: config.cpus(),
                ..HostSettings::default()
            },
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
    // Order actors live only where the order service runs; no service calls the order
    // service over gRPC, so elsewhere nothing routes to them.
    let order_host = services.contains(Service::Order).then(|| {
        souk_actors::orders::start_host_with_ownership(
            logic.clone(),
            order_host_settings(),
            ownership,
        )
    });
    let order_router: OrderRouter = match (&order_host, &cluster) {
        (Some(local), Some(cluster)) => cluster.router(local.clone()),
        (Some(local), None) => Arc::new(local.clone()),
        (None, _) => Arc::new(AbsentOrders),
    };
    if let Some(local) = &order_host {
        root.own_orders(local.host().clone());
    }
    let orders = OrderService::new(logic, order_router);
    if let Some(cluster) = &cluster {
        let mut handler = EntityHandler::default();
        let mut hosts: Vec<Arc<dyn PassivateHost>> = Vec::new();
        if let Some(local) = order_host {
            handler = handler.with(local.clone());
            hosts.push(Arc::new(local));
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
