//! Catalog search on one node: the product index (`index/`) kept equal to the database
//! and searched on a pool no wider than the machine's cores.
//!
//! The database is the source of truth. The index is rebuilt from it in full when the
//! node starts (searches wait until then; `/readyz` says `building`) and on demand, then
//! kept current by three feeds, each of which re-reads what changed from the database
//! rather than trusting the message, so order and repeats do not matter:
//! - this node's catalog writes refresh their products right after they commit;
//! - this node's committed-stock feed flips a product's stock flag when its SKU's
//!   availability crosses zero (`watch_stock`);
//! - the catalog events every node writes to its outbox (`product.changed`,
//!   `category.moved`, `category.changed`, `stock.availability`) reach the other nodes
//!   over JetStream (`events.rs`).
//!
//! Feeds and rebuild pages take one lock while they read the database and write the
//! index, so an older read never overwrites a newer one. A rebuild reads the category
//! tree once, and again before its next page whenever a category moved meanwhile, so
//! a rebuild asked for while the node runs never writes a moved category's products
//! with the paths they had before the move.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use souk_db::catalog::{self, CategoryRecord, ProductRow};
use souk_db::clock::{now_micros, to_datetime};
use souk_db::{Db, DbError};
use tokio::sync::{watch, Semaphore};
use utoipa::ToSchema;

use crate::catalog::index::{
    CheckReport, IndexError, IndexSettings, IndexedProduct, IndexedVariant, Price, ProductIndex,
    SearchHits, SearchRequest, Status,
};
use crate::catalog::service::descendants;
use crate::catalog::variants;
use crate::error::{Error, ErrorCode};

/// Products read from the database per query while rebuilding.
const REBUILD_PAGE: u32 = 2_000;
/// How long a search waits for the first build before it is refused as unavailable.
const READY_WAIT: Duration = Duration::from_secs(2);
/// How often a running build logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// The node's search engine; clones share it.
#[derive(Clone)]
pub struct SearchEngine {
    inner: Arc<Inner>,
}

struct Inner {
    index: ProductIndex,
    /// Searches running at once, at most one per core.
    permits: Semaphore,
    /// Turns true once the first build is complete.
    ready: watch::Sender<bool>,
    /// Taken by each feed and each rebuild page around its read and its write.
    feed: tokio::sync::Mutex<()>,
    building: AtomicBool,
    last_build: Mutex<Option<BuildReport>>,
    /// Products a rebuild reads per page.
    rebuild_page: u32,
    /// Category moves this node has begun to apply; a rebuild that sees it change
    /// reads the category tree again.
    category_moves: AtomicU64,
}

/// One complete build of the index from the database.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BuildReport {
    /// Products written to the index.
    pub products: u64,
    pub seconds: f64,
    /// RFC 3339, UTC.
    pub finished_at: String,
}

/// What `GET /api/v1/admin/search` shows: the state of this node's index and how far it
/// agrees with the database.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchStatus {
    /// `building` until the first build completes, then `ready`.
    pub state: &'static str,
    /// Products searchable now.
    pub indexed: u64,
    /// Products in the database.
    pub in_database: u64,
    /// Products compared field by field with the database (spread over the catalog).
    pub sampled: usize,
    /// Sampled products the index lacks.
    pub missing: Vec<String>,
    /// Sampled products the index holds with other content.
    pub different: Vec<String>,
    /// Counts equal and every sampled product the same.
    pub agrees: bool,
    pub size_bytes: u64,
    pub last_build: Option<BuildReport>,
}

impl SearchEngine {
    /// An empty index, kept in `directory` (memory-mapped) or in memory; not ready
    /// until [`SearchEngine::rebuild`] has run once.
    pub fn open(directory: Option<&Path>) -> Result<SearchEngine, Error> {
        Self::open_with_page(directory, REBUILD_PAGE)
    }

    fn open_with_page(directory: Option<&Path>, rebuild_page: u32) -> Result<SearchEngine, Error> {
        let settings = IndexSettings::default();
        let index = match directory {
            Some(directory) => ProductIndex::open_in_dir(directory, settings),
            None => ProductIndex::in_ram(settings),
        }
        .map_err(index_error)?;
        let cores = std::thread::available_parallelism().map_or(2, |cores| cores.get());
        Ok(SearchEngine {
            inner: Arc::new(Inner {
                index,
                permits: Semaphore::new(cores),
                ready: watch::channel(false).0,
                feed: tokio::sync::Mutex::new(()),
                building: AtomicBool::new(false),
                last_build: Mutex::new(None),
                rebuild_page,
                category_moves: AtomicU64::new(0),
            }),
        })
    }

    pub fn is_ready(&self) -> bool {
        *self.inner.ready.borrow()
    }

    /// One page of a search, once the index is built.
    pub async fn search(&self, request: SearchRequest) -> Result<SearchHits, Error> {
        let mut ready = self.inner.ready.subscribe();
        if tokio::time::timeout(READY_WAIT, ready.wait_for(|ready| *ready))
            .await
            .is_err()
        {
            return Err(Error::unavailable_retry_after(
                ErrorCode::ServiceUnavailable,
                "the search index is still being built",
                5,
            ));
        }
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(Error::internal)?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.index.search(&request))
            .await
            .map_err(Error::internal)?
            .map_err(index_error)
    }

    /// Reads every product from the database into the index and makes it searchable;
    /// the node's searches are served once the first rebuild is done. Products are
    /// never deleted from the catalog (only archived), so a rebuild only writes.
    #[tracing::instrument(name = "search_rebuild", skip_all)]
    pub async fn rebuild(&self, db: &Db) -> Result<BuildReport, Error> {
        if self.inner.building.swap(true, Ordering::SeqCst) {
            return Err(Error::unavailable_retry_after(
                ErrorCode::ServiceUnavailable,
                "the search index is already being rebuilt",
                5,
            ));
        }
        let outcome = self.rebuild_pages(db).await;
        self.inner.building.store(false, Ordering::SeqCst);
        let report = outcome?;
        self.inner.ready.send_replace(true);
        if let Ok(mut last) = self.inner.last_build.lock() {
            *last = Some(report.clone());
        }
        Ok(report)
    }

    async fn rebuild_pages(&self, db: &Db) -> Result<BuildReport, Error> {
        let started = Instant::now();
        let total = catalog::count_products(db.pool()).await?;
        tracing::info!(products = total, "search index build started");
        let mut written = 0u64;
        let mut after: Option<String> = None;
        let mut logged = Instant::now();
        // A category whose move is applied during the build (its products refreshed
        // under the feed lock) has the tree read again before the next page, so no
        // later page writes its products with their old path.
        let mut moves_seen = self.inner.category_moves.load(Ordering::SeqCst);
        let mut categories = catalog::list_categories(db.pool()).await?;
        loop {
            let _feed = self.inner.feed.lock().await;
            let mut connection = db.pool().acquire().await.map_err(DbError::from)?;
            let moves = self.inner.category_moves.load(Ordering::SeqCst);
            if moves != moves_seen {
                moves_seen = moves;
                categories = catalog::list_categories(&mut *connection).await?;
            }
            let rows =
                catalog::products_after(&mut connection, after.as_deref(), self.inner.rebuild_page)
                    .await?;
            let Some(last) = rows.last() else {
                break;
            };
            after = Some(last.product.id.clone());
            let products = indexed_products(&mut connection, &categories, rows).await?;
            written += products.len() as u64;
            self.write(move |index| index.upsert(&products)).await?;
            if logged.elapsed() >= PROGRESS_EVERY {
                logged = Instant::now();
                tracing::info!(
                    indexed = written,
                    products = total,
                    "search index build progress"
                );
            }
        }
        self.write(ProductIndex::commit).await?;
        let report = BuildReport {
            products: written,
            seconds: started.elapsed().as_secs_f64(),
            finished_at: to_datetime(now_micros()).to_rfc3339(),
        };
        metrics::gauge!("souk_search_index_products").set(report.products as f64);
        metrics::histogram!("souk_search_index_build_seconds").record(report.seconds);
        tracing::info!(
            products = report.products,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "search index built"
        );
        Ok(report)
    }

    /// Makes every write so far searchable now, rather than at the next refresh.
    pub async fn commit(&self) -> Result<(), Error> {
        self.write(ProductIndex::commit).await
    }

    /// Re-reads these products from the database into the index (searchable at the
    /// next refresh, or at once after [`SearchEngine::commit`]).
    pub async fn refresh_products(&self, db: &Db, ids: &[String]) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        let _feed = self.inner.feed.lock().await;
        let mut connection = db.pool().acquire().await.map_err(DbError::from)?;
        let rows = catalog::find_products(&mut connection, ids).await?;
        let categories = catalog::list_categories(&mut *connection).await?;
        let products = indexed_products(&mut connection, &categories, rows).await?;
        self.write(move |index| index.upsert(&products)).await
    }

    /// Re-reads the products of these categories and of their sub-categories (their
    /// ancestor paths changed when one of them moved).
    pub async fn refresh_categories(&self, db: &Db, category_ids: &[String]) -> Result<(), Error> {
        // Before anything is read: a rebuild's next page reads the tree again.
        self.inner.category_moves.fetch_add(1, Ordering::SeqCst);
        let categories = catalog::list_categories(db.pool()).await?;
        let subtree: Vec<String> = category_ids
            .iter()
            .flat_map(|root| descendants(&categories, root))
            .map(str::to_owned)
            .collect();
        let mut connection = db.pool().acquire().await.map_err(DbError::from)?;
        let ids = catalog::product_ids_in_categories(&mut connection, &subtree).await?;
        drop(connection);
        for chunk in ids.chunks(self.inner.rebuild_page as usize) {
            self.refresh_products(db, chunk).await?;
        }
        Ok(())
    }

    /// Re-reads a SKU's availability and sets its product's stock flag from it; a
    /// variant's product is re-read whole (its flag depends on every variant).
    pub async fn refresh_stock(&self, db: &Db, sku: &str) -> Result<(), Error> {
        let mut connection = db.pool().acquire().await.map_err(DbError::from)?;
        if let Some(product_id) = souk_db::variants::product_of_sku(&mut connection, sku).await? {
            drop(connection);
            return self.refresh_products(db, &[product_id]).await;
        }
        let _feed = self.inner.feed.lock().await;
        let available = souk_db::inventory::available_for(&mut connection, &[sku.to_owned()])
            .await?
            .first()
            .map_or(0, |(_, units)| *units);
        let sku = sku.to_owned();
        self.write(move |index| index.set_in_stock(&sku, available > 0).map(|_| ()))
            .await
    }

    /// The index's state and its agreement with the database: counts, and `sample`
    /// products compared field by field.
    pub async fn status(&self, db: &Db, sample: usize) -> Result<SearchStatus, Error> {
        let mut connection = db.pool().acquire().await.map_err(DbError::from)?;
        let in_database = catalog::count_products(&mut *connection).await?;
        let categories = catalog::list_categories(&mut *connection).await?;
        // A sample spread over the id space: the first product after evenly spaced ids.
        let mut rows: Vec<ProductRow> = Vec::new();
        if sample > 0 && in_database > 0 {
            let step = (in_database as usize).div_ceil(sample).max(1) as u32;
            let mut after: Option<String> = None;
            while rows.len() < sample {
                let page = catalog::products_after(&mut connection, after.as_deref(), step).await?;
                let Some(last) = page.last() else {
                    break;
                };
                after = Some(last.product.id.clone());
                rows.extend(page.into_iter().take(1));
            }
        }
        let expected = indexed_products(&mut connection, &categories, rows).await?;
        drop(connection);
        let inner = Arc::clone(&self.inner);
        let (report, size_bytes) = tokio::task::spawn_blocking(move || {
            let report = inner.index.check(&expected, expected.len())?;
            Ok::<_, IndexError>((report, inner.index.size_on_disk()?))
        })
        .await
        .map_err(Error::internal)?
        .map_err(index_error)?;
        let CheckReport {
            indexed,
            sampled,
            missing,
            different,
            ..
        } = report;
        let agrees = indexed == in_database as u64 && missing.is_empty() && different.is_empty();
        Ok(SearchStatus {
            state: if self.is_ready() { "ready" } else { "building" },
            indexed,
            in_database: in_database as u64,
            sampled,
            missing,
            different,
            agrees,
            size_bytes,
            last_build: self
                .inner
                .last_build
                .lock()
                .ok()
                .and_then(|last| last.clone()),
        })
    }

    async fn write(
        &self,
        write: impl FnOnce(&ProductIndex) -> Result<(), IndexError> + Send + 'static,
    ) -> Result<(), Error> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || write(&inner.index))
            .await
            .map_err(Error::internal)?
            .map_err(index_error)
    }
}

/// The index's errors in the terms of the API: a bad cursor or query is the caller's.
fn index_error(error: IndexError) -> Error {
    match error {
        IndexError::InvalidCursor(_) => Error::new(
            ErrorCode::InvalidCursor,
            "the cursor is not one this API issued",
        ),
        IndexError::InvalidQuery(reason) => Error::new(ErrorCode::InvalidQuery, reason),
        other => Error::internal(other),
    }
}

/// The ancestors of a category, root first (not the category itself).
fn ancestors(categories: &[CategoryRecord], id: &str) -> Vec<String> {
    let parents: HashMap<&str, Option<&str>> = categories
        .iter()
        .map(|category| (category.id.as_str(), category.parent_id.as_deref()))
        .collect();
    let mut path = Vec::new();
    let mut current = parents.get(id).copied().flatten();
    // A tree has no cycles; the bound only guards against a corrupted one.
    while let Some(parent) = current {
        if path.len() > categories.len() {
            break;
        }
        path.push(parent.to_owned());
        current = parents.get(parent).copied().flatten();
    }
    path.reverse();
    path
}

/// Products as the index takes them, with their category paths and current stock.
pub async fn indexed_products(
    connection: &mut sqlx::AnyConnection,
    categories: &[CategoryRecord],
    rows: Vec<ProductRow>,
) -> Result<Vec<IndexedProduct>, Error> {
    let skus: Vec<String> = rows.iter().flat_map(selling_skus).collect();
    let available: HashMap<String, i64> = souk_db::inventory::available_for(connection, &skus)
        .await?
        .into_iter()
        .collect();
    let paths: HashMap<&str, Vec<String>> = categories
        .iter()
        .map(|category| (category.id.as_str(), ancestors(categories, &category.id)))
        .collect();
    Ok(rows
        .into_iter()
        .map(|row| {
            let in_stock =
                selling_skus(&row).any(|sku| available.get(&sku).is_some_and(|units| *units > 0));
            let path = row
                .product
                .category_id
                .as_deref()
                .and_then(|id| paths.get(id))
                .cloned()
                .unwrap_or_default();
            indexed_product(row, path, in_stock)
        })
        .collect())
}

/// The SKUs a product sells under: its own, or its variants'.
fn selling_skus(row: &ProductRow) -> impl Iterator<Item = String> + '_ {
    let own = row.variants.is_empty().then(|| row.product.sku.clone());
    own.into_iter()
        .chain(row.variants.iter().map(|variant| variant.sku.clone()))
}

/// One product row as the index takes it; `category_ancestors` is its category's path.
pub fn indexed_product(
    row: ProductRow,
    category_ancestors: Vec<String>,
    in_stock: bool,
) -> IndexedProduct {
    let product = row.product;
    let options = variants::option_views(&row.options)
        .into_iter()
        .map(|option| (option.name, option.values))
        .collect();
    let variants = variants::variant_views(&row.options, &row.variants, &product.currency)
        .into_iter()
        .map(|variant| IndexedVariant {
            sku: variant.sku,
            options: variant.options.into_iter().collect(),
            amount: variant.price.amount,
            images: variant.images,
        })
        .collect();
    let status = match product.status.as_str() {
        "active" => Status::Active,
        "archived" => Status::Archived,
        _ => Status::Draft,
    };
    IndexedProduct {
        category_ancestors,
        images: serde_json::from_str(&product.images).unwrap_or_default(),
        prices: vec![Price {
            currency: product.currency,
            amount: product.price_amount,
        }],
        id: product.id,
        sku: product.sku,
        name: product.name,
        description: product.description,
        tags: row.tags,
        attributes: row.attributes,
        options,
        variants,
        category_id: product.category_id,
        status,
        created_at: product.created_at,
        updated_at: product.updated_at,
        in_stock,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::cache::Cache;
    use crate::catalog::views::CategoryChanges;
    use crate::catalog::{seed, CatalogService};

    /// Lets the spawned tasks run until they wait for the feed lock the test holds.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    /// A rebuild asked for while a category moves: it read the tree before the move,
    /// the move's refresh writes the new paths between two of its pages, and its later
    /// pages must not write the old ones back (with one product per page, the moved
    /// category's last product comes last).
    #[tokio::test]
    async fn a_rebuild_during_a_category_move_keeps_the_new_paths() {
        let database = souk_db::testing::fresh_sqlite().await;
        let db = database.db.clone();
        let engine = SearchEngine::open_with_page(None, 1).unwrap();
        let catalog = CatalogService::new(db.clone(), Cache::disabled(), engine.clone());
        seed::seed(&catalog, &db, 8, |_, _| {}).await.unwrap();
        engine.rebuild(&db).await.unwrap();
        let mut connection = db.pool().acquire().await.unwrap();
        let last = catalog::products_after(&mut connection, None, 100)
            .await
            .unwrap()
            .pop()
            .unwrap();
        drop(connection);
        let moved = last.product.category_id.unwrap();

        // The rebuild reads the tree, then waits for the lock before its first page.
        let feed = engine.inner.feed.lock().await;
        let rebuild = tokio::spawn({
            let (engine, db) = (engine.clone(), db.clone());
            async move { engine.rebuild(&db).await }
        });
        settle().await;
        // The move commits; its refresh waits for the lock behind that first page.
        let mover = tokio::spawn({
            let catalog = catalog.clone();
            async move {
                let to_root = CategoryChanges {
                    name: None,
                    slug: None,
                    parent_id: Some(None),
                };
                catalog.update_category(&moved, to_root).await
            }
        });
        settle().await;
        drop(feed);
        rebuild.await.unwrap().unwrap();
        mover.await.unwrap().unwrap();

        let status = engine.status(&db, 100).await.unwrap();
        assert_eq!(status.sampled, 8);
        assert!(
            status.agrees,
            "indexed with other content: {:?}",
            status.different
        );
    }

    fn category(id: &str, parent: Option<&str>) -> CategoryRecord {
        CategoryRecord {
            id: id.into(),
            parent_id: parent.map(str::to_owned),
            name: id.into(),
            slug: id.into(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn ancestors_run_from_the_root() {
        let tree = [
            category("a", None),
            category("b", Some("a")),
            category("c", Some("b")),
        ];
        assert_eq!(ancestors(&tree, "c"), ["a", "b"]);
        assert!(ancestors(&tree, "a").is_empty());
        assert!(ancestors(&tree, "unknown").is_empty());
        let cycle = [category("x", Some("y")), category("y", Some("x"))];
        assert!(ancestors(&cycle, "x").len() <= 3);
    }
}
