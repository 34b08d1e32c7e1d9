//! The ports of the domains: what a domain reaches that may live elsewhere, as traits
//! with a local implementation here and remote ones at the edges or in the cluster.
//!
//! - the entity router ([`crate::entity::EntityRouter`]) for SKUs and orders;
//! - [`ProductLookup`]: the catalog's products, for the order service's snapshots;
//! - [`crate::orders::payments::PaymentProvider`]: captures and refunds;
//! - [`crate::outbox::relay::Publisher`]: where domain events go (JetStream or the
//!   in-process bus);
//! - [`crate::email::transport::Transport`]: where mail goes (SMTP or files).

use futures_util::future::BoxFuture;

use crate::catalog::service::ProductView;
use crate::catalog::CatalogService;
use crate::error::Error;

pub use crate::entity::EntityRouter;
pub use crate::orders::payments::PaymentProvider;

/// Where the order service finds the products it snapshots: the catalog in this
/// process, or the product service of another (split services).
pub trait ProductLookup: Send + Sync {
    /// The product if it is active (its `available` need not be read: the SKU actor decides
    /// the stock); `not_found` otherwise.
    fn active_by_sku(&self, sku: String) -> BoxFuture<'static, Result<ProductView, Error>>;
}

impl ProductLookup for CatalogService {
    fn active_by_sku(&self, sku: String) -> BoxFuture<'static, Result<ProductView, Error>> {
        let catalog = self.clone();
        Box::pin(async move { catalog.checkout_snapshot(&sku).await })
    }
}
