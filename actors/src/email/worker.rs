//! The email workers: a pool of supervised tasks of the node root. Each runs one
//! consume loop; when the loop ends (the NATS connection broke, the consumer vanished)
//! the root runs it again after a backoff. With JetStream, every node's workers pull
//! from one durable consumer, so each message is handled by one worker of one node,
//! and a message is acknowledged only after its mails were accepted. At shutdown a
//! worker stops between messages; an unacknowledged one is delivered again later.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;

use crate::email::processor::{Outcome, Processor};
use crate::node::NodeRoot;
use crate::outbox::bus::LocalBus;
use crate::outbox::relay::Publisher;
use crate::outbox::{Names, PublishedEvent};

/// How long a message may stay unacknowledged before JetStream delivers it again
/// (a worker died mid-send): above the SMTP timeout.
const ACK_WAIT: Duration = Duration::from_secs(30);

/// Starts `count` workers as supervised tasks of the node root.
pub fn spawn_pool(root: &NodeRoot, count: usize, processor: Arc<Processor>, source: Publisher) {
    for index in 0..count {
        let processor = processor.clone();
        let source = source.clone();
        root.spawn_task(
            "email",
            format!("email-worker-{index}"),
            move |mut stopping| {
                let processor = processor.clone();
                let source = source.clone();
                async move {
                    let consume = async {
                        match &source {
                            Publisher::Local(bus) => consume_local(&processor, bus).await,
                            Publisher::JetStream { context, names } => {
                                consume_jetstream(&processor, context, names).await
                            }
                        }
                    };
                    tokio::select! {
                        result = consume => result,
                        _ = stopping.wait_for(|stopped| *stopped) => Ok(()),
                    }
                }
            },
        );
    }
}

async fn consume_local(processor: &Processor, bus: &LocalBus) -> anyhow::Result<()> {
    while let Some(delivery) = bus.next().await {
        match processor.handle(&delivery.event, delivery.attempt).await {
            Outcome::Done | Outcome::DeadLettered => {}
            Outcome::Retry(delay) => bus.redeliver_after(delivery, delay),
        }
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
) -> anyhow::Result<()> {
    let consumer = email_consumer(context, names).await?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|error| anyhow::anyhow!("cannot pull messages: {error}"))?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|error| anyhow::anyhow!("pull: {error}"))?;
        let attempt = message
            .info()
            .map(|info| u32::try_from(info.delivered).unwrap_or(u32::MAX))
            .unwrap_or(1);
        let event: PublishedEvent = match serde_json::from_slice(&message.payload) {
            Ok(event) => event,
            Err(error) => {
                tracing::error!(%error, subject = %message.subject, "unreadable event; dropping it");
                let _ = message.ack_with(AckKind::Term).await;
                continue;
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
    anyhow::bail!("the message stream ended")
}
