//! An order carried by a reservation: the checkout hands its order to the reservation
//! of its last line, and the SKU actor has the node writer write it in the same
//! transaction as that reservation, so the checkout waits for one commit, not two.
//! When the SKU's owner is another node of the cluster, the order crosses with the
//! reservation and what became of it comes back with the answer ([`OrderWritten`]);
//! a gRPC call to a split inventory service drops it, and the checkout, finding it
//! unplaced, writes the order itself.

use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use souk_db::orders::NewOrder;
use souk_db::DbError;

/// What a placement shares between the checkout, the actor that writes the order and,
/// across nodes, the mailbox that carries it.
struct Slot {
    /// The order, until an actor takes it to write.
    order: Option<NewOrder>,
    /// What became of it, once told.
    outcome: Option<Result<(), DbError>>,
}

/// The order a `Reserve` carries, if any; taken by the one actor that writes it.
#[derive(Clone, Default)]
pub struct Placement(Option<Arc<Mutex<Slot>>>);

/// Where the checkout learns what became of the order it handed over.
pub struct Placed(Arc<Mutex<Slot>>);

/// Tells a placement what became of its order; dropped untold, the order counts as
/// not written (its checkout writes it).
pub struct Teller(Arc<Mutex<Slot>>);

/// What became of a carried order, as it crosses back to the node that sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderWritten {
    Written,
    /// A unique key refused it: the id, or the customer's idempotency key, is taken.
    Duplicate {
        constraint: Option<String>,
    },
    /// The customer already has as many unpaid orders as the cap allows.
    UnpaidLimit {
        limit: u32,
    },
}

fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Placement {
    /// A placement of `order`, and where its outcome will be told.
    pub fn of(order: NewOrder) -> (Self, Placed) {
        let slot = Arc::new(Mutex::new(Slot {
            order: Some(order),
            outcome: None,
        }));
        (Self(Some(slot.clone())), Placed(slot))
    }

    /// The order and its teller, once: whoever takes it writes the order or drops
    /// the teller untold.
    pub fn take(&self) -> Option<(NewOrder, Teller)> {
        let slot = self.0.as_ref()?;
        let order = lock(slot).order.take()?;
        Some((order, Teller(slot.clone())))
    }

    /// Whether this placement carries no order (none was handed over).
    pub fn carries_nothing(&self) -> bool {
        self.0.is_none()
    }

    /// What became of the order, for the answer that crosses back to its sender:
    /// `None` if no actor wrote it, or if its write failed in a way only this node's
    /// error can say (its checkout then writes it, or finds it written).
    pub fn written(&self) -> Option<OrderWritten> {
        let slot = self.0.as_ref()?;
        match lock(slot).outcome.as_ref()? {
            Ok(()) => Some(OrderWritten::Written),
            Err(DbError::UniqueViolation { constraint }) => Some(OrderWritten::Duplicate {
                constraint: constraint.clone(),
            }),
            Err(DbError::UnpaidOrderLimit { limit }) => {
                Some(OrderWritten::UnpaidLimit { limit: *limit })
            }
            Err(_) => None,
        }
    }

    /// Records what the owner on another node answered about the order it carried.
    pub fn tell_written(&self, written: OrderWritten) {
        let Some(slot) = self.0.as_ref() else {
            return;
        };
        lock(slot).outcome = Some(match written {
            OrderWritten::Written => Ok(()),
            OrderWritten::Duplicate { constraint } => Err(DbError::UniqueViolation { constraint }),
            OrderWritten::UnpaidLimit { limit } => Err(DbError::UnpaidOrderLimit { limit }),
        });
    }
}

impl Teller {
    pub fn tell(self, outcome: Result<(), DbError>) {
        lock(&self.0).outcome = Some(outcome);
    }
}

impl Placed {
    /// What became of the order, once the reservation carrying it was answered: `None`
    /// if no actor wrote it (it crossed to a service that drops it, or its batch was
    /// not written).
    pub fn outcome(self) -> Option<Result<(), DbError>> {
        lock(&self.0).outcome.take()
    }
}

impl std::fmt::Debug for Placement {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self.0 {
            Some(_) => "Placement(order)",
            None => "Placement(none)",
        })
    }
}

/// A placement is a side channel, not part of what a command means: two commands that
/// differ only in it are the same command.
impl PartialEq for Placement {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Placement {}

/// On the wire a placement is its order, while no actor has taken it.
impl Serialize for Placement {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(slot) => lock(slot).order.serialize(serializer),
            None => serializer.serialize_none(),
        }
    }
}

/// An order that crossed becomes a placement of its own on the owner's node; what
/// became of it is read back with [`Placement::written`].
impl<'de> Deserialize<'de> for Placement {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let order = Option::<NewOrder>::deserialize(deserializer)?;
        Ok(order.map_or_else(Self::default, |order| Self::of(order).0))
    }
}
