//! Per-customer purchase limits against "denial of inventory" (one customer holding a
//! SKU's stock with orders they never pay): how many unpaid orders a customer may have
//! open, and how many units of one SKU they may hold across them. The unit cap travels
//! with each reservation to the SKU's actor, the one place that knows what every
//! customer holds of its stock; the order cap travels with the order to the node
//! writer, which counts the customer's unpaid orders in the commit that would write it,
//! while the customer's checkout lock keeps their concurrent checkouts on this node in
//! commits one after another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

/// The caps; `None` lifts one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurchaseLimits {
    pub max_unpaid_orders: Option<u32>,
    pub max_units_per_sku: Option<i64>,
}

impl PurchaseLimits {
    pub const NONE: PurchaseLimits = PurchaseLimits {
        max_unpaid_orders: None,
        max_units_per_sku: None,
    };
}

/// One lock per customer with a checkout in progress; entries go when the last holder
/// lets go, so the map holds only customers checking out right now.
#[derive(Debug, Default)]
pub(crate) struct CheckoutLocks {
    held: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A customer's checkout lock, held until dropped.
pub(crate) struct CheckoutGuard {
    locks: Arc<CheckoutLocks>,
    customer_id: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl CheckoutLocks {
    pub(crate) async fn lock(self: &Arc<Self>, customer_id: &str) -> CheckoutGuard {
        let lock = self
            .held
            .lock()
            .expect("checkout locks poisoned")
            .entry(customer_id.to_owned())
            .or_default()
            .clone();
        let guard = lock.clone().lock_owned().await;
        CheckoutGuard {
            locks: Arc::clone(self),
            customer_id: customer_id.to_owned(),
            lock,
            guard: Some(guard),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.held.lock().expect("checkout locks poisoned").len()
    }
}

impl Drop for CheckoutGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut held = self.locks.held.lock().expect("checkout locks poisoned");
        // Clones are only taken under the map's lock: the map's and this guard's are the
        // last two, so nobody else waits on this customer.
        if Arc::strong_count(&self.lock) == 2 {
            held.remove(&self.customer_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_customer_at_a_time_and_no_entry_left_behind() {
        let locks = Arc::new(CheckoutLocks::default());
        let first = locks.lock("alice").await;
        // Another customer does not wait for alice.
        let bob = locks.lock("bob").await;
        let waiting = {
            let locks = Arc::clone(&locks);
            tokio::spawn(async move { locks.lock("alice").await })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a second checkout of alice waits");
        drop(first);
        let second = waiting.await.unwrap();
        assert_eq!(locks.len(), 2);
        drop(second);
        drop(bob);
        assert_eq!(locks.len(), 0);
    }
}
