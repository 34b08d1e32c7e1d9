//! What keeps a node's search index current besides its own catalog writes: the
//! catalog events of every node (`product.changed`, `category.moved`,
//! `stock.availability`, and `search.reindex` from the command), written to each node's outbox in the transaction of the
//! change they announce and relayed to every node (JetStream, or the in-process bus of
//! an embedded node). Each event only names what changed; the engine re-reads it from
//! the database.

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use futures_util::StreamExt;
use souk_db::Db;
use tokio::sync::{broadcast, watch};

use crate::catalog::search::SearchEngine;
use crate::error::Error;
use crate::outbox::relay::{stream_config, Publisher};
use crate::outbox::{Names, PublishedEvent, Topic};

/// The topics the search index follows.
pub const CATALOG_TOPICS: [Topic; 4] = [
    Topic::ProductChanged,
    Topic::CategoryMoved,
    Topic::StockAvailability,
    Topic::SearchReindex,
];

/// Applies one event to the index; events of other topics are ignored.
pub async fn apply(engine: &SearchEngine, db: &Db, event: &PublishedEvent) -> Result<(), Error> {
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
            engine.refresh_products(db, &ids).await
        }
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
    engine: SearchEngine,
    db: Db,
    publisher: Publisher,
    mut stopping: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    match publisher {
        Publisher::Local(bus) => {
            let mut events = bus.observe();
            engine.rebuild(&db).await?;
            loop {
                let received = tokio::select! {
                    received = events.recv() => received,
                    _ = stopping.wait_for(|stopped| *stopped) => return Ok(()),
                };
                match received {
                    Ok(event) => apply_logged(&engine, &db, &event).await,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(
                            missed,
                            "search index fell behind the catalog events; rebuilding"
                        );
                        engine.rebuild(&db).await?;
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                }
            }
        }
        Publisher::JetStream { context, names } => {
            // Where to follow from is read before the build, so no event falls between.
            // Without NATS the index is still built (searches need no NATS); the task
            // then fails and, restarted by its supervisor, builds again and follows.
            let next = tokio::time::timeout(STREAM_TIMEOUT, next_sequence(&context, &names)).await;
            engine.rebuild(&db).await?;
            let (stream, next) = match next {
                Ok(found) => found?,
                Err(_) => {
                    anyhow::bail!("the events stream did not answer within {STREAM_TIMEOUT:?}")
                }
            };
            follow_jetstream(&engine, &db, &stream, &names, next, &mut stopping).await
        }
    }
}

/// How long the task waits for the events stream before building without it.
const STREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The events stream and the sequence its next message will have.
async fn next_sequence(
    context: &async_nats::jetstream::Context,
    names: &Names,
) -> anyhow::Result<(async_nats::jetstream::stream::Stream, u64)> {
    let mut stream = context
        .get_or_create_stream(stream_config(names))
        .await
        .map_err(|error| anyhow::anyhow!("events stream: {error}"))?;
    let last = stream
        .info()
        .await
        .map_err(|error| anyhow::anyhow!("events stream info: {error}"))?
        .state
        .last_sequence;
    Ok((stream, last + 1))
}

async fn follow_jetstream(
    engine: &SearchEngine,
    db: &Db,
    stream: &async_nats::jetstream::stream::Stream,
    names: &Names,
    start_sequence: u64,
    stopping: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subjects: CATALOG_TOPICS
                .iter()
                .map(|topic| names.subject(topic.as_str()))
                .collect(),
            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence },
            ..Default::default()
        })
        .await
        .map_err(|error| anyhow::anyhow!("catalog events consumer: {error}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|error| anyhow::anyhow!("catalog events: {error}"))?;
    loop {
        let message = tokio::select! {
            message = messages.next() => message,
            _ = stopping.wait_for(|stopped| *stopped) => return Ok(()),
        };
        let Some(message) = message else {
            anyhow::bail!("the catalog events ended");
        };
        let message = message.map_err(|error| anyhow::anyhow!("catalog events: {error}"))?;
        match serde_json::from_slice::<PublishedEvent>(&message.payload) {
            Ok(event) => apply_logged(engine, db, &event).await,
            Err(error) => {
                tracing::warn!(%error, subject = %message.subject, "unreadable catalog event; skipped")
            }
        }
    }
}

async fn apply_logged(engine: &SearchEngine, db: &Db, event: &PublishedEvent) {
    if let Err(error) = apply(engine, db, event).await {
        metrics::counter!("souk_search_feed_errors_total").increment(1);
        tracing::warn!(event_id = %event.id, topic = %event.topic, %error, "search index update failed");
    }
}
