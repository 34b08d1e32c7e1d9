//! The payment provider's webhook: asynchronous payment events (captured, failed,
//! refunded) for one order each. A call is accepted only with a valid signature
//! ([`super::webhook_signature`]); each event is processed once by its id (a
//! redelivery is answered with the first delivery's outcome); the event itself goes
//! to its order's actor, so it is serialized with the shopper's and admins' commands.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use souk_db::clock::now_micros;
use souk_db::payment_events::{self, Claimed, PROCESSING};
use souk_db::Db;
use utoipa::ToSchema;

use super::actor::{OrderCommand, OrderRouter};
use super::webhook_signature::WebhookSigner;
use crate::error::{Error, ErrorCode, FieldErrors};

/// The longest payment reference: `orders.payment_reference` is `VARCHAR(100)`.
const MAX_PAYMENT_REFERENCE: usize = 100;

/// A claim still processing after this long was abandoned (its node died mid-way).
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentEventKind {
    /// The payment was captured: the order is paid (or, if it no longer can be, the
    /// money goes back).
    Captured,
    /// The payment failed; the order stays unpaid and may be paid again.
    Failed,
    /// Money was given back at the provider; the order records the refund.
    Refunded,
}

impl PaymentEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentEventKind::Captured => "payment.captured",
            PaymentEventKind::Failed => "payment.failed",
            PaymentEventKind::Refunded => "payment.refunded",
        }
    }

    pub fn parse(kind: &str) -> Option<Self> {
        [Self::Captured, Self::Failed, Self::Refunded]
            .into_iter()
            .find(|candidate| candidate.as_str() == kind)
    }
}

/// One event as the provider posts it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentEvent {
    /// The provider's id of the event, 1 to 100 characters: a redelivery carries the
    /// same id and changes nothing.
    #[schema(min_length = 1, max_length = 100)]
    pub id: String,
    /// `payment.captured`, `payment.failed` or `payment.refunded`.
    #[serde(rename = "type")]
    #[schema(pattern = "^payment\\.(captured|failed|refunded)$")]
    pub kind: String,
    pub order_id: String,
    /// The provider's id of the payment, 1 to 100 characters (the width of the order's
    /// `payment_reference` column).
    #[schema(min_length = 1, max_length = 100)]
    pub payment_reference: String,
    /// Minor units, at least 1; required for `payment.captured` and `payment.refunded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    /// ISO 4217 code; required for `payment.captured` and `payment.refunded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The provider's id of the refund; required for `payment.refunded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 100)]
    pub refund_id: Option<String>,
    /// Why, for the record; cut to 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An event whose fields were checked, as its order's actor handles it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckedPaymentEvent {
    pub id: String,
    pub kind: CheckedKind,
    pub order_id: String,
    pub payment_reference: String,
    pub reason: String,
}

/// The event's kind with the fields that kind requires.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CheckedKind {
    Captured {
        amount: i64,
        currency: String,
    },
    Failed,
    Refunded {
        amount: i64,
        currency: String,
        refund_id: String,
    },
}

fn bounded(value: &str, max: usize) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(format!("must be 1 to {max} printable characters"));
    }
    Ok(value.to_owned())
}

impl PaymentEvent {
    /// Checks every field, naming each that is wrong.
    pub fn checked(&self) -> Result<CheckedPaymentEvent, Error> {
        let mut errors = FieldErrors::default();
        let id = errors.check("id", bounded(&self.id, 100));
        let kind = errors.check(
            "type",
            PaymentEventKind::parse(&self.kind).ok_or_else(|| {
                "must be payment.captured, payment.failed or payment.refunded".to_owned()
            }),
        );
        if !souk_db::ids::is_well_formed(&self.order_id) {
            errors.push("order_id", "must be an order id");
        }
        let payment_reference = errors.check(
            "payment_reference",
            bounded(&self.payment_reference, MAX_PAYMENT_REFERENCE),
        );
        let needs_money = matches!(
            kind,
            Some(PaymentEventKind::Captured | PaymentEventKind::Refunded)
        );
        let amount = match self.amount {
            Some(amount) if amount >= 1 => Some(amount),
            Some(_) => {
                errors.push("amount", "must be at least 1 minor unit");
                None
            }
            None if needs_money => {
                errors.push("amount", "is required for this event type");
                None
            }
            None => None,
        };
        let currency = match self.currency.as_deref() {
            Some(code) if code.len() == 3 && code.bytes().all(|byte| byte.is_ascii_uppercase()) => {
                Some(code.to_owned())
            }
            Some(_) => {
                errors.push("currency", "must be an ISO 4217 code such as EUR");
                None
            }
            None if needs_money => {
                errors.push("currency", "is required for this event type");
                None
            }
            None => None,
        };
        let refund_id = match self.refund_id.as_deref() {
            Some(refund_id) => errors.check("refund_id", bounded(refund_id, 100)),
            None if kind == Some(PaymentEventKind::Refunded) => {
                errors.push("refund_id", "is required for payment.refunded");
                None
            }
            None => None,
        };
        errors.finish()?;
        let (Some(id), Some(kind), Some(payment_reference)) = (id, kind, payment_reference) else {
            return Err(Error::internal("a checked payment event lost a field"));
        };
        let money = || amount.zip(currency.clone());
        let kind = match (kind, money()) {
            (PaymentEventKind::Captured, Some((amount, currency))) => {
                CheckedKind::Captured { amount, currency }
            }
            (PaymentEventKind::Refunded, Some((amount, currency))) => CheckedKind::Refunded {
                amount,
                currency,
                refund_id: refund_id.unwrap_or_default(),
            },
            (PaymentEventKind::Failed, _) => CheckedKind::Failed,
            _ => return Err(Error::internal("a checked payment event lost its amount")),
        };
        let reason: String = self
            .reason
            .as_deref()
            .unwrap_or("")
            .trim()
            .chars()
            .filter(|character| !character.is_control())
            .take(200)
            .collect();
        Ok(CheckedPaymentEvent {
            id,
            kind,
            order_id: self.order_id.clone(),
            payment_reference,
            reason,
        })
    }
}

/// What the webhook answers: the event and what it did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookReceipt {
    pub event_id: String,
    /// What the event did: `order_paid`, `already_paid`, `refunded_not_payable`,
    /// `refunded_amount_mismatch`, `failure_recorded`, `refund_recorded`,
    /// `refund_already_recorded`, `ignored_refund_exceeds_captured`,
    /// `ignored_unknown_payment` or `ignored_unknown_order`.
    pub outcome: String,
    /// `true` when the event was received before and this delivery changed nothing.
    pub duplicate: bool,
}

/// The webhook's door: checks signatures, claims events, hands them to their orders.
#[derive(Clone)]
pub struct PaymentWebhooks {
    db: Db,
    orders: OrderRouter,
    signer: Arc<WebhookSigner>,
    tolerance_secs: i64,
}

impl PaymentWebhooks {
    pub fn new(db: Db, orders: OrderRouter, signer: WebhookSigner, tolerance_secs: u64) -> Self {
        Self {
            db,
            orders,
            signer: Arc::new(signer),
            tolerance_secs: i64::try_from(tolerance_secs).unwrap_or(i64::MAX),
        }
    }

    /// Accepts the call only if `signature` (the `Souk-Signature` header) signs `body`.
    pub fn verify(&self, signature: Option<&str>, body: &[u8]) -> Result<(), Error> {
        self.signer
            .verify(
                signature,
                body,
                chrono::Utc::now().timestamp(),
                self.tolerance_secs,
            )
            .map_err(|error| Error::new(ErrorCode::InvalidSignature, error.to_string()))
    }

    /// Processes a verified event once: a redelivery gets the first outcome; one still
    /// being processed elsewhere is `event_in_progress`, for the provider to retry.
    #[tracing::instrument(name = "payment_webhook", skip(self, event), fields(event_id = %event.id, kind = %event.kind))]
    pub async fn receive(&self, event: &PaymentEvent) -> Result<WebhookReceipt, Error> {
        let checked = event.checked()?;
        let now = now_micros();
        let abandoned_before = now - ABANDONED_AFTER.as_micros() as i64;
        let claimed = payment_events::claim(
            self.db.pool(),
            &checked.id,
            &event.kind,
            &checked.order_id,
            now,
            abandoned_before,
        )
        .await?;
        if let Claimed::Seen(record) = claimed {
            if record.outcome == PROCESSING {
                return Err(Error::new(
                    ErrorCode::EventInProgress,
                    "this event is being processed; retry it later",
                ));
            }
            return Ok(WebhookReceipt {
                event_id: record.id,
                outcome: record.outcome,
                duplicate: true,
            });
        }
        let command = OrderCommand::PaymentEvent(checked.clone());
        let outcome = match self.orders.send(checked.order_id.clone(), command).await {
            Ok(_) => None,
            Err(error) if error.code() == ErrorCode::NotFound => {
                Some(PaymentOutcome::IgnoredUnknownOrder)
            }
            Err(error) => {
                // Not processed: the provider's retry claims the event again.
                if let Err(release) = payment_events::release(self.db.pool(), &checked.id).await {
                    tracing::warn!(error = %release, "cannot release the event's claim; it is taken over after a minute");
                }
                return Err(error);
            }
        };
        if let Some(outcome) = outcome {
            payment_events::finish(self.db.pool(), &checked.id, outcome.as_str(), now_micros())
                .await?;
        }
        let record = payment_events::find(self.db.pool(), &checked.id)
            .await?
            .ok_or_else(|| Error::internal("a processed payment event has no row"))?;
        metrics::counter!("souk_payment_events_total", "type" => event.kind.clone(), "outcome" => record.outcome.clone())
            .increment(1);
        Ok(WebhookReceipt {
            event_id: record.id,
            outcome: record.outcome,
            duplicate: false,
        })
    }
}

/// What one event did to its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentOutcome {
    OrderPaid,
    AlreadyPaid,
    RefundedNotPayable,
    RefundedAmountMismatch,
    FailureRecorded,
    RefundRecorded,
    RefundAlreadyRecorded,
    IgnoredRefundExceedsCaptured,
    IgnoredUnknownPayment,
    IgnoredUnknownOrder,
}

impl PaymentOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentOutcome::OrderPaid => "order_paid",
            PaymentOutcome::AlreadyPaid => "already_paid",
            PaymentOutcome::RefundedNotPayable => "refunded_not_payable",
            PaymentOutcome::RefundedAmountMismatch => "refunded_amount_mismatch",
            PaymentOutcome::FailureRecorded => "failure_recorded",
            PaymentOutcome::RefundRecorded => "refund_recorded",
            PaymentOutcome::RefundAlreadyRecorded => "refund_already_recorded",
            PaymentOutcome::IgnoredRefundExceedsCaptured => "ignored_refund_exceeds_captured",
            PaymentOutcome::IgnoredUnknownPayment => "ignored_unknown_payment",
            PaymentOutcome::IgnoredUnknownOrder => "ignored_unknown_order",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str) -> PaymentEvent {
        PaymentEvent {
            id: "evt_1".into(),
            kind: kind.into(),
            order_id: souk_db::ids::new_id(),
            payment_reference: "pay_1".into(),
            amount: Some(1200),
            currency: Some("EUR".into()),
            refund_id: Some("re_1".into()),
            reason: None,
        }
    }

    fn fields(error: Error) -> Vec<String> {
        error
            .field_errors()
            .iter()
            .map(|field| field.field.clone())
            .collect()
    }

    #[test]
    fn each_kind_requires_its_fields() {
        assert!(event("payment.captured").checked().is_ok());
        assert!(event("payment.refunded").checked().is_ok());
        let failed = PaymentEvent {
            amount: None,
            currency: None,
            refund_id: None,
            ..event("payment.failed")
        };
        assert!(matches!(
            failed.checked().unwrap().kind,
            CheckedKind::Failed
        ));
        let refund_without_id = PaymentEvent {
            refund_id: None,
            ..event("payment.refunded")
        };
        assert_eq!(
            fields(refund_without_id.checked().unwrap_err()),
            ["refund_id"]
        );
        let capture_without_money = PaymentEvent {
            amount: None,
            currency: None,
            ..event("payment.captured")
        };
        assert_eq!(
            fields(capture_without_money.checked().unwrap_err()),
            ["amount", "currency"]
        );
    }

    #[test]
    fn a_payment_reference_fits_the_orders_column() {
        let longest = PaymentEvent {
            payment_reference: "p".repeat(100),
            ..event("payment.captured")
        };
        assert_eq!(longest.checked().unwrap().payment_reference.len(), 100);
        let too_long = PaymentEvent {
            payment_reference: "p".repeat(101),
            ..event("payment.captured")
        };
        assert_eq!(
            fields(too_long.checked().unwrap_err()),
            ["payment_reference"]
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = PaymentEvent {
            id: " ".into(),
            kind: "payment.teleported".into(),
            order_id: "not-an-id".into(),
            payment_reference: "x".repeat(201),
            amount: Some(0),
            currency: Some("euro".into()),
            refund_id: None,
            reason: None,
        };
        assert_eq!(
            fields(bad.checked().unwrap_err()),
            [
                "id",
                "type",
                "order_id",
                "payment_reference",
                "amount",
                "currency"
            ]
        );
    }
}
