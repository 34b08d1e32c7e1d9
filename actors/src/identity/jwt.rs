//! Access tokens: HS256 JWTs with `iss`, `aud`, `sub`, `iat`, `exp`, the role and the
//! session (refresh family) they belong to. Verification pins the algorithm, so
//! `alg: none` and algorithm-confusion tokens fail before any signature check.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorCode};

const ALGORITHM: Algorithm = Algorithm::HS256;

/// The role of tokens that Souk services mint for one another (never a user's role).
pub const SERVICE_ROLE: &str = "service";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    /// Unique per token.
    pub jti: String,
    pub role: String,
    /// The refresh-token family (session) this token was issued in.
    pub sid: String,
}

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: i64,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("JwtKeys")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    pub fn new(secret: &[u8], issuer: &str, audience: &str, ttl_secs: u64) -> Self {
        let mut validation = Validation::new(ALGORITHM);
        validation.algorithms = vec![ALGORITHM];
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 5;
        validation.validate_exp = true;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2),
        }
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    pub fn issue(&self, user_id: &str, role: &str, session_id: &str) -> Result<String, Error> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_owned(),
            iat: now,
            exp: now + self.ttl_secs,
            jti: souk_db::ids::new_id(),
            role: role.to_owned(),
            sid: session_id.to_owned(),
        };
        self.sign(&claims)
    }

    /// Signs arbitrary claims with this key; `issue` is the normal way in.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, Error> {
        jsonwebtoken::encode(&Header::new(ALGORITHM), claims, &self.encoding)
            .map_err(Error::internal)
    }

    pub fn verify(&self, token: &str) -> Result<AccessClaims, Error> {
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => Error::from_code(ErrorCode::TokenExpired),
                ErrorKind::InvalidAudience => {
                    Error::new(ErrorCode::InvalidToken, "the token is for another audience")
                }
                ErrorKind::InvalidIssuer => {
                    Error::new(ErrorCode::InvalidToken, "the token is from another issuer")
                }
                ErrorKind::InvalidAlgorithm => Error::new(
                    ErrorCode::InvalidToken,
                    "the token's algorithm is not accepted",
                ),
                ErrorKind::InvalidSignature => Error::new(
                    ErrorCode::InvalidToken,
                    "the token's signature does not verify",
                ),
                _ => Error::new(ErrorCode::InvalidToken, "the token is malformed"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn keys() -> JwtKeys {
        JwtKeys::new(b"0123456789abcdef0123456789abcdef", "souk", "souk-api", 900)
    }

    #[test]
    fn issued_tokens_verify() {
        let token = keys().issue("user-1", "customer", "session-1").unwrap();
        let claims = keys().verify(&token).unwrap();
        assert_eq!(claims.sub, "user-1");
        assert_eq!(claims.sid, "session-1");
    }

    #[test]
    fn alg_none_is_refused() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let now = chrono::Utc::now().timestamp();
        let payload = URL_SAFE_NO_PAD.encode(
            serde_json::json!({"iss":"souk","aud":"souk-api","sub":"u","iat":now,"exp":now+60,"jti":"j","role":"admin","sid":"s"}).to_string(),
        );
        let error = keys().verify(&format!("{header}.{payload}.")).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidToken);
    }

    #[test]
    fn other_algorithms_with_the_same_secret_are_refused() {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            iss: "souk".into(),
            aud: "souk-api".into(),
            sub: "u".into(),
            iat: now,
            exp: now + 60,
            jti: "j".into(),
            role: "admin".into(),
            sid: "s".into(),
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .unwrap();
        assert_eq!(
            keys().verify(&token).unwrap_err().code(),
            ErrorCode::InvalidToken
        );
    }

    #[test]
    fn wrong_audience_and_expiry_are_refused() {
        let other = JwtKeys::new(
            b"0123456789abcdef0123456789abcdef",
            "souk",
            "elsewhere",
            900,
        );
        let token = other.issue("u", "customer", "s").unwrap();
        assert_eq!(
            keys().verify(&token).unwrap_err().code(),
            ErrorCode::InvalidToken
        );

        let now = chrono::Utc::now().timestamp();
        let expired = keys()
            .sign(&AccessClaims {
                iss: "souk".into(),
                aud: "souk-api".into(),
                sub: "u".into(),
                iat: now - 3600,
                exp: now - 60,
                jti: "j".into(),
                role: "customer".into(),
                sid: "s".into(),
            })
            .unwrap();
        assert_eq!(
            keys().verify(&expired).unwrap_err().code(),
            ErrorCode::TokenExpired
        );
    }
}
