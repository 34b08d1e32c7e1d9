//! The node's product snapshots for checkout: the active item of a SKU (a product or
//! one of its variants) as an order prices it, kept in memory so a checkout reads no
//! catalog row while it is fresh.
//!
//! A snapshot lives at most the configured TTL. A catalog write on this node forgets
//! them all at once; one on another node forgets the products it names when its
//! `product.changed` event arrives (the search index's feed delivers it). So a price or
//! status change reaches this node's checkouts within the events' latency, and within
//! the TTL whatever happens to the events.

use std::time::Duration;

use crate::catalog::model::parse_sku;
use crate::catalog::service::{CatalogService, ProductView};
use crate::error::Error;
use crate::node_cache::NodeCache;

/// Snapshots kept at most.
const CAPACITY: usize = 50_000;

/// SKU → the active item; clones share it.
#[derive(Clone)]
pub struct Snapshots {
    products: NodeCache<String, ProductView>,
}

impl Snapshots {
    /// Keeps each snapshot at most `ttl`; a zero TTL keeps nothing.
    pub fn new(ttl: Duration) -> Self {
        Self {
            products: NodeCache::new("product_snapshots", ttl, CAPACITY),
        }
    }

    /// Snapshots that keep nothing: every checkout reads the catalog.
    pub fn disabled() -> Self {
        Self {
            products: NodeCache::disabled(),
        }
    }

    /// Forgets the snapshots of these products (by product id).
    pub fn forget_products(&self, ids: &[String]) {
        self.products
            .forget_where(|_, product| ids.contains(&product.id));
    }

    pub fn forget_all(&self) {
        self.products.forget_all();
    }
}

impl CatalogService {
    /// The active item of `sku` as a checkout snapshots it (the product, or its variant
    /// of that SKU: see [`ProductView::sold_as`]), with `available` left at 0 (the
    /// SKU's actor decides the stock), from this node's snapshots while fresh.
    pub async fn checkout_snapshot(&self, sku: &str) -> Result<ProductView, Error> {
        let snapshots = &self.snapshots().products;
        let Ok(key) = parse_sku(sku) else {
            return Err(Error::not_found("product"));
        };
        if let Some(item) = snapshots.get(&key) {
            return Ok(item);
        }
        let ticket = snapshots.ticket();
        let item = self
            .product_by_sku_without_stock(&key, false)
            .await?
            .sold_as(&key)?;
        snapshots.put(ticket, key, item.clone());
        Ok(item)
    }
}
