//! The order state machine of DESIGN.md: `pending_payment` → `paid` → `shipped` →
//! `delivered`, with the side exits `cancelled` (shopper before shipping, admin before
//! delivery) and `expired` (reservation TTL passed before payment). Pure: it decides the
//! next state and what must happen to stock; the caller performs and persists both.

use std::fmt;

use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
    Expired,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "pending_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Expired => "expired",
        }
    }

    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::PendingPayment,
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
    ];

    /// The status of a stored or requested name; `None` for anything else.
    pub fn parse(raw: &str) -> Option<OrderStatus> {
        Self::ALL.into_iter().find(|status| status.as_str() == raw)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OrderStatus::Delivered | OrderStatus::Cancelled | OrderStatus::Expired
        )
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Who asks for a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    Shopper,
    Admin,
    System,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Event {
    /// The payment provider captured the payment.
    Pay,
    Ship,
    Deliver,
    Cancel,
    /// The reservations' TTL passed unpaid.
    Expire,
}

/// What the transition requires of the order's stock reservations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockEffect {
    None,
    /// Payment captured: the reserved units are sold.
    CommitReservations,
    /// Not paid: the reserved units go back to available.
    ReleaseReservations,
    /// Paid (sold) units come back: a restock with a ledger entry, and a refund.
    ReturnStock,
}

/// Payment status, shown apart from the order status. `refund_pending`: a cancelled
/// paid order whose refund the provider has not made yet (it is asked again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[schema(as = PaymentStatus, rename_all = "snake_case")]
pub enum Payment {
    Pending,
    Captured,
    RefundPending,
    Refunded,
    Voided,
}

/// Fulfilment status, shown apart from the order status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[schema(as = FulfilmentStatus, rename_all = "lowercase")]
pub enum Fulfilment {
    Unfulfilled,
    Shipped,
    Delivered,
    Returned,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("an order that is {from} cannot be {event}")]
    Illegal {
        from: OrderStatus,
        event: &'static str,
    },
    #[error("only an admin may do this")]
    NotAllowed,
}

fn event_name(event: Event) -> &'static str {
    match event {
        Event::Pay => "paid",
        Event::Ship => "shipped",
        Event::Deliver => "delivered",
        Event::Cancel => "cancelled",
        Event::Expire => "expired",
    }
}

/// The next status and its stock effect, or why the transition is refused.
pub fn transition(
    from: OrderStatus,
    event: Event,
    actor: Initiator,
) -> Result<(OrderStatus, StockEffect), TransitionError> {
    use Event::*;
    use OrderStatus::*;
    let illegal = || TransitionError::Illegal {
        from,
        event: event_name(event),
    };
    match (from, event) {
        (PendingPayment, Pay) if actor != Initiator::System => {
            Ok((Paid, StockEffect::CommitReservations))
        }
        (PendingPayment, Expire) if actor == Initiator::System => {
            Ok((Expired, StockEffect::ReleaseReservations))
        }
        (PendingPayment, Cancel) if actor != Initiator::System => {
            Ok((Cancelled, StockEffect::ReleaseReservations))
        }
        (Paid, Cancel) if actor != Initiator::System => Ok((Cancelled, StockEffect::ReturnStock)),
        (Paid, Ship) | (Shipped, Deliver) if actor != Initiator::Admin => {
            Err(TransitionError::NotAllowed)
        }
        (Paid, Ship) => Ok((Shipped, StockEffect::None)),
        (Shipped, Deliver) => Ok((Delivered, StockEffect::None)),
        // A shipped order is not cancelled: its units are on their way, not on the
        // shelf; once delivered, a return brings them back when they arrive.
        _ => Err(illegal()),
    }
}

/// Payment and fulfilment as they follow from the path an order took.
pub fn derived_statuses(status: OrderStatus, was_paid: bool) -> (Payment, Fulfilment) {
    match status {
        OrderStatus::PendingPayment => (Payment::Pending, Fulfilment::Unfulfilled),
        OrderStatus::Paid => (Payment::Captured, Fulfilment::Unfulfilled),
        OrderStatus::Shipped => (Payment::Captured, Fulfilment::Shipped),
        OrderStatus::Delivered => (Payment::Captured, Fulfilment::Delivered),
        OrderStatus::Cancelled if was_paid => (Payment::Refunded, Fulfilment::Returned),
        OrderStatus::Cancelled | OrderStatus::Expired => (Payment::Voided, Fulfilment::Unfulfilled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            Just(Event::Pay),
            Just(Event::Ship),
            Just(Event::Deliver),
            Just(Event::Cancel),
            Just(Event::Expire)
        ]
    }

    fn actor() -> impl Strategy<Value = Initiator> {
        prop_oneof![
            Just(Initiator::Shopper),
            Just(Initiator::Admin),
            Just(Initiator::System)
        ]
    }

    proptest! {
        /// Along any path: stock is committed at most once and only from a reservation,
        /// released or returned at most once, never both; terminal states accept nothing;
        /// a refused transition changes nothing.
        #[test]
        fn stock_effects_are_consistent_along_any_path(steps in proptest::collection::vec((event(), actor()), 0..40)) {
            let mut status = OrderStatus::PendingPayment;
            let (mut committed, mut released, mut returned) = (0, 0, 0);
            for (event, actor) in steps {
                if let Ok((next, effect)) = transition(status, event, actor) {
                    prop_assert!(!status.is_terminal(), "{status} moved on");
                    match effect {
                        StockEffect::CommitReservations => committed += 1,
                        StockEffect::ReleaseReservations => released += 1,
                        StockEffect::ReturnStock => returned += 1,
                        StockEffect::None => {}
                    }
                    status = next;
                }
                prop_assert!(committed <= 1 && released <= 1 && returned <= 1);
                prop_assert!(!(committed == 1 && released == 1), "sold and released");
                prop_assert!(returned == 0 || committed == 1, "returned what was never sold");
            }
            if status == OrderStatus::Delivered {
                prop_assert_eq!((committed, returned), (1, 0));
            }
        }
    }

    #[test]
    fn the_happy_path_and_its_side_exits() {
        use Initiator::*;
        use OrderStatus::*;
        assert_eq!(
            transition(PendingPayment, Event::Pay, Shopper),
            Ok((Paid, StockEffect::CommitReservations))
        );
        assert_eq!(
            transition(Paid, Event::Ship, Admin),
            Ok((Shipped, StockEffect::None))
        );
        assert_eq!(
            transition(Shipped, Event::Deliver, Admin),
            Ok((Delivered, StockEffect::None))
        );
        assert_eq!(
            transition(PendingPayment, Event::Expire, System),
            Ok((Expired, StockEffect::ReleaseReservations))
        );
        assert_eq!(
            transition(PendingPayment, Event::Cancel, Shopper),
            Ok((Cancelled, StockEffect::ReleaseReservations))
        );
        assert_eq!(
            transition(Paid, Event::Cancel, Shopper),
            Ok((Cancelled, StockEffect::ReturnStock))
        );
        // Nobody cancels what has shipped; shoppers cannot ship; a paid order does not
        // expire; an expired order cannot be paid.
        for initiator in [Shopper, Admin] {
            assert_eq!(
                transition(Shipped, Event::Cancel, initiator),
                Err(TransitionError::Illegal {
                    from: Shipped,
                    event: "cancelled"
                })
            );
        }
        assert_eq!(
            transition(Paid, Event::Ship, Shopper),
            Err(TransitionError::NotAllowed)
        );
        assert!(matches!(
            transition(Paid, Event::Expire, System),
            Err(TransitionError::Illegal { .. })
        ));
        assert!(matches!(
            transition(Expired, Event::Pay, Shopper),
            Err(TransitionError::Illegal { .. })
        ));
        assert!(matches!(
            transition(Delivered, Event::Cancel, Admin),
            Err(TransitionError::Illegal { .. })
        ));
        assert_eq!(
            derived_statuses(Cancelled, true),
            (Payment::Refunded, Fulfilment::Returned)
        );
        assert_eq!(
            derived_statuses(Expired, false),
            (Payment::Voided, Fulfilment::Unfulfilled)
        );
    }
}
