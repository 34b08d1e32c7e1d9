//! The sending side of the mailbox: [`Mailbox::send`] finds the owner of an entity's
//! shard, sends the envelope with the next message to it, and tries again on "not
//! owner" or "nobody listening" until the caller's deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use souk_proto::v1::{cluster_reply, ClusterEnvelope};
use tokio::sync::{watch, OnceCell};

use super::calls::{CallError, Calls};
use super::{RemoteError, SendError, DEADLINE_EXCEEDED};
use crate::lease::LeaseStore;
use crate::metrics;
use crate::ring::ShardId;
use crate::settings::{Namespace, NodeId};
use crate::table::ShardTable;
use crate::ClusterError;

/// How often a waiting sender checks that its target still owns the shard.
const OWNER_CHECK_INTERVAL: Duration = Duration::from_millis(250);
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// Sends envelopes to whichever node owns their entity.
#[derive(Clone)]
pub struct Mailbox {
    client: async_nats::Client,
    namespace: Namespace,
    node: NodeId,
    table: watch::Receiver<Arc<ShardTable>>,
    leases: LeaseStore,
    stats: Arc<Counters>,
    /// Started on the first send (it subscribes to this node's answer subject).
    calls: Arc<OnceCell<Arc<Calls>>>,
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
    /// NATS messages the envelopes left in (several envelopes for one owner share one).
    pub messages: u64,
}

/// Whether a call may be handled more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Handling it twice changes nothing more: sent again wherever it may have gone.
    Idempotent,
    /// Sent again only when the answer says it was not handled.
    AtMostOnce,
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
            calls: Arc::default(),
        }
    }

    pub fn stats(&self) -> MailboxStats {
        MailboxStats {
            sends: self.stats.sends.load(Ordering::Relaxed),
            retries: self.stats.retries.load(Ordering::Relaxed),
            messages: self.calls.get().map_or(0, |calls| calls.messages()),
        }
    }

    /// Sends `payload` for entity `key` of `kind` to its owner and returns the
    /// handler's answer, retrying on "not owner" until `deadline`; a call whose owner
    /// stopped answering goes to the next owner (the payload must be idempotent).
    pub async fn send(
        &self,
        kind: &str,
        key: &str,
        payload: Bytes,
        deadline: Instant,
    ) -> Result<Bytes, SendError> {
        self.send_with(kind, key, payload, deadline, Delivery::Idempotent)
            .await
    }

    /// As [`Mailbox::send`], for a payload that must not be handled twice: once it may
    /// have reached an owner, it is not sent again ([`SendError::Unanswered`]).
    pub async fn send_at_most_once(
        &self,
        kind: &str,
        key: &str,
        payload: Bytes,
        deadline: Instant,
    ) -> Result<Bytes, SendError> {
        self.send_with(kind, key, payload, deadline, Delivery::AtMostOnce)
            .await
    }

    async fn send_with(
        &self,
        kind: &str,
        key: &str,
        payload: Bytes,
        deadline: Instant,
        delivery: Delivery,
    ) -> Result<Bytes, SendError> {
        let started = Instant::now();
        self.stats.sends.fetch_add(1, Ordering::Relaxed);
        let shard = self.table.borrow().shard_of(key);
        // Every attempt sends this, with the time then left.
        let call = ClusterEnvelope {
            kind: kind.to_owned(),
            key: key.to_owned(),
            shard: shard.0,
            sender_node: self.node.to_string(),
            timeout_ms: 0,
            payload: payload.to_vec(),
        };
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
                Some(target) => self.attempt(&target, &call, remaining, delivery).await,
                // No member at all yet: wait for the table.
                None => Attempt::Retry(None),
            };
            match attempt {
                Attempt::Done(result) => break result,
                Attempt::Retry(next) => {
                    metrics::not_owner_retry(kind);
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    retries += 1;
                    // The lookup too keeps to the caller's deadline.
                    hint = match next {
                        Some(node) => Some(node),
                        None => tokio::time::timeout_at(deadline.into(), self.leases.holder(shard))
                            .await
                            .ok()
                            .and_then(Result::ok)
                            .flatten()
                            .map(|holder| holder.node),
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
            Err(SendError::Unanswered) => "unanswered",
        };
        metrics::forwarded_call(kind, outcome, started.elapsed());
        result
    }

    async fn calls(&self) -> Result<&Arc<Calls>, ClusterError> {
        self.calls
            .get_or_try_init(|| async {
                let calls =
                    Calls::start(self.client.clone(), self.namespace.clone(), &self.node).await?;
                Ok(Arc::new(calls))
            })
            .await
    }

    async fn attempt(
        &self,
        target: &NodeId,
        call: &ClusterEnvelope,
        remaining: Duration,
        delivery: Delivery,
    ) -> Attempt {
        // Sent again elsewhere only if it cannot have been handled, or may be twice.
        let retry_elsewhere = |owner: Option<NodeId>| match delivery {
            Delivery::Idempotent => Attempt::Retry(owner),
            Delivery::AtMostOnce => Attempt::Done(Err(SendError::Unanswered)),
        };
        let shard = ShardId(call.shard);
        let envelope = ClusterEnvelope {
            timeout_ms: remaining.as_millis().max(1) as u64,
            ..call.clone()
        };
        let calls = match tokio::time::timeout(remaining, self.calls()).await {
            Ok(Ok(calls)) => calls,
            Ok(Err(error)) => return Attempt::Done(Err(SendError::Transport(error.to_string()))),
            Err(_) => return Attempt::Done(Err(SendError::DeadlineExceeded)),
        };
        let answer = calls.call(target, envelope);
        tokio::pin!(answer);
        let out_of_time = tokio::time::sleep(remaining);
        tokio::pin!(out_of_time);
        // A target that stopped answering (frozen, killed with its call unread)
        // would hold the caller to its whole deadline: once the table names another
        // owner (the target's lease moved), ask that one instead. A target that is
        // merely slow keeps its lease and is waited for.
        let answer = loop {
            tokio::select! {
                answer = &mut answer => break answer,
                _ = &mut out_of_time => return Attempt::Done(Err(SendError::DeadlineExceeded)),
                _ = tokio::time::sleep(OWNER_CHECK_INTERVAL) => {
                    let owner = self.table.borrow().owner(shard).cloned();
                    if owner.as_ref() != Some(target) {
                        return retry_elsewhere(owner);
                    }
                }
            }
        };
        let reply = match answer {
            Ok(reply) => reply,
            // Nobody listens there (the node died or has not started): ask again. The
            // status fails every call waiting on that node, some perhaps delivered.
            Err(CallError::NoResponders) => return retry_elsewhere(None),
            Err(CallError::Transport(error)) => {
                return Attempt::Done(Err(SendError::Transport(error)))
            }
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
