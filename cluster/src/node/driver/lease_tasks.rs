//! The driver's lease writes, each a task of its own: taking the shards the ring gives
//! this node, renewing the leases it holds, releasing the ones it gives up, and taking
//! in each task's answer as it comes.

use std::time::Instant;

use tokio::task::{self, JoinError};

use super::{Acquired, Driver, Held, Renewed};
use crate::lease::{Acquire, Lease, LeaseError};
use crate::metrics;

impl Driver {
    /// Starts taking each wanted shard not being taken already, each on a task of its
    /// own, given up after a lease's length (its answer would come too late to serve).
    pub(super) fn start_acquisitions(&mut self) {
        if !self.acquire_due {
            return;
        }
        self.acquire_due = false;
        for shard in self.wanted() {
            let leases = self.leases.clone();
            let slots = self.acquisition_slots.clone();
            let give_up = self.settings.lease_ttl();
            let task = self.acquisitions.spawn(async move {
                let acquisition = async {
                    let _slot = slots.acquire().await;
                    leases.try_acquire(shard).await
                };
                let result = tokio::time::timeout(give_up, acquisition)
                    .await
                    .unwrap_or_else(|_| {
                        Err(LeaseError::Unavailable(
                            "no answer within a lease's length".to_owned(),
                        ))
                    });
                (shard, result)
            });
            self.acquiring.insert(shard, task.id());
        }
    }

    pub(super) fn absorb_acquisition(&mut self, acquired: Result<(task::Id, Acquired), JoinError>) {
        let (shard, result) = match acquired {
            Ok((task, (shard, result))) => {
                if self.acquiring.get(&shard) == Some(&task) {
                    self.acquiring.remove(&shard);
                }
                (shard, result)
            }
            Err(error) => {
                tracing::error!(%error, "lease acquisition task failed");
                self.acquiring.retain(|_, task| *task != error.id());
                return;
            }
        };
        match result {
            Ok(Acquire::Acquired(lease)) => {
                metrics::lease_acquired();
                tracing::info!(shard = shard.0, epoch = lease.epoch(), "took shard");
                let draining_since = (self.stopping || self.ring.owner(shard) != Some(&self.node))
                    .then(Instant::now);
                self.held.insert(
                    shard,
                    Held {
                        lease,
                        draining_since,
                    },
                );
            }
            Ok(Acquire::HeldBy(holder)) => {
                tracing::debug!(shard = shard.0, holder = %holder.node, "shard still held");
            }
            Err(error) => {
                tracing::debug!(shard = shard.0, %error, "could not take shard");
            }
        }
    }

    /// Renews every held lease whose renewal is not in flight already, the nearest
    /// deadline first. A renewal that has not succeeded by its lease's deadline gives
    /// up: the shard has left the table by then anyway.
    pub(super) fn start_renewals(&mut self) {
        let mut due: Vec<Lease> = self
            .held
            .iter()
            .filter(|(shard, _)| !self.renewing.contains_key(shard))
            .map(|(_, held)| held.lease.clone())
            .collect();
        due.sort_by_key(Lease::valid_until);
        for lease in due {
            let shard = lease.shard();
            let deadline = lease.valid_until();
            let leases = self.leases.clone();
            let slots = self.renewal_slots.clone();
            let renewal = async move {
                let _slot = slots.acquire().await;
                let mut lease = lease;
                leases.renew(&mut lease).await.map(|()| lease)
            };
            let task = self.renewals.spawn(async move {
                let result = tokio::time::timeout_at(deadline.into(), renewal)
                    .await
                    .unwrap_or_else(|_| {
                        Err(LeaseError::Unavailable(
                            "no answer before the lease's deadline".to_owned(),
                        ))
                    });
                (shard, result)
            });
            self.renewing.insert(shard, task.id());
        }
    }

    pub(super) fn absorb_renewal(&mut self, renewed: Result<(task::Id, Renewed), JoinError>) {
        let (task, shard, result) = match renewed {
            Ok((task, (shard, result))) => (task, shard, result),
            Err(error) => {
                self.changed = true;
                tracing::error!(%error, "lease renewal task failed");
                let Some(shard) = self
                    .renewing
                    .iter()
                    .find(|(_, task)| **task == error.id())
                    .map(|(shard, _)| *shard)
                else {
                    return;
                };
                let failed = Err(LeaseError::Unavailable("renewal task failed".to_owned()));
                (error.id(), shard, failed)
            }
        };
        if self.renewing.get(&shard) == Some(&task) {
            self.renewing.remove(&shard);
            if let Some(released) = self.release_after_renewal.remove(&shard) {
                // The shard may be taken again once its release ends.
                self.changed = true;
                let lease = match result {
                    Ok(renewed) if renewed.epoch() == released.epoch() => renewed,
                    Err(LeaseError::Lost { .. }) => return,
                    _ => released,
                };
                self.start_release(lease);
                return;
            }
        }
        let Some(held) = self.held.get_mut(&shard) else {
            return;
        };
        match result {
            // Same tenure (it may have been released and retaken meanwhile).
            Ok(renewed) if renewed.epoch() == held.lease.epoch() => {
                self.extended |= renewed.valid_until() != held.lease.valid_until();
                held.lease = renewed;
            }
            Ok(_) => {}
            Err(LeaseError::Lost { holder }) => {
                self.changed = true;
                metrics::lease_renew_failure("lost");
                tracing::warn!(shard = shard.0, holder = ?holder.map(|h| h.node.to_string()), "lease lost; no longer serving");
                self.held.remove(&shard);
            }
            Err(error) => {
                metrics::lease_renew_failure("error");
                tracing::warn!(shard = shard.0, %error, "lease renewal failed");
            }
        }
    }

    pub(super) fn start_release(&mut self, lease: Lease) {
        let shard = lease.shard();
        let leases = self.leases.clone();
        let task = self.releases.spawn(async move {
            if let Err(error) = leases.release(lease).await {
                tracing::warn!(shard = shard.0, %error, "release failed; the lease expires instead");
            }
        });
        self.releasing.insert(shard, task);
    }
}
