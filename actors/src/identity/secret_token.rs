//! Opaque bearer secrets (refresh tokens and the single-use tokens mailed to users):
//! 256 random bits for the client, a SHA-256 hash for the database, so a database leak
//! yields no usable token; and the one way a presented single-use token is found and
//! spent.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use souk_db::clock::Micros;
use souk_db::one_time_tokens::{self, OneTimeToken, TokenKind};
use souk_db::Db;
use sqlx::{Any, Executor};

use crate::error::{Error, ErrorCode};

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

/// The stored token of `kind` that `presented` is, if it is well formed, unspent and
/// not expired at `now`; otherwise the caller's `invalid` error.
pub async fn find_live(
    db: &Db,
    kind: TokenKind,
    presented: &str,
    now: Micros,
    invalid: ErrorCode,
) -> Result<OneTimeToken, Error> {
    if !looks_valid(presented) {
        return Err(Error::from_code(invalid));
    }
    let record = one_time_tokens::find(db.pool(), kind, &hash(presented))
        .await?
        .ok_or_else(|| Error::from_code(invalid))?;
    if record.used_at.is_some() || record.expires_at <= now {
        return Err(Error::from_code(invalid));
    }
    Ok(record)
}

/// Spends a token found by [`find_live`], in the caller's transaction; `invalid` when a
/// concurrent request spent it first.
pub async fn spend<'e, E>(
    executor: E,
    kind: TokenKind,
    record: &OneTimeToken,
    now: Micros,
    invalid: ErrorCode,
) -> Result<(), Error>
where
    E: Executor<'e, Database = Any>,
{
    if one_time_tokens::mark_used(executor, kind, &record.id, now).await? {
        Ok(())
    } else {
        Err(Error::from_code(invalid))
    }
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
