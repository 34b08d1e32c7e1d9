//! Receives the calls sent to this node (`ClusterCalls` on its calls subject), checks
//! each against the shard table, hands it to the [`EnvelopeHandler`], and sends the
//! answers back to each sender's answer subject, those that are ready together in one
//! `ClusterAnswers` message. A node displaced by another process with its node id
//! stops listening: the two would both answer every call sent to that id, and the
//! quicker "not owner" of the displaced one would win over the owner's answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use prost::Message;
use souk_proto::v1::{
    cluster_reply, ClusterAnswer, ClusterAnswers, ClusterCalls, ClusterEnvelope, ClusterReply,
    NotOwner,
};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use super::coalesce::{Coalescer, Coalescers};
use super::subscribe_flushed;
use super::{Envelope, EnvelopeHandler, HandlerError, RemoteError, DEADLINE_EXCEEDED};
use crate::metrics;
use crate::ring::ShardId;
use crate::settings::Namespace;
use crate::table::ShardTable;
use crate::ClusterError;

/// Envelopes one node handles at once; more wait for a slot.
const MAX_CONCURRENT_ENVELOPES: usize = 4096;
/// The longest a call is served, whatever time its sender says it has left: the
/// longest call timeout a node may be configured with (`ClusterSettings`).
pub const MAX_CALL_TIME: Duration = Duration::from_millis(crate::settings::MAX_CALL_TIMEOUT_MS);
/// An answer queue nobody used for this long is closed when another one opens (its
/// sender restarted under a new answer subject, or left).
const IDLE_ANSWER_QUEUE: Duration = Duration::from_secs(60);

/// The answers going back to each sender's answer subject.
type AnswerQueues = Coalescers<String, ClusterAnswer>;

/// Receives this node's calls and answers them.
pub struct MailboxServer {
    task: Option<JoinHandle<AnswerQueues>>,
    shutdown: watch::Sender<bool>,
    in_flight: Arc<Semaphore>,
}

impl MailboxServer {
    /// Subscribes to this node's calls subject and serves envelopes with `handler`
    /// while `registered` (the node's membership record is its own) holds.
    pub async fn start(
        client: async_nats::Client,
        namespace: &Namespace,
        table: watch::Receiver<Arc<ShardTable>>,
        mut registered: watch::Receiver<bool>,
        handler: Arc<dyn EnvelopeHandler>,
    ) -> Result<Self, ClusterError> {
        let node = table.borrow().node.clone();
        let subject = namespace.calls_subject(&node);
        let mut subscription =
            subscribe_flushed(&client, subject.clone(), "subscribe to the calls subject").await?;
        let in_flight = Arc::new(Semaphore::new(MAX_CONCURRENT_ENVELOPES));
        let (shutdown, mut shutdown_receiver) = watch::channel(false);
        let slots = in_flight.clone();
        let task = tokio::spawn(async move {
            let mut answer_queues = AnswerQueues::new(IDLE_ANSWER_QUEUE);
            loop {
                let message = tokio::select! {
                    _ = shutdown_receiver.wait_for(|stop| *stop) => break,
                    // Only a displacement: a membership that ends (the node leaves)
                    // drops the sender, which disables this branch.
                    Ok(_) = registered.wait_for(|registered| !*registered) => {
                        tracing::warn!(%node, "displaced by another process with this node id; no longer answering calls");
                        break;
                    }
                    message = subscription.next() => match message {
                        Some(message) => message,
                        None => break,
                    },
                };
                let Some(reply_to) = message.reply.clone() else {
                    continue;
                };
                let Ok(calls) = ClusterCalls::decode(message.payload) else {
                    tracing::warn!(sender = %reply_to, "undecodable cluster calls");
                    continue;
                };
                let queue = answer_queue(&mut answer_queues, &client, reply_to.as_str());
                for call in calls.calls {
                    let Ok(permit) = slots.clone().acquire_owned().await else {
                        break;
                    };
                    let table = table.clone();
                    let handler = handler.clone();
                    let queue = queue.clone();
                    tokio::spawn(async move {
                        let reply = serve(&table, handler.as_ref(), call.envelope).await;
                        let answer = ClusterAnswer {
                            id: call.id,
                            reply: Some(reply),
                        };
                        if queue.push(answer).is_err() {
                            tracing::warn!("could not queue a cluster answer: the server stopped");
                        }
                        // The queue first: a stop that has every slot back finds it unshared.
                        drop(queue);
                        drop(permit);
                    });
                }
            }
            let _ = subscription.unsubscribe().await;
            answer_queues
        });
        tracing::info!(subject, "cluster mailbox listening");
        Ok(Self {
            task: Some(task),
            shutdown,
            in_flight,
        })
    }

    /// Stops receiving, then waits (up to `grace`) for the envelopes being handled and
    /// for their answers to go out.
    pub async fn stop(mut self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let Some(task) = self.task.take() else {
            return;
        };
        let Ok(answer_queues) = task.await else {
            return;
        };
        let all = MAX_CONCURRENT_ENVELOPES as u32;
        let _ = tokio::time::timeout(grace, self.in_flight.acquire_many(all)).await;
        for queue in answer_queues.into_queues() {
            if let Ok(queue) = Arc::try_unwrap(queue) {
                let _ = tokio::time::timeout(grace, queue.finish()).await;
            }
        }
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

/// The queue of answers to `reply_to`, opened at its first call.
fn answer_queue(
    queues: &mut AnswerQueues,
    client: &async_nats::Client,
    reply_to: &str,
) -> Arc<Coalescer<ClusterAnswer>> {
    queues.get_or_start(reply_to, || {
        let client = client.clone();
        let subject = reply_to.to_owned();
        Coalescer::start(Box::new(move |batch: Vec<ClusterAnswer>| {
            let client = client.clone();
            let subject = subject.clone();
            Box::pin(async move {
                metrics::mailbox_message("answers", batch.len());
                let payload = ClusterAnswers { answers: batch }.encode_to_vec();
                if let Err(error) = client.publish(subject, Bytes::from(payload)).await {
                    tracing::warn!(%error, "could not send cluster answers");
                }
            })
        }))
    })
}

/// Checks and handles one envelope.
async fn serve(
    table: &watch::Receiver<Arc<ShardTable>>,
    handler: &dyn EnvelopeHandler,
    envelope: Option<ClusterEnvelope>,
) -> ClusterReply {
    let Some(envelope) = envelope else {
        return error_reply(RemoteError::new(
            "bad_envelope",
            "a call without an envelope",
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
    let timeout = Duration::from_millis(envelope.timeout_ms).min(MAX_CALL_TIME);
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
