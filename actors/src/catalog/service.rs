//! The catalog service: its handles (database, read cache, search index, checkout
//! snapshots), the read cache and index helpers its operations share, and the catalog's
//! views and inputs under their usual paths. The operations live in `categories`,
//! `products` and `import`; the views and inputs in `views`.

use serde::{Deserialize, Serialize};
use souk_db::Db;

use crate::catalog::cache::Cache;
use crate::catalog::search::SearchEngine;
use crate::catalog::snapshots::Snapshots;
use crate::error::Error;

pub(crate) use crate::catalog::categories::descendants;
pub use crate::catalog::import::announce_products;
pub(crate) use crate::catalog::views::double_option;
pub use crate::catalog::views::{
    AttributeFacet, CategoryChanges, CategoryCount, CategoryInput, CategoryView, Facets,
    ImportError, ImportReport, Money, MoneyInput, ProductChanges, ProductInput, ProductView,
    SearchPage, SearchParams, ValueCount,
};

const NAMESPACE: &str = "catalog";

#[derive(Clone)]
pub struct CatalogService {
    pub(super) db: Db,
    cache: Cache,
    pub(super) search: SearchEngine,
    snapshots: Snapshots,
}

impl CatalogService {
    /// A catalog without checkout snapshots (see `with_snapshots`).
    pub fn new(db: Db, cache: Cache, search: SearchEngine) -> Self {
        Self {
            db,
            cache,
            search,
            snapshots: Snapshots::disabled(),
        }
    }

    /// The same catalog, pricing checkouts from `snapshots`.
    pub fn with_snapshots(self, snapshots: Snapshots) -> Self {
        Self { snapshots, ..self }
    }

    pub fn search_engine(&self) -> &SearchEngine {
        &self.search
    }

    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Makes this node's index show products this node just wrote. Other nodes learn
    /// of them from the `product.changed` event written with them. A failure leaves
    /// the database right and the index behind: it is logged, not returned.
    pub(super) async fn reindex(&self, ids: &[String]) {
        for chunk in ids.chunks(1_000) {
            if let Err(error) = self.search.refresh_products(&self.db, chunk).await {
                metrics::counter!("souk_search_feed_errors_total").increment(1);
                tracing::warn!(%error, "search index update after a catalog write failed");
            }
        }
        if let Err(error) = self.search.commit().await {
            tracing::warn!(%error, "search index commit after a catalog write failed");
        }
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Serves `key` from the cache, or computes it with `load` and stores it.
    pub(super) async fn cached<T, F, Fut>(&self, key: &str, load: F) -> Result<T, Error>
    where
        T: Serialize + for<'de> Deserialize<'de>,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let Some(generation) = self.cache.generation(NAMESPACE).await else {
            return load().await;
        };
        let full_key = format!("{NAMESPACE}:{generation}:{key}");
        if let Some(hit) = self.cache.get(NAMESPACE, &full_key).await {
            if let Ok(value) = serde_json::from_str(&hit) {
                return Ok(value);
            }
        }
        let value = load().await?;
        if let Ok(text) = serde_json::to_string(&value) {
            self.cache.put(NAMESPACE, &full_key, text).await;
        }
        Ok(value)
    }

    /// Catalog rows changed on some node (its event arrived here): this node's own
    /// caches forget them — the in-process read cache wholesale, the checkout snapshots
    /// of `products`. A Redis cache was invalidated by the writing node already.
    pub fn forget_changed(&self, products: &[String]) {
        self.cache.invalidate_local(NAMESPACE);
        self.snapshots.forget_products(products);
    }

    pub(super) async fn invalidate(&self) {
        self.snapshots.forget_all();
        self.cache.invalidate(NAMESPACE).await;
    }
}
