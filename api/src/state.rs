//! What every handler can reach: the domain services, the node root and the
//! connections behind them.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use souk_actors::cart::CartService;
use souk_actors::catalog::CatalogService;
use souk_actors::email::EmailService;
use souk_actors::identity::{AddressBook, AuthService, UserService};
use souk_actors::inventory::InventoryService;
use souk_actors::node::NodeRoot;
use souk_actors::orders::{OrderService, PaymentWebhooks};
use souk_actors::redis_store::RedisStore;
use souk_actors::shipping::Shipping;
use souk_db::Db;

use crate::config::Config;
use crate::remote::RemoteService;
use crate::topology::ServiceSet;

pub struct AppState {
    /// The services this node runs.
    pub services: ServiceSet,
    /// Clients of the services it calls but does not run (for `/readyz`).
    pub remotes: Vec<RemoteService>,
    pub config: Arc<Config>,
    pub db: Db,
    pub users: UserService,
    pub auth: AuthService,
    /// Each user's saved addresses.
    pub addresses: AddressBook,
    pub catalog: CatalogService,
    pub inventory: InventoryService,
    /// Checkout and reads; every command of an existing order goes to its actor.
    pub orders: OrderService,
    /// Users' and guests' carts (Redis when configured, else the database); checkout
    /// from a cart goes through `orders`.
    pub carts: CartService,
    /// Shipping methods and tax rates (checkout reads them through `orders`).
    pub shipping: Shipping,
    /// The payment provider's webhook: signed events, each processed once.
    pub payments: PaymentWebhooks,
    /// Email verification, the send log and dead letters; owns the event publisher.
    pub email: EmailService,
    pub redis: Option<Arc<RedisStore>>,
    pub nats: Option<async_nats::Client>,
    /// Owns the node's entity hosts and tasks; lists them and stops them in order.
    pub root: Arc<NodeRoot>,
    /// This node's place in the cluster, when `[cluster] enabled`.
    pub cluster: Option<Arc<crate::cluster::ClusterRuntime>>,
    pub metrics: PrometheusHandle,
}
