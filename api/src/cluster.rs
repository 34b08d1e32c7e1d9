//! This node's place in a cluster (`[cluster] enabled`): joins it over NATS, gives the
//! entity hosts their ownership, wraps their routers so that callers reach an entity
//! wherever it lives, answers other nodes' envelopes, hands shards over, and leaves
//! before the node stops. Also what `/readyz` and `GET /api/v1/admin/cluster` show.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use souk_actors::entity::{Entity, EntityRouter, LocalRouter, Ownership, Request, WireKind};
use souk_cluster::entities::{run_handoffs, PassivateHost};
use souk_cluster::{
    ClusterError, ClusterNode, ClusterRouter, ClusterSettings, EntityHandler, MailboxServer,
    ShardState, ShardTable, TableOwnership,
};
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;
use utoipa::ToSchema;

/// A joined node and what it runs for the cluster.
pub struct ClusterRuntime {
    settings: ClusterSettings,
    table: watch::Receiver<Arc<ShardTable>>,
    mailbox: souk_cluster::Mailbox,
    node: Mutex<Option<ClusterNode>>,
    server: Mutex<Option<MailboxServer>>,
    handoffs: Mutex<Option<JoinHandle<()>>>,
    stop_handoffs: watch::Sender<bool>,
    /// Set when the node starts leaving: it is no longer ready.
    leaving: watch::Sender<bool>,
}

impl ClusterRuntime {
    /// Joins the cluster and starts taking this node's shards; returns at once.
    pub async fn join(
        nats: async_nats::Client,
        settings: ClusterSettings,
    ) -> Result<Self, ClusterError> {
        let node = ClusterNode::start(nats, settings.clone()).await?;
        tracing::info!(node = %node.node_id().as_str(), shards = settings.shards, "joined the cluster");
        Ok(Self {
            table: node.table(),
            mailbox: node.mailbox(),
            settings,
            node: Mutex::new(Some(node)),
            server: Mutex::new(None),
            handoffs: Mutex::new(None),
            stop_handoffs: watch::channel(false).0,
            leaving: watch::channel(false).0,
        })
    }

    /// What the entity hosts ask before running an entity.
    pub fn ownership(&self) -> Arc<dyn Ownership> {
        Arc::new(TableOwnership::new(self.table.clone()))
    }

    /// The router of a kind whose local host is `local`.
    pub fn router<E>(&self, local: LocalRouter<E>) -> Arc<dyn EntityRouter<E::Kind>>
    where
        E: Entity + actix::Handler<Request<E::Kind>>,
        E::Context: actix::dev::ToEnvelope<E, Request<E::Kind>>,
        E::Kind: WireKind,
    {
        Arc::new(ClusterRouter::new(
            local,
            self.mailbox.clone(),
            self.table.clone(),
            self.settings.call_timeout(),
        ))
    }

    /// Starts answering other nodes with `handler` and handing shards over from `hosts`.
    pub async fn serve(
        &self,
        handler: EntityHandler,
        hosts: Vec<Arc<dyn PassivateHost>>,
    ) -> Result<(), ClusterError> {
        let guard = self.node.lock().await;
        let Some(node) = guard.as_ref() else {
            return Ok(());
        };
        let server = node.serve(Arc::new(handler)).await?;
        *self.server.lock().await = Some(server);
        let task = tokio::spawn(run_handoffs(
            self.table.clone(),
            hosts,
            node.handoffs(),
            self.settings.handoff_timeout(),
            self.stop_handoffs.subscribe(),
        ));
        *self.handoffs.lock().await = Some(task);
        Ok(())
    }

    /// Joined, table read, every shard the ring gives this node held, not leaving.
    pub fn ready(&self) -> Result<(), String> {
        if *self.leaving.borrow() {
            return Err("leaving the cluster".to_owned());
        }
        let table = self.table.borrow();
        if table.ready {
            Ok(())
        } else {
            Err(format!(
                "acquiring shards: {} of {} members' ring held",
                table.owned.len(),
                table.ring.members().len()
            ))
        }
    }

    /// Leaves the ring, hands every shard over (entities passivate, open batches
    /// commit, leases are released), then stops answering other nodes.
    pub async fn leave(&self) {
        let _ = self.leaving.send(true);
        if let Some(node) = self.node.lock().await.take() {
            let started = Instant::now();
            node.stop().await;
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "left the cluster; shards handed over"
            );
        }
        let _ = self.stop_handoffs.send(true);
        if let Some(task) = self.handoffs.lock().await.take() {
            let _ = task.await;
        }
        if let Some(server) = self.server.lock().await.take() {
            server.stop(Duration::from_secs(1)).await;
        }
    }

    /// The cluster as this node sees it.
    pub fn view(&self) -> ClusterView {
        let table = self.table.borrow().clone();
        let now = Instant::now();
        let mut members: Vec<MemberView> = table
            .ring
            .members()
            .iter()
            .map(|node| MemberView {
                node_id: node.as_str().to_owned(),
                ring_shards: 0,
                shards: Vec::new(),
            })
            .collect();
        let member_index = |node: &str, members: &mut Vec<MemberView>| -> usize {
            match members.iter().position(|member| member.node_id == node) {
                Some(index) => index,
                None => {
                    // A holder that left the ring but still holds leases.
                    members.push(MemberView {
                        node_id: node.to_owned(),
                        ring_shards: 0,
                        shards: Vec::new(),
                    });
                    members.len() - 1
                }
            }
        };
        for shard in 0..table.shard_count() {
            let shard = souk_cluster::ShardId(shard);
            if let Some(owner) = table.ring.owner(shard) {
                let index = member_index(owner.as_str(), &mut members);
                members[index].ring_shards += 1;
            }
        }
        let mut unheld = 0;
        for shard in 0..table.shard_count() {
            let shard = souk_cluster::ShardId(shard);
            match table.holders.get(&shard) {
                Some(holder) => {
                    let index = member_index(holder.node.as_str(), &mut members);
                    members[index].shards.push(ShardLease {
                        shard: shard.0,
                        epoch: holder.epoch,
                    });
                }
                None => unheld += 1,
            }
        }
        let handoffs = table
            .owned
            .iter()
            .filter_map(|(shard, owned)| match owned.state {
                ShardState::Draining { since } => Some(HandoffView {
                    shard: shard.0,
                    to: table
                        .ring
                        .owner(*shard)
                        .map(|node| node.as_str().to_owned()),
                    draining_ms: now.duration_since(since).as_millis() as u64,
                }),
                ShardState::Serving => None,
            })
            .collect();
        ClusterView {
            enabled: true,
            node_id: table.node.as_str().to_owned(),
            shard_count: table.shard_count(),
            ready: self.ready().is_ok(),
            serving_shards: table
                .owned
                .keys()
                .filter(|shard| table.serves(**shard))
                .count(),
            unheld_shards: unheld,
            members,
            handoffs,
        }
    }
}

/// `GET /api/v1/admin/cluster`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClusterView {
    /// `false`: this node is not clustered and owns every entity (the lists are empty).
    pub enabled: bool,
    /// The node that answered.
    pub node_id: String,
    pub shard_count: u32,
    /// Joined, table read, every shard the ring gives it held.
    pub ready: bool,
    /// Shards the answering node serves now.
    pub serving_shards: usize,
    /// Shards no node holds the lease of (moving, or their owner just died).
    pub unheld_shards: usize,
    /// Every live member and every node that still holds a lease.
    pub members: Vec<MemberView>,
    /// Shards the answering node is handing over now.
    pub handoffs: Vec<HandoffView>,
}

impl ClusterView {
    /// The view of a node that is not clustered.
    pub fn single(node_id: &str) -> Self {
        Self {
            enabled: false,
            node_id: node_id.to_owned(),
            shard_count: 1,
            ready: true,
            serving_shards: 1,
            unheld_shards: 0,
            members: Vec::new(),
            handoffs: Vec::new(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub node_id: String,
    /// Shards the ring gives this member.
    pub ring_shards: u32,
    /// Shards whose lease it holds, with their owner epochs.
    pub shards: Vec<ShardLease>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShardLease {
    pub shard: u32,
    /// The epoch every write of this tenure is fenced on.
    pub epoch: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HandoffView {
    pub shard: u32,
    /// The ring's new owner, if any member is left.
    pub to: Option<String>,
    pub draining_ms: u64,
}
