//! The payload of `order.placed`: the order as it was placed — its lines, amounts and
//! the deadline of its reservations — so that a consumer (the order confirmation mail)
//! needs no read of the order. Built from the rows the checkout writes, and from the
//! stored rows for an event whose payload predates a field or, too large for the
//! outbox, was written without its lines.

use serde::{Deserialize, Serialize};
use souk_db::orders::{LineRecord, OrderRecord};

use crate::catalog::service::Money;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub order_id: String,
    pub user_id: String,
    pub subtotal: Money,
    pub shipping: Money,
    pub tax: Money,
    /// The tax rate applied, in basis points (2000 = 20 %).
    pub tax_rate_bps: i64,
    pub prices_include_tax: bool,
    /// The shipping method's name as at checkout.
    pub shipping_method: Option<String>,
    pub total: Money,
    pub lines: Vec<PlacedLine>,
    /// Until when the items stay reserved for payment (Unix microseconds).
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedLine {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: Money,
}

impl OrderPlaced {
    pub fn of(order: &OrderRecord, lines: &[LineRecord]) -> Self {
        let money = |amount| Money {
            amount,
            currency: order.currency.clone(),
        };
        Self {
            order_id: order.id.clone(),
            user_id: order.user_id.clone(),
            subtotal: money(order.subtotal_amount),
            shipping: money(order.shipping_amount),
            tax: money(order.tax_amount),
            tax_rate_bps: order.tax_rate_bps,
            prices_include_tax: order.prices_include_tax == 1,
            shipping_method: order.shipping_method_name.clone(),
            total: money(order.total_amount),
            lines: lines
                .iter()
                .map(|line| PlacedLine {
                    sku: line.sku.clone(),
                    name: line.name.clone(),
                    quantity: line.quantity,
                    unit_price: money(line.unit_amount),
                })
                .collect(),
            expires_at: order.expires_at,
        }
    }

    /// What `order.placed` carries: all of it, or, when its lines would pass the
    /// outbox's limit on a payload (fifty lines of long names can), all but the lines.
    /// A reader that needs them then reads the stored order, as for an event of an
    /// earlier version ([`OrderPlaced::from_payload`] is `None` for it).
    pub fn payload(&self) -> serde_json::Value {
        let mut payload = serde_json::to_value(self).unwrap_or_default();
        let fits = payload.to_string().chars().count() <= souk_db::outbox::MAX_PAYLOAD_CHARS;
        if let (false, Some(fields)) = (fits, payload.as_object_mut()) {
            fields.remove("lines");
        }
        payload
    }

    /// The payload of a received event; `None` when it lacks a field this code needs
    /// (an event written by a node of an earlier version, or one without its lines).
    pub fn from_payload(payload: &serde_json::Value) -> Option<Self> {
        Self::deserialize(payload).ok()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn order() -> OrderRecord {
        OrderRecord {
            id: "order-1".into(),
            user_id: "user-1".into(),
            status: "pending_payment".into(),
            was_paid: 0,
            currency: "EUR".into(),
            total_amount: 4_748,
            idempotency_key: None,
            request_hash: "hash".into(),
            payment_reference: None,
            expires_at: 1_800_000_000_000_000,
            stock_settled: 1,
            version: 1,
            created_at: 1,
            updated_at: 1,
            owner_epoch: 0,
            shipping_address: None,
            billing_address: None,
            subtotal_amount: 4_248,
            shipping_amount: 500,
            tax_amount: 791,
            tax_rate_bps: 2_000,
            prices_include_tax: 1,
            shipping_method: Some("standard".into()),
            shipping_method_name: Some("Standard".into()),
        }
    }

    pub(crate) fn line() -> LineRecord {
        LineRecord {
            order_id: "order-1".into(),
            line_no: 1,
            sku: "MAIL-1".into(),
            product_id: "product-1".into(),
            name: "Tea & biscuits".into(),
            unit_amount: 2_124,
            quantity: 2,
        }
    }

    #[test]
    fn a_placed_order_survives_its_payload() {
        let placed = OrderPlaced::of(&order(), &[line()]);
        let payload = serde_json::to_value(&placed).unwrap();
        assert_eq!(payload["total"]["amount"], 4_748);
        assert_eq!(payload["lines"][0]["unit_price"]["currency"], "EUR");
        assert_eq!(OrderPlaced::from_payload(&payload), Some(placed));
    }

    #[test]
    fn a_payload_without_the_reservations_deadline_is_not_taken_for_one() {
        let mut payload = serde_json::to_value(OrderPlaced::of(&order(), &[line()])).unwrap();
        payload.as_object_mut().unwrap().remove("expires_at");
        assert_eq!(OrderPlaced::from_payload(&payload), None);
    }

    #[test]
    fn an_order_too_large_for_the_outbox_is_placed_without_its_lines() {
        let order = order();
        let small = OrderPlaced::of(&order, &[line()]);
        assert_eq!(OrderPlaced::from_payload(&small.payload()), Some(small));
        let long_lines: Vec<LineRecord> = (1..=50)
            .map(|line_no| LineRecord {
                line_no,
                name: "\"".repeat(200),
                ..line()
            })
            .collect();
        let large = OrderPlaced::of(&order, &long_lines).payload();
        assert!(large.to_string().chars().count() <= souk_db::outbox::MAX_PAYLOAD_CHARS);
        assert!(large.get("lines").is_none());
        assert_eq!(large["total"]["amount"], 4_748);
        assert_eq!(
            OrderPlaced::from_payload(&large),
            None,
            "read from the stored order"
        );
    }
}
