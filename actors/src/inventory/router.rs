//! The door to SKU actors: any [`EntityRouter`] of the [`Sku`] kind (this node's host,
//! the inventory service over gRPC, the owning node in a cluster), with the two calls
//! callers make.

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::stock::{Command, Outcome, Stock};
use super::{InventoryError, Sku, SkuReply, SkuRequest};
use crate::entity::EntityRouter;

pub trait InventoryRouter: Send + Sync {
    /// Runs a command; answered after the batch holding it committed.
    fn execute(
        &self,
        sku: String,
        command: Command,
    ) -> BoxFuture<'static, Result<Outcome, InventoryError>>;
    /// The committed stock.
    fn stock(&self, sku: String) -> BoxFuture<'static, Result<Stock, InventoryError>>;
}

fn unexpected(reply: SkuReply) -> InventoryError {
    InventoryError::Unavailable(format!("unexpected reply from the sku: {reply:?}"))
}

impl<R: EntityRouter<Sku> + ?Sized> InventoryRouter for R {
    fn execute(
        &self,
        sku: String,
        command: Command,
    ) -> BoxFuture<'static, Result<Outcome, InventoryError>> {
        EntityRouter::send(self, sku, SkuRequest::Execute(command))
            .map(|reply| match reply? {
                SkuReply::Done(outcome) => Ok(outcome),
                other => Err(unexpected(other)),
            })
            .boxed()
    }

    fn stock(&self, sku: String) -> BoxFuture<'static, Result<Stock, InventoryError>> {
        EntityRouter::send(self, sku, SkuRequest::Snapshot)
            .map(|reply| match reply? {
                SkuReply::Stock(stock) => Ok(stock),
                other => Err(unexpected(other)),
            })
            .boxed()
    }
}
