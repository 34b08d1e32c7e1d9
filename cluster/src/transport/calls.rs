//! The calls this node has sent to other nodes and not yet had answered. A call gets an
//! id, waits in its target's [`Coalescer`] for the next `ClusterCalls` message to that
//! node, and is answered when a `ClusterAnswers` message with its id arrives on this
//! node's answer subject (`<namespace>.cluster.answers.<node>.<token>.<target>`: the
//! token is new for every process, so no answer meant for an earlier incarnation is
//! taken for one of this one's calls). NATS' "no responders" status on that subject
//! fails every call waiting on the target it names. A target's queue left idle is
//! closed when a queue to another target opens.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::StatusCode;
use futures_util::StreamExt;
use prost::Message;
use souk_proto::v1::{ClusterAnswers, ClusterCall, ClusterCalls, ClusterEnvelope, ClusterReply};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::coalesce::{Coalescer, Coalescers};
use super::subscribe_flushed;
use crate::metrics;
use crate::settings::{Namespace, NodeId};
use crate::ClusterError;

/// Why a call got no answer from its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CallError {
    /// Nobody listens on the target's subject (it died or has not started).
    NoResponders,
    Transport(String),
}

type Answer = Result<ClusterReply, CallError>;

/// A call queue nobody used for this long is closed when another one opens (its target
/// left the cluster, or this node stopped calling it).
const IDLE_CALL_QUEUE: Duration = Duration::from_secs(60);

struct Waiting {
    target: NodeId,
    answer: oneshot::Sender<Answer>,
}

pub(super) struct Calls {
    client: async_nats::Client,
    namespace: Namespace,
    answer_prefix: String,
    next_id: AtomicU64,
    waiting: Arc<Mutex<HashMap<u64, Waiting>>>,
    queues: Mutex<Coalescers<NodeId, ClusterCall>>,
    /// `ClusterCalls` messages sent so far.
    messages: Arc<AtomicU64>,
    answers: JoinHandle<()>,
}

impl Calls {
    /// Subscribes to this node's answer subjects.
    pub(super) async fn start(
        client: async_nats::Client,
        namespace: Namespace,
        node: &NodeId,
    ) -> Result<Self, ClusterError> {
        let token = format!("{:016x}", rand::random::<u64>());
        let answer_prefix = namespace.answer_prefix(node, &token);
        let mut subscription = subscribe_flushed(
            &client,
            format!("{answer_prefix}.*"),
            "subscribe to the answer subject",
        )
        .await?;
        let waiting: Arc<Mutex<HashMap<u64, Waiting>>> = Arc::default();
        let delivered_to = waiting.clone();
        let prefix = answer_prefix.clone();
        let answers = tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                if message.status == Some(StatusCode::NO_RESPONDERS) {
                    let target = message
                        .subject
                        .as_str()
                        .strip_prefix(&prefix)
                        .and_then(|rest| rest.strip_prefix('.'))
                        .and_then(|target| NodeId::parse(target).ok());
                    if let Some(target) = target {
                        fail_calls_to(&delivered_to, &target, CallError::NoResponders);
                    }
                    continue;
                }
                let Ok(answers) = ClusterAnswers::decode(message.payload) else {
                    tracing::warn!(subject = %message.subject, "undecodable cluster answers");
                    continue;
                };
                let mut waiting = delivered_to.lock().expect("waiting calls");
                for answer in answers.answers {
                    let Some(call) = waiting.remove(&answer.id) else {
                        continue; // its caller gave up
                    };
                    let reply = answer.reply.unwrap_or_default();
                    let _ = call.answer.send(Ok(reply));
                }
            }
        });
        Ok(Self {
            client,
            namespace,
            answer_prefix,
            next_id: AtomicU64::new(1),
            waiting,
            queues: Mutex::new(Coalescers::new(IDLE_CALL_QUEUE)),
            messages: Arc::default(),
            answers,
        })
    }

    /// `ClusterCalls` messages sent so far.
    pub(super) fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }

    /// Sends `envelope` to `target` with the next message to it and waits for the
    /// answer. Dropping the future forgets the call (an answer that comes later is
    /// ignored).
    pub(super) async fn call(&self, target: &NodeId, envelope: ClusterEnvelope) -> Answer {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        self.waiting.lock().expect("waiting calls").insert(
            id,
            Waiting {
                target: target.clone(),
                answer,
            },
        );
        let forget = Forget {
            waiting: &self.waiting,
            id,
        };
        let call = ClusterCall {
            id,
            envelope: Some(envelope),
        };
        if self.queue(target, call).is_err() {
            return Err(CallError::Transport(
                "the cluster mailbox is closed".to_owned(),
            ));
        }
        let answer = answered
            .await
            .unwrap_or_else(|_| Err(CallError::Transport("the call was dropped".to_owned())));
        drop(forget);
        answer
    }

    fn queue(&self, target: &NodeId, call: ClusterCall) -> Result<(), ClusterCall> {
        let mut queues = self.queues.lock().expect("call queues");
        queues
            .get_or_start(target, || self.start_queue(target))
            .push(call)
    }

    /// The queue of calls to `target`: each batch is one `ClusterCalls` message. A
    /// batch that cannot be published fails its calls at once.
    fn start_queue(&self, target: &NodeId) -> Coalescer<ClusterCall> {
        let client = self.client.clone();
        let subject = self.namespace.calls_subject(target);
        let reply = format!("{}.{}", self.answer_prefix, target.as_str());
        let waiting = self.waiting.clone();
        let messages = self.messages.clone();
        Coalescer::start(Box::new(move |batch: Vec<ClusterCall>| {
            let client = client.clone();
            let subject = subject.clone();
            let reply = reply.clone();
            let waiting = waiting.clone();
            let messages = messages.clone();
            Box::pin(async move {
                let ids: Vec<u64> = batch.iter().map(|call| call.id).collect();
                metrics::mailbox_message("calls", ids.len());
                let payload = ClusterCalls { calls: batch }.encode_to_vec();
                messages.fetch_add(1, Ordering::Relaxed);
                if let Err(error) = client
                    .publish_with_reply(subject, reply, payload.into())
                    .await
                {
                    let mut waiting = waiting.lock().expect("waiting calls");
                    for id in ids {
                        if let Some(call) = waiting.remove(&id) {
                            let _ = call
                                .answer
                                .send(Err(CallError::Transport(error.to_string())));
                        }
                    }
                }
            })
        }))
    }
}

impl Drop for Calls {
    fn drop(&mut self) {
        self.answers.abort();
    }
}

/// Removes a call from the waiting ones when its caller stops waiting.
struct Forget<'a> {
    waiting: &'a Mutex<HashMap<u64, Waiting>>,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.remove(&self.id);
        }
    }
}

fn fail_calls_to(waiting: &Mutex<HashMap<u64, Waiting>>, target: &NodeId, error: CallError) {
    let mut waiting = waiting.lock().expect("waiting calls");
    let failed: Vec<u64> = waiting
        .iter()
        .filter(|(_, call)| call.target == *target)
        .map(|(id, _)| *id)
        .collect();
    for id in failed {
        if let Some(call) = waiting.remove(&id) {
            let _ = call.answer.send(Err(error.clone()));
        }
    }
}
