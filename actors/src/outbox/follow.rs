//! Following domain events on every node: a [`Position`] taken now, then a
//! [`Follower`] that yields every event of some topics published after it — from the
//! JetStream events stream through an ordered consumer, or from the in-process bus of
//! an embedded node. What a node keeps derived from the database (the search index,
//! the access and product caches) follows the events that say it changed.

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use futures_util::StreamExt;
use tokio::sync::broadcast;

use crate::outbox::relay::{stream_config, Publisher};
use crate::outbox::{PublishedEvent, Topic};

/// How long taking a position waits for the events stream.
const STREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Where following starts: taken before a follower reads the database, so no event
/// written after that read falls before the position.
pub enum Position {
    Local(broadcast::Receiver<PublishedEvent>),
    JetStream {
        stream: Box<async_nats::jetstream::stream::Stream>,
        names: crate::outbox::Names,
        next_sequence: u64,
    },
}

/// What a follower yields.
#[derive(Debug)]
pub enum Followed {
    Event(PublishedEvent),
    /// The follower fell behind and lost this many events: what it keeps must be
    /// rebuilt or forgotten.
    Missed(u64),
}

impl Position {
    /// The position after the last event published so far.
    pub async fn now(publisher: &Publisher) -> anyhow::Result<Position> {
        match publisher {
            Publisher::Local(bus) => Ok(Position::Local(bus.observe())),
            Publisher::JetStream { context, names } => {
                let read = async {
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
                    anyhow::Ok((stream, last + 1))
                };
                let (stream, next_sequence) = tokio::time::timeout(STREAM_TIMEOUT, read)
                    .await
                    .map_err(|_| {
                    anyhow::anyhow!("the events stream did not answer within {STREAM_TIMEOUT:?}")
                })??;
                Ok(Position::JetStream {
                    stream: Box::new(stream),
                    names: names.clone(),
                    next_sequence,
                })
            }
        }
    }

    /// Follows `topics` from this position; `name` says who follows, in errors.
    pub async fn follow(self, topics: &[Topic], name: &'static str) -> anyhow::Result<Follower> {
        let topics = topics.iter().map(|topic| topic.as_str()).collect();
        match self {
            Position::Local(receiver) => Ok(Follower {
                name,
                source: Source::Local { receiver, topics },
            }),
            Position::JetStream {
                stream,
                names,
                next_sequence,
            } => {
                let consumer = stream
                    .create_consumer(pull::OrderedConfig {
                        filter_subjects: topics
                            .iter()
                            .map(|topic: &&str| names.subject(topic))
                            .collect(),
                        deliver_policy: DeliverPolicy::ByStartSequence {
                            start_sequence: next_sequence,
                        },
                        ..Default::default()
                    })
                    .await
                    .map_err(|error| anyhow::anyhow!("{name} consumer: {error}"))?;
                let messages = consumer
                    .messages()
                    .await
                    .map_err(|error| anyhow::anyhow!("{name}: {error}"))?;
                Ok(Follower {
                    name,
                    source: Source::JetStream(Box::new(messages)),
                })
            }
        }
    }
}

/// Events of the followed topics, in the order they were published.
pub struct Follower {
    name: &'static str,
    source: Source,
}

enum Source {
    Local {
        receiver: broadcast::Receiver<PublishedEvent>,
        topics: Vec<&'static str>,
    },
    JetStream(Box<pull::Ordered>),
}

impl Follower {
    /// The next event; `None` once the bus is closed (the node is stopping). An error
    /// means the stream ended or failed: the caller's task fails and is restarted.
    pub async fn next(&mut self) -> anyhow::Result<Option<Followed>> {
        let name = self.name;
        match &mut self.source {
            Source::Local { receiver, topics } => loop {
                match receiver.recv().await {
                    Ok(event) if topics.contains(&event.topic.as_str()) => {
                        return Ok(Some(Followed::Event(event)))
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        return Ok(Some(Followed::Missed(missed)))
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(None),
                }
            },
            Source::JetStream(messages) => loop {
                let Some(message) = messages.next().await else {
                    anyhow::bail!("the {name} ended");
                };
                let message = message.map_err(|error| anyhow::anyhow!("{name}: {error}"))?;
                match serde_json::from_slice::<PublishedEvent>(&message.payload) {
                    Ok(event) => return Ok(Some(Followed::Event(event))),
                    Err(error) => {
                        tracing::warn!(%error, subject = %message.subject, follower = name, "unreadable event; skipped")
                    }
                }
            },
        }
    }
}
