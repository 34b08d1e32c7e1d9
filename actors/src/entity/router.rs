//! The entity router: the one door to every entity of a kind. Callers never know where
//! an entity lives; [`LocalRouter`] reaches this node's host, and other implementations
//! (another service over gRPC, the owning node over NATS) answer the same trait.

use actix::dev::ToEnvelope;
use actix::prelude::*;
use futures_util::future::BoxFuture;

use super::host::{Deliver, EntityHost};
use super::{Entity, EntityKind, HostError, Request};

pub trait EntityRouter<K: EntityKind>: Send + Sync {
    fn send(
        &self,
        key: String,
        request: K::Request,
    ) -> BoxFuture<'static, Result<K::Reply, K::Error>>;

    /// Whether the entity `key` runs on this node now. A node's sweeps (lapsed
    /// reservations, due orders) ask only the entities it runs, so on a cluster each
    /// due key is asked by its one owner, not by every node.
    fn serves_here(&self, key: &str) -> bool;
}

/// Every entity of the kind is owned by this node's host.
pub struct LocalRouter<E: Entity> {
    host: Addr<EntityHost<E>>,
}

impl<E: Entity> Clone for LocalRouter<E> {
    fn clone(&self) -> Self {
        Self {
            host: self.host.clone(),
        }
    }
}

impl<E: Entity> LocalRouter<E> {
    pub fn new(host: Addr<EntityHost<E>>) -> Self {
        Self { host }
    }

    pub fn host(&self) -> &Addr<EntityHost<E>> {
        &self.host
    }
}

impl<E> EntityRouter<E::Kind> for LocalRouter<E>
where
    E: Entity + Handler<Request<E::Kind>>,
    E::Context: ToEnvelope<E, Request<E::Kind>>,
{
    fn send(
        &self,
        key: String,
        request: <E::Kind as EntityKind>::Request,
    ) -> BoxFuture<'static, Result<<E::Kind as EntityKind>::Reply, <E::Kind as EntityKind>::Error>>
    {
        let host = self.host.clone();
        Box::pin(async move {
            host.send(Deliver { key, request })
                .await
                .map_err(|_| HostError::ShuttingDown)?
        })
    }

    fn serves_here(&self, _key: &str) -> bool {
        true
    }
}
