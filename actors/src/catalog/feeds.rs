//! What keeps a node's search index, catalog cache and checkout snapshots current
//! besides its own catalog writes: the catalog events of every node (`product.changed`,
//! `category.moved`, `category.changed`, `stock.availability`, and `search.reindex`
//! from the command),
//! written to each node's outbox in the transaction of the change they announce and
//! relayed to every node (JetStream, or the in-process bus of an embedded node). Each
//! event only names what changed; the engine re-reads it from the database. A node
//! that serves the catalog builds the index and follows every one of them
//! ([`build_and_follow`]); any other node follows those that change catalog rows, only
//! to forget what its caches hold of them ([`follow_for_caches`]), since its services
//! read the catalog too (the inventory, for the SKUs an admin may stock).

use tokio::sync::watch;

use crate::catalog::service::CatalogService;
use crate::error::Error;
use crate::outbox::follow::{Followed, Position};
use crate::outbox::relay::Publisher;
use crate::outbox::{PublishedEvent, Topic};

/// The topics the search index follows.
pub const CATALOG_TOPICS: [Topic; 5] = [
    Topic::ProductChanged,
    Topic::CategoryMoved,
    Topic::CategoryChanged,
    Topic::StockAvailability,
    Topic::SearchReindex,
];

/// The topics whose events change catalog rows that a node's caches may hold.
const CACHE_TOPICS: [Topic; 3] = [
    Topic::ProductChanged,
    Topic::CategoryMoved,
    Topic::CategoryChanged,
];

/// The well-formed product ids a `product.changed` event names.
fn changed_products(event: &PublishedEvent) -> Vec<String> {
    event.payload["ids"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str())
                .filter(|id| souk_db::ids::is_well_formed(id))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// This node's caches forget what a catalog event changed: the products a
/// `product.changed` names, everything for a category's change; other topics change
/// nothing cached.
fn forget(catalog: &CatalogService, event: &PublishedEvent) {
    match Topic::parse(&event.topic) {
        Some(Topic::ProductChanged) => catalog.forget_changed(&changed_products(event)),
        // A move changes its products' paths; a category created, renamed or deleted
        // changes no product's path, but the cached tree.
        Some(Topic::CategoryMoved | Topic::CategoryChanged) => catalog.forget_changed(&[]),
        _ => {}
    }
}

/// This node's caches forget all they hold of the catalog, checkout snapshots included.
fn forget_everything(catalog: &CatalogService) {
    catalog.forget_changed(&[]);
    catalog.snapshots().forget_all();
}

/// Applies one event to the index, after this node's caches forget what it changed;
/// events of other topics are ignored.
pub async fn apply(catalog: &CatalogService, event: &PublishedEvent) -> Result<(), Error> {
    let (engine, db) = (catalog.search_engine(), catalog.db());
    let text = |key: &str| event.payload[key].as_str().map(str::to_owned);
    forget(catalog, event);
    match Topic::parse(&event.topic) {
        Some(Topic::ProductChanged) => engine.refresh_products(db, &changed_products(event)).await,
        Some(Topic::CategoryMoved) => match text("category_id") {
            Some(id) => engine.refresh_categories(db, &[id]).await,
            None => Ok(()),
        },
        Some(Topic::StockAvailability) => match text("sku") {
            Some(sku) => engine.refresh_stock(db, &sku).await,
            None => Ok(()),
        },
        // `souk search reindex`: every node rebuilds its index from the database.
        Some(Topic::SearchReindex) => engine.rebuild(db).await.map(|_| ()),
        _ => Ok(()),
    }
}

/// The node's search-index task: starts following the catalog events, builds the
/// index from the database, then applies what it follows until the node stops. Events
/// written during the build are applied after it, so none is missed; those the build
/// already saw are applied again, harmlessly.
pub async fn build_and_follow(
    catalog: CatalogService,
    publisher: Publisher,
    mut stopping: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    // Where to follow from is taken before the build, so no event falls between.
    // Without NATS the index is still built (searches need no NATS); the task then
    // fails and, restarted by its supervisor, builds again and follows.
    let (engine, db) = (catalog.search_engine(), catalog.db());
    let position = Position::now(&publisher).await;
    catalog.snapshots().forget_all();
    engine.rebuild(db).await?;
    let mut follower = position?.follow(&CATALOG_TOPICS, "catalog events").await?;
    loop {
        let followed = tokio::select! {
            followed = follower.next() => followed?,
            _ = stopping.wait_for(|stopped| *stopped) => return Ok(()),
        };
        match followed {
            Some(Followed::Event(event)) => apply_logged(&catalog, &event).await,
            Some(Followed::Missed(missed)) => {
                tracing::warn!(
                    missed,
                    "search index fell behind the catalog events; rebuilding"
                );
                catalog.snapshots().forget_all();
                engine.rebuild(db).await?;
            }
            None => return Ok(()),
        }
    }
}

/// The caches' task of a node that does not serve the catalog: follows the events that
/// change catalog rows and forgets what they name, until the node stops. Having fallen
/// behind, it forgets everything. Without NATS it fails and is restarted by its
/// supervisor, as the index's task is.
pub async fn follow_for_caches(
    catalog: CatalogService,
    publisher: Publisher,
    mut stopping: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut follower = Position::now(&publisher)
        .await?
        .follow(&CACHE_TOPICS, "catalog cache events")
        .await?;
    // Whatever changed before the follower started is forgotten with the rest.
    forget_everything(&catalog);
    loop {
        let followed = tokio::select! {
            followed = follower.next() => followed?,
            _ = stopping.wait_for(|stopped| *stopped) => return Ok(()),
        };
        match followed {
            Some(Followed::Event(event)) => forget(&catalog, &event),
            Some(Followed::Missed(missed)) => {
                tracing::warn!(
                    missed,
                    "catalog caches fell behind the catalog events; forgetting them"
                );
                forget_everything(&catalog);
            }
            None => return Ok(()),
        }
    }
}

async fn apply_logged(catalog: &CatalogService, event: &PublishedEvent) {
    if let Err(error) = apply(catalog, event).await {
        metrics::counter!("souk_search_feed_errors_total").increment(1);
        tracing::warn!(event_id = %event.id, topic = %event.topic, %error, "search index update failed");
    }
}
