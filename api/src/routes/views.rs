//! Response bodies shared by several routes.

use serde::Serialize;
use souk_db::clock::to_datetime;
use souk_db::users::UserRecord;
use utoipa::ToSchema;

use crate::domain::{Role, UserStatus};
use crate::services::TokenPair;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Opaque id.
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub status: UserStatus,
    pub email_verified: bool,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

impl From<UserRecord> for UserView {
    fn from(user: UserRecord) -> Self {
        Self {
            role: Role::parse(&user.role).unwrap_or(Role::Customer),
            status: UserStatus::parse(&user.status).unwrap_or(UserStatus::Disabled),
            email_verified: user.email_verified_at.is_some(),
            created_at: to_datetime(user.created_at).to_rfc3339(),
            updated_at: to_datetime(user.updated_at).to_rfc3339(),
            id: user.id,
            email: user.email,
            name: user.name,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

impl From<TokenPair> for TokenResponse {
    fn from(pair: TokenPair) -> Self {
        Self {
            access_token: pair.access_token,
            refresh_token: pair.refresh_token,
            token_type: "Bearer",
            expires_in: pair.expires_in,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}
