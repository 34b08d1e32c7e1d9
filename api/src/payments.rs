//! The node's payment settings: the key that signs the payment provider's webhook
//! calls, and the HTTP sender through which the built-in test-double provider posts
//! its signed events to this node's webhook, as a real provider would.

use std::sync::Arc;

use anyhow::Context;
use futures_util::future::BoxFuture;
use souk_actors::orders::payments::{TestDoublePaymentProvider, WebhookSender};
use souk_actors::orders::webhook_signature::{WebhookSigner, SIGNATURE_HEADER};

use crate::config::Config;

/// The webhook key: `payments.webhook_secret`, else `payments.webhook_secret_file`,
/// else a key derived from the JWT secret.
pub fn webhook_signer(config: &Config) -> anyhow::Result<WebhookSigner> {
    if let Some(secret) = &config.payments.webhook_secret {
        return Ok(WebhookSigner::new(secret.expose().as_bytes()));
    }
    if let Some(path) = &config.payments.webhook_secret_file {
        let secret = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read payments.webhook_secret_file (SOUK_PAYMENTS_WEBHOOK_SECRET_FILE) {}",
                path.display()
            )
        })?;
        let secret = secret.trim();
        anyhow::ensure!(
            !secret.is_empty(),
            "invalid configuration: payments.webhook_secret_file (SOUK_PAYMENTS_WEBHOOK_SECRET_FILE) is empty"
        );
        return Ok(WebhookSigner::new(secret.as_bytes()));
    }
    Ok(WebhookSigner::derived(&crate::startup::jwt_secret(config)?))
}

/// The test double, posting its events to `payments.test_double_webhook_url` when set.
pub fn test_double(config: &Config, signer: &WebhookSigner) -> TestDoublePaymentProvider {
    match &config.payments.test_double_webhook_url {
        Some(url) => TestDoublePaymentProvider::with_webhook(
            signer.clone(),
            Arc::new(HttpWebhookSender {
                client: reqwest::Client::new(),
                url: url.clone(),
            }),
        ),
        None => TestDoublePaymentProvider::default(),
    }
}

struct HttpWebhookSender {
    client: reqwest::Client,
    url: String,
}

impl WebhookSender for HttpWebhookSender {
    fn send(&self, body: Vec<u8>, signature: String) -> BoxFuture<'static, Result<(), String>> {
        let request = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .timeout(std::time::Duration::from_secs(10))
            .body(body);
        Box::pin(async move {
            let response = request.send().await.map_err(|error| error.to_string())?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(format!("the webhook answered {}", response.status()))
            }
        })
    }
}
