//! The email workers: a pool of supervised tasks of the node root, on its background
//! thread (mail yields the cores to checkouts when they are full). Each runs one
//! consume loop that handles up to `in_flight` events at once, so a worker's mail
//! keeps pace with a flash sale's orders instead of waiting on one event's statements
//! and send at a time; when the loop ends (the NATS connection broke, the consumer
//! vanished) the root runs it again after a backoff. With JetStream, every node's
//! workers pull from one durable consumer, so each message is handled by one worker of
//! one node, and a message is acknowledged only after its mails were accepted. Events
//! handled at once may finish in any order, so two mails of one order can go out in
//! either order when their events are close together. At shutdown a worker takes no
//! more events and finishes those in hand; one not acknowledged by then is delivered
//! again later. On the in-process bus, a worker marks each event it is done with as
//! handled, and a node starting on that bus publishes again what was published but
//! never handled (its previous process died with it queued in memory).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures_util::{stream, StreamExt, TryStreamExt};
use tokio::sync::watch;

use souk_db::clock::now_micros;
use souk_db::outbox;

use crate::email::processor::{Outcome, Processor};
use crate::node::NodeRoot;
use crate::outbox::bus::LocalBus;
use crate::outbox::relay::Publisher;
use crate::outbox::{Names, PublishedEvent};

/// How long a message may stay unacknowledged before JetStream delivers it again
/// (a worker died mid-send): above the SMTP timeout.
const ACK_WAIT: Duration = Duration::from_secs(30);

/// How often the server says a pull is alive while no message is pending.
const PULL_HEARTBEAT: Duration = Duration::from_secs(15);

/// Starts `count` workers as supervised background tasks of the node root, each
/// handling up to `in_flight` events at once.
pub fn spawn_pool(
    root: &NodeRoot,
    count: usize,
    in_flight: usize,
    processor: Arc<Processor>,
    source: Publisher,
) {
    let in_flight = in_flight.max(1);
    for index in 0..count {
        let processor = processor.clone();
        let source = source.clone();
        root.spawn_background_task("email", format!("email-worker-{index}"), move |stopping| {
            let processor = processor.clone();
            let source = source.clone();
            async move {
                match &source {
                    Publisher::Local(bus) => {
                        consume_local(&processor, bus, in_flight, stopping).await
                    }
                    Publisher::JetStream { context, names } => {
                        consume_jetstream(&processor, context, names, in_flight, stopping).await
                    }
                }
            }
        });
    }
}

/// Resolves once the node is stopping: the end of a worker's stream of events.
async fn stopped(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stopped| *stopped).await;
}

async fn consume_local(
    processor: &Processor,
    bus: &LocalBus,
    in_flight: usize,
    stopping: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let deliveries = stream::unfold((), |()| async {
        bus.next().await.map(|delivery| (delivery, ()))
    });
    deliveries
        .take_until(stopped(stopping.clone()))
        .for_each_concurrent(in_flight, |delivery| async move {
            match processor.handle(&delivery.event, delivery.attempt).await {
                // Handled: a node restarting on this database does not publish it again.
                Outcome::Done | Outcome::DeadLettered => {
                    let id = &delivery.event.id;
                    let pool = processor.db().pool();
                    if let Err(error) = outbox::mark_handled(pool, id, now_micros()).await {
                        tracing::warn!(event_id = %id, %error, "cannot mark the event handled; a restart sends it again (its mail is not repeated)");
                    }
                }
                Outcome::Retry(delay) => bus.redeliver_after(delivery, delay),
            }
        })
        .await;
    if *stopping.borrow() {
        return Ok(());
    }
    anyhow::bail!("the in-process bus closed")
}

/// The durable pull consumer every node shares; created if missing.
pub async fn email_consumer(
    context: &jetstream::Context,
    names: &Names,
) -> anyhow::Result<jetstream::consumer::PullConsumer> {
    let stream = context
        .get_or_create_stream(crate::outbox::relay::stream_config(names))
        .await
        .map_err(|error| anyhow::anyhow!("events stream: {error}"))?;
    stream
        .get_or_create_consumer(
            &names.email_consumer(),
            jetstream::consumer::pull::Config {
                durable_name: Some(names.email_consumer()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                filter_subject: names.all_subjects(),
                ..Default::default()
            },
        )
        .await
        .map_err(|error| anyhow::anyhow!("email consumer: {error}"))
}

async fn consume_jetstream(
    processor: &Processor,
    context: &jetstream::Context,
    names: &Names,
    in_flight: usize,
    stopping: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let consumer = tokio::select! {
        consumer = email_consumer(context, names) => consumer?,
        () = stopped(stopping.clone()) => return Ok(()),
    };
    // A pull asks for what the worker can take at once: messages waiting in a worker's
    // buffer past `ACK_WAIT` would be delivered again (to another worker too), counting
    // attempts that never failed and risking a mail sent twice.
    let messages = consumer
        .stream()
        .max_messages_per_batch(in_flight)
        .heartbeat(PULL_HEARTBEAT)
        .messages()
        .await
        .map_err(|error| anyhow::anyhow!("cannot pull messages: {error}"))?;
    messages
        .take_until(stopped(stopping.clone()))
        .map_err(|error| anyhow::anyhow!("pull: {error}"))
        .try_for_each_concurrent(in_flight, |message| async move {
            handle_message(processor, message).await;
            Ok(())
        })
        .await?;
    if *stopping.borrow() {
        return Ok(());
    }
    anyhow::bail!("the message stream ended")
}

/// Handles one pulled message and acknowledges it: done, dead-lettered or unreadable
/// are acknowledged for good, a retry is a delayed negative acknowledgement.
async fn handle_message(processor: &Processor, message: jetstream::Message) {
    let attempt = message
        .info()
        .map(|info| u32::try_from(info.delivered).unwrap_or(u32::MAX))
        .unwrap_or(1);
    let event: PublishedEvent = match serde_json::from_slice(&message.payload) {
        Ok(event) => event,
        Err(error) => {
            tracing::error!(%error, subject = %message.subject, "unreadable event; dropping it");
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    let ack = match processor.handle(&event, attempt).await {
        Outcome::Done | Outcome::DeadLettered => message.ack().await,
        Outcome::Retry(delay) => message.ack_with(AckKind::Nak(Some(delay))).await,
    };
    if let Err(error) = ack {
        // Not fatal: JetStream redelivers after ACK_WAIT and the send log skips
        // mails that already went out.
        tracing::warn!(event_id = %event.id, %error, "cannot acknowledge event");
    }
}
