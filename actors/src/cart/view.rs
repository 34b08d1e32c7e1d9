//! The cart as the API shows it: each line priced now from the catalog and checked
//! against the stock now, next to what it was when added (price then and now, whether
//! the quantity is still available), and the total of what can be bought.

use serde::Serialize;
use souk_db::clock::to_datetime;
use utoipa::ToSchema;

use super::model::{CartLine, StoredCart};
use crate::catalog::service::{Money, ProductView};

/// Whether a line can be bought as it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    /// The product is sold and the quantity is in stock.
    Available,
    /// Some units are in stock, fewer than the quantity (`available` says how many).
    InsufficientStock,
    /// No unit is in stock.
    OutOfStock,
    /// The product is no longer sold (archived, drafted or deleted).
    Unavailable,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CartLineView {
    pub sku: String,
    /// The product's name now (as when added if it is no longer sold).
    pub name: String,
    pub quantity: i64,
    /// The unit price now; `null` when the product is no longer sold.
    pub unit_price: Option<Money>,
    /// `unit_price` × `quantity`; `null` when the product is no longer sold.
    pub line_total: Option<Money>,
    /// The unit price when the line was added.
    pub price_when_added: Money,
    /// Whether the price now differs from `price_when_added`.
    pub price_changed: bool,
    /// Units that can be ordered now (0 when the product is no longer sold).
    pub available: i64,
    pub status: LineStatus,
    /// RFC 3339, UTC.
    pub added_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CartView {
    /// In the order they were added; at most 50.
    pub items: Vec<CartLineView>,
    /// The sum of the priced lines; `null` when there is none, or when they are priced
    /// in more than one currency (checkout refuses such a cart).
    pub total: Option<Money>,
    /// Units over every line.
    pub item_count: i64,
    /// Bumped by every change; 0 for a cart never written.
    pub version: i64,
    /// RFC 3339, UTC; `null` for a cart never written.
    pub updated_at: Option<String>,
    /// Guest carts: when the cart is forgotten unless changed before (RFC 3339, UTC).
    pub expires_at: Option<String>,
}

/// A line priced with its product now (`None`: no longer sold) and the units available.
pub(super) fn line_view(
    line: &CartLine,
    product: Option<&ProductView>,
    available: i64,
) -> CartLineView {
    let (name, unit_price, status) = match product {
        Some(product) => {
            let status = if available >= line.quantity {
                LineStatus::Available
            } else if available > 0 {
                LineStatus::InsufficientStock
            } else {
                LineStatus::OutOfStock
            };
            (product.name.clone(), Some(product.price.clone()), status)
        }
        None => (line.name.clone(), None, LineStatus::Unavailable),
    };
    CartLineView {
        sku: line.sku.clone(),
        name,
        quantity: line.quantity,
        line_total: unit_price.as_ref().map(|price| Money {
            amount: price.amount.saturating_mul(line.quantity),
            currency: price.currency.clone(),
        }),
        price_changed: unit_price
            .as_ref()
            .is_some_and(|price| *price != line.price_when_added),
        unit_price,
        price_when_added: line.price_when_added.clone(),
        available: if product.is_some() {
            available.max(0)
        } else {
            0
        },
        status,
        added_at: to_datetime(line.added_at).to_rfc3339(),
    }
}

pub(super) fn cart_view(stored: &StoredCart, items: Vec<CartLineView>) -> CartView {
    let mut totals = items.iter().filter_map(|line| line.line_total.as_ref());
    let total = totals.next().cloned().and_then(|first| {
        totals.try_fold(first, |sum, money| {
            (money.currency == sum.currency).then(|| Money {
                amount: sum.amount.saturating_add(money.amount),
                currency: sum.currency,
            })
        })
    });
    let cart = &stored.cart;
    CartView {
        item_count: items.iter().map(|line| line.quantity).sum(),
        items,
        total,
        version: stored.version,
        updated_at: (cart.updated_at > 0).then(|| to_datetime(cart.updated_at).to_rfc3339()),
        expires_at: cart.expires_at.map(|at| to_datetime(at).to_rfc3339()),
    }
}
