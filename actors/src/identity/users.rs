//! Users: registration, profiles, account deletion and the admin operations.

use serde_json::json;
use souk_db::clock::now_micros;
use souk_db::outbox::{self};
use souk_db::users::{self, UserFilter, UserRecord};
use souk_db::{sessions, Db, DbError};

use crate::error::FieldErrors;
use crate::error::{Error, ErrorCode};
use crate::identity::PasswordHasher;
use crate::identity::{Email, Password, PersonName, Role, UserStatus};
use crate::outbox::Topic;

#[derive(Debug)]
pub struct Registration {
    pub email: Email,
    pub password: Password,
    pub name: PersonName,
}

impl Registration {
    /// Validates raw fields as REST and gRPC receive them, naming each invalid one.
    pub fn parse(email: &str, password: &str, name: &str) -> Result<Self, Error> {
        let mut errors = FieldErrors::default();
        let email = errors.check("email", Email::parse(email));
        let password = errors.check("password", Password::parse(password));
        let name = errors.check("name", PersonName::parse(name));
        errors.finish()?;
        match (email, password, name) {
            (Some(email), Some(password), Some(name)) => Ok(Self {
                email,
                password,
                name,
            }),
            _ => Err(Error::internal("validated fields missing")),
        }
    }
}

#[derive(Debug, Default)]
pub struct ProfileChanges {
    pub email: Option<Email>,
    pub name: Option<PersonName>,
}

impl ProfileChanges {
    /// Validates the fields a user sent; absent ones stay as they are.
    pub fn parse(email: Option<&str>, name: Option<&str>) -> Result<Self, Error> {
        let mut errors = FieldErrors::default();
        let changes = Self {
            email: email.and_then(|email| errors.check("email", Email::parse(email))),
            name: name.and_then(|name| errors.check("name", PersonName::parse(name))),
        };
        errors.finish()?;
        Ok(changes)
    }
}

/// Who a valid access token belongs to, as the database says now (so a disabled or
/// demoted account loses its powers at once, not when its token expires).
#[derive(Debug, Clone)]
pub struct Principal {
    pub id: String,
    pub role: Role,
}

#[derive(Clone)]
pub struct UserService {
    db: Db,
    hasher: PasswordHasher,
}

fn email_taken(error: DbError) -> Error {
    match error {
        DbError::UniqueViolation { .. } => Error::new(
            ErrorCode::EmailTaken,
            "that email address is already registered",
        ),
        other => other.into(),
    }
}

impl UserService {
    pub fn new(db: Db, hasher: PasswordHasher) -> Self {
        Self { db, hasher }
    }

    /// Creates a customer and, in the same transaction, its `user.registered` event.
    #[tracing::instrument(name = "register_user", skip_all)]
    pub async fn register(&self, registration: Registration) -> Result<UserRecord, Error> {
        self.create(registration, Role::Customer).await
    }

    async fn create(&self, registration: Registration, role: Role) -> Result<UserRecord, Error> {
        let password_hash = self.hasher.hash(&registration.password).await?;
        let now = now_micros();
        let user = UserRecord {
            id: souk_db::ids::new_id(),
            email: registration.email.as_str().to_owned(),
            name: registration.name.as_str().to_owned(),
            password_hash,
            role: role.as_str().to_owned(),
            status: UserStatus::Active.as_str().to_owned(),
            email_verified_at: None,
            created_at: now,
            updated_at: now,
        };
        let registered = Topic::UserRegistered.event(
            &user.id,
            &json!({"user_id": user.id, "email": user.email, "name": user.name, "role": user.role}),
        )?;
        let mut transaction = self.db.begin().await?;
        users::insert(&mut *transaction, &user)
            .await
            .map_err(email_taken)?;
        outbox::append(&mut *transaction, &registered).await?;
        transaction.commit().await.map_err(DbError::from)?;
        tracing::info!(user_id = %user.id, role = %user.role, "user registered");
        Ok(user)
    }

    pub async fn get(&self, id: &str) -> Result<UserRecord, Error> {
        if !souk_db::ids::is_well_formed(id) {
            return Err(Error::not_found("user"));
        }
        users::find_by_id(self.db.pool(), id)
            .await?
            .ok_or_else(|| Error::not_found("user"))
    }

    pub async fn principal(&self, id: &str) -> Result<Principal, Error> {
        let user = users::find_by_id(self.db.pool(), id)
            .await?
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::InvalidToken,
                    "the token's account no longer exists",
                )
            })?;
        if user.status != UserStatus::Active.as_str() {
            return Err(Error::from_code(ErrorCode::AccountDisabled));
        }
        let role = Role::parse(&user.role).ok_or_else(|| {
            Error::internal(format!("user {} has unknown role {}", user.id, user.role))
        })?;
        Ok(Principal { id: user.id, role })
    }

    /// Changing the email address makes it unverified again.
    #[tracing::instrument(name = "update_profile", skip(self, changes))]
    pub async fn update_profile(
        &self,
        id: &str,
        changes: ProfileChanges,
    ) -> Result<UserRecord, Error> {
        let mut user = self.get(id).await?;
        if let Some(name) = changes.name {
            user.name = name.as_str().to_owned();
        }
        if let Some(email) = changes.email {
            if email.as_str() != user.email {
                user.email = email.as_str().to_owned();
                user.email_verified_at = None;
            }
        }
        user.updated_at = now_micros();
        let updated = users::update_profile(self.db.pool(), &user)
            .await
            .map_err(email_taken)?;
        if !updated {
            return Err(Error::not_found("user"));
        }
        Ok(user)
    }

    /// Deletes the account and its sessions; `user.deleted` lets other domains forget it.
    #[tracing::instrument(name = "delete_user", skip(self))]
    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        let deleted_event = Topic::UserDeleted.event(id, &json!({"user_id": id}))?;
        let mut transaction = self.db.begin().await?;
        sessions::delete_user_tokens(&mut transaction, id).await?;
        if !users::delete(&mut *transaction, id).await? {
            return Err(Error::not_found("user"));
        }
        outbox::append(&mut *transaction, &deleted_event).await?;
        transaction.commit().await.map_err(DbError::from)?;
        tracing::info!(user_id = %id, "user deleted");
        Ok(())
    }

    pub async fn list(&self, filter: &UserFilter) -> Result<Vec<UserRecord>, Error> {
        Ok(users::list(self.db.pool(), filter).await?)
    }

    /// Disabling also ends every session of the account.
    #[tracing::instrument(name = "set_user_status", skip(self))]
    pub async fn set_status(
        &self,
        admin_id: &str,
        target_id: &str,
        status: UserStatus,
    ) -> Result<UserRecord, Error> {
        if admin_id == target_id && status == UserStatus::Disabled {
            return Err(Error::new(
                ErrorCode::CannotModifySelf,
                "admins cannot disable their own account",
            ));
        }
        let mut user = self.get(target_id).await?;
        let now = now_micros();
        let mut transaction = self.db.begin().await?;
        if !users::set_status(&mut *transaction, target_id, status.as_str(), now).await? {
            return Err(Error::not_found("user"));
        }
        if status == UserStatus::Disabled {
            sessions::revoke_user_sessions(&mut *transaction, target_id, None, now).await?;
        }
        transaction.commit().await.map_err(DbError::from)?;
        tracing::info!(admin_id, user_id = %target_id, status = status.as_str(), "user status changed");
        user.status = status.as_str().to_owned();
        user.updated_at = now;
        Ok(user)
    }

    /// `souk admin create`: makes the account an admin, creating it when it does not
    /// exist. An existing account keeps its password. Returns whether it was created.
    #[tracing::instrument(name = "create_or_promote_admin", skip_all)]
    pub async fn create_or_promote_admin(
        &self,
        registration: Registration,
    ) -> Result<(UserRecord, bool), Error> {
        if let Some(mut existing) =
            users::find_by_email(self.db.pool(), registration.email.as_str()).await?
        {
            let now = now_micros();
            users::set_role(self.db.pool(), &existing.id, Role::Admin.as_str(), now).await?;
            existing.role = Role::Admin.as_str().to_owned();
            existing.updated_at = now;
            return Ok((existing, false));
        }
        let created = self.create(registration, Role::Admin).await?;
        Ok((created, true))
    }
}
