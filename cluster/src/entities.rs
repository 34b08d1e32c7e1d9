//! Souk's entities on a cluster: the router callers use, the handler that answers
//! other nodes' envelopes, the ownership the entity hosts ask, and the handoff task.
//!
//! - [`ClusterRouter`] sends an entity's request to this node's host when this node
//!   serves the entity's shard, otherwise through the [`Mailbox`] to the owner; a
//!   "not owner" answer from either is tried again, against a fresh table, until the
//!   call's deadline. Past the deadline, local or remote, the caller gets the kind's
//!   retryable "unavailable" error.
//! - [`EntityHandler`] answers envelopes with this node's hosts.
//! - [`TableOwnership`] lets a host run an entity only while the shard table says this
//!   node serves its shard, under that tenure's epoch.
//! - [`run_handoffs`] passivates a draining shard's entities (open batches commit
//!   first) and then tells the node it may release the shard's lease.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::dev::ToEnvelope;
use actix::prelude::*;
use bytes::Bytes;
use souk_actors::entity::{
    Entity, EntityKind, EntityRouter, LocalRouter, NotOwner, Ownership, PassivateWhere, Request,
    WireKind,
};
use tokio::sync::watch;

use crate::node::Handoffs;
use crate::ring::{shard_of, ShardId};
use crate::table::{Handoff, ShardTable};
use crate::transport::{
    BoxFuture, Envelope, EnvelopeHandler, HandlerError, Mailbox, RemoteError, SendError,
};

/// How long a local "not owner" waits for the table to change before trying again.
const TABLE_CHANGE_WAIT: Duration = Duration::from_millis(50);

/// The shard table as the entity hosts' [`Ownership`].
pub struct TableOwnership {
    table: watch::Receiver<Arc<ShardTable>>,
}

impl TableOwnership {
    pub fn new(table: watch::Receiver<Arc<ShardTable>>) -> Self {
        Self { table }
    }
}

impl Ownership for TableOwnership {
    fn epoch_of(&self, key: &str) -> Result<u64, NotOwner> {
        let table = self.table.borrow();
        table.serving_epoch(table.shard_of(key)).ok_or(NotOwner)
    }
}

/// The door to the entities of one kind, wherever in the cluster they live.
pub struct ClusterRouter<E: Entity> {
    local: LocalRouter<E>,
    mailbox: Mailbox,
    table: watch::Receiver<Arc<ShardTable>>,
    /// How long one call may take, retries included.
    timeout: Duration,
}

impl<E: Entity> ClusterRouter<E> {
    pub fn new(
        local: LocalRouter<E>,
        mailbox: Mailbox,
        table: watch::Receiver<Arc<ShardTable>>,
        timeout: Duration,
    ) -> Self {
        Self {
            local,
            mailbox,
            table,
            timeout,
        }
    }
}

impl<E> EntityRouter<E::Kind> for ClusterRouter<E>
where
    E: Entity + Handler<Request<E::Kind>>,
    E::Context: ToEnvelope<E, Request<E::Kind>>,
    E::Kind: WireKind,
{
    fn send(
        &self,
        key: String,
        request: <E::Kind as EntityKind>::Request,
    ) -> futures_util::future::BoxFuture<
        'static,
        Result<<E::Kind as EntityKind>::Reply, <E::Kind as EntityKind>::Error>,
    > {
        let local = self.local.clone();
        let mailbox = self.mailbox.clone();
        let mut table = self.table.clone();
        let deadline = Instant::now() + self.timeout;
        Box::pin(async move {
            let kind = <E::Kind as EntityKind>::NAME;
            let idempotent = <E::Kind as WireKind>::idempotent(&request);
            // What a caller may do after no answer: send it again, or first look.
            let unanswered = if idempotent {
                "; retry"
            } else {
                ", and it may have been applied: read it before trying again"
            };
            loop {
                let serving = {
                    let snapshot = table.borrow_and_update();
                    snapshot.serves_key(&key)
                };
                if serving {
                    // Bounded like a remote call: an entity held up (by a stalled
                    // database, say) answers the caller a retryable error at the
                    // deadline, not whenever it gets to the request.
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    let sent = local.send(key.clone(), request.clone());
                    let Ok(result) = tokio::time::timeout(remaining, sent).await else {
                        return Err(<E::Kind as WireKind>::unavailable(format!(
                            "the {kind} {key} did not answer in time{unanswered}"
                        )));
                    };
                    let moved = result
                        .as_ref()
                        .is_err_and(<E::Kind as EntityKind>::is_not_owner);
                    if !moved || Instant::now() >= deadline {
                        return result;
                    }
                    drop(result);
                    // The shard is moving (or a later owner claimed the row): wait for
                    // the table to say where it went.
                    let _ = tokio::time::timeout(TABLE_CHANGE_WAIT, table.changed()).await;
                    continue;
                }
                let payload = Bytes::from(<E::Kind as WireKind>::encode_request(&request));
                let sent = if idempotent {
                    mailbox.send(kind, &key, payload, deadline).await
                } else {
                    mailbox
                        .send_at_most_once(kind, &key, payload, deadline)
                        .await
                };
                return match sent {
                    Ok(bytes) => <E::Kind as WireKind>::decode_result(&request, &bytes)
                        .unwrap_or_else(|error| {
                            Err(<E::Kind as WireKind>::unavailable(error.to_string()))
                        }),
                    Err(SendError::DeadlineExceeded) => Err(<E::Kind as WireKind>::unavailable(
                        format!("no node served {kind} {key} in time{unanswered}"),
                    )),
                    Err(SendError::Remote(error)) => Err(<E::Kind as WireKind>::unavailable(
                        format!("the node serving {kind} {key} failed: {}", error.message),
                    )),
                    Err(SendError::Transport(error)) => Err(<E::Kind as WireKind>::unavailable(
                        format!("cannot reach the node serving {kind} {key}: {error}"),
                    )),
                    Err(SendError::Unanswered) => Err(<E::Kind as WireKind>::unavailable(format!(
                        "the node serving {kind} {key} stopped before answering{unanswered}"
                    ))),
                };
            }
        })
    }

    fn serves_here(&self, key: &str) -> bool {
        self.table.borrow().serves_key(key)
    }
}

/// Handles the envelopes of one entity kind with this node's host.
trait KindHandler: Send + Sync + 'static {
    fn handle(&self, envelope: Envelope) -> BoxFuture<Result<Bytes, HandlerError>>;
}

struct HostHandler<E: Entity> {
    local: LocalRouter<E>,
}

impl<E> KindHandler for HostHandler<E>
where
    E: Entity + Handler<Request<E::Kind>>,
    E::Context: ToEnvelope<E, Request<E::Kind>>,
    E::Kind: WireKind,
{
    fn handle(&self, envelope: Envelope) -> BoxFuture<Result<Bytes, HandlerError>> {
        let local = self.local.clone();
        Box::pin(async move {
            let kind = <E::Kind as EntityKind>::NAME;
            let request =
                <E::Kind as WireKind>::decode_request(&envelope.payload).map_err(|error| {
                    HandlerError::Failed(RemoteError::new("undecodable", error.to_string(), false))
                })?;
            let remaining = envelope.deadline.saturating_duration_since(Instant::now());
            // Kept to answer what became of what it carried (an order, written or not).
            let sent = request.clone();
            let result = tokio::time::timeout(remaining, local.send(envelope.key, sent))
                .await
                .map_err(|_| {
                    HandlerError::Failed(RemoteError::new(
                        "deadline_exceeded",
                        format!("the {kind} did not answer in time"),
                        true,
                    ))
                })?;
            if let Err(error) = &result {
                if <E::Kind as EntityKind>::is_not_owner(error) {
                    return Err(HandlerError::NotOwner);
                }
            }
            Ok(Bytes::from(<E::Kind as WireKind>::encode_result(
                &request, &result,
            )))
        })
    }
}

/// Answers other nodes' envelopes with this node's entity hosts, by kind.
#[derive(Default)]
pub struct EntityHandler {
    kinds: HashMap<&'static str, Arc<dyn KindHandler>>,
}

impl EntityHandler {
    /// Serves the kind of `local`'s entities.
    pub fn with<E>(mut self, local: LocalRouter<E>) -> Self
    where
        E: Entity + Handler<Request<E::Kind>>,
        E::Context: ToEnvelope<E, Request<E::Kind>>,
        E::Kind: WireKind,
    {
        self.kinds.insert(
            <E::Kind as EntityKind>::NAME,
            Arc::new(HostHandler { local }),
        );
        self
    }
}

impl EnvelopeHandler for EntityHandler {
    fn handle(&self, envelope: Envelope) -> BoxFuture<Result<Bytes, HandlerError>> {
        match self.kinds.get(envelope.kind.as_str()) {
            Some(handler) => handler.handle(envelope),
            None => {
                let kind = envelope.kind;
                Box::pin(async move {
                    Err(HandlerError::Failed(RemoteError::new(
                        "unknown_kind",
                        format!("this node serves no entity of kind {kind:?}"),
                        false,
                    )))
                })
            }
        }
    }
}

/// Something whose entities can be passivated by a predicate on their keys: an entity
/// host, type-erased so one handoff task serves every kind.
pub trait PassivateHost: Send + Sync + 'static {
    fn passivate_where(
        &self,
        matches: Arc<dyn Fn(&str) -> bool + Send + Sync>,
        timeout: Duration,
    ) -> BoxFuture<usize>;
}

impl<E: Entity> PassivateHost for LocalRouter<E> {
    fn passivate_where(
        &self,
        matches: Arc<dyn Fn(&str) -> bool + Send + Sync>,
        timeout: Duration,
    ) -> BoxFuture<usize> {
        let host = self.host().clone();
        Box::pin(async move {
            host.send(PassivateWhere { matches, timeout })
                .await
                .unwrap_or(0)
        })
    }
}

/// Until `stopping`: for every shard the table marks draining, passivates its entities
/// on every host (their open batches commit first), then reports the handoff done so
/// the node releases the lease. The node releases it anyway when `timeout` passes. A
/// shard that leaves the table without draining (its lease lost or run out) has its
/// entities passivated too, so none lives on, with its timers, under a lapsed lease;
/// what they still try to write meets the row fence.
pub async fn run_handoffs(
    mut table: watch::Receiver<Arc<ShardTable>>,
    hosts: Vec<Arc<dyn PassivateHost>>,
    handoffs: Handoffs,
    timeout: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let mut started: BTreeSet<Handoff> = BTreeSet::new();
    let mut owned: BTreeSet<ShardId> = BTreeSet::new();
    let mut running = tokio::task::JoinSet::new();
    loop {
        let (draining, owned_now, shard_count): (BTreeSet<Handoff>, BTreeSet<ShardId>, u32) = {
            let snapshot = table.borrow_and_update();
            (
                snapshot.draining().collect(),
                snapshot.owned.keys().copied().collect(),
                snapshot.shard_count(),
            )
        };
        let lost: Vec<ShardId> = owned
            .difference(&owned_now)
            .filter(|shard| !started.iter().any(|handoff| handoff.shard == **shard))
            .copied()
            .collect();
        owned = owned_now;
        // A handoff no longer under way (released, or the shard kept after all) is done
        // with; the shard may drain again later, as a handoff of its own.
        started.retain(|handoff| draining.contains(handoff));
        for shard in lost {
            let hosts = hosts.clone();
            running.spawn(async move {
                let still_running = passivate_shard(&hosts, shard, shard_count, timeout).await;
                tracing::warn!(
                    shard = shard.0,
                    still_running,
                    "shard lost without a handoff: its entities passivated"
                );
            });
        }
        for handoff in draining {
            if !started.insert(handoff) {
                continue;
            }
            let shard = handoff.shard;
            let hosts = hosts.clone();
            let handoffs = handoffs.clone();
            running.spawn(async move {
                let still_running = passivate_shard(&hosts, shard, shard_count, timeout).await;
                if still_running > 0 {
                    tracing::warn!(
                        shard = shard.0,
                        still_running,
                        "handoff: entities still running at the timeout"
                    );
                }
                handoffs.done(handoff);
            });
        }
        tokio::select! {
            changed = table.changed() => if changed.is_err() { break },
            _ = stopping.wait_for(|stopped| *stopped) => break,
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    // Handoffs under way finish: a stopping node drains its shards through them.
    while running.join_next().await.is_some() {}
}

/// Passivates the entities of `shard` on every host; answers how many still ran at
/// the timeout.
async fn passivate_shard(
    hosts: &[Arc<dyn PassivateHost>],
    shard: ShardId,
    shard_count: u32,
    timeout: Duration,
) -> usize {
    let matches: Arc<dyn Fn(&str) -> bool + Send + Sync> =
        Arc::new(move |key: &str| shard_of(key, shard_count) == shard);
    let mut still_running = 0;
    for host in hosts {
        still_running += host.passivate_where(matches.clone(), timeout).await;
    }
    still_running
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;
    use crate::ring::Ring;
    use crate::settings::NodeId;
    use crate::table::{OwnedShard, ShardState};

    /// An entity host's stand-in that records which of its keys were passivated.
    struct Recording {
        keys: Vec<String>,
        passivated: Arc<Mutex<Vec<String>>>,
    }

    impl PassivateHost for Recording {
        fn passivate_where(
            &self,
            matches: Arc<dyn Fn(&str) -> bool + Send + Sync>,
            _timeout: Duration,
        ) -> BoxFuture<usize> {
            let mut passivated = self.passivated.lock().unwrap();
            passivated.extend(self.keys.iter().filter(|key| matches(key)).cloned());
            Box::pin(async { 0 })
        }
    }

    fn table(version: u64, owned: &[ShardId]) -> Arc<ShardTable> {
        let node = NodeId::parse("node-a").unwrap();
        Arc::new(ShardTable {
            node: node.clone(),
            version,
            ring: Arc::new(Ring::new(8, vec![node])),
            owned: owned
                .iter()
                .map(|shard| {
                    let held = OwnedShard {
                        epoch: 1,
                        state: ShardState::Serving,
                        valid_until: Instant::now() + Duration::from_secs(60),
                    };
                    (*shard, held)
                })
                .collect(),
            holders: Arc::new(BTreeMap::new()),
            ready: true,
            leaving: false,
        })
    }

    /// A node serves, and so sweeps, the keys of the shards it holds and no others.
    #[test]
    fn a_table_serves_the_keys_of_its_own_shards_only() {
        let keys: Vec<String> = (0..64).map(|index| format!("ORDER-{index}")).collect();
        let held = [ShardId(1), ShardId(4)];
        let table = table(1, &held);
        for key in &keys {
            assert_eq!(
                table.serves_key(key),
                held.contains(&shard_of(key, 8)),
                "{key}"
            );
        }
        assert!(keys.iter().any(|key| table.serves_key(key)));
        assert!(keys.iter().any(|key| !table.serves_key(key)));
    }

    /// A shard whose lease ran out (it leaves the table without draining) has its
    /// entities passivated; those of the shards still held stay.
    #[tokio::test]
    async fn the_entities_of_a_shard_lost_without_a_handoff_are_passivated() {
        let keys: Vec<String> = (0..64).map(|index| format!("SKU-{index}")).collect();
        let (lost, kept) = (shard_of(&keys[0], 8), shard_of(&keys[1], 8));
        let kept = if kept == lost {
            ShardId((lost.0 + 1) % 8)
        } else {
            kept
        };
        let passivated = Arc::new(Mutex::new(Vec::new()));
        let host = Recording {
            keys: keys.clone(),
            passivated: passivated.clone(),
        };
        let (publish, tables) = watch::channel(table(1, &[lost, kept]));
        let (stop, stopping) = watch::channel(false);
        let task = tokio::spawn(run_handoffs(
            tables,
            vec![Arc::new(host)],
            Handoffs::unheard(),
            Duration::from_secs(1),
            stopping,
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(passivated.lock().unwrap().is_empty(), "nothing lost yet");

        publish.send(table(2, &[kept])).unwrap();
        let expected: Vec<String> = keys
            .iter()
            .filter(|key| shard_of(key, 8) == lost)
            .cloned()
            .collect();
        for _ in 0..100 {
            if !passivated.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(*passivated.lock().unwrap(), expected);

        stop.send(true).unwrap();
        task.await.unwrap();
    }
}
