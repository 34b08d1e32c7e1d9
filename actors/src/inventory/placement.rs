//! An order carried by a reservation: the checkout hands its order to the reservation
//! of its last line, and the SKU actor has the node writer write it in the same
//! transaction as that reservation, so the checkout waits for one commit, not two. It
//! lives only in memory: on the wire (another node's or service's SKU) it is dropped,
//! and the checkout, finding it unplaced, writes the order itself.

use std::sync::{Arc, Mutex};

use souk_db::orders::NewOrder;
use souk_db::DbError;
use tokio::sync::oneshot;

type Carried = (NewOrder, oneshot::Sender<Result<(), DbError>>);

/// The order a `Reserve` carries, if any; taken by the one actor that writes it.
#[derive(Clone, Default)]
pub struct Placement(Option<Arc<Mutex<Option<Carried>>>>);

/// Where the checkout learns what became of the order it handed over.
pub struct Placed(oneshot::Receiver<Result<(), DbError>>);

impl Placement {
    /// A placement of `order`, and where its outcome will be told.
    pub fn of(order: NewOrder) -> (Self, Placed) {
        let (tell, told) = oneshot::channel();
        (
            Self(Some(Arc::new(Mutex::new(Some((order, tell)))))),
            Placed(told),
        )
    }

    /// The order and its teller, once: whoever takes it writes the order or drops
    /// the teller unanswered.
    pub fn take(&self) -> Option<Carried> {
        let carried = self.0.as_ref()?;
        carried
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

impl Placed {
    /// What became of the order, once the reservation carrying it was answered: `None`
    /// if no actor wrote it (it crossed the wire, or its batch was not written).
    pub fn outcome(mut self) -> Option<Result<(), DbError>> {
        self.0.try_recv().ok()
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
