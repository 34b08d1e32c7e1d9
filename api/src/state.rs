//! What every handler can reach: the services and the connections behind them.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use souk_db::Db;

use crate::config::Config;
use crate::email::EmailService;
use crate::grpc::remote::RemoteService;
use crate::redis_store::RedisStore;
use crate::services::inventory::InventoryService;
use crate::services::order_actors::OrderRouter;
use crate::services::orders::OrderService;
use crate::services::{AuthService, CatalogService, UserService};
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
    pub catalog: CatalogService,
    pub inventory: InventoryService,
    pub orders: OrderService,
    /// Commands for existing orders go through their actors.
    pub order_router: OrderRouter,
    /// Email verification, the send log and dead letters; owns the event publisher.
    pub email: EmailService,
    pub redis: Option<Arc<RedisStore>>,
    pub nats: Option<async_nats::Client>,
    pub metrics: PrometheusHandle,
}
