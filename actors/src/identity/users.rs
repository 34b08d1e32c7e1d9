//! Users: registration, profiles, account deletion and the admin operations.

use std::sync::Arc;

use serde_json::json;
use souk_db::clock::now_micros;
use souk_db::one_time_tokens::{self, OneTimeToken};
use souk_db::outbox::{self};
use souk_db::users::{self, UserFilter, UserRecord};
use souk_db::{addresses, sessions, Db, DbError};

use crate::cart::CartStore;
use crate::error::{Error, ErrorCode, FieldErrors};
use crate::identity::access::AccessCache;
use crate::identity::rate_limit::AccountGuesses;
use crate::identity::secret_token;
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

/// How long the link that confirms a new email address works.
pub const EMAIL_CHANGE_TTL_SECS: i64 = 24 * 3600;

#[derive(Debug, Default)]
pub struct ProfileChanges {
    pub email: Option<EmailChange>,
    pub name: Option<PersonName>,
}

/// A new address, asked for with the account's current password.
#[derive(Debug)]
pub struct EmailChange {
    pub new_email: Email,
    pub current_password: String,
}

impl ProfileChanges {
    /// Validates the fields a user sent; absent ones stay as they are. A new email
    /// address needs the current password with it.
    pub fn parse(
        email: Option<&str>,
        name: Option<&str>,
        current_password: Option<&str>,
    ) -> Result<Self, Error> {
        let mut errors = FieldErrors::default();
        let new_email = email.and_then(|email| errors.check("email", Email::parse(email)));
        let current_password = current_password.filter(|password| !password.is_empty());
        if email.is_some() && current_password.is_none() {
            errors.push(
                "current_password",
                "is required to change the email address",
            );
        }
        let changes = Self {
            email: new_email
                .zip(current_password)
                .map(|(new_email, password)| EmailChange {
                    new_email,
                    current_password: password.to_owned(),
                }),
            name: name.and_then(|name| errors.check("name", PersonName::parse(name))),
        };
        errors.finish()?;
        Ok(changes)
    }
}

/// Who a valid access token belongs to, as the database says (read per request, or
/// kept by the node's session cache within its bound: see `identity::access`), so a
/// disabled or demoted account loses its powers long before its token expires.
#[derive(Debug, Clone)]
pub struct Principal {
    pub id: String,
    pub role: Role,
}

/// The principal of an account as read, or why a token of it no longer acts.
pub(crate) fn principal_of(user: Option<UserRecord>) -> Result<Principal, Error> {
    let user = user.ok_or_else(|| {
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

#[derive(Clone)]
pub struct UserService {
    db: Db,
    hasher: PasswordHasher,
    /// Bounds the checks of the current password that an email change makes.
    guesses: AccountGuesses,
    access: AccessCache,
    /// Where carts live when not (only) in the database: an account's cart goes with it.
    carts: Option<Arc<dyn CartStore>>,
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
    /// `access` is the node's cache of live sessions, which this service's changes of
    /// access keep current; `guesses` bounds the password checks of email changes, with
    /// sign-ins' (`AuthService`).
    pub fn new(
        db: Db,
        hasher: PasswordHasher,
        guesses: AccountGuesses,
        access: AccessCache,
    ) -> Self {
        Self {
            db,
            hasher,
            guesses,
            access,
            carts: None,
        }
    }

    /// The same service, deleting an account's cart from `carts` too (Redis).
    pub fn with_carts(self, carts: Arc<dyn CartStore>) -> Self {
        Self {
            carts: Some(carts),
            ..self
        }
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
            // An admin is created by an operator, who vouches for the address; it gets
            // no welcome mail asking to verify it.
            email_verified_at: (role == Role::Admin).then_some(now),
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
        principal_of(users::find_by_id(self.db.pool(), id).await?)
    }

    /// A new name applies at once. A new email address, checked against the current
    /// password, does not: it takes effect when the link mailed to it is opened
    /// (`EmailService::confirm_email_change`), and the current address is told of the
    /// request (`user.email_change_requested`, in the same transaction). So a stolen
    /// access token alone cannot move an account, and its password resets, elsewhere.
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
        let now = now_micros();
        let mut email_change = None;
        if let Some(change) = changes
            .email
            .filter(|change| change.new_email.as_str() != user.email)
        {
            let right = self
                .guesses
                .check(&user.email, async {
                    self.hasher
                        .verify(&change.current_password, &user.password_hash)
                        .await
                })
                .await?;
            if !right {
                return Err(Error::from_code(ErrorCode::WrongPassword));
            }
            let new_email = change.new_email.as_str().to_owned();
            if users::find_by_email(self.db.pool(), &new_email)
                .await?
                .is_some()
            {
                return Err(email_taken(DbError::UniqueViolation { constraint: None }));
            }
            let token = secret_token::generate();
            let record = OneTimeToken {
                id: souk_db::ids::new_id(),
                token_hash: secret_token::hash(&token),
                user_id: user.id.clone(),
                created_at: now,
                expires_at: now + EMAIL_CHANGE_TTL_SECS * 1_000_000,
                used_at: None,
            };
            // The mailer needs the token to build the link, as for a password reset.
            let requested = Topic::EmailChangeRequested.event(
                &user.id,
                &json!({
                    "user_id": user.id,
                    "name": user.name,
                    "email": user.email,
                    "new_email": new_email,
                    "token": token,
                    "expires_at": record.expires_at,
                }),
            )?;
            email_change = Some((record, new_email, requested));
        }
        user.updated_at = now;
        let mut transaction = self.db.begin().await?;
        // Only the name is written: the address changes only by its confirmation, which
        // may land while this request runs.
        if !users::rename(&mut *transaction, &user.id, &user.name, now).await? {
            return Err(Error::not_found("user"));
        }
        if let Some((record, new_email, requested)) = &email_change {
            one_time_tokens::insert_email_change(&mut *transaction, record, new_email).await?;
            outbox::append(&mut *transaction, requested).await?;
        }
        transaction.commit().await.map_err(DbError::from)?;
        if email_change.is_some() {
            tracing::info!(user_id = %user.id, "email change requested");
        }
        // As it is now, with any confirmation that landed meanwhile.
        self.get(id).await
    }

    /// Deletes the account, its sessions, its address book and its cart (in the
    /// database, in the transaction; in the cart store, Redis, right after it commits);
    /// `user.deleted` lets other domains forget it. Its orders keep their address
    /// snapshots.
    #[tracing::instrument(name = "delete_user", skip(self))]
    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        let deleted_event = Topic::UserDeleted.event(id, &json!({"user_id": id}))?;
        let mut transaction = self.db.begin().await?;
        sessions::delete_user_tokens(&mut transaction, id).await?;
        addresses::delete_for_user(&mut *transaction, id).await?;
        souk_db::carts::delete(&mut *transaction, &crate::cart::user_key(id), None).await?;
        if !users::delete(&mut *transaction, id).await? {
            return Err(Error::not_found("user"));
        }
        outbox::append(&mut *transaction, &deleted_event).await?;
        transaction.commit().await.map_err(DbError::from)?;
        self.access.forget_account(id);
        if let Some(carts) = &self.carts {
            // Best effort: the account is gone either way, and its id is never reused,
            // so a cart left behind is unreachable.
            if let Err(error) = carts.delete(&crate::cart::user_key(id), None).await {
                tracing::warn!(%error, user_id = %id, "the deleted account's cart could not be deleted");
            }
        }
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
        self.access.commit_change(transaction, target_id).await?;
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
            let mut transaction = self.db.begin().await?;
            users::set_role(&mut *transaction, &existing.id, Role::Admin.as_str(), now).await?;
            self.access.commit_change(transaction, &existing.id).await?;
            existing.role = Role::Admin.as_str().to_owned();
            existing.updated_at = now;
            return Ok((existing, false));
        }
        let created = self.create(registration, Role::Admin).await?;
        Ok((created, true))
    }
}
