//! Links to one order's status page, for the order mails: the order id signed with
//! HMAC-SHA256 under a key derived from the node's secret, so whoever holds the mail
//! can see that order's status, and no other order's, without signing in.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type Signer = Hmac<Sha256>;

#[derive(Clone)]
pub struct OrderLinks {
    key: [u8; 32],
}

impl std::fmt::Debug for OrderLinks {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("OrderLinks { key: [redacted] }")
    }
}

impl OrderLinks {
    /// Derives the link key from the node's secret (the JWT key), so a leaked link
    /// signature says nothing about the tokens' key and vice versa.
    pub fn new(node_secret: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"souk order status links\0");
        hasher.update(node_secret);
        Self {
            key: hasher.finalize().into(),
        }
    }

    fn signer(&self, order_id: &str) -> Signer {
        let mut signer = Signer::new_from_slice(&self.key).expect("hmac takes any key length");
        signer.update(order_id.as_bytes());
        signer
    }

    pub fn signature(&self, order_id: &str) -> String {
        hex::encode(self.signer(order_id).finalize().into_bytes())
    }

    /// Whether `signature` is this node's for `order_id` (compared in constant time).
    pub fn verify(&self, order_id: &str, signature: &str) -> bool {
        let Ok(bytes) = hex::decode(signature) else {
            return false;
        };
        self.signer(order_id).verify_slice(&bytes).is_ok()
    }

    /// The page's path and query, to put after the public base URL.
    pub fn path(&self, order_id: &str) -> String {
        format!(
            "/account/orders/{order_id}?sig={}",
            self.signature(order_id)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_opens_its_own_order_only() {
        let links = OrderLinks::new(b"a node secret of at least thirty-two bytes");
        let signature = links.signature("order-1");
        assert!(links.verify("order-1", &signature));
        assert!(!links.verify("order-2", &signature));
        assert!(!links.verify("order-1", "not hex"));
        assert!(!links.verify("order-1", &signature[..20]));
        let other_node = OrderLinks::new(b"another secret of at least thirty-two bytes");
        assert!(!other_node.verify("order-1", &signature));
    }
}
