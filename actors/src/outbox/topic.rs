//! The topics of domain events, in one table: what the domains write to the outbox
//! and what consumers (the email workers) react to. A topic is `<aggregate>.<fact>`;
//! on NATS it becomes `<namespace>.events.<topic>`.

use souk_db::outbox::OutboxEvent;

use crate::error::Error;
use crate::orders::OrderStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    UserRegistered,
    UserDeleted,
    AccessChanged,
    UserVerificationReminder,
    PasswordResetRequested,
    EmailChangeRequested,
    OrderPlaced,
    OrderPaid,
    OrderShipped,
    OrderDelivered,
    OrderCancelled,
    OrderExpired,
    ReturnUpdated,
    StockLow,
    StockAvailability,
    ProductChanged,
    CategoryMoved,
    CategoryChanged,
    SearchReindex,
}

impl Topic {
    pub const ALL: [Topic; 19] = [
        Topic::UserRegistered,
        Topic::UserDeleted,
        Topic::AccessChanged,
        Topic::UserVerificationReminder,
        Topic::PasswordResetRequested,
        Topic::EmailChangeRequested,
        Topic::OrderPlaced,
        Topic::OrderPaid,
        Topic::OrderShipped,
        Topic::OrderDelivered,
        Topic::OrderCancelled,
        Topic::OrderExpired,
        Topic::ReturnUpdated,
        Topic::StockLow,
        Topic::StockAvailability,
        Topic::ProductChanged,
        Topic::CategoryMoved,
        Topic::CategoryChanged,
        Topic::SearchReindex,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::UserRegistered => "user.registered",
            Topic::UserDeleted => "user.deleted",
            // An account's sessions or role changed (logout, revocation, password change
            // or reset, disabled, promoted): every node forgets what it cached of them.
            Topic::AccessChanged => "user.access_changed",
            Topic::UserVerificationReminder => "user.verification_reminder",
            Topic::PasswordResetRequested => "password.reset_requested",
            // A user asked to move their account to a new address: the new one confirms,
            // the old one is told.
            Topic::EmailChangeRequested => "user.email_change_requested",
            Topic::OrderPlaced => "order.placed",
            Topic::OrderPaid => "order.paid",
            Topic::OrderShipped => "order.shipped",
            Topic::OrderDelivered => "order.delivered",
            // A return of the order was requested, approved, rejected, received or
            // refunded.
            Topic::ReturnUpdated => "order.return_updated",
            Topic::OrderCancelled => "order.cancelled",
            Topic::OrderExpired => "order.expired",
            Topic::StockLow => "stock.low",
            // A SKU's availability crossed zero (either way).
            Topic::StockAvailability => "stock.availability",
            // Products were created or changed: `{"ids": [...]}`.
            Topic::ProductChanged => "product.changed",
            // A category moved in the tree: its products' paths changed.
            Topic::CategoryMoved => "category.moved",
            // A category was created, renamed or deleted: caches of the tree forget it.
            Topic::CategoryChanged => "category.changed",
            // `souk search reindex`: every node rebuilds its search index.
            Topic::SearchReindex => "search.reindex",
        }
    }

    /// The topic of a stored or received event; `None` for one this code does not know
    /// (a newer node's, say): consumers skip those.
    pub fn parse(raw: &str) -> Option<Topic> {
        Self::ALL.into_iter().find(|topic| topic.as_str() == raw)
    }

    /// The event an order's move into `status` announces (`order.placed` for a new
    /// order in `pending_payment`).
    pub fn of_order_status(status: OrderStatus) -> Topic {
        match status {
            OrderStatus::PendingPayment => Topic::OrderPlaced,
            OrderStatus::Paid => Topic::OrderPaid,
            OrderStatus::Shipped => Topic::OrderShipped,
            OrderStatus::Delivered => Topic::OrderDelivered,
            OrderStatus::Cancelled => Topic::OrderCancelled,
            OrderStatus::Expired => Topic::OrderExpired,
        }
    }

    /// The outbox row of an event of this topic, written in the same transaction as
    /// the change it announces.
    pub fn event(
        self,
        aggregate_id: &str,
        payload: &impl serde::Serialize,
    ) -> Result<OutboxEvent, Error> {
        OutboxEvent::new(self.as_str(), aggregate_id, payload).map_err(Error::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_and_are_unique() {
        for topic in Topic::ALL {
            assert_eq!(Topic::parse(topic.as_str()), Some(topic));
        }
        let mut names: Vec<&str> = Topic::ALL.iter().map(|topic| topic.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Topic::ALL.len());
        assert_eq!(Topic::parse("order.refunded"), None);
    }

    #[test]
    fn every_order_status_has_its_topic() {
        for status in OrderStatus::ALL {
            assert_eq!(
                Topic::of_order_status(status).as_str(),
                format!(
                    "order.{}",
                    if status == OrderStatus::PendingPayment {
                        "placed"
                    } else {
                        status.as_str()
                    }
                )
            );
        }
    }
}
