//! What keeps a node's search index, catalog cache and checkout snapshots current
//! besides its own catalog writes: the catalog events of every node (`product.changed`,
//! `category.moved`, `category.changed`, `stock.availability`, and `search.reindex`
//! from the command),
//! written to each node's outbox in the transaction of the change they announce and
//! relayed to every node (JetStream, or the in-process bus of an embedded node). Each
//! event only names what changed; the engine re-reads it from the database.

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

/// Applies one event to the index, after this node's caches forget what it changed;
/// events of other topics are ignored.
pub async fn apply(catalog: &CatalogService, event: &PublishedEvent) -> Result<(), Error> {
    let (engine, db) = (catalog.search_engine(), catalog.db());
    let text = |key: &str| event.payload[key].as_str().map(str::to_owned);
    match Topic::parse(&event.topic) {
        Some(Topic::ProductChanged) => {
            let ids: Vec<String> = event.payload["ids"]
                .as_array()
                .map(|ids| {
                    ids.iter()
                        .filter_map(|id| id.as_str())
                        .filter(|id| souk_db::ids::is_well_formed(id))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            catalog.forget_changed(&ids);
            engine.refresh_products(db, &ids).await
        }
        Some(Topic::CategoryMoved) => match text("category_id") {
            Some(id) => {
                catalog.forget_changed(&[]);
                engine.refresh_categories(db, &[id]).await
            }
            None => Ok(()),
        },
        // Created, renamed or deleted: no product's path changed, the cached tree did.
        Some(Topic::CategoryChanged) => {
            catalog.forget_changed(&[]);
            Ok(())
        }
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

async fn apply_logged(catalog: &CatalogService, event: &PublishedEvent) {
    if let Err(error) = apply(catalog, event).await {
        metrics::counter!("souk_search_feed_errors_total").increment(1);
        tracing::warn!(event_id = %event.id, topic = %event.topic, %error, "search index update failed");
    }
}
