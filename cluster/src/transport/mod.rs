//! The cross-node mailbox over NATS. Each node listens on
//! `<namespace>.cluster.calls.<node id>`; a `ClusterEnvelope` (entity kind, key, shard,
//! sender, remaining time, payload) goes to the node the shard table names as the
//! shard's owner, and a `ClusterReply` comes back: the handler's bytes, "not owner"
//! with a hint, or an error with a code and whether to retry.
//!
//! Calls travel together: what a node queued for one owner while its previous message
//! went out leaves in one NATS message (`ClusterCalls`), and the answers the owner has
//! for one sender at a moment (a SKU's commit releases many) go back in one
//! (`ClusterAnswers`) to the sender's answer subject, matched to their calls by id
//! ([`coalesce`], [`calls`]). A call sent to a node nobody listens as gets NATS' "no
//! responders" status on that subject.
//!
//! - [`MailboxServer`] checks that this node serves the shard right now (serving state,
//!   lease deadline) before handing the envelope to the [`EnvelopeHandler`], with the
//!   epoch to fence with and the sender's deadline.
//! - [`Mailbox::send`] looks the owner up, sends, and on "not owner" or "no one
//!   listening" (the node just died) reads the shard's lease holder afresh and tries
//!   again after a short jittered backoff, all within the caller's deadline. A sender
//!   waiting for an answer gives up on its target only when the shard table names
//!   another owner (the target's lease moved: it froze or died), and sends to that
//!   one; entity commands are idempotent (by order id), so a command the old owner
//!   had applied after all is not applied twice. A command that is not idempotent (a
//!   stock adjustment) goes by [`Mailbox::send_at_most_once`]: it is sent again only
//!   after an answer that says it was not handled ("not owner"), and otherwise fails
//!   as [`SendError::Unanswered`].

mod calls;
mod coalesce;
mod mailbox;
mod server;

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use bytes::Bytes;

use crate::ring::ShardId;

pub use mailbox::{Mailbox, MailboxStats};
pub use server::MailboxServer;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Subscribes to `subject` and flushes: the server registers a subscription only once
/// flushed, and until then a call would meet "no responders" and an answer be lost.
/// `action` names the subscription in the error.
async fn subscribe_flushed(
    client: &async_nats::Client,
    subject: String,
    action: &'static str,
) -> Result<async_nats::Subscriber, crate::ClusterError> {
    let subscription = client
        .subscribe(subject)
        .await
        .map_err(|error| crate::ClusterError::nats(action, error))?;
    client
        .flush()
        .await
        .map_err(|error| crate::ClusterError::nats(action, error))?;
    Ok(subscription)
}

/// The code a receiver answers when the sender's time ran out on its side.
const DEADLINE_EXCEEDED: &str = "deadline_exceeded";

/// An error the owner's handler reported, carried back to the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RemoteError {
    /// Stable, lowercase.
    pub code: String,
    pub message: String,
    /// The same message may succeed if sent again.
    pub retryable: bool,
}

impl RemoteError {
    pub fn new(code: &str, message: impl Into<String>, retryable: bool) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            retryable,
        }
    }
}

/// Why a handler did not produce a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerError {
    /// This node does not serve the entity after all (its fence failed, the shard is
    /// draining): the sender looks the owner up again.
    NotOwner,
    Failed(RemoteError),
}

/// One envelope for this node, after the shard check.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub kind: String,
    pub key: String,
    pub shard: ShardId,
    /// The owner epoch this node held the shard with when the envelope arrived.
    pub epoch: u64,
    pub sender: String,
    /// The sender's deadline, on this node's clock.
    pub deadline: Instant,
    pub payload: Bytes,
}

/// What the entity host provides: handle a message for an entity this node serves.
pub trait EnvelopeHandler: Send + Sync + 'static {
    fn handle(&self, envelope: Envelope) -> BoxFuture<Result<Bytes, HandlerError>>;
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The deadline passed before an answer (the owner may or may not have acted).
    #[error("deadline exceeded")]
    DeadlineExceeded,
    #[error("remote error {0}")]
    Remote(RemoteError),
    #[error("transport: {0}")]
    Transport(String),
    /// An at-most-once call reached its owner, which lost the shard (or vanished)
    /// before answering: it may or may not have acted, and the call was not sent again.
    #[error("the owner changed before answering")]
    Unanswered,
}
