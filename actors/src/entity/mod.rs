//! Entities: actors addressed by a key (a SKU, an order id), each owned by one host.
//!
//! - [`EntityKind`] names a kind and the request, reply and error its entities speak.
//! - [`Entity`] is the actor of a kind, created by the host from its key.
//! - [`host::EntityHost`] starts an entity on its first message, forgets it when it
//!   passivates, restarts it from the database after an error or a panic with capped
//!   backoff, and stops them all in order at shutdown.
//! - [`router::EntityRouter`] is the door callers use: the local host, another node
//!   over NATS in a cluster (`souk-cluster`), another service over gRPC when split.
//! - [`Ownership`] tells a host which entities this node may run and the owner epoch
//!   their writes are fenced with; without one, the node owns every entity.

pub mod host;
pub mod router;
pub mod wire;

use actix::prelude::*;

pub use host::{EntityHost, HostReport, HostSettings, PassivateWhere};
pub use router::{EntityRouter, LocalRouter};
pub use wire::{DecodeError, WireKind};

/// A kind of entity and what its entities are told and answer.
pub trait EntityKind: 'static {
    /// `sku`, `order`: the kind's name in metrics, logs and the node's tree.
    const NAME: &'static str;
    type Request: Send + 'static;
    type Reply: Send + 'static;
    /// The kind's own error; the host's refusals convert into it.
    type Error: From<HostError> + Send + 'static;

    /// Whether the error says this node does not serve the entity (any more): a router
    /// sends the request again to the current owner.
    fn is_not_owner(error: &Self::Error) -> bool;
}

/// Which entities this node may run. Asked by the host before it starts an entity and
/// on every request to a running one.
pub trait Ownership: Send + Sync + 'static {
    /// The owner epoch to fence the entity's writes with while this node serves it;
    /// `Err(NotOwner)` when it does not serve it now.
    fn epoch_of(&self, key: &str) -> Result<u64, NotOwner>;
}

/// This node does not serve the entity now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotOwner;

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
    #[error("this node does not serve the entity now")]
    NotOwner,
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

/// How an entity's stop reaches its host: the first reason the entity stopped itself
/// with; else, in its actor's `stopped`, a crash while a handler panics (actix stops an
/// actor whose handler panicked while unwinding) or a clean stop; and a crash if the
/// actor is dropped with neither.
#[derive(Debug, Default)]
pub struct EntityStop(Option<StopReason>);

impl EntityStop {
    /// Records why the entity is stopping; a reason already given stands.
    pub fn set(&mut self, reason: StopReason) {
        self.0.get_or_insert(reason);
    }

    /// From the actor's `stopped`: tells the host how it stopped.
    pub fn report_stopped(&mut self, link: &EntityLink) {
        let unplanned = if std::thread::panicking() {
            StopReason::Crashed
        } else {
            StopReason::Passivated
        };
        link.report(self.0.take().unwrap_or(unplanned));
        // A clean stop from here on, so that the drop that follows reports nothing.
        self.0 = Some(StopReason::Passivated);
    }

    /// From the actor's `Drop`: an actor dropped without stopping crashed.
    pub fn report_dropped(&self, link: &EntityLink) {
        if self.0.is_none() {
            link.report(StopReason::Crashed);
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

/// What an entity knows of its host: whom to tell when it stops, how long it may idle
/// before it passivates, and the owner epoch it serves under.
#[derive(Clone)]
pub struct EntityLink {
    key: String,
    instance: u64,
    host: Recipient<EntityStopped>,
    idle_timeout: std::time::Duration,
    epoch: Option<u64>,
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
            epoch: None,
        }
    }

    /// The link of an entity that serves under a shard lease's owner epoch.
    pub fn with_epoch(mut self, epoch: u64) -> Self {
        self.epoch = Some(epoch);
        self
    }

    /// The owner epoch the entity must claim its row with and fence its writes on;
    /// `None` on a node that owns every entity (writes keep the stored epoch).
    pub fn epoch(&self) -> Option<u64> {
        self.epoch
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
