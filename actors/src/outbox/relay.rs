//! The outbox relay. Each pass leases a batch of unpublished events (one conditional
//! UPDATE, so relays on several nodes do not publish the same event in the normal
//! case), publishes them in order (sent together, their acknowledgements awaited after)
//! and marks the acknowledged ones in one statement. A crash between publish and mark
//! publishes again after the lease with the same `Nats-Msg-Id`, which JetStream drops
//! within its duplicate window (longer than the lease); consumers de-duplicate by event
//! id as well.

use std::time::Duration;

use async_nats::jetstream;
use souk_db::clock::now_micros;
use souk_db::outbox;
use souk_db::Db;

use crate::outbox::bus::LocalBus;
use crate::outbox::{Names, PublishedEvent};

const BATCH: u32 = 100;
const LEASE: Duration = Duration::from_secs(30);

/// Events are kept a week: consumers that were down for days still find them, and the
/// stream does not grow forever.
const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The events stream; every node creates it if missing, with this one configuration.
pub fn stream_config(names: &Names) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: names.stream(),
        subjects: vec![names.all_subjects()],
        storage: jetstream::stream::StorageType::File,
        max_age: RETENTION,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    }
}

/// Where events go: JetStream when NATS is configured, else the in-process bus.
#[derive(Clone)]
pub enum Publisher {
    Local(LocalBus),
    JetStream {
        context: Box<jetstream::Context>,
        names: Names,
    },
}

impl Publisher {
    /// Creates the events stream if missing (idempotent; every node does it).
    pub async fn ensure_stream(&self) -> anyhow::Result<()> {
        if let Publisher::JetStream { context, names } = self {
            context
                .get_or_create_stream(stream_config(names))
                .await
                .map_err(|error| anyhow::anyhow!("cannot create the events stream: {error}"))?;
        }
        Ok(())
    }

    /// Publishes `events` in order, each with its de-duplication key (`Nats-Msg-Id`:
    /// the event id, or a fresh one for a replay), and returns how many of them, from
    /// the first, were acknowledged, with the error that stopped the rest. JetStream
    /// publishes are sent one after the other without waiting, then their
    /// acknowledgements are awaited in order, so a pass costs one round trip to the
    /// server rather than one per event; the server stores them in the order sent.
    pub async fn publish_in_order(
        &self,
        events: &[(PublishedEvent, &str)],
    ) -> (usize, Option<String>) {
        match self {
            Publisher::Local(bus) => {
                for (index, (event, _)) in events.iter().enumerate() {
                    if let Err(error) = bus.publish(event.clone()) {
                        return (index, Some(error));
                    }
                }
                (events.len(), None)
            }
            Publisher::JetStream { context, names } => {
                let mut acks = Vec::with_capacity(events.len());
                let mut send_error = None;
                for (event, message_id) in events {
                    match Self::send(context, names, event, message_id).await {
                        Ok(ack) => acks.push(ack),
                        Err(error) => {
                            send_error = Some(error);
                            break;
                        }
                    }
                }
                let sent = acks.len();
                for (index, ack) in acks.into_iter().enumerate() {
                    if let Err(error) = ack.await {
                        return (index, Some(format!("publish ack: {error}")));
                    }
                }
                (sent, send_error)
            }
        }
    }

    /// Publishes and waits for the server's acknowledgement.
    pub async fn publish(&self, event: &PublishedEvent, message_id: &str) -> Result<(), String> {
        match self.publish_in_order(&[(event.clone(), message_id)]).await {
            (_, Some(error)) => Err(error),
            (_, None) => Ok(()),
        }
    }

    async fn send(
        context: &jetstream::Context,
        names: &Names,
        event: &PublishedEvent,
        message_id: &str,
    ) -> Result<jetstream::context::PublishAckFuture, String> {
        let body = serde_json::to_vec(event).map_err(|error| error.to_string())?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", message_id);
        context
            .publish_with_headers(names.subject(&event.topic), headers, body.into())
            .await
            .map_err(|error| format!("publish: {error}"))
    }
}

pub struct Relay {
    db: Db,
    publisher: Publisher,
    relay_id: String,
}

impl Relay {
    pub fn new(db: Db, publisher: Publisher) -> Self {
        Self {
            db,
            publisher,
            relay_id: souk_db::ids::new_id(),
        }
    }

    /// One pass; returns how many events it published.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let pool = self.db.pool();
        let now = now_micros();
        let lease_until = now + LEASE.as_micros() as i64;
        let candidates = outbox::claimable(pool, now, BATCH).await?;
        let events = outbox::claim(pool, &candidates, &self.relay_id, now, lease_until).await?;
        let outgoing: Vec<(PublishedEvent, &str)> = events
            .iter()
            .map(|event| (PublishedEvent::from_outbox(event), event.id.as_str()))
            .collect();
        let (acknowledged, error) = self.publisher.publish_in_order(&outgoing).await;
        if let Some(error) = error {
            // Give the unacknowledged leases back so the next pass (here or on another
            // node) retries at once instead of after the lease; later events wait,
            // keeping order. One sent after the failed one may have been stored too:
            // its retry carries the same `Nats-Msg-Id`, which JetStream drops.
            let unpublished: Vec<String> = events[acknowledged..]
                .iter()
                .map(|event| event.id.clone())
                .collect();
            outbox::release(pool, &unpublished, &self.relay_id).await?;
            let failed = &events[acknowledged];
            tracing::warn!(event_id = %failed.id, topic = %failed.topic, %error, "cannot publish event; will retry");
        }
        let published: Vec<String> = events[..acknowledged]
            .iter()
            .map(|event| event.id.clone())
            .collect();
        // Stored by JetStream, an event is handled; in this process's memory, only once
        // a worker is done with it (`worker::consume_local`).
        let handled = matches!(self.publisher, Publisher::JetStream { .. });
        outbox::mark_published(pool, &published, now_micros(), handled).await?;
        metrics::counter!("souk_outbox_published_total").increment(published.len() as u64);
        record_lag(&self.db).await;
        Ok(published.len())
    }

    /// Runs passes every `poll` until `stopping` turns true, then one last pass so
    /// that what the node wrote before it stopped is published. A pass that comes back
    /// full is followed by the next at once, so a backlog (a flash sale's orders)
    /// drains at the relay's pace rather than one batch per `poll`.
    pub async fn run(
        &self,
        poll: Duration,
        mut stopping: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        if let Err(error) = self.publisher.ensure_stream().await {
            tracing::warn!(%error, "events stream not ready; the relay retries");
        }
        let mut ticker = tokio::time::interval(poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stop = tokio::select! {
                _ = ticker.tick() => false,
                _ = stopping.wait_for(|stopped| *stopped) => true,
            };
            loop {
                match self.run_once().await {
                    Ok(0) => {}
                    Ok(count) => {
                        tracing::debug!(count, "events published");
                        if count == BATCH as usize && !stop && !*stopping.borrow() {
                            continue;
                        }
                    }
                    Err(error) if stop => return Err(error),
                    Err(error) => tracing::warn!(%error, "outbox relay pass failed"),
                }
                break;
            }
            if stop {
                return Ok(());
            }
        }
    }
}

/// Age of the oldest unpublished event, 0 when none: the `souk_outbox_lag_seconds` gauge.
pub async fn outbox_lag(db: &Db) -> Result<f64, souk_db::DbError> {
    let oldest = outbox::oldest_unpublished(db.pool()).await?;
    Ok(oldest
        .map(|created_at| ((now_micros() - created_at).max(0) as f64) / 1_000_000.0)
        .unwrap_or(0.0))
}

async fn record_lag(db: &Db) {
    if let Ok(lag) = outbox_lag(db).await {
        metrics::gauge!("souk_outbox_lag_seconds").set(lag);
    }
}
