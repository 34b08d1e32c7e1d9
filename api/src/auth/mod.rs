//! Authentication: access tokens (JWT), opaque refresh and reset tokens, password
//! hashing, the request extractors that authenticate callers, and login rate limits.

pub mod extractor;
pub mod hasher;
pub mod jwt;
pub mod rate_limit;
pub mod secret_token;

pub use extractor::{authenticate, AdminUser, AuthUser, MaybeUser};
pub use hasher::PasswordHasher;
pub use jwt::{AccessClaims, JwtKeys};
