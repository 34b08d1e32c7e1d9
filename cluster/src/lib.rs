//! Reaching what is not local: the building blocks of a Souk cluster over NATS.
//!
//! - [`ring`]: entity key → shard (a stable, versioned hash) → owner among the live
//!   members (rendezvous hashing); [`simulation`] measures it with no servers.
//! - [`membership`]: nodes registered with a TTL in a JetStream KV bucket, renewed, and
//!   watched; the bucket pins the deployment's shard count.
//! - [`lease`]: per-shard leases taken and renewed by compare-and-set; the revision of
//!   the taking write is the shard's owner epoch.
//! - [`node`] and [`table`]: membership + ring + leases combined into the shard table a
//!   node publishes (what it serves, with epochs, and who holds the rest).
//! - [`transport`]: the cross-node mailbox over NATS request/reply.
//! - [`entities`]: Souk's entities on all of it — the cluster router, the envelope
//!   handler, the hosts' ownership and the handoff task.

pub mod entities;
pub mod error;
pub mod kv;
pub mod lease;
pub mod membership;
pub mod metrics;
pub mod node;
pub mod ring;
pub mod settings;
pub mod simulation;
pub mod table;
pub mod transport;

pub use entities::{ClusterRouter, EntityHandler, TableOwnership};
pub use error::ClusterError;
pub use lease::{Acquire, Holder, Lease, LeaseError, LeaseStore};
pub use membership::Membership;
pub use node::{ClusterNode, Handoffs};
pub use ring::{shard_of, Ring, ShardId, RING_VERSION};
pub use settings::{ClusterSettings, Namespace, NodeId, DEFAULT_SHARD_COUNT};
pub use table::{Handoff, OwnedShard, ShardState, ShardTable};
pub use transport::{
    BoxFuture, Envelope, EnvelopeHandler, HandlerError, Mailbox, MailboxServer, MailboxStats,
    RemoteError, SendError,
};
