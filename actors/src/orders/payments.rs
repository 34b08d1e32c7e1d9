//! Payment providers. Souk captures a payment when an order is paid and refunds it when
//! a paid order is cancelled; the provider behind the trait does the money part.

use futures_util::future::BoxFuture;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("the payment was declined: {0}")]
    Declined(String),
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
}

pub trait PaymentProvider: Send + Sync {
    /// Captures `amount` minor units; returns the provider's reference.
    fn capture(
        &self,
        order_id: &str,
        amount: i64,
        currency: &str,
        method: &str,
    ) -> BoxFuture<'static, Result<String, PaymentError>>;
    fn refund(
        &self,
        reference: &str,
        amount: i64,
        currency: &str,
    ) -> BoxFuture<'static, Result<(), PaymentError>>;
}

/// A TEST DOUBLE, not a payment provider: it moves no money. It approves every payment
/// method except `test-card-declined`, so tests and demos can exercise both outcomes.
pub struct TestDoublePaymentProvider;

impl PaymentProvider for TestDoublePaymentProvider {
    fn capture(
        &self,
        order_id: &str,
        _amount: i64,
        _currency: &str,
        method: &str,
    ) -> BoxFuture<'static, Result<String, PaymentError>> {
        let outcome = if method == "test-card-declined" {
            Err(PaymentError::Declined(
                "test-card-declined always declines".into(),
            ))
        } else {
            Ok(format!("test-double-{order_id}"))
        };
        Box::pin(async move { outcome })
    }

    fn refund(
        &self,
        _reference: &str,
        _amount: i64,
        _currency: &str,
    ) -> BoxFuture<'static, Result<(), PaymentError>> {
        Box::pin(async { Ok(()) })
    }
}
