//! An account as the API shows it, on every edge.

use serde::Serialize;
use souk_db::clock::to_datetime;
use souk_db::users::UserRecord;
use utoipa::ToSchema;

use super::{Role, UserStatus};
use crate::error::Error;

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

impl TryFrom<UserRecord> for UserView {
    type Error = Error;

    /// An account as shown; a stored role or status the code does not know is an
    /// error, never a default.
    fn try_from(user: UserRecord) -> Result<Self, Error> {
        let unknown = |what: &str, value: &str| {
            Error::internal(format!("user {} has an unknown {what} {value:?}", user.id))
        };
        let role = Role::parse(&user.role).ok_or_else(|| unknown("role", &user.role))?;
        let status =
            UserStatus::parse(&user.status).ok_or_else(|| unknown("status", &user.status))?;
        Ok(Self {
            role,
            status,
            email_verified: user.email_verified_at.is_some(),
            created_at: to_datetime(user.created_at).to_rfc3339(),
            updated_at: to_datetime(user.updated_at).to_rfc3339(),
            id: user.id,
            email: user.email,
            name: user.name,
        })
    }
}
