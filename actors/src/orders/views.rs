//! What the order domain shows and takes: the order, its lines, history, refunds and
//! returns as the API renders them (with the address snapshots, shipping method and
//! totals it keeps), checkout input and its
//! validation, and who acts on an order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use souk_db::clock::to_datetime;
use souk_db::orders::{HistoryRecord, LineRecord, OrderFilter, OrderRecord};
use souk_db::payment_events::RefundRecord;
use souk_db::returns::{ReturnLineRecord, ReturnRecord};
use utoipa::ToSchema;

use super::returns::ReturnStatus;
use super::state::{derived_statuses, Fulfilment, Initiator, OrderStatus, Payment};
use crate::catalog::model::parse_sku;
use crate::catalog::service::Money;
use crate::error::{Error, ErrorCode, FieldError};
use crate::identity::PostalAddress;

pub const MAX_LINES: usize = 50;
pub const MAX_QUANTITY: i64 = 100;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderItemInput {
    /// A SKU: letters, digits, `-`, `_`, `.`; 2 to 64 characters.
    #[schema(min_length = 2, max_length = 64)]
    pub sku: String,
    /// Whole units, 1 to 100 (also in total per SKU).
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: i64,
}

/// Only `sku` and `quantity` count; prices come from the catalog, whatever is sent.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CreateOrderInput {
    /// 1 to 50 lines.
    #[schema(min_items = 1, max_items = 50)]
    pub items: Vec<OrderItemInput>,
    /// The id of one of the caller's saved addresses (`/api/v1/users/me/addresses`);
    /// the order keeps a copy of it as it is now.
    #[serde(default)]
    pub shipping_address_id: Option<String>,
    /// As `shipping_address_id`; when absent, the shipping address bills too.
    #[serde(default)]
    pub billing_address_id: Option<String>,
    /// The code of an active shipping method (`/api/v1/shipping-methods`) serving the
    /// shipping address's country; needs `shipping_address_id`. Absent: no shipping
    /// is charged.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub shipping_method: Option<String>,
}

/// The shipping method an order was placed with, as it was then.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderShippingMethod {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderLineView {
    pub sku: String,
    pub product_id: String,
    pub name: String,
    pub unit_price: Money,
    pub quantity: i64,
    pub line_total: Money,
}

/// A return of some of a delivered order's units.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReturnView {
    pub id: String,
    pub order_id: String,
    #[schema(value_type = ReturnStatus)]
    pub status: String,
    /// The shopper's reason.
    pub reason: String,
    /// Why an admin rejected it; empty otherwise.
    pub decision: String,
    pub items: Vec<ReturnLineView>,
    /// What was refunded for it, once refunded.
    pub refund: Option<Money>,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReturnLineView {
    pub sku: String,
    pub quantity: i64,
    /// What the order paid for one unit.
    pub unit_price: Money,
}

/// Money given back on the order, as the payment provider reported it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RefundView {
    /// The provider's id of the refund.
    pub id: String,
    pub amount: Money,
    pub reason: String,
    /// RFC 3339, UTC.
    pub at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HistoryView {
    pub from: Option<String>,
    pub to: String,
    /// `user:<id>`, `admin:<id>` or `system`.
    pub actor: String,
    pub reason: String,
    /// RFC 3339, UTC.
    pub at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderView {
    pub id: String,
    pub user_id: String,
    #[schema(value_type = OrderStatus)]
    pub status: String,
    #[schema(value_type = Payment)]
    pub payment_status: String,
    #[schema(value_type = Fulfilment)]
    pub fulfilment_status: String,
    pub items: Vec<OrderLineView>,
    /// The sum of the lines.
    pub subtotal: Money,
    /// What shipping cost (0 without a method, or above its free threshold).
    pub shipping: Money,
    /// The tax of the shipping country on subtotal + shipping (0 when it has no rate
    /// or the order no shipping address): part of the total when
    /// `prices_include_tax`, added to it otherwise.
    pub tax: Money,
    /// The rate applied, in basis points (1900 is 19 %).
    pub tax_rate_bps: i64,
    /// Whether catalog prices and shipping rates included tax when it was placed.
    pub prices_include_tax: bool,
    /// What is paid: subtotal + shipping, plus tax unless prices included it.
    pub total: Money,
    /// The shipping method chosen at checkout; `null` when none was.
    pub shipping_method: Option<OrderShippingMethod>,
    /// When an unpaid order expires (RFC 3339, UTC).
    pub expires_at: String,
    pub created_at: String,
    pub updated_at: String,
    pub history: Vec<HistoryView>,
    /// Refunds, oldest first; their sum never exceeds the total.
    pub refunds: Vec<RefundView>,
    /// Returns asked for after delivery, oldest first.
    pub returns: Vec<ReturnView>,
    /// The shipping address as it was at checkout; `null` when none was given.
    #[serde(default)]
    pub shipping_address: Option<PostalAddress>,
    /// The billing address as it was at checkout; `null` when none was given.
    #[serde(default)]
    pub billing_address: Option<PostalAddress>,
}

fn payment_name(payment: Payment) -> &'static str {
    match payment {
        Payment::Pending => "pending",
        Payment::Captured => "captured",
        Payment::RefundPending => "refund_pending",
        Payment::Refunded => "refunded",
        Payment::Voided => "voided",
    }
}

fn fulfilment_name(fulfilment: Fulfilment) -> &'static str {
    match fulfilment {
        Fulfilment::Unfulfilled => "unfulfilled",
        Fulfilment::Shipped => "shipped",
        Fulfilment::Delivered => "delivered",
        Fulfilment::Returned => "returned",
    }
}

/// An order's status as stored. An unknown value is an error, never a default: a
/// default would let a corrupt row accept payment or cancellation.
pub fn status_of(order: &OrderRecord) -> Result<OrderStatus, Error> {
    OrderStatus::parse(&order.status).ok_or_else(|| {
        Error::internal(format!(
            "order {} has an unknown status {:?}",
            order.id, order.status
        ))
    })
}

/// Who acts, for the state machine and the history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Caller {
    Shopper(String),
    Admin(String),
    System,
}

impl Caller {
    pub(crate) fn initiator(&self) -> Initiator {
        match self {
            Caller::Shopper(_) => Initiator::Shopper,
            Caller::Admin(_) => Initiator::Admin,
            Caller::System => Initiator::System,
        }
    }

    pub(crate) fn label(&self) -> String {
        match self {
            Caller::Shopper(id) => format!("user:{id}"),
            Caller::Admin(id) => format!("admin:{id}"),
            Caller::System => "system".to_owned(),
        }
    }
}

/// Items merged by SKU (quantities added) and sorted by it, with where each SKU first
/// appeared in the request, which a refusal of it names.
pub(crate) struct MergedItems {
    pub items: Vec<(String, i64)>,
    first_index: Vec<usize>,
}

impl MergedItems {
    /// The request's field `name` of the `at`-th merged item.
    pub fn field(&self, at: usize, name: &str) -> String {
        format!("items[{}].{name}", self.first_index[at])
    }
}

/// Items merged by SKU (quantities added), sorted, each validated.
pub(crate) fn validate_items(items: &[OrderItemInput]) -> Result<MergedItems, Error> {
    if items.is_empty() || items.len() > MAX_LINES {
        return Err(Error::validation(vec![FieldError::new(
            "items",
            format!("must hold 1 to {MAX_LINES} items"),
        )]));
    }
    let mut merged: BTreeMap<String, (i64, usize)> = BTreeMap::new();
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match parse_sku(&item.sku) {
            Ok(sku) => {
                merged.entry(sku).or_insert((0, index)).0 +=
                    item.quantity.clamp(-1, MAX_QUANTITY + 1)
            }
            Err(message) => errors.push(FieldError::new(format!("items[{index}].sku"), message)),
        }
        if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            errors.push(FieldError::new(
                format!("items[{index}].quantity"),
                format!("must be 1 to {MAX_QUANTITY}"),
            ));
        }
    }
    for (sku, (quantity, _)) in &merged {
        if *quantity > MAX_QUANTITY && errors.is_empty() {
            errors.push(FieldError::new(
                "items",
                format!("{sku}: at most {MAX_QUANTITY} in total"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(Error::validation(errors));
    }
    let (items, first_index) = merged
        .into_iter()
        .map(|(sku, (quantity, index))| ((sku, quantity), index))
        .unzip();
    Ok(MergedItems { items, first_index })
}

/// A return as the API shows it, from its row and lines.
pub(crate) fn return_view(record: ReturnRecord, lines: Vec<ReturnLineRecord>) -> ReturnView {
    let money = |amount: i64| Money {
        amount,
        currency: record.currency.clone(),
    };
    ReturnView {
        items: lines
            .into_iter()
            .map(|line| ReturnLineView {
                unit_price: money(line.unit_amount),
                sku: line.sku,
                quantity: line.quantity,
            })
            .collect(),
        refund: record.refund_amount.map(money),
        created_at: to_datetime(record.created_at).to_rfc3339(),
        updated_at: to_datetime(record.updated_at).to_rfc3339(),
        id: record.id,
        order_id: record.order_id,
        status: record.status,
        reason: record.reason,
        decision: record.decision,
    }
}

/// What an order's view is built from besides its row.
#[derive(Debug, Default)]
pub(crate) struct OrderParts {
    pub lines: Vec<LineRecord>,
    pub history: Vec<HistoryRecord>,
    pub refunds: Vec<RefundRecord>,
    pub returns: Vec<(ReturnRecord, Vec<ReturnLineRecord>)>,
}

/// An order as the API shows it, from its row and parts.
pub(crate) fn build_view(order: OrderRecord, parts: OrderParts) -> Result<OrderView, Error> {
    let OrderParts {
        lines,
        history,
        refunds,
        returns,
    } = parts;
    let status = status_of(&order)?;
    let (mut payment, fulfilment) = derived_statuses(status, order.was_paid == 1);
    // A cancelled paid order is settled only once its refund is made.
    if payment == Payment::Refunded && order.stock_settled == 0 {
        payment = Payment::RefundPending;
    }
    let shipping_address = stored_address(&order, "shipping", order.shipping_address.as_deref())?;
    let billing_address = stored_address(&order, "billing", order.billing_address.as_deref())?;
    let money = |amount: i64| Money {
        amount,
        currency: order.currency.clone(),
    };
    Ok(OrderView {
        items: lines
            .into_iter()
            .map(|line| OrderLineView {
                unit_price: money(line.unit_amount),
                line_total: money(line.unit_amount * line.quantity),
                sku: line.sku,
                product_id: line.product_id,
                name: line.name,
                quantity: line.quantity,
            })
            .collect(),
        subtotal: money(order.subtotal_amount),
        shipping: money(order.shipping_amount),
        tax: money(order.tax_amount),
        tax_rate_bps: order.tax_rate_bps,
        prices_include_tax: order.prices_include_tax == 1,
        total: money(order.total_amount),
        shipping_method: order
            .shipping_method
            .clone()
            .map(|code| OrderShippingMethod {
                code,
                name: order.shipping_method_name.clone().unwrap_or_default(),
            }),
        payment_status: payment_name(payment).to_owned(),
        fulfilment_status: fulfilment_name(fulfilment).to_owned(),
        expires_at: to_datetime(order.expires_at).to_rfc3339(),
        created_at: to_datetime(order.created_at).to_rfc3339(),
        updated_at: to_datetime(order.updated_at).to_rfc3339(),
        history: history
            .into_iter()
            .map(|entry| HistoryView {
                from: entry.from_status,
                to: entry.to_status,
                actor: entry.actor,
                reason: entry.reason,
                at: to_datetime(entry.created_at).to_rfc3339(),
            })
            .collect(),
        returns: returns
            .into_iter()
            .map(|(record, lines)| return_view(record, lines))
            .collect(),
        refunds: refunds
            .into_iter()
            .map(|refund| RefundView {
                amount: Money {
                    amount: refund.amount,
                    currency: refund.currency,
                },
                id: refund.id,
                reason: refund.reason,
                at: to_datetime(refund.created_at).to_rfc3339(),
            })
            .collect(),
        shipping_address,
        billing_address,
        id: order.id,
        user_id: order.user_id,
        status: order.status,
    })
}

/// An address snapshot as stored with the order (JSON); one that does not parse is an
/// error, never dropped.
fn stored_address(
    order: &OrderRecord,
    which: &str,
    json: Option<&str>,
) -> Result<Option<PostalAddress>, Error> {
    json.map(|json| {
        serde_json::from_str(json).map_err(|error| {
            Error::internal(format!(
                "order {} has an unreadable {which} address: {error}",
                order.id
            ))
        })
    })
    .transpose()
}

/// An admin's query of every order, as REST's query string or gRPC's request gives it
/// (absent: any).
#[derive(Debug, Default)]
pub struct AdminOrderQuery<'a> {
    pub status: Option<&'a str>,
    pub user_id: Option<&'a str>,
    /// Created at or after (RFC 3339).
    pub from: Option<&'a str>,
    /// Created before (RFC 3339).
    pub to: Option<&'a str>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<&'a str>,
    pub limit: Option<u32>,
}

impl AdminOrderQuery<'_> {
    /// The filter it asks for. An unknown status, a time that is not RFC 3339, a cursor
    /// Souk did not issue or a limit out of range is refused, naming it.
    pub fn filter(&self) -> Result<OrderFilter, Error> {
        let status = match self.status {
            Some(raw) => Some(
                OrderStatus::parse(raw)
                    .ok_or_else(|| {
                        Error::new(ErrorCode::InvalidQuery, format!("unknown status {raw:?}"))
                    })?
                    .as_str()
                    .to_owned(),
            ),
            None => None,
        };
        Ok(OrderFilter {
            user_id: self.user_id.map(str::to_owned),
            status,
            created_from: query_time("from", self.from)?,
            created_to: query_time("to", self.to)?,
            before: decode_order_cursor(self.cursor)?,
            limit: crate::paging::checked_limit(self.limit)?,
        })
    }
}

/// An RFC 3339 time of a query, in Unix microseconds.
fn query_time(field: &str, raw: Option<&str>) -> Result<Option<i64>, Error> {
    raw.map(|raw| {
        chrono::DateTime::parse_from_rfc3339(raw)
            .map(|time| time.timestamp_micros())
            .map_err(|_| {
                Error::new(
                    ErrorCode::InvalidQuery,
                    format!("{field} must be an RFC 3339 time"),
                )
            })
    })
    .transpose()
}

/// The cursor of an order list (newest first): the last order's creation time and id.
pub fn encode_order_cursor(position: Option<(i64, String)>) -> Option<String> {
    position.map(|position| crate::paging::encode_position("o1", &position))
}

/// The cursor of a return list (oldest first): the last return's creation time and id.
pub fn encode_return_cursor(position: Option<(i64, String)>) -> Option<String> {
    position.map(|position| crate::paging::encode_position("r1", &position))
}

pub fn decode_return_cursor(raw: Option<&str>) -> Result<Option<(i64, String)>, Error> {
    decode_time_and_id("r1", raw)
}

pub fn decode_order_cursor(raw: Option<&str>) -> Result<Option<(i64, String)>, Error> {
    decode_time_and_id("o1", raw)
}

/// A (creation time, id) cursor of the list `tag`; its id must be one Souk issues.
fn decode_time_and_id(tag: &str, raw: Option<&str>) -> Result<Option<(i64, String)>, Error> {
    let position: Option<(i64, String)> = crate::paging::decode_optional(tag, raw)?;
    match position {
        Some((_, id)) if !souk_db::ids::is_well_formed(&id) => Err(Error::new(
            crate::error::ErrorCode::InvalidCursor,
            "the cursor is not one this API issued",
        )),
        other => Ok(other),
    }
}

/// An idempotency key as given in a header (REST) or a field (gRPC).
pub fn checked_idempotency_key(field: &str, raw: &str) -> Result<String, Error> {
    let key = raw.trim();
    let plain = !key.is_empty() && key.len() <= 100 && key.chars().all(|c| c.is_ascii_graphic());
    if !plain {
        return Err(Error::validation(vec![FieldError::new(
            field,
            "must be 1 to 100 visible ASCII characters",
        )]));
    }
    Ok(key.to_owned())
}

pub fn checked_payment_method(raw: &str) -> Result<String, Error> {
    let method = raw.trim();
    if method.is_empty() || method.len() > 100 {
        return Err(Error::validation(vec![FieldError::new(
            "payment_method",
            "must be 1 to 100 characters",
        )]));
    }
    Ok(method.to_owned())
}

/// A cancellation reason, cut to 200 characters; blank means `default`.
pub fn checked_reason(reason: Option<String>, default: &str) -> String {
    reason
        .map(|reason| reason.trim().chars().take(200).collect::<String>())
        .filter(|reason| !reason.is_empty())
        .unwrap_or_else(|| default.to_owned())
}
