//! Opaque bearer secrets (refresh and password-reset tokens): 256 random bits for the
//! client, a SHA-256 hash for the database, so a database leak yields no usable token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What [`looks_valid`] accepts, as the API document's `pattern` (with `minLength` and
/// `maxLength` 43, which also keep out a trailing newline some regex engines let `$`
/// match before).
pub const TOKEN_PATTERN: &str = "^[A-Za-z0-9_-]{43}$";

/// Tokens Souk issues are 43 URL-safe characters; anything else is refused before a
/// database round trip.
pub fn looks_valid(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// What the API document allows, the server's check accepts.
        #[test]
        fn the_documented_pattern_is_accepted(
            raw in TOKEN_PATTERN.trim_start_matches('^').trim_end_matches('$')
        ) {
            proptest::prop_assert!(looks_valid(&raw), "{raw:?}");
        }
    }

    #[test]
    fn generated_tokens_are_unique_and_well_formed() {
        let first = generate();
        let second = generate();
        assert_ne!(first, second);
        assert!(looks_valid(&first));
        assert_eq!(hash(&first).len(), 64);
        assert_ne!(hash(&first), first);
    }
}
