//! A SKU's stock and the rules that change it, free of actors and I/O so they can be
//! property-tested. `available = on_hand - reserved` never goes below zero.

use serde::{Deserialize, Serialize};
use souk_db::clock::Micros;
use souk_db::inventory::{MovementRecord, ReservationRecord};

use super::placement::Placement;
use super::reservations::Reservations;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub quantity: i64,
    pub expires_at: Micros,
    pub created_at: Micros,
    /// The customer whose unpaid order holds the units; `None` for reservations made
    /// without one.
    pub customer_id: Option<String>,
}

/// Who asks for a reservation, and how many units of this SKU one customer may hold
/// across all their unpaid orders (`None`: no cap). It stops one customer from holding
/// a SKU's whole stock with orders they never pay ("denial of inventory").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub customer_id: String,
    pub max_units: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stock {
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub low_stock_threshold: i64,
    /// The persisted version; `None` until the row exists.
    pub version: Option<i64>,
    pub reservations: Reservations,
}

/// What a caller asks of a SKU. Every order-related command is idempotent by order id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Reserve {
        order_id: String,
        quantity: i64,
        ttl_ms: i64,
        actor: String,
        holder: Option<Holder>,
        /// The order to write with this reservation, in its commit; it crosses to the
        /// SKU's owner on another node (a node that predates it ignores it).
        #[serde(default, skip_serializing_if = "Placement::carries_nothing")]
        place: Placement,
    },
    Release {
        order_id: String,
        actor: String,
        reason: String,
    },
    /// Payment captured: the reserved units leave `on_hand` too. `quantity` is the
    /// order's units of this SKU: when its reservation lapsed before the sale reached
    /// here (the sale was owed past the reservation's time), they are sold from what is
    /// available, if enough is.
    Commit {
        order_id: String,
        #[serde(default)]
        quantity: i64,
        actor: String,
    },
    /// Sold units come back: a paid order cancelled, or a shopper's return received
    /// (`order_id` is then the return's id); once per id. Only units sold under
    /// `sale_order_id` (empty: `order_id`) come back: an order cancelled while it still
    /// holds its reservation here has it released instead, and one never sold here
    /// gives nothing back.
    Return {
        order_id: String,
        #[serde(default)]
        sale_order_id: String,
        quantity: i64,
        actor: String,
        /// Why, for the movement; empty means an order cancelled after payment.
        reason: String,
    },
    /// Restock (+), shrinkage or correction (−).
    Adjust {
        delta: i64,
        actor: String,
        reason: String,
    },
    /// A count: on_hand becomes this, whatever it was meanwhile (the difference is the
    /// ledger's adjustment), so two counts sent at once both leave what was counted.
    SetOnHand {
        on_hand: i64,
        actor: String,
        reason: String,
    },
    /// An adjustment or a count sent with the admin's Idempotency-Key: applied once per
    /// `request_key`; sent again, it changes nothing. A command of its own rather than
    /// a field of the two above, so that a node that does not know keys (one of the
    /// previous version, during a rolling upgrade) refuses it instead of applying it
    /// without its key.
    KeyedChange {
        request_key: String,
        on_hand: OnHandChange,
        actor: String,
        reason: String,
    },
    SetThreshold {
        threshold: i64,
        actor: String,
    },
    /// Releases every reservation due by `now` (the actor's timer sends it).
    ExpireDue,
}

/// How an admin changes on_hand: by a difference (a delivery, a loss), or to a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnHandChange {
    By(i64),
    /// Applied to on_hand as the SKU's actor holds it, so a change landing meanwhile
    /// (a sale, another count) does not make it miss.
    To(i64),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Reserved {
        available: i64,
    },
    AlreadyReserved,
    Released,
    NotHeld,
    Sold,
    AlreadySold,
    Adjusted {
        on_hand: i64,
        available: i64,
    },
    Returned,
    AlreadyReturned,
    /// A return of units never sold here: nothing came back.
    NotSold,
    ThresholdSet,
    Expired {
        order_ids: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum StockError {
    #[error("insufficient stock: {available} available")]
    Insufficient { available: i64 },
    #[error("order already holds a reservation of {held} units")]
    ConflictingReservation { held: i64 },
    #[error("on_hand cannot go below the {reserved} reserved units")]
    BelowReserved { reserved: i64 },
    #[error("the order holds no reservation of this sku")]
    NotReserved,
    #[error("quantity must be positive")]
    InvalidQuantity,
    #[error("a customer may hold at most {limit} units in unpaid orders; {allowed} more allowed")]
    CustomerLimit { limit: i64, allowed: i64 },
}

/// The rows a batch must write besides the item.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    pub new_reservations: Vec<ReservationRecord>,
    pub removed_reservations: Vec<String>,
    pub movements: Vec<MovementRecord>,
}

/// What the ledger already held for a command, read for its whole batch before the
/// batch is applied (`super::ledger`): the sale of a `Commit`'s order, for a `Return`
/// the sale it reverses and the return itself, and whether a keyed change was applied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub sold: bool,
    pub returned: bool,
    /// The admin's change of this request key was applied already.
    pub requested: bool,
}

impl Recorded {
    pub const NOTHING: Recorded = Recorded {
        sold: false,
        returned: false,
        requested: false,
    };
    pub const SOLD: Recorded = Recorded {
        sold: true,
        ..Recorded::NOTHING
    };
}

impl Command {
    /// The order whose sale a `Return` reverses.
    pub fn sale_order_id(&self) -> Option<&str> {
        match self {
            Command::Return {
                order_id,
                sale_order_id,
                ..
            } if sale_order_id.is_empty() => Some(order_id),
            Command::Return { sale_order_id, .. } => Some(sale_order_id),
            _ => None,
        }
    }
}

impl Changes {
    /// Whether this batch already holds a movement of `kind` for `order_id`.
    fn has_movement(&self, kind: &str, order_id: &str) -> bool {
        self.movements
            .iter()
            .any(|m| m.kind == kind && m.order_id.as_deref() == Some(order_id))
    }

    pub fn is_empty(&self) -> bool {
        self.new_reservations.is_empty()
            && self.removed_reservations.is_empty()
            && self.movements.is_empty()
    }
}

impl Stock {
    pub fn empty(sku: &str) -> Self {
        Self {
            sku: sku.to_owned(),
            on_hand: 0,
            reserved: 0,
            low_stock_threshold: 0,
            version: None,
            reservations: Reservations::default(),
        }
    }

    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }

    /// The units a customer holds here across their unpaid orders.
    pub fn held_by(&self, customer_id: &str) -> i64 {
        self.reservations.held_by(customer_id)
    }

    pub fn next_expiry(&self) -> Option<Micros> {
        self.reservations.next_expiry()
    }

    /// A ledger row; `deltas` is (on_hand, reserved).
    fn movement(
        &self,
        kind: &str,
        deltas: (i64, i64),
        order_id: Option<&str>,
        actor: &str,
        reason: &str,
        now: Micros,
    ) -> MovementRecord {
        MovementRecord {
            id: souk_db::ids::new_id(),
            sku: self.sku.clone(),
            kind: kind.to_owned(),
            delta_on_hand: deltas.0,
            delta_reserved: deltas.1,
            order_id: order_id.map(str::to_owned),
            actor: actor.chars().take(100).collect(),
            reason: reason.chars().take(200).collect(),
            // Filled in with the batch's version when the batch is written.
            version: 0,
            created_at: now,
            request_key: None,
        }
    }

    /// Gives an order's reserved units back to available, with its ledger row of `kind`
    /// (`release`, `expiry`); false when the order holds nothing here.
    fn release_reservation(
        &mut self,
        order_id: &str,
        (kind, actor, reason): (&str, &str, &str),
        now: Micros,
        changes: &mut Changes,
    ) -> bool {
        let Some(held) = self.drop_reservation(order_id, changes) else {
            return false;
        };
        self.reserved -= held.quantity;
        let movement = self.movement(
            kind,
            (0, -held.quantity),
            Some(order_id),
            actor,
            reason,
            now,
        );
        changes.movements.push(movement);
        true
    }

    /// Moves on_hand by `delta`, never below what is reserved. A change of nothing
    /// writes no ledger row unless it carries a request key: that one is recorded, so
    /// the same request sent again finds it.
    fn adjust(
        &mut self,
        delta: i64,
        actor: &str,
        reason: &str,
        request_key: Option<&str>,
        now: Micros,
        changes: &mut Changes,
    ) -> Result<Outcome, StockError> {
        let on_hand = self.on_hand + delta;
        if on_hand < self.reserved {
            return Err(StockError::BelowReserved {
                reserved: self.reserved,
            });
        }
        if delta != 0 || request_key.is_some() {
            self.on_hand = on_hand;
            let mut movement = self.movement("adjustment", (delta, 0), None, actor, reason, now);
            movement.request_key = request_key.map(str::to_owned);
            changes.movements.push(movement);
        }
        Ok(self.adjusted())
    }

    fn adjusted(&self) -> Outcome {
        Outcome::Adjusted {
            on_hand: self.on_hand,
            available: self.available(),
        }
    }

    /// Whether the admin's change sent with `request_key` was applied already.
    fn applied_already(request_key: &str, recorded: Recorded, changes: &Changes) -> bool {
        recorded.requested
            || changes
                .movements
                .iter()
                .any(|movement| movement.request_key.as_deref() == Some(request_key))
    }

    /// Removes a reservation, cancelling its insertion if it was made in this batch.
    fn drop_reservation(&mut self, order_id: &str, changes: &mut Changes) -> Option<Held> {
        let held = self.reservations.remove(order_id)?;
        let before = changes.new_reservations.len();
        changes
            .new_reservations
            .retain(|reservation| reservation.order_id != order_id);
        if changes.new_reservations.len() == before {
            changes.removed_reservations.push(order_id.to_owned());
        }
        Some(held)
    }

    /// Applies one command at `now`, given what the ledger already holds for it.
    pub fn apply(
        &mut self,
        command: &Command,
        now: Micros,
        recorded: Recorded,
        changes: &mut Changes,
    ) -> Result<Outcome, StockError> {
        match command {
            Command::Reserve {
                order_id,
                quantity,
                ttl_ms,
                actor,
                holder,
                place: _,
            } => {
                if *quantity <= 0 {
                    return Err(StockError::InvalidQuantity);
                }
                if let Some(held) = self.reservations.get(order_id) {
                    return if held.quantity == *quantity {
                        Ok(Outcome::AlreadyReserved)
                    } else {
                        Err(StockError::ConflictingReservation {
                            held: held.quantity,
                        })
                    };
                }
                if let Some(Holder {
                    customer_id,
                    max_units: Some(limit),
                }) = holder
                {
                    let allowed = (limit - self.held_by(customer_id)).max(0);
                    if *quantity > allowed {
                        return Err(StockError::CustomerLimit {
                            limit: *limit,
                            allowed,
                        });
                    }
                }
                if *quantity > self.available() {
                    return Err(StockError::Insufficient {
                        available: self.available().max(0),
                    });
                }
                self.reserved += quantity;
                let customer_id = holder.as_ref().map(|holder| holder.customer_id.clone());
                let held = Held {
                    quantity: *quantity,
                    expires_at: now.saturating_add(ttl_ms.max(&0).saturating_mul(1000)),
                    created_at: now,
                    customer_id: customer_id.clone(),
                };
                changes.new_reservations.push(ReservationRecord {
                    sku: self.sku.clone(),
                    order_id: order_id.clone(),
                    quantity: *quantity,
                    expires_at: held.expires_at,
                    created_at: now,
                    customer_id,
                });
                self.reservations.insert(order_id.clone(), held);
                changes.movements.push(self.movement(
                    "reservation",
                    (0, *quantity),
                    Some(order_id),
                    actor,
                    "reserved for order",
                    now,
                ));
                Ok(Outcome::Reserved {
                    available: self.available(),
                })
            }
            Command::Release {
                order_id,
                actor,
                reason,
            } => {
                let why = ("release", actor.as_str(), reason.as_str());
                if self.release_reservation(order_id, why, now, changes) {
                    Ok(Outcome::Released)
                } else {
                    Ok(Outcome::NotHeld)
                }
            }
            Command::Commit {
                order_id,
                quantity,
                actor,
            } => {
                // Sold already: a reservation held under the order's id now is a
                // replay's (its Idempotency-Key sent again after the payment reserves
                // afresh until the checkout finds the order paid and releases it), not
                // units the order still buys.
                if recorded.sold || changes.has_movement("sale", order_id) {
                    return Ok(Outcome::AlreadySold);
                }
                if let Some(held) = self.drop_reservation(order_id, changes) {
                    self.reserved -= held.quantity;
                    self.on_hand -= held.quantity;
                    changes.movements.push(self.movement(
                        "sale",
                        (-held.quantity, -held.quantity),
                        Some(order_id),
                        actor,
                        "payment captured",
                        now,
                    ));
                    return Ok(Outcome::Sold);
                }
                if *quantity <= 0 {
                    return Err(StockError::NotReserved);
                }
                // The reservation lapsed before the sale came: sell from what is left.
                if *quantity > self.available() {
                    return Err(StockError::Insufficient {
                        available: self.available().max(0),
                    });
                }
                self.on_hand -= quantity;
                changes.movements.push(self.movement(
                    "sale",
                    (-quantity, 0),
                    Some(order_id),
                    actor,
                    "payment captured after its reservation lapsed",
                    now,
                ));
                Ok(Outcome::Sold)
            }
            Command::Return {
                order_id,
                quantity,
                actor,
                reason,
                ..
            } => {
                if *quantity <= 0 {
                    return Err(StockError::InvalidQuantity);
                }
                if recorded.returned || changes.has_movement("return", order_id) {
                    return Ok(Outcome::AlreadyReturned);
                }
                let sale_order_id = command.sale_order_id().unwrap_or(order_id);
                let sold = recorded.sold || changes.has_movement("sale", sale_order_id);
                // An order cancelled before its sale reached this SKU still holds its
                // reservation: those units never left, so they are released, not
                // returned (returning them would count them twice). Once the sale is
                // recorded, a reservation under the order's id is a replay's, and the
                // sold units come back.
                if sale_order_id == order_id && !sold {
                    let why = ("release", actor.as_str(), "order cancelled before its sale");
                    if self.release_reservation(order_id, why, now, changes) {
                        return Ok(Outcome::Released);
                    }
                }
                // Units never sold here never left: giving them back would invent stock.
                if !sold {
                    return Ok(Outcome::NotSold);
                }
                self.on_hand += quantity;
                changes.movements.push(self.movement(
                    "return",
                    (*quantity, 0),
                    Some(order_id),
                    actor,
                    if reason.is_empty() {
                        "returned: order cancelled after payment"
                    } else {
                        reason
                    },
                    now,
                ));
                Ok(Outcome::Returned)
            }
            Command::Adjust {
                delta,
                actor,
                reason,
            } => self.adjust(*delta, actor, reason, None, now, changes),
            Command::SetOnHand {
                on_hand,
                actor,
                reason,
            } => self.adjust(on_hand - self.on_hand, actor, reason, None, now, changes),
            Command::KeyedChange { request_key, .. }
                if Self::applied_already(request_key, recorded, changes) =>
            {
                Ok(self.adjusted())
            }
            Command::KeyedChange {
                request_key,
                on_hand,
                actor,
                reason,
            } => {
                let delta = match on_hand {
                    OnHandChange::By(delta) => *delta,
                    OnHandChange::To(count) => count - self.on_hand,
                };
                self.adjust(delta, actor, reason, Some(request_key), now, changes)
            }
            Command::SetThreshold { threshold, .. } => {
                if *threshold < 0 {
                    return Err(StockError::InvalidQuantity);
                }
                self.low_stock_threshold = *threshold;
                Ok(Outcome::ThresholdSet)
            }
            Command::ExpireDue => {
                let due = self.reservations.due(now);
                for order_id in &due {
                    let why = ("expiry", "system", "reservation expired unpaid");
                    self.release_reservation(order_id, why, now, changes);
                }
                Ok(Outcome::Expired { order_ids: due })
            }
        }
    }
}

#[cfg(test)]
mod tests;
