//! Returns of delivered orders, run by the order's actor so they are serialized with
//! every other command of the order. A shopper asks to return some units within the
//! return window; an admin approves or rejects; an approved return is received (its
//! units go back to stock through the SKU actors, once per return) and then refunded
//! through the payment provider, fully or in part: at most what the units cost with
//! their tax (shipping is not refunded), never past what is left of the payment. Each
//! step writes an `order.return_updated` event, which mails the shopper.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use souk_db::clock::now_micros;
use souk_db::orders::{self, OrderRecord};
use souk_db::payment_events::{self, RefundRecord};
use souk_db::returns::{self, ReturnLineRecord, ReturnRecord};
use souk_db::DbError;

use super::logic::{visible_to, with_retries, OrderLogic};
use super::payments::RefundKey;
use super::state::OrderStatus;
use super::views::{return_view, status_of, validate_items, OrderItemInput, ReturnView};
use crate::error::{Error, ErrorCode, FieldError};
use crate::inventory::service::api_error;
use crate::inventory::{Command, InventoryRouter};
use crate::outbox::Topic;
use crate::shipping::totals;

/// Where a return stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReturnStatus {
    Requested,
    Approved,
    Rejected,
    Received,
    Refunded,
}

impl ReturnStatus {
    pub const ALL: [ReturnStatus; 5] = [
        ReturnStatus::Requested,
        ReturnStatus::Approved,
        ReturnStatus::Rejected,
        ReturnStatus::Received,
        ReturnStatus::Refunded,
    ];

    pub fn parse(status: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|candidate| candidate.as_str() == status)
    }

    /// A list's filter by status, as both edges take it: none, or one of the statuses
    /// (anything else is an `invalid_query`).
    pub fn filter(raw: Option<&str>) -> Result<Option<Self>, Error> {
        raw.map(|raw| {
            Self::parse(raw).ok_or_else(|| {
                Error::new(
                    ErrorCode::InvalidQuery,
                    format!("unknown status {raw:?}: requested, approved, rejected, received or refunded"),
                )
            })
        })
        .transpose()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReturnStatus::Requested => "requested",
            ReturnStatus::Approved => "approved",
            ReturnStatus::Rejected => "rejected",
            ReturnStatus::Received => "received",
            ReturnStatus::Refunded => "refunded",
        }
    }
}

/// A command for one return of an order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ReturnCommand {
    /// The shopper asks to return `items` (the id is chosen by the caller, so the
    /// answer can name the new return).
    Request {
        return_id: String,
        user_id: String,
        items: Vec<OrderItemInput>,
        reason: String,
    },
    Approve {
        return_id: String,
        admin_id: String,
    },
    Reject {
        return_id: String,
        admin_id: String,
        reason: String,
    },
    Receive {
        return_id: String,
        admin_id: String,
    },
    /// Refunds `amount` minor units, or the returned units' value when `None`.
    Refund {
        return_id: String,
        admin_id: String,
        amount: Option<i64>,
    },
}

fn illegal(record: &ReturnRecord, verb: &str) -> Error {
    Error::new(
        ErrorCode::IllegalTransition,
        format!("the return is {}; it cannot be {verb}", record.status),
    )
}

impl OrderLogic {
    /// Runs `command` on `order`'s returns; returns the order (unchanged: a return does
    /// not change the order's own status).
    #[tracing::instrument(name = "order_return", skip(self, order, command), fields(order_id = %order.id))]
    pub async fn on_return(
        &self,
        order: OrderRecord,
        command: ReturnCommand,
    ) -> Result<OrderRecord, Error> {
        match command {
            ReturnCommand::Request {
                return_id,
                user_id,
                items,
                reason,
            } => {
                let order = visible_to(order, Some(&user_id))?;
                self.request_return(&order, &return_id, &items, &reason)
                    .await?;
                Ok(order)
            }
            ReturnCommand::Approve {
                return_id,
                admin_id,
            } => {
                let record = self.find_return(&order, &return_id).await?;
                if record.status != ReturnStatus::Requested.as_str() {
                    return Err(illegal(&record, "approved"));
                }
                self.change_return(&order, record, ReturnStatus::Approved, &admin_id, None)
                    .await?;
                Ok(order)
            }
            ReturnCommand::Reject {
                return_id,
                admin_id,
                reason,
            } => {
                let mut record = self.find_return(&order, &return_id).await?;
                if record.status != ReturnStatus::Requested.as_str() {
                    return Err(illegal(&record, "rejected"));
                }
                record.decision = reason;
                self.change_return(&order, record, ReturnStatus::Rejected, &admin_id, None)
                    .await?;
                Ok(order)
            }
            ReturnCommand::Receive {
                return_id,
                admin_id,
            } => {
                let record = self.find_return(&order, &return_id).await?;
                if record.status != ReturnStatus::Approved.as_str() {
                    return Err(illegal(&record, "received"));
                }
                self.restock(&order, &record, &admin_id).await?;
                self.change_return(&order, record, ReturnStatus::Received, &admin_id, None)
                    .await?;
                Ok(order)
            }
            ReturnCommand::Refund {
                return_id,
                admin_id,
                amount,
            } => {
                let record = self.find_return(&order, &return_id).await?;
                if record.status != ReturnStatus::Received.as_str() {
                    return Err(illegal(&record, "refunded"));
                }
                self.refund_return(&order, record, &admin_id, amount)
                    .await?;
                Ok(order)
            }
        }
    }

    /// Returns in `status` (all when `None`), oldest first: an admin's work queue. The
    /// next page starts after the position returned.
    pub async fn list_returns(
        &self,
        status: Option<ReturnStatus>,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<(Vec<ReturnView>, Option<(i64, String)>), Error> {
        let pool = self.db.pool();
        let mut records =
            returns::list(pool, status.map(ReturnStatus::as_str), after, limit).await?;
        let has_more = records.len() > limit as usize;
        records.truncate(limit as usize);
        let next = records
            .last()
            .filter(|_| has_more)
            .map(|record| (record.created_at, record.id.clone()));
        let ids: Vec<String> = records.iter().map(|record| record.id.clone()).collect();
        let mut lines: HashMap<String, Vec<ReturnLineRecord>> = HashMap::new();
        for line in returns::lines_of(pool, &ids).await? {
            lines.entry(line.return_id.clone()).or_default().push(line);
        }
        let views = records
            .into_iter()
            .map(|record| {
                let record_lines = lines.remove(&record.id).unwrap_or_default();
                return_view(record, record_lines)
            })
            .collect();
        Ok((views, next))
    }

    async fn find_return(
        &self,
        order: &OrderRecord,
        return_id: &str,
    ) -> Result<ReturnRecord, Error> {
        returns::returns_of(self.db.pool(), std::slice::from_ref(&order.id))
            .await?
            .into_iter()
            .find(|record| record.id == return_id)
            .ok_or_else(|| Error::not_found("return"))
    }

    async fn request_return(
        &self,
        order: &OrderRecord,
        return_id: &str,
        items: &[OrderItemInput],
        reason: &str,
    ) -> Result<(), Error> {
        if status_of(order)? != OrderStatus::Delivered {
            return Err(Error::new(
                ErrorCode::IllegalTransition,
                format!(
                    "the order is {}; only a delivered order can be returned",
                    order.status
                ),
            ));
        }
        // Delivery is the order's last transition, so its time is the delivery's.
        let window_micros = i64::try_from(self.return_window.as_micros()).unwrap_or(i64::MAX);
        if now_micros() > order.updated_at.saturating_add(window_micros) {
            return Err(Error::new(
                ErrorCode::ReturnWindowClosed,
                format!(
                    "returns are accepted for {} after delivery",
                    humanized(self.return_window)
                ),
            ));
        }
        let items = validate_items(items)?;
        let lines = orders::lines(self.db.pool(), &order.id).await?;
        let returnable = self.returnable_units(order, &lines).await?;
        let mut errors = Vec::new();
        let mut return_lines = Vec::new();
        for (index, (sku, quantity)) in items.items.iter().enumerate() {
            let Some(line) = lines.iter().find(|line| &line.sku == sku) else {
                errors.push(FieldError::new(
                    items.field(index, "sku"),
                    format!("{sku} is not in this order"),
                ));
                continue;
            };
            let left = returnable.get(sku).copied().unwrap_or(0);
            if *quantity > left {
                errors.push(FieldError::new(
                    items.field(index, "quantity"),
                    format!("at most {left} of {sku} can still be returned"),
                ));
                continue;
            }
            return_lines.push(ReturnLineRecord {
                return_id: return_id.to_owned(),
                sku: sku.clone(),
                quantity: *quantity,
                unit_amount: line.unit_amount,
            });
        }
        if !errors.is_empty() {
            return Err(Error::validation(errors));
        }
        let now = now_micros();
        let record = ReturnRecord {
            id: return_id.to_owned(),
            order_id: order.id.clone(),
            status: ReturnStatus::Requested.as_str().to_owned(),
            reason: reason.to_owned(),
            decision: String::new(),
            currency: order.currency.clone(),
            refund_amount: None,
            created_at: now,
            updated_at: now,
        };
        let event = self.return_event(order, &record, &format!("user:{}", order.user_id))?;
        let mut connection = self.db.pool().acquire().await.map_err(DbError::from)?;
        returns::insert(&mut connection, &record, &return_lines, &event).await?;
        Ok(())
    }

    /// Units of each SKU not yet in a return that was not rejected.
    async fn returnable_units(
        &self,
        order: &OrderRecord,
        lines: &[orders::LineRecord],
    ) -> Result<HashMap<String, i64>, Error> {
        let mut left: HashMap<String, i64> = lines
            .iter()
            .map(|line| (line.sku.clone(), line.quantity))
            .collect();
        let open: Vec<String> =
            returns::returns_of(self.db.pool(), std::slice::from_ref(&order.id))
                .await?
                .into_iter()
                .filter(|record| record.status != ReturnStatus::Rejected.as_str())
                .map(|record| record.id)
                .collect();
        for line in returns::lines_of(self.db.pool(), &open).await? {
            *left.entry(line.sku).or_default() -= line.quantity;
        }
        Ok(left)
    }

    /// Brings the return's units back to stock, once per return (a retry after a
    /// crash finds them returned). The order's sale, if still owed, is recorded first:
    /// stock takes back only units it sold.
    async fn restock(
        &self,
        order: &OrderRecord,
        record: &ReturnRecord,
        admin_id: &str,
    ) -> Result<(), Error> {
        if order.stock_settled == 0 {
            self.settle(order).await?;
        }
        let lines = returns::lines_of(self.db.pool(), std::slice::from_ref(&record.id)).await?;
        for line in lines {
            let command = Command::Return {
                order_id: record.id.clone(),
                sale_order_id: order.id.clone(),
                quantity: line.quantity,
                actor: format!("admin:{admin_id}"),
                reason: format!("returned: return {} of order {}", record.id, order.id),
            };
            with_retries(|| {
                self.inventory
                    .router()
                    .execute(line.sku.clone(), command.clone())
            })
            .await
            .map_err(api_error)?;
        }
        Ok(())
    }

    async fn refund_return(
        &self,
        order: &OrderRecord,
        mut record: ReturnRecord,
        admin_id: &str,
        amount: Option<i64>,
    ) -> Result<(), Error> {
        // What the shopper paid for these units: with prices excluding tax, their tax
        // share too (shipping is not refunded). The tax is rounded over every unit
        // refunded so far, so returns of one unit at a time give back what one return of
        // them all would, not a rounding up each.
        let value_of =
            |price: i64| totals(price, 0, order.tax_rate_bps, order.prices_include_tax == 1).total;
        let earlier: Vec<String> =
            returns::returns_of(self.db.pool(), std::slice::from_ref(&order.id))
                .await?
                .into_iter()
                .filter(|earlier| {
                    earlier.id != record.id && earlier.status == ReturnStatus::Refunded.as_str()
                })
                .map(|earlier| earlier.id)
                .collect();
        let price_of = |lines: &[ReturnLineRecord]| -> i64 {
            lines
                .iter()
                .map(|line| line.unit_amount * line.quantity)
                .sum()
        };
        let price_before = price_of(&returns::lines_of(self.db.pool(), &earlier).await?);
        let lines = returns::lines_of(self.db.pool(), std::slice::from_ref(&record.id)).await?;
        let value = value_of(price_before + price_of(&lines)) - value_of(price_before);
        let recorded =
            payment_events::refunds_of(self.db.pool(), std::slice::from_ref(&order.id)).await?;
        let reason = format!("return {}", record.id);
        if let Some(earlier) = recorded.iter().find(|refund| refund.reason == reason) {
            // An earlier attempt refunded it but did not move the return on: finish that.
            let amount = earlier.amount;
            record.refund_amount = Some(amount);
            return self
                .change_return(
                    order,
                    record,
                    ReturnStatus::Refunded,
                    admin_id,
                    Some(amount),
                )
                .await;
        }
        let refunded: i64 = recorded.iter().map(|refund| refund.amount).sum();
        let most = value.min(order.total_amount - refunded).max(0);
        if most == 0 {
            // Nothing to give back (units that cost nothing, or a payment already
            // refunded whole): the return is done without asking the provider.
            if amount.is_some_and(|amount| amount != 0) {
                return Err(Error::validation(vec![FieldError::new(
                    "amount",
                    "nothing is left to refund for these units; refund without an amount",
                )]));
            }
            record.refund_amount = Some(0);
            return self
                .change_return(order, record, ReturnStatus::Refunded, admin_id, Some(0))
                .await;
        }
        let amount = amount.unwrap_or(most);
        if amount < 1 || amount > most {
            return Err(Error::validation(vec![FieldError::new(
                "amount",
                format!("must be 1 to {most} (what the returned units cost with their tax, within what is left of the payment)"),
            )]));
        }
        let Some(reference) = order.payment_reference.as_deref() else {
            return Err(Error::internal(
                "a delivered order has no payment reference",
            ));
        };
        // One key per return: two admins refunding it at once refund it once.
        let key = RefundKey::order_return(&record.id);
        let refund_id = self
            .payments
            .refund(reference, amount, &order.currency, &key)
            .await?;
        let refund = RefundRecord {
            id: refund_id,
            order_id: order.id.clone(),
            amount,
            currency: order.currency.clone(),
            reason,
            created_at: now_micros(),
        };
        payment_events::insert_refund(self.db.pool(), &refund).await?;
        record.refund_amount = Some(amount);
        self.change_return(
            order,
            record,
            ReturnStatus::Refunded,
            admin_id,
            Some(amount),
        )
        .await
    }

    /// Moves the return on to `to` and writes its event, if nothing moved it meanwhile.
    async fn change_return(
        &self,
        order: &OrderRecord,
        mut record: ReturnRecord,
        to: ReturnStatus,
        admin_id: &str,
        refund_amount: Option<i64>,
    ) -> Result<(), Error> {
        let from = record.status.clone();
        record.status = to.as_str().to_owned();
        record.updated_at = now_micros();
        if refund_amount.is_some() {
            record.refund_amount = refund_amount;
        }
        let event = self.return_event(order, &record, &format!("admin:{admin_id}"))?;
        let mut connection = self.db.pool().acquire().await.map_err(DbError::from)?;
        if !returns::change(&mut connection, &record, &from, &event).await? {
            return Err(Error::new(
                ErrorCode::IllegalTransition,
                "the return changed meanwhile; reload it",
            ));
        }
        Ok(())
    }

    fn return_event(
        &self,
        order: &OrderRecord,
        record: &ReturnRecord,
        actor: &str,
    ) -> Result<souk_db::outbox::OutboxEvent, Error> {
        Topic::ReturnUpdated.event(
            &order.id,
            &serde_json::json!({
                "order_id": order.id,
                "user_id": order.user_id,
                "return_id": record.id,
                "status": record.status,
                "decision": record.decision,
                "refund_amount": record.refund_amount,
                "actor": actor,
            }),
        )
    }
}

/// `30 days`, `12 hours`, `90 seconds`: the window as the shopper reads it.
fn humanized(window: std::time::Duration) -> String {
    let seconds = window.as_secs();
    match seconds {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{} hours", s / 3_600),
        s => format!("{s} seconds"),
    }
}
