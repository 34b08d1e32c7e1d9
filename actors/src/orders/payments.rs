//! Payment providers. Souk captures a payment when an order is paid and refunds it when
//! a paid order is cancelled; the provider behind the trait does the money part. A
//! provider may also finish a capture later and say so through its webhook (see
//! [`super::webhooks`]).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::webhook_signature::WebhookSigner;
use super::webhooks::{PaymentEvent, PaymentEventKind};
use crate::error::{Error, ErrorCode};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("the payment was declined: {0}")]
    Declined(String),
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
}

/// Seconds a caller is told to wait before asking an unavailable provider again.
const PROVIDER_RETRY_AFTER_SECS: u64 = 5;

/// A provider's refusal as the caller sees it: a decline stays a decline, an
/// unavailable provider is worth retrying after a pause.
impl From<PaymentError> for Error {
    fn from(error: PaymentError) -> Self {
        match error {
            PaymentError::Declined(why) => Error::new(ErrorCode::PaymentDeclined, why),
            PaymentError::Unavailable(why) => Error::unavailable_retry_after(
                ErrorCode::ServiceUnavailable,
                why,
                PROVIDER_RETRY_AFTER_SECS,
            ),
        }
    }
}

/// What a capture did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capture {
    /// Captured now; the provider's reference of the payment.
    Captured(String),
    /// Accepted, not yet captured: the provider tells the outcome through its webhook.
    Pending,
}

pub trait PaymentProvider: Send + Sync {
    /// Captures `amount` minor units.
    fn capture(
        &self,
        order_id: &str,
        amount: i64,
        currency: &str,
        method: &str,
    ) -> BoxFuture<'static, Result<Capture, PaymentError>>;
    /// Refunds `amount` minor units of the payment `reference`; returns the provider's
    /// id of the refund (which its `payment.refunded` event carries too). `key` is the
    /// refund's idempotency key: a call repeated with the same key (a retry, or two
    /// nodes settling one order) refunds once and answers the same id, as providers'
    /// idempotency keys do.
    fn refund(
        &self,
        reference: &str,
        amount: i64,
        currency: &str,
        key: &RefundKey,
    ) -> BoxFuture<'static, Result<String, PaymentError>>;
}

/// The idempotency key of one refund: what it gives back and for what, so the same
/// refund asked twice has the same key and two different refunds never share one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundKey(String);

impl RefundKey {
    /// What is left of a cancelled order's payment (`amount`: what the refund gives).
    pub fn cancelled_order(order_id: &str, amount: i64) -> Self {
        Self(format!("cancel-{order_id}-{amount}"))
    }

    /// A capture the order cannot keep (another payment won, or it came too late).
    pub fn unkept_capture(payment_reference: &str) -> Self {
        Self(format!("unkept-{payment_reference}"))
    }

    /// The refund of a shopper's return.
    pub fn order_return(return_id: &str) -> Self {
        Self(format!("return-{return_id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where the test double posts its webhook calls: the body and its signature header.
pub trait WebhookSender: Send + Sync {
    fn send(&self, body: Vec<u8>, signature: String) -> BoxFuture<'static, Result<(), String>>;
}

/// A TEST DOUBLE, not a payment provider: it moves no money. It declines the payment
/// method `test-card-declined`; for `test-card-async` it answers "pending" and then
/// posts a signed `payment.captured` event to the webhook, as a provider that
/// confirms asynchronously does; `test-card-refund-unavailable` is captured at once,
/// but every refund of it answers "unavailable", as a provider that is down does;
/// every other method is captured at once. Each refund of its own payments is
/// confirmed by a signed `payment.refunded` event with the refund's id. Without a
/// webhook sender it posts nothing and declines `test-card-async`.
#[derive(Clone, Default)]
pub struct TestDoublePaymentProvider {
    webhook: Option<(WebhookSigner, Arc<dyn WebhookSender>)>,
}

/// The test double's reference of an order's payment.
fn test_double_reference(order_id: &str) -> String {
    format!("test-double-{order_id}")
}

/// The test double's reference of a payment it will not refund.
fn test_double_unrefundable_reference(order_id: &str) -> String {
    format!("test-double-unrefundable-{order_id}")
}

impl TestDoublePaymentProvider {
    /// The double that posts its events, signed by `signer`, through `sender`.
    pub fn with_webhook(signer: WebhookSigner, sender: Arc<dyn WebhookSender>) -> Self {
        Self {
            webhook: Some((signer, sender)),
        }
    }

    /// Posts `event` in the background, retrying a few times as a provider does.
    fn post(&self, event: PaymentEvent) {
        let Some((signer, sender)) = self.webhook.clone() else {
            return;
        };
        let body = serde_json::to_vec(&event).expect("an event serializes");
        tokio::spawn(async move {
            for attempt in 0..5u32 {
                tokio::time::sleep(Duration::from_millis(20 << (2 * attempt))).await;
                let signature = signer.header(chrono::Utc::now().timestamp(), &body);
                match sender.send(body.clone(), signature).await {
                    Ok(()) => return,
                    Err(error) => {
                        tracing::warn!(event_id = %event.id, attempt, %error, "the test double's webhook call failed")
                    }
                }
            }
        });
    }
}

/// The test double's id of the refund asked with `key`.
fn test_double_refund_id(key: &RefundKey) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_str().as_bytes());
    format!("re_test_{}", hex::encode(&digest[..16]))
}

fn test_double_event_id() -> String {
    format!("evt_test_{}", souk_db::ids::new_id())
}

impl PaymentProvider for TestDoublePaymentProvider {
    fn capture(
        &self,
        order_id: &str,
        amount: i64,
        currency: &str,
        method: &str,
    ) -> BoxFuture<'static, Result<Capture, PaymentError>> {
        let outcome = match method {
            "test-card-declined" => Err(PaymentError::Declined(
                "test-card-declined always declines".into(),
            )),
            "test-card-async" if self.webhook.is_none() => Err(PaymentError::Declined(
                "test-card-async needs the payment webhook, which this node does not serve".into(),
            )),
            "test-card-async" => {
                self.post(PaymentEvent {
                    id: test_double_event_id(),
                    kind: PaymentEventKind::Captured.as_str().to_owned(),
                    order_id: order_id.to_owned(),
                    payment_reference: test_double_reference(order_id),
                    amount: Some(amount),
                    currency: Some(currency.to_owned()),
                    refund_id: None,
                    reason: None,
                });
                Ok(Capture::Pending)
            }
            "test-card-refund-unavailable" => Ok(Capture::Captured(
                test_double_unrefundable_reference(order_id),
            )),
            _ => Ok(Capture::Captured(test_double_reference(order_id))),
        };
        Box::pin(async move { outcome })
    }

    fn refund(
        &self,
        reference: &str,
        amount: i64,
        currency: &str,
        key: &RefundKey,
    ) -> BoxFuture<'static, Result<String, PaymentError>> {
        // The same key gives the same refund id on every node, as a provider's
        // idempotency key does; a repeated refund's event then finds it recorded.
        if reference.starts_with(&test_double_unrefundable_reference("")) {
            return Box::pin(async {
                Err(PaymentError::Unavailable(
                    "the test double does not refund test-card-refund-unavailable".into(),
                ))
            });
        }
        let refund_id = test_double_refund_id(key);
        if let Some(order_id) = reference.strip_prefix("test-double-") {
            self.post(PaymentEvent {
                id: test_double_event_id(),
                kind: PaymentEventKind::Refunded.as_str().to_owned(),
                order_id: order_id.to_owned(),
                payment_reference: reference.to_owned(),
                amount: Some(amount),
                currency: Some(currency.to_owned()),
                refund_id: Some(refund_id.clone()),
                reason: Some("refunded by souk".to_owned()),
            });
        }
        Box::pin(async move { Ok(refund_id) })
    }
}
