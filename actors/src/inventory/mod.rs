//! Inventory: one actor per SKU owns its stock ([`actor::SkuActor`], under the entity
//! host), the pure stock rules it applies ([`stock`]) with the reservations it holds
//! ([`reservations`]), the door callers use ([`router::InventoryRouter`]) and the
//! inventory service behind the admin API.

pub mod actor;
pub mod feed;
pub mod lapsed;
mod ledger;
pub mod placement;
pub mod reservations;
pub mod router;
pub mod service;
pub mod stock;

use actix::prelude::*;
use souk_db::Db;

use crate::entity::{EntityHost, EntityKind, HostError, HostSettings, LocalRouter};

pub use actor::{ReservationExpired, SkuActor, SkuDeps};
pub use feed::{new_feed, CommittedReceiver, CommittedStock, StockFeed};
pub use placement::{OrderWritten, Placed, Placement};
pub use router::InventoryRouter;
pub use service::InventoryService;
pub use stock::{Command, Outcome, Stock, StockError};

/// Every SKU's actor is owned by this node's host.
pub type LocalInventory = LocalRouter<SkuActor>;

/// The door to SKU actors, wherever they run.
pub type SkuRouter = std::sync::Arc<dyn crate::entity::EntityRouter<Sku>>;

/// The kind of the SKU entities: a command, answered after its batch committed, or a
/// read of the committed stock.
pub struct Sku;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum SkuRequest {
    Execute(Command),
    Snapshot,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum SkuReply {
    Done(Outcome),
    Stock(Stock),
}

impl EntityKind for Sku {
    const NAME: &'static str = "sku";
    type Request = SkuRequest;
    type Reply = SkuReply;
    type Error = InventoryError;

    fn is_not_owner(error: &InventoryError) -> bool {
        matches!(error, InventoryError::Fenced)
    }
}

/// Starts the host of this node's SKU actors and gives the router to it.
pub fn start_host(
    db: Db,
    settings: HostSettings,
    expiry_listener: Option<Recipient<ReservationExpired>>,
) -> LocalInventory {
    start_host_with_feed(db, settings, expiry_listener, None)
}

/// The same, with every committed batch announced on `feed`.
pub fn start_host_with_feed(
    db: Db,
    settings: HostSettings,
    expiry_listener: Option<Recipient<ReservationExpired>>,
    feed: Option<StockFeed>,
) -> LocalInventory {
    let deps = SkuDeps {
        db,
        expiry_listener,
        feed,
    };
    start_host_with_ownership(deps, settings, None)
}

/// The host of a clustered node: it runs the SKUs `ownership` says this node serves.
pub fn start_host_with_ownership(
    deps: SkuDeps,
    settings: HostSettings,
    ownership: Option<std::sync::Arc<dyn crate::entity::Ownership>>,
) -> LocalInventory {
    let mut host = EntityHost::<SkuActor>::new(deps, settings);
    if let Some(ownership) = ownership {
        host = host.with_ownership(ownership);
    }
    LocalRouter::new(host.start())
}

/// Why a command did not complete; `Fenced`, `Restarting` and `Unavailable` are
/// retryable: nothing was acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum InventoryError {
    #[error(transparent)]
    Stock(#[from] StockError),
    /// Another node serves the SKU now (a later owner claimed or wrote its row, or
    /// this node's shard moved): retry, and a router sends it to the current owner.
    #[error("another owner serves this sku; retry")]
    Fenced,
    #[error("the sku's actor is restarting; retry in {retry_after_ms} ms")]
    Restarting { retry_after_ms: u64 },
    #[error("inventory storage unavailable: {0}")]
    Unavailable(String),
    /// The inventory is another process and cannot be reached (split services). Not
    /// retried by callers: the remote client already retried within its deadline, and
    /// an open circuit must fail fast.
    #[error("the inventory service is unreachable: {0}")]
    Unreachable(String),
}

impl InventoryError {
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            InventoryError::Stock(_) | InventoryError::Unreachable(_)
        )
    }
}

impl From<HostError> for InventoryError {
    fn from(error: HostError) -> Self {
        match error {
            HostError::Restarting { retry_after_ms } => {
                InventoryError::Restarting { retry_after_ms }
            }
            HostError::NotOwner => InventoryError::Fenced,
            other => InventoryError::Unavailable(other.to_string()),
        }
    }
}
