//! The reservations a SKU holds, by order id, with two indexes kept beside them: by
//! expiry (the next one due, and those due now, without a scan) and per customer (the
//! units each holds, for the per-customer cap). A hot SKU holds tens of thousands of
//! reservations and every batch asks both questions, so neither may cost a walk over
//! all of them. Reads go through the map (`Deref`); changes only through
//! [`Reservations::insert`] and [`Reservations::remove`], which keep the indexes right.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Deref;

use serde::{Deserialize, Serialize};
use souk_db::clock::Micros;

use super::stock::Held;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "BTreeMap<String, Held>", into = "BTreeMap<String, Held>")]
pub struct Reservations {
    by_order: BTreeMap<String, Held>,
    by_expiry: BTreeSet<(Micros, String)>,
    /// Units held per customer; a customer holding none has no entry.
    by_customer: HashMap<String, i64>,
}

impl Reservations {
    /// Holds `held` for `order_id`, replacing what it held before.
    pub fn insert(&mut self, order_id: String, held: Held) {
        self.remove(&order_id);
        self.by_expiry.insert((held.expires_at, order_id.clone()));
        if let Some(customer_id) = &held.customer_id {
            *self.by_customer.entry(customer_id.clone()).or_default() += held.quantity;
        }
        self.by_order.insert(order_id, held);
    }

    /// Drops what `order_id` holds; answers it.
    pub fn remove(&mut self, order_id: &str) -> Option<Held> {
        let held = self.by_order.remove(order_id)?;
        self.by_expiry
            .remove(&(held.expires_at, order_id.to_owned()));
        if let Some(customer_id) = &held.customer_id {
            if let Some(units) = self.by_customer.get_mut(customer_id) {
                *units -= held.quantity;
                if *units == 0 {
                    self.by_customer.remove(customer_id);
                }
            }
        }
        Some(held)
    }

    /// When the next reservation expires.
    pub fn next_expiry(&self) -> Option<Micros> {
        self.by_expiry.first().map(|(expires_at, _)| *expires_at)
    }

    /// The orders whose reservations expire at or before `now`, soonest first.
    pub fn due(&self, now: Micros) -> Vec<String> {
        self.by_expiry
            .iter()
            .take_while(|(expires_at, _)| *expires_at <= now)
            .map(|(_, order_id)| order_id.clone())
            .collect()
    }

    /// The units `customer_id` holds here.
    pub fn held_by(&self, customer_id: &str) -> i64 {
        self.by_customer.get(customer_id).copied().unwrap_or(0)
    }
}

impl Deref for Reservations {
    type Target = BTreeMap<String, Held>;

    fn deref(&self) -> &Self::Target {
        &self.by_order
    }
}

impl FromIterator<(String, Held)> for Reservations {
    fn from_iter<Items: IntoIterator<Item = (String, Held)>>(items: Items) -> Self {
        let mut reservations = Self::default();
        for (order_id, held) in items {
            reservations.insert(order_id, held);
        }
        reservations
    }
}

impl From<BTreeMap<String, Held>> for Reservations {
    fn from(by_order: BTreeMap<String, Held>) -> Self {
        by_order.into_iter().collect()
    }
}

impl From<Reservations> for BTreeMap<String, Held> {
    fn from(reservations: Reservations) -> Self {
        reservations.by_order
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn held(quantity: i64, expires_at: Micros, customer: Option<u8>) -> Held {
        Held {
            quantity,
            expires_at,
            created_at: 0,
            customer_id: customer.map(|customer| format!("customer-{customer}")),
        }
    }

    proptest! {
        /// Whatever is inserted and removed, the indexes answer what a walk over the
        /// map answers.
        #[test]
        fn the_indexes_agree_with_a_walk_over_the_map(
            steps in proptest::collection::vec(
                (0..12u8, any::<bool>(), 1..5i64, 0..20i64, proptest::option::of(0..3u8)),
                0..80,
            ),
            now in 0..20i64,
        ) {
            let mut reservations = Reservations::default();
            for (order, insert, quantity, expires_at, customer) in steps {
                let order_id = format!("order-{order}");
                match insert {
                    true => reservations.insert(order_id, held(quantity, expires_at, customer)),
                    false => { reservations.remove(&order_id); }
                }
            }
            let walked_next = reservations.values().map(|held| held.expires_at).min();
            prop_assert_eq!(reservations.next_expiry(), walked_next);
            let mut due = reservations.due(now);
            due.sort();
            let walked_due: Vec<String> = reservations
                .iter()
                .filter(|(_, held)| held.expires_at <= now)
                .map(|(order_id, _)| order_id.clone())
                .collect();
            prop_assert_eq!(due, walked_due);
            for customer in 0..3u8 {
                let customer_id = format!("customer-{customer}");
                let walked: i64 = reservations
                    .values()
                    .filter(|held| held.customer_id.as_deref() == Some(customer_id.as_str()))
                    .map(|held| held.quantity)
                    .sum();
                prop_assert_eq!(reservations.held_by(&customer_id), walked);
            }
            let round_trip: Reservations =
                serde_json::from_str(&serde_json::to_string(&reservations).unwrap()).unwrap();
            prop_assert_eq!(round_trip, reservations);
        }
    }
}
