//! A clustered node: joins the membership, opens the leases, starts the one driver task
//! ([`driver`]) that keeps the shard table true, and hands out what the rest of the
//! process uses: the table, the mailbox and its server, handoff reports, a graceful stop.

mod driver;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::lease::{self, Holder, LeaseStore};
use crate::membership::Membership;
use crate::ring::ShardId;
use crate::settings::{ClusterSettings, Namespace, NodeId};
use crate::table::{Handoff, ShardTable};
use crate::transport::{EnvelopeHandler, Mailbox, MailboxServer};
use crate::ClusterError;

use driver::{Command, Driver};

/// One node of the cluster. Dropping it abandons its leases (they expire); call
/// [`ClusterNode::stop`] to hand them over first.
pub struct ClusterNode {
    node: NodeId,
    namespace: Namespace,
    settings: ClusterSettings,
    client: async_nats::Client,
    membership: Option<Membership>,
    leases: LeaseStore,
    table: watch::Receiver<Arc<ShardTable>>,
    commands: mpsc::UnboundedSender<Command>,
    driver: Option<JoinHandle<()>>,
    holders_task: JoinHandle<()>,
    shutdown: watch::Sender<bool>,
}

impl ClusterNode {
    /// Joins the cluster (refusing a shard count that differs from the cluster's) and
    /// starts taking this node's shards. Returns at once; see [`ClusterNode::wait_ready`].
    pub async fn start(
        client: async_nats::Client,
        settings: ClusterSettings,
    ) -> Result<Self, ClusterError> {
        settings.validate()?;
        let jetstream = jetstream::new(client.clone());
        let membership = Membership::join(&jetstream, &settings).await?;
        let node = membership.node().clone();
        let leases = LeaseStore::open(&jetstream, &settings, membership.incarnation()).await?;
        let (shutdown, shutdown_receiver) = watch::channel(false);
        let (holders, holders_task) = crate::kv::mirror(
            leases.bucket().clone(),
            lease::LEASE_PREFIX,
            lease::decode_holder,
            shutdown_receiver.clone(),
        )
        .await?;
        let (table_sender, table) =
            watch::channel(Arc::new(ShardTable::empty(node.clone(), settings.shards)));
        let (commands, command_receiver) = mpsc::unbounded_channel();
        let driver = Driver::new(
            node.clone(),
            settings.clone(),
            leases.clone(),
            &membership,
            holders,
            command_receiver,
            table_sender,
        );
        let driver = tokio::spawn(driver.run());
        Ok(Self {
            node,
            namespace: settings.namespace()?,
            settings,
            client,
            membership: Some(membership),
            leases,
            table,
            commands,
            driver: Some(driver),
            holders_task,
            shutdown,
        })
    }

    pub fn node_id(&self) -> &NodeId {
        &self.node
    }

    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The shard table, updated on every change: subscribe for handoffs.
    pub fn table(&self) -> watch::Receiver<Arc<ShardTable>> {
        self.table.clone()
    }

    pub fn snapshot(&self) -> Arc<ShardTable> {
        self.table.borrow().clone()
    }

    /// Waits until the table is ready (joined, read, own shards held); false on timeout.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut table = self.table.clone();
        tokio::time::timeout(timeout, table.wait_for(|table| table.ready))
            .await
            .is_ok_and(|result| result.is_ok())
    }

    /// The entity host has flushed and passivated a draining shard: release its lease.
    pub fn handoff_done(&self, handoff: Handoff) {
        self.handoffs().done(handoff);
    }

    /// A handle for the entity host's own task to report finished handoffs with.
    pub fn handoffs(&self) -> Handoffs {
        Handoffs {
            commands: self.commands.clone(),
        }
    }

    /// Starts answering envelopes for the shards this node serves.
    pub async fn serve(
        &self,
        handler: Arc<dyn EnvelopeHandler>,
    ) -> Result<MailboxServer, ClusterError> {
        // Without a membership (the node is stopping) nothing can displace it any more.
        let registered = match &self.membership {
            Some(membership) => membership.registered(),
            None => watch::channel(true).1,
        };
        MailboxServer::start(
            self.client.clone(),
            &self.namespace,
            self.table(),
            registered,
            handler,
        )
        .await
    }

    /// A client that sends envelopes to the owners of their entities.
    pub fn mailbox(&self) -> Mailbox {
        Mailbox::new(
            self.client.clone(),
            self.namespace.clone(),
            self.table(),
            self.leases.clone(),
        )
    }

    /// The shard's holder read from the bucket now (after a "not owner" answer).
    pub async fn holder_now(&self, shard: ShardId) -> Option<Holder> {
        self.leases.holder(shard).await.ok().flatten()
    }

    /// Graceful stop: leave the membership (so the others compute the ring without
    /// this node), drain every shard (the host gets the handoff timeout to flush), release
    /// the leases, stop.
    pub async fn stop(mut self) {
        if let Some(membership) = self.membership.take() {
            if let Err(error) = membership.leave().await {
                tracing::warn!(%error, "could not remove the membership record; it expires");
            }
        }
        let _ = self.commands.send(Command::Stop);
        if let Some(driver) = self.driver.take() {
            let _ = driver.await;
        }
        let _ = self.shutdown.send(true);
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(driver) = &self.driver {
            driver.abort();
        }
        self.holders_task.abort();
    }
}

/// Reports finished handoffs to a node's driver; cheap to clone.
#[derive(Clone)]
pub struct Handoffs {
    commands: mpsc::UnboundedSender<Command>,
}

impl Handoffs {
    /// The shard (draining on this node) has been flushed and passivated: release it,
    /// if this is still the handoff under way.
    pub fn done(&self, handoff: Handoff) {
        let _ = self.commands.send(Command::HandoffDone(handoff));
    }

    /// Handoffs reported to no driver (tests of the handoff task).
    #[cfg(test)]
    pub(crate) fn unheard() -> Self {
        let (commands, _) = mpsc::unbounded_channel();
        Self { commands }
    }
}

#[cfg(test)]
mod tests;
