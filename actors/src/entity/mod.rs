//! Entities: actors addressed by a key (a SKU, an order id), each owned by one host.
//!
//! - [`EntityKind`] names a kind and the request, reply and error its entities speak.
//! - [`Entity`] is the actor of a kind, created by the host from its key.
//! - [`host::EntityHost`] starts an entity on its first message, forgets it when it
//!   passivates, restarts it from the database after an error or a panic with capped
//!   backoff, and stops them all in order at shutdown.
//! - [`router::EntityRouter`] is the door callers use: the local host today, another
//!   node over NATS in a cluster, another service over gRPC when split.

pub mod host;
pub mod router;

use actix::prelude::*;

pub use host::{EntityHost, HostReport, HostSettings};
pub use router::{EntityRouter, LocalRouter};

/// A kind of entity and what its entities are told and answer.
pub trait EntityKind: 'static {
    /// `sku`, `order`: the kind's name in metrics, logs and the node's tree.
    const NAME: &'static str;
    type Request: Send + 'static;
    type Reply: Send + 'static;
    /// The kind's own error; the host's refusals convert into it.
    type Error: From<HostError> + Send + 'static;
}

/// A request for one entity, as its actor receives it.
pub struct Request<K: EntityKind>(pub K::Request);

impl<K: EntityKind> Message for Request<K> {
    type Result = Result<K::Reply, K::Error>;
}

/// The actor of an entity kind.
pub trait Entity: Actor<Context = Context<Self>> + Handler<Passivate> {
    type Kind: EntityKind;
    /// What every entity of the kind is created with (database, listeners, settings).
    type Deps: Clone + Send + Unpin + 'static;

    fn for_key(key: String, deps: Self::Deps, link: EntityLink) -> Self;
}

/// Why the host could not hand a request to its entity. Every variant is retryable:
/// nothing was done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("the entity is restarting after a failure; retry in {retry_after_ms} ms")]
    Restarting { retry_after_ms: u64 },
    #[error("the entity stopped before answering; retry")]
    Stopped,
    #[error("this node is shutting down")]
    ShuttingDown,
}

/// How an entity's actor ended, as it tells its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Idle, or asked to stop: a clean stop.
    Passivated,
    /// Another owner wrote the entity; the next message loads it again.
    Fenced,
    /// An error it could not recover from: restarted after a backoff.
    Failed,
    /// A panic: restarted after a backoff.
    Crashed,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Passivated => "passivated",
            StopReason::Fenced => "fenced",
            StopReason::Failed => "error",
            StopReason::Crashed => "panic",
        }
    }
}

/// Sent by an entity to its host when it stops, however it stops.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EntityStopped {
    pub key: String,
    pub instance: u64,
    pub reason: StopReason,
}

/// Asks an entity to finish what it holds (an open batch, a running command) and
/// stop. Sent by the host at shutdown.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Passivate;

/// What an entity knows of its host: whom to tell when it stops, and how long it may
/// idle before it passivates.
#[derive(Clone)]
pub struct EntityLink {
    key: String,
    instance: u64,
    host: Recipient<EntityStopped>,
    idle_timeout: std::time::Duration,
}

impl EntityLink {
    pub fn new(
        key: String,
        instance: u64,
        host: Recipient<EntityStopped>,
        idle_timeout: std::time::Duration,
    ) -> Self {
        Self {
            key,
            instance,
            host,
            idle_timeout,
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn idle_timeout(&self) -> std::time::Duration {
        self.idle_timeout
    }

    /// Tells the host this instance stopped (once per instance; later calls are
    /// ignored by the host because the instance no longer runs).
    pub fn report(&self, reason: StopReason) {
        self.host.do_send(EntityStopped {
            key: self.key.clone(),
            instance: self.instance,
            reason,
        });
    }
}
