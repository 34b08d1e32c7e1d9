//! What a payment provider's event does to its order, run by the order's actor:
//! a capture pays an unpaid order (or gives the money back when the order can no
//! longer be paid, or the amount is not the order's), a failure is recorded and
//! leaves the order payable, a refund is recorded on the order as long as the
//! refunds stay within what was captured. The outcome is written on the event's row.
//! A refund of a capture no order could keep that the provider refused is owed, and
//! asked for again by the sweeper.

use souk_db::clock::now_micros;
use souk_db::orders::OrderRecord;
use souk_db::payment_events::{self, RefundRecord, UnkeptCaptureRecord};

use super::logic::OrderLogic;
use super::payments::{PaymentError, RefundKey};
use super::state::{Event, OrderStatus};
use super::views::{status_of, Caller};
use super::webhooks::{CheckedKind, CheckedPaymentEvent, PaymentOutcome};
use crate::error::{Error, ErrorCode};

/// How long an owed refund of a capture waits between asks.
const UNKEPT_RETRY_MICROS: i64 = 30_000_000;

impl OrderLogic {
    /// Applies `event` to `order` and records the outcome; returns the order after it.
    #[tracing::instrument(name = "order_payment_event", skip(self, order, event), fields(order_id = %order.id, event_id = %event.id))]
    pub async fn on_payment_event(
        &self,
        order: OrderRecord,
        event: &CheckedPaymentEvent,
    ) -> Result<OrderRecord, Error> {
        let (order, outcome) = match &event.kind {
            CheckedKind::Captured { amount, currency } => {
                self.on_captured(order, event, *amount, currency).await?
            }
            CheckedKind::Failed => (order, PaymentOutcome::FailureRecorded),
            CheckedKind::Refunded {
                amount,
                currency,
                refund_id,
            } => {
                let outcome = self
                    .on_refunded(&order, event, *amount, currency, refund_id)
                    .await?;
                (order, outcome)
            }
        };
        tracing::info!(outcome = outcome.as_str(), "payment event applied");
        payment_events::finish(self.db.pool(), &event.id, outcome.as_str(), now_micros()).await?;
        Ok(order)
    }

    async fn on_captured(
        &self,
        mut order: OrderRecord,
        event: &CheckedPaymentEvent,
        amount: i64,
        currency: &str,
    ) -> Result<(OrderRecord, PaymentOutcome), Error> {
        let status = status_of(&order)?;
        let paid_by_this = order.payment_reference.as_deref() == Some(&event.payment_reference);
        if status != OrderStatus::PendingPayment {
            if order.was_paid == 1 && paid_by_this {
                return Ok((order, PaymentOutcome::AlreadyPaid));
            }
            self.give_back(&event.payment_reference, amount, currency)
                .await?;
            return Ok((order, PaymentOutcome::RefundedNotPayable));
        }
        if order.expires_at <= now_micros() {
            let order = self.expire(order).await?;
            self.give_back(&event.payment_reference, amount, currency)
                .await?;
            return Ok((order, PaymentOutcome::RefundedNotPayable));
        }
        if amount != order.total_amount || currency != order.currency {
            self.give_back(&event.payment_reference, amount, currency)
                .await?;
            return Ok((order, PaymentOutcome::RefundedAmountMismatch));
        }
        order.payment_reference = Some(event.payment_reference.clone());
        // The shopper paid; the provider's event is how Souk learns it.
        let caller = Caller::Shopper(order.user_id.clone());
        let reason = format!("payment captured (provider event {})", event.id);
        let order = self.apply(order, Event::Pay, &caller, &reason).await?;
        Ok((order, PaymentOutcome::OrderPaid))
    }

    /// Refunds a capture the order cannot keep (its event came too late or with the
    /// wrong amount, or another payment won); a provider that cannot refund now leaves
    /// a webhook event unprocessed, for its retry.
    pub(super) async fn give_back(
        &self,
        payment_reference: &str,
        amount: i64,
        currency: &str,
    ) -> Result<(), Error> {
        let key = RefundKey::unkept_capture(payment_reference);
        self.payments
            .refund(payment_reference, amount, currency, &key)
            .await
            .map(|_refund_id| ())
            .map_err(|error| match error {
                PaymentError::Declined(why) | PaymentError::Unavailable(why) => Error::new(
                    ErrorCode::ServiceUnavailable,
                    format!("cannot refund a capture the order cannot keep: {why}"),
                ),
            })
    }

    /// Records that a capture `order` could not keep is owed its refund, for
    /// `refund_unkept_captures`; if even that fails, an operator must refund it.
    pub(super) async fn owe_refund_of_capture(&self, order: &OrderRecord, payment_reference: &str) {
        let now = now_micros();
        let owed = UnkeptCaptureRecord {
            payment_reference: payment_reference.to_owned(),
            order_id: order.id.clone(),
            amount: order.total_amount,
            currency: order.currency.clone(),
            created_at: now,
            attempted_at: now,
        };
        if let Err(error) = payment_events::owe_unkept_capture(self.db.pool(), &owed).await {
            tracing::error!(order_id = %order.id, %payment_reference, %error, "a refund owed on a capture was not recorded; refund it at the provider");
        }
    }

    /// Asks again for the refunds owed on captures no order could keep, each at most
    /// every thirty seconds, of the orders `runs_here` names; answers how many were made.
    pub async fn refund_unkept_captures(
        &self,
        runs_here: impl Fn(&str) -> bool,
    ) -> Result<usize, Error> {
        let now = now_micros();
        let due =
            payment_events::unkept_captures_due(self.db.pool(), now - UNKEPT_RETRY_MICROS, 100)
                .await?;
        let mut refunded = 0;
        for owed in due.into_iter().filter(|owed| runs_here(&owed.order_id)) {
            let reference = &owed.payment_reference;
            match self.give_back(reference, owed.amount, &owed.currency).await {
                Ok(()) => {
                    payment_events::unkept_capture_refunded(self.db.pool(), reference).await?;
                    refunded += 1;
                }
                Err(error) => {
                    metrics::counter!("souk_payment_refund_failures_total").increment(1);
                    tracing::warn!(order_id = %owed.order_id, payment_reference = %reference, %error, "an owed refund of a capture failed again");
                    payment_events::unkept_capture_attempted(self.db.pool(), reference, now)
                        .await?;
                }
            }
        }
        Ok(refunded)
    }

    async fn on_refunded(
        &self,
        order: &OrderRecord,
        event: &CheckedPaymentEvent,
        amount: i64,
        currency: &str,
        refund_id: &str,
    ) -> Result<PaymentOutcome, Error> {
        let paid_by_this = order.payment_reference.as_deref() == Some(&event.payment_reference);
        if order.was_paid != 1 || !paid_by_this || currency != order.currency {
            return Ok(PaymentOutcome::IgnoredUnknownPayment);
        }
        let recorded =
            payment_events::refunds_of(self.db.pool(), std::slice::from_ref(&order.id)).await?;
        if recorded.iter().any(|refund| refund.id == refund_id) {
            return Ok(PaymentOutcome::RefundAlreadyRecorded);
        }
        let refunded: i64 = recorded.iter().map(|refund| refund.amount).sum();
        if refunded.saturating_add(amount) > order.total_amount {
            return Ok(PaymentOutcome::IgnoredRefundExceedsCaptured);
        }
        let refund = RefundRecord {
            id: refund_id.to_owned(),
            order_id: order.id.clone(),
            amount,
            currency: currency.to_owned(),
            reason: if event.reason.is_empty() {
                "refunded at the payment provider".to_owned()
            } else {
                event.reason.clone()
            },
            created_at: now_micros(),
        };
        if payment_events::insert_refund(self.db.pool(), &refund).await? {
            Ok(PaymentOutcome::RefundRecorded)
        } else {
            Ok(PaymentOutcome::RefundAlreadyRecorded)
        }
    }
}
