//! The cross-node mailbox over NATS request/reply. Each node listens on
//! `<namespace>.cluster.node.<node id>`; a [`ClusterEnvelope`] (entity kind, key, shard,
//! sender, remaining time, payload) goes to the node the shard table names as the
//! shard's owner, and a [`ClusterReply`] comes back: the handler's bytes, "not owner"
//! with a hint, or an error with a code and whether to retry.
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
//!   had applied after all is not applied twice.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::client::{Request, RequestErrorKind};
use bytes::Bytes;
use futures_util::StreamExt;
use prost::Message;
use rand::Rng;
use souk_proto::v1::{cluster_reply, ClusterEnvelope, ClusterReply, NotOwner};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::lease::LeaseStore;
use crate::metrics;
use crate::ring::ShardId;
use crate::settings::{Namespace, NodeId};
use crate::table::ShardTable;
use crate::ClusterError;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Envelopes one node handles at once; more wait for a slot.
const MAX_CONCURRENT_ENVELOPES: usize = 4096;
/// The code a receiver answers when the sender's time ran out on its side.
const DEADLINE_EXCEEDED: &str = "deadline_exceeded";
/// How often a waiting sender checks that its target still owns the shard.
const OWNER_CHECK_INTERVAL: Duration = Duration::from_millis(250);
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(200);

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
}

/// Receives this node's envelopes and answers them.
pub struct MailboxServer {
    task: Option<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    in_flight: Arc<Semaphore>,
}

impl MailboxServer {
    /// Subscribes to this node's subject and serves envelopes with `handler`.
    pub async fn start(
        client: async_nats::Client,
        namespace: &Namespace,
        table: watch::Receiver<Arc<ShardTable>>,
        handler: Arc<dyn EnvelopeHandler>,
    ) -> Result<Self, ClusterError> {
        let node = table.borrow().node.clone();
        let subject = namespace.node_subject(&node);
        let mut subscription = client
            .subscribe(subject.clone())
            .await
            .map_err(|error| ClusterError::nats("subscribe to the node subject", error))?;
        // The subscription is registered on the server only once flushed: until then a
        // request would meet "no responders".
        client
            .flush()
            .await
            .map_err(|error| ClusterError::nats("subscribe to the node subject", error))?;
        let in_flight = Arc::new(Semaphore::new(MAX_CONCURRENT_ENVELOPES));
        let (shutdown, mut shutdown_receiver) = watch::channel(false);
        let slots = in_flight.clone();
        let task = tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    _ = shutdown_receiver.wait_for(|stop| *stop) => break,
                    message = subscription.next() => match message {
                        Some(message) => message,
                        None => break,
                    },
                };
                let Some(reply_to) = message.reply.clone() else {
                    continue;
                };
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let client = client.clone();
                let table = table.clone();
                let handler = handler.clone();
                tokio::spawn(async move {
                    let reply = serve(&table, handler.as_ref(), message.payload).await;
                    if let Err(error) = client.publish(reply_to, reply.encode_to_vec().into()).await
                    {
                        tracing::warn!(%error, "could not send a cluster reply");
                    }
                    drop(permit);
                });
            }
            let _ = subscription.unsubscribe().await;
        });
        tracing::info!(subject, "cluster mailbox listening");
        Ok(Self {
            task: Some(task),
            shutdown,
            in_flight,
        })
    }

    /// Stops receiving, then waits (up to `grace`) for the envelopes being handled.
    pub async fn stop(mut self, grace: Duration) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let all = MAX_CONCURRENT_ENVELOPES as u32;
        let _ = tokio::time::timeout(grace, self.in_flight.acquire_many(all)).await;
    }
}

impl Drop for MailboxServer {
    /// Stops receiving at once (envelopes being handled finish on their own).
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Checks and handles one envelope.
async fn serve(
    table: &watch::Receiver<Arc<ShardTable>>,
    handler: &dyn EnvelopeHandler,
    payload: Bytes,
) -> ClusterReply {
    let Ok(envelope) = ClusterEnvelope::decode(payload) else {
        return error_reply(RemoteError::new(
            "bad_envelope",
            "undecodable envelope",
            false,
        ));
    };
    let snapshot = table.borrow().clone();
    let shard = snapshot.shard_of(&envelope.key);
    if shard.0 != envelope.shard {
        metrics::served_call(&envelope.kind, "shard_mismatch");
        return error_reply(RemoteError::new(
            "shard_mismatch",
            format!(
                "key maps to shard {shard} here, {} at the sender: the nodes disagree on the shard count",
                envelope.shard
            ),
            false,
        ));
    }
    let Some(epoch) = snapshot.serving_epoch(shard) else {
        metrics::served_call(&envelope.kind, "not_owner");
        return not_owner_reply(&snapshot, shard);
    };
    if envelope.timeout_ms == 0 {
        metrics::served_call(&envelope.kind, "deadline_exceeded");
        return error_reply(RemoteError::new(DEADLINE_EXCEEDED, "no time left", true));
    }
    let timeout = Duration::from_millis(envelope.timeout_ms);
    let kind = envelope.kind.clone();
    let request = Envelope {
        kind: envelope.kind,
        key: envelope.key,
        shard,
        epoch,
        sender: envelope.sender_node,
        deadline: Instant::now() + timeout,
        payload: Bytes::from(envelope.payload),
    };
    match tokio::time::timeout(timeout, handler.handle(request)).await {
        Ok(Ok(payload)) => {
            metrics::served_call(&kind, "ok");
            ClusterReply {
                result: Some(cluster_reply::Result::Ok(payload.to_vec())),
            }
        }
        Ok(Err(HandlerError::NotOwner)) => {
            metrics::served_call(&kind, "not_owner");
            not_owner_reply(&table.borrow().clone(), shard)
        }
        Ok(Err(HandlerError::Failed(error))) => {
            metrics::served_call(&kind, "error");
            error_reply(error)
        }
        Err(_) => {
            metrics::served_call(&kind, "deadline_exceeded");
            error_reply(RemoteError::new(
                DEADLINE_EXCEEDED,
                "the handler did not finish in time",
                true,
            ))
        }
    }
}

fn not_owner_reply(table: &ShardTable, shard: ShardId) -> ClusterReply {
    let hint = table
        .owner(shard)
        .filter(|owner| **owner != table.node)
        .map(|owner| owner.to_string())
        .unwrap_or_default();
    ClusterReply {
        result: Some(cluster_reply::Result::NotOwner(NotOwner {
            owner_hint: hint,
        })),
    }
}

fn error_reply(error: RemoteError) -> ClusterReply {
    ClusterReply {
        result: Some(cluster_reply::Result::Error(souk_proto::v1::RemoteError {
            code: error.code,
            message: error.message,
            retryable: error.retryable,
        })),
    }
}

/// Sends envelopes to whichever node owns their entity.
#[derive(Clone)]
pub struct Mailbox {
    client: async_nats::Client,
    namespace: Namespace,
    node: NodeId,
    table: watch::Receiver<Arc<ShardTable>>,
    leases: LeaseStore,
    stats: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    sends: AtomicU64,
    retries: AtomicU64,
}

/// What a mailbox (and its clones) did so far; the same figures go to the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxStats {
    /// Calls to [`Mailbox::send`].
    pub sends: u64,
    /// Envelopes sent again after "not owner" or "nobody listening".
    pub retries: u64,
}

/// What one attempt came back with.
enum Attempt {
    Done(Result<Bytes, SendError>),
    /// Try again, at the hinted node if any.
    Retry(Option<NodeId>),
}

impl Mailbox {
    pub fn new(
        client: async_nats::Client,
        namespace: Namespace,
        table: watch::Receiver<Arc<ShardTable>>,
        leases: LeaseStore,
    ) -> Self {
        let node = table.borrow().node.clone();
        Self {
            client,
            namespace,
            node,
            table,
            leases,
            stats: Arc::default(),
        }
    }

    pub fn stats(&self) -> MailboxStats {
        MailboxStats {
            sends: self.stats.sends.load(Ordering::Relaxed),
            retries: self.stats.retries.load(Ordering::Relaxed),
        }
    }

    /// Sends `payload` for entity `key` of `kind` to its owner and returns the
    /// handler's answer, retrying on "not owner" until `deadline`.
    pub async fn send(
        &self,
        kind: &str,
        key: &str,
        payload: Bytes,
        deadline: Instant,
    ) -> Result<Bytes, SendError> {
        let started = Instant::now();
        self.stats.sends.fetch_add(1, Ordering::Relaxed);
        let shard = self.table.borrow().shard_of(key);
        let mut hint: Option<NodeId> = None;
        let mut retries = 0u32;
        let result = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break Err(SendError::DeadlineExceeded);
            }
            let target = hint
                .take()
                .or_else(|| self.table.borrow().owner(shard).cloned());
            let attempt = match target {
                Some(target) => {
                    self.attempt(&target, kind, key, shard, &payload, remaining)
                        .await
                }
                // No member at all yet: wait for the table.
                None => Attempt::Retry(None),
            };
            match attempt {
                Attempt::Done(result) => break result,
                Attempt::Retry(next) => {
                    metrics::not_owner_retry(kind);
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    retries += 1;
                    hint = match next {
                        Some(node) => Some(node),
                        None => self
                            .leases
                            .holder(shard)
                            .await
                            .ok()
                            .flatten()
                            .map(|h| h.node),
                    };
                    let pause =
                        backoff(retries).min(deadline.saturating_duration_since(Instant::now()));
                    tokio::time::sleep(pause).await;
                }
            }
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(SendError::DeadlineExceeded) => "deadline_exceeded",
            Err(SendError::Remote(_)) => "remote_error",
            Err(SendError::Transport(_)) => "transport_error",
        };
        metrics::forwarded_call(kind, outcome, started.elapsed());
        result
    }

    async fn attempt(
        &self,
        target: &NodeId,
        kind: &str,
        key: &str,
        shard: ShardId,
        payload: &Bytes,
        remaining: Duration,
    ) -> Attempt {
        let envelope = ClusterEnvelope {
            kind: kind.to_owned(),
            key: key.to_owned(),
            shard: shard.0,
            sender_node: self.node.to_string(),
            timeout_ms: remaining.as_millis().max(1) as u64,
            payload: payload.to_vec(),
        };
        let request = Request::new()
            .payload(envelope.encode_to_vec().into())
            .timeout(Some(remaining));
        let subject = self.namespace.node_subject(target);
        let answer = self.client.send_request(subject, request);
        tokio::pin!(answer);
        // A target that stopped answering (frozen, killed with its request unread)
        // would hold the caller to its whole deadline: once the table names another
        // owner (the target's lease moved), ask that one instead. A target that is
        // merely slow keeps its lease and is waited for.
        let answer = loop {
            tokio::select! {
                answer = &mut answer => break answer,
                _ = tokio::time::sleep(OWNER_CHECK_INTERVAL) => {
                    let owner = self.table.borrow().owner(shard).cloned();
                    if owner.as_ref() != Some(target) {
                        return Attempt::Retry(owner);
                    }
                }
            }
        };
        let answer = match answer {
            Ok(answer) => answer,
            // Nobody listens there (the node died or has not started): ask again.
            Err(error) if error.kind() == RequestErrorKind::NoResponders => {
                return Attempt::Retry(None)
            }
            Err(error) if error.kind() == RequestErrorKind::TimedOut => {
                return Attempt::Done(Err(SendError::DeadlineExceeded))
            }
            Err(error) => return Attempt::Done(Err(SendError::Transport(error.to_string()))),
        };
        let Ok(reply) = ClusterReply::decode(answer.payload) else {
            return Attempt::Done(Err(SendError::Transport("undecodable reply".to_owned())));
        };
        match reply.result {
            Some(cluster_reply::Result::Ok(payload)) => Attempt::Done(Ok(Bytes::from(payload))),
            Some(cluster_reply::Result::NotOwner(not_owner)) => {
                let hint = NodeId::parse(&not_owner.owner_hint)
                    .ok()
                    .filter(|hint| hint != target);
                Attempt::Retry(hint)
            }
            // The owner ran out of the time this sender gave it.
            Some(cluster_reply::Result::Error(error)) if error.code == DEADLINE_EXCEEDED => {
                Attempt::Done(Err(SendError::DeadlineExceeded))
            }
            Some(cluster_reply::Result::Error(error)) => {
                Attempt::Done(Err(SendError::Remote(RemoteError {
                    code: error.code,
                    message: error.message,
                    retryable: error.retryable,
                })))
            }
            None => Attempt::Done(Err(SendError::Transport("empty reply".to_owned()))),
        }
    }
}

/// Doubles from 5 ms up to 200 ms, with jitter (half to all of it).
fn backoff(retries: u32) -> Duration {
    let full = FIRST_BACKOFF
        .saturating_mul(1 << retries.saturating_sub(1).min(10))
        .min(MAX_BACKOFF);
    let fraction = rand::thread_rng().gen_range(0.5..=1.0);
    full.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= FIRST_BACKOFF);
        assert!(backoff(1) >= FIRST_BACKOFF / 2);
        assert!(backoff(4) >= FIRST_BACKOFF * 4);
        assert!(backoff(30) <= MAX_BACKOFF);
    }
}
