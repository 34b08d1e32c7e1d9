//! Inventory: one actor per SKU.

pub mod actor;
pub mod feed;
pub mod router;
pub mod stock;
pub mod supervisor;

pub use feed::{CommittedStock, StockFeed};
pub use router::{CommittedReceiver, InventoryRouter, LocalInventory};
pub use stock::{Command, Outcome, Stock, StockError};
pub use supervisor::{InventorySupervisor, SupervisorSettings};

/// Why a command did not complete; `Fenced`, `Restarting` and `Unavailable` are
/// retryable: nothing was acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    #[error(transparent)]
    Stock(#[from] StockError),
    #[error("another owner wrote this sku; retry")]
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
