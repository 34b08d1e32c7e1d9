//! The cart as stored: its lines (each with the name and unit price the product had
//! when the line was added, so the cart can say what changed since) and the pure rules
//! that edit it — set a line (0 removes it), remove one, merge a guest cart in, take
//! out what an order bought — each capped at [`MAX_LINES`] lines and [`MAX_QUANTITY`]
//! units per line, as an order is.

use serde::{Deserialize, Serialize};

use crate::catalog::service::Money;
use crate::error::{Error, ErrorCode};
pub use crate::orders::views::{MAX_LINES, MAX_QUANTITY};

/// How many applied operations (orders taken out, guest carts merged in) a cart
/// remembers, so a retried checkout or merge changes it once.
const APPLIED_KEPT: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    /// Canonical (upper case).
    pub sku: String,
    pub quantity: i64,
    /// The product's name when the line was added (shown if it is no longer sold).
    pub name: String,
    /// The unit price when the line was added.
    pub price_when_added: Money,
    /// Microseconds since the Unix epoch.
    pub added_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    /// In the order they were added.
    pub lines: Vec<CartLine>,
    /// Ids of the operations already applied (`order:<id>`, `merge:<guest>:<version>`),
    /// newest last, at most [`APPLIED_KEPT`].
    #[serde(default)]
    pub applied: Vec<String>,
    /// Microseconds; 0 for a cart never written.
    #[serde(default)]
    pub updated_at: i64,
    /// Guest carts only: when the cart is forgotten (microseconds).
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// A cart and the version it was read at (0: not stored yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredCart {
    pub version: i64,
    pub cart: Cart,
}

pub fn cart_limit() -> Error {
    Error::new(
        ErrorCode::CartLimit,
        format!("a cart holds at most {MAX_LINES} lines; remove one first"),
    )
}

impl Cart {
    pub fn line(&self, sku: &str) -> Option<&CartLine> {
        self.lines.iter().find(|line| line.sku == sku)
    }

    /// Sets the line of `line.sku` to `line.quantity` (0 removes it); an existing line
    /// keeps the price and time it was first added. A new line past [`MAX_LINES`] is
    /// `cart_limit`.
    pub fn set(&mut self, line: CartLine) -> Result<(), Error> {
        if line.quantity <= 0 {
            self.remove(&line.sku);
            return Ok(());
        }
        if let Some(existing) = self.lines.iter_mut().find(|old| old.sku == line.sku) {
            existing.quantity = line.quantity.min(MAX_QUANTITY);
            existing.name = line.name;
            return Ok(());
        }
        if self.lines.len() >= MAX_LINES {
            return Err(cart_limit());
        }
        self.lines.push(CartLine {
            quantity: line.quantity.min(MAX_QUANTITY),
            ..line
        });
        Ok(())
    }

    /// Removes the line of `sku`; `false` when there was none.
    pub fn remove(&mut self, sku: &str) -> bool {
        let before = self.lines.len();
        self.lines.retain(|line| line.sku != sku);
        self.lines.len() != before
    }

    pub fn has_applied(&self, operation: &str) -> bool {
        self.applied.iter().any(|done| done == operation)
    }

    fn record(&mut self, operation: String) {
        self.applied.push(operation);
        let excess = self.applied.len().saturating_sub(APPLIED_KEPT);
        self.applied.drain(..excess);
    }

    /// Adds `guest`'s lines to this cart once per `operation`: quantities of a SKU in
    /// both add up to at most [`MAX_QUANTITY`]; this cart's line keeps its price when
    /// added. Lines past [`MAX_LINES`] are dropped; returns how many were.
    pub fn merge(&mut self, operation: String, guest: &Cart) -> usize {
        if self.has_applied(&operation) {
            return 0;
        }
        let mut dropped = 0;
        for line in &guest.lines {
            if let Some(existing) = self.lines.iter_mut().find(|old| old.sku == line.sku) {
                existing.quantity = (existing.quantity + line.quantity).min(MAX_QUANTITY);
            } else if self.lines.len() < MAX_LINES {
                self.lines.push(line.clone());
            } else {
                dropped += 1;
            }
        }
        self.record(operation);
        dropped
    }

    /// Takes what order `order_id` bought out of the cart, once: each ordered SKU's
    /// line loses the ordered quantity (and goes when none is left). A line raised
    /// while the checkout ran keeps the difference; a line added meanwhile stays.
    pub fn take_ordered(&mut self, order_id: &str, ordered: &[(String, i64)]) {
        let operation = format!("order:{order_id}");
        if self.has_applied(&operation) {
            return;
        }
        for (sku, quantity) in ordered {
            if let Some(line) = self.lines.iter_mut().find(|line| &line.sku == sku) {
                line.quantity -= quantity;
            }
        }
        self.lines.retain(|line| line.quantity > 0);
        self.record(operation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, quantity: i64) -> CartLine {
        CartLine {
            sku: sku.to_owned(),
            quantity,
            name: format!("Item {sku}"),
            price_when_added: Money {
                amount: 100,
                currency: "EUR".to_owned(),
            },
            added_at: 1,
        }
    }

    #[test]
    fn set_adds_changes_and_removes_lines_within_the_caps() {
        let mut cart = Cart::default();
        cart.set(line("A", 2)).unwrap();
        let mut changed = line("A", 500);
        changed.price_when_added.amount = 999;
        cart.set(changed).unwrap();
        assert_eq!(cart.lines.len(), 1);
        assert_eq!(cart.lines[0].quantity, MAX_QUANTITY);
        assert_eq!(
            cart.lines[0].price_when_added.amount, 100,
            "kept from the add"
        );
        cart.set(line("A", 0)).unwrap();
        assert!(cart.lines.is_empty());
        for index in 0..MAX_LINES {
            cart.set(line(&format!("S{index}"), 1)).unwrap();
        }
        let refused = cart.set(line("ONE-MORE", 1)).unwrap_err();
        assert_eq!(refused.code(), ErrorCode::CartLimit);
        cart.set(line("S0", 3)).unwrap();
        assert_eq!(cart.line("S0").unwrap().quantity, 3);
    }

    #[test]
    fn merge_adds_quantities_capped_and_applies_once() {
        let mut user = Cart::default();
        user.set(line("A", 60)).unwrap();
        let mut guest = Cart::default();
        guest.set(line("A", 60)).unwrap();
        guest.set(line("B", 1)).unwrap();
        assert_eq!(user.merge("merge:g:1".into(), &guest), 0);
        assert_eq!(user.merge("merge:g:1".into(), &guest), 0);
        assert_eq!(user.line("A").unwrap().quantity, MAX_QUANTITY);
        assert_eq!(user.line("B").unwrap().quantity, 1);
        let mut full = Cart::default();
        for index in 0..MAX_LINES {
            full.set(line(&format!("S{index}"), 1)).unwrap();
        }
        assert_eq!(full.merge("merge:g:2".into(), &guest), 2);
    }

    #[test]
    fn take_ordered_removes_exactly_what_was_bought_once() {
        let mut cart = Cart::default();
        cart.set(line("A", 5)).unwrap();
        cart.set(line("B", 1)).unwrap();
        cart.set(line("C", 1)).unwrap();
        let ordered = vec![("A".to_owned(), 2), ("B".to_owned(), 1)];
        cart.take_ordered("o1", &ordered);
        cart.take_ordered("o1", &ordered);
        assert_eq!(cart.line("A").unwrap().quantity, 3);
        assert!(cart.line("B").is_none());
        assert_eq!(cart.line("C").unwrap().quantity, 1);
        for index in 0..APPLIED_KEPT + 5 {
            cart.take_ordered(&format!("x{index}"), &[]);
        }
        assert_eq!(cart.applied.len(), APPLIED_KEPT);
    }
}
