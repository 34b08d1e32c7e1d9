//! The signature of the payment provider's webhook calls. The `Souk-Signature` header
//! is `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`; several `v1` values
//! may be given (a provider rotating its secret signs with both). A call is accepted
//! when one `v1` matches and `t` is within the tolerance of this node's clock, so a
//! recorded call cannot be replayed later. The built-in test-double provider signs
//! its calls with [`WebhookSigner::header`], the same way.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type Hasher = Hmac<Sha256>;

/// The name of the header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Souk-Signature";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Souk-Signature header is missing")]
    Missing,
    #[error("the Souk-Signature header is not of the form t=<unix seconds>,v1=<hex>")]
    Malformed,
    #[error("the signature's timestamp is outside the tolerance of this server's clock")]
    Stale,
    #[error("no signature in the Souk-Signature header matches the body")]
    Mismatch,
}

#[derive(Clone)]
pub struct WebhookSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("WebhookSigner { key: [redacted] }")
    }
}

impl WebhookSigner {
    /// A signer with the secret shared with the payment provider.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: secret.to_vec(),
        }
    }

    /// A signer whose key is derived from the node's secret (the JWT key), for the
    /// test-double provider when no webhook secret is configured: every node of a
    /// deployment shares it, and it says nothing about the node's secret.
    pub fn derived(node_secret: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"souk payment webhooks\0");
        hasher.update(node_secret);
        Self {
            key: hasher.finalize().to_vec(),
        }
    }

    fn mac(&self, timestamp: i64, body: &[u8]) -> Hasher {
        let mut mac = Hasher::new_from_slice(&self.key).expect("hmac takes any key length");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The header value for `body` sent at `timestamp` (unix seconds).
    pub fn header(&self, timestamp: i64, body: &[u8]) -> String {
        let signature = hex::encode(self.mac(timestamp, body).finalize().into_bytes());
        format!("t={timestamp},v1={signature}")
    }

    /// Checks `header` against `body` at `now` (unix seconds), allowing
    /// `tolerance_secs` of difference either way. Signatures compare in constant time.
    pub fn verify(
        &self,
        header: Option<&str>,
        body: &[u8],
        now: i64,
        tolerance_secs: i64,
    ) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", value)) => {
                    let value = value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?;
                    timestamp = Some(value);
                }
                Some(("v1", value)) => {
                    signatures.push(hex::decode(value).map_err(|_| SignatureError::Malformed)?)
                }
                // Other schemes may be added later; they are ignored, not refused.
                Some(_) => {}
                None => return Err(SignatureError::Malformed),
            }
        }
        let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
        if signatures.is_empty() {
            return Err(SignatureError::Malformed);
        }
        if now.abs_diff(timestamp) > tolerance_secs.unsigned_abs() {
            return Err(SignatureError::Stale);
        }
        let mac = self.mac(timestamp, body);
        if signatures
            .iter()
            .any(|signature| mac.clone().verify_slice(signature).is_ok())
        {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_signed_body_verifies_and_nothing_else_does() {
        let signer = WebhookSigner::new(b"whsec-test");
        let body = br#"{"id":"evt_1"}"#;
        let header = signer.header(NOW, body);
        assert_eq!(signer.verify(Some(&header), body, NOW, 300), Ok(()));
        assert_eq!(signer.verify(Some(&header), body, NOW + 300, 300), Ok(()));
        assert_eq!(
            signer.verify(Some(&header), br#"{"id":"evt_2"}"#, NOW, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            WebhookSigner::new(b"another secret").verify(Some(&header), body, NOW, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            signer.verify(Some(&header), body, NOW + 301, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            signer.verify(Some(&header), body, NOW - 301, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            signer.verify(None, body, NOW, 300),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn any_of_several_signatures_may_match() {
        let old = WebhookSigner::new(b"old secret");
        let new = WebhookSigner::new(b"new secret");
        let body = b"{}";
        let old_signature = old
            .header(NOW, body)
            .split_once(",v1=")
            .unwrap()
            .1
            .to_owned();
        let header = format!("{},v1={old_signature}", new.header(NOW, body));
        assert_eq!(old.verify(Some(&header), body, NOW, 300), Ok(()));
        assert_eq!(new.verify(Some(&header), body, NOW, 300), Ok(()));
    }

    #[test]
    fn malformed_headers_are_refused_as_such() {
        let signer = WebhookSigner::new(b"whsec-test");
        for header in [
            "",
            "v1=abcd",
            "t=now,v1=abcd",
            "t=1,v1=zz",
            "t=1",
            "garbage",
        ] {
            assert_eq!(
                signer.verify(Some(header), b"{}", NOW, 300),
                Err(SignatureError::Malformed),
                "{header:?}"
            );
        }
    }

    #[test]
    fn the_derived_key_differs_from_the_node_secret() {
        let secret = b"a node secret of at least thirty-two bytes";
        let body = b"{}";
        let header = WebhookSigner::derived(secret).header(NOW, body);
        assert_eq!(
            WebhookSigner::new(secret).verify(Some(&header), body, NOW, 300),
            Err(SignatureError::Mismatch)
        );
    }
}
