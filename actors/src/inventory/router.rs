//! Callers reach SKU actors through a router, never directly, so the cluster can later
//! send a command to the node owning the SKU without changing any caller.

use actix::Addr;
use futures_util::future::BoxFuture;

use super::feed::CommittedStock;
use super::stock::{Command, Outcome, Stock};
use super::supervisor::{Inspect, InventorySupervisor, Route, SubscribeCommitted};
use super::InventoryError;

pub trait InventoryRouter: Send + Sync {
    fn send(
        &self,
        sku: String,
        command: Command,
    ) -> BoxFuture<'static, Result<Outcome, InventoryError>>;
    fn stock(&self, sku: String) -> BoxFuture<'static, Result<Stock, InventoryError>>;

    /// Every batch committed from now on by the SKU actors of this process; `None` when
    /// they run elsewhere.
    fn committed(&self) -> BoxFuture<'static, Option<CommittedReceiver>> {
        Box::pin(async { None })
    }
}

pub type CommittedReceiver = tokio::sync::broadcast::Receiver<std::sync::Arc<CommittedStock>>;

/// Every SKU is owned by this node.
#[derive(Clone)]
pub struct LocalInventory {
    supervisor: Addr<InventorySupervisor>,
}

impl LocalInventory {
    pub fn new(supervisor: Addr<InventorySupervisor>) -> Self {
        Self { supervisor }
    }

    pub fn supervisor(&self) -> &Addr<InventorySupervisor> {
        &self.supervisor
    }
}

fn mailbox_closed(_: actix::MailboxError) -> InventoryError {
    InventoryError::Unavailable("the inventory supervisor is not running".into())
}

impl InventoryRouter for LocalInventory {
    fn send(
        &self,
        sku: String,
        command: Command,
    ) -> BoxFuture<'static, Result<Outcome, InventoryError>> {
        let supervisor = self.supervisor.clone();
        Box::pin(async move {
            supervisor
                .send(Route { sku, command })
                .await
                .map_err(mailbox_closed)?
        })
    }

    fn stock(&self, sku: String) -> BoxFuture<'static, Result<Stock, InventoryError>> {
        let supervisor = self.supervisor.clone();
        Box::pin(async move {
            supervisor
                .send(Inspect { sku })
                .await
                .map_err(mailbox_closed)?
        })
    }

    fn committed(&self) -> BoxFuture<'static, Option<CommittedReceiver>> {
        let supervisor = self.supervisor.clone();
        Box::pin(async move { supervisor.send(SubscribeCommitted).await.ok() })
    }
}
