//! Logins, refresh-token rotation, logout, password change and password reset.
//!
//! A login starts a session: a family of refresh tokens. Each refresh spends the
//! presented token and issues the next one of the family; presenting a spent token
//! again means it was stolen (or a client is broken), so the whole family is revoked.

use std::time::Duration;

use serde_json::json;
use souk_db::clock::now_micros;
use souk_db::one_time_tokens::{self, OneTimeToken, TokenKind};
use souk_db::outbox::{self};
use souk_db::sessions::{self, RefreshTokenRecord};
use souk_db::users::{self, UserRecord};
use souk_db::{Db, DbError};

use crate::error::{Error, ErrorCode};
use crate::identity::access::AccessCache;
use crate::identity::rate_limit::{AccountGuesses, RateLimiter};
use crate::identity::users::{principal_of, Principal};
use crate::identity::{secret_token, JwtKeys, PasswordHasher};
use crate::identity::{Email, Password, UserStatus};
use crate::outbox::Topic;

#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
}

#[derive(Debug, Clone)]
pub struct LoginLimits {
    pub max_failures_per_account: u32,
    pub max_attempts_per_ip: u32,
    /// Sign-ups per client address per window (each costs a bcrypt hash).
    pub max_registrations_per_ip: u32,
    /// Guest carts per client address per window (each is a stored row that lives for
    /// days, made without an account).
    pub max_guest_carts_per_ip: u32,
    /// Verification mails one account may ask for per window.
    pub max_verification_resends: u32,
    pub window: Duration,
}

/// What the node's configuration decides for sign-ins and tokens.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub limits: LoginLimits,
    pub refresh_token_ttl: Duration,
    pub password_reset_ttl: Duration,
}

#[derive(Clone)]
pub struct AuthService {
    db: Db,
    jwt: JwtKeys,
    hasher: PasswordHasher,
    limiter: RateLimiter,
    guesses: AccountGuesses,
    limits: LoginLimits,
    refresh_ttl_micros: i64,
    reset_ttl_micros: i64,
    access: AccessCache,
}

fn secs_to_micros(seconds: u64) -> i64 {
    i64::try_from(seconds.saturating_mul(1_000_000)).unwrap_or(i64::MAX / 2)
}

impl AuthService {
    pub fn new(
        db: Db,
        jwt: JwtKeys,
        hasher: PasswordHasher,
        limiter: RateLimiter,
        settings: AuthSettings,
        access: AccessCache,
    ) -> Self {
        Self {
            access,
            db,
            jwt,
            hasher,
            guesses: AccountGuesses::new(
                limiter.clone(),
                settings.limits.max_failures_per_account,
                settings.limits.window,
            ),
            limiter,
            limits: settings.limits,
            refresh_ttl_micros: secs_to_micros(settings.refresh_token_ttl.as_secs()),
            reset_ttl_micros: secs_to_micros(settings.password_reset_ttl.as_secs()),
        }
    }

    pub fn jwt(&self) -> &JwtKeys {
        &self.jwt
    }

    /// The node's cache of live sessions (its task follows the access events).
    pub fn access(&self) -> &AccessCache {
        &self.access
    }

    /// Counts one attempt against `key`: refused with `rate_limited` (and when to
    /// retry) past `max` in the window.
    async fn admit(&self, key: &str, max: u32) -> Result<(), Error> {
        self.limiter
            .hit(key, max, self.limits.window)
            .await
            .map_err(|limited| Error::rate_limited(limited.retry_after.as_secs()))
    }

    /// Counts a sign-up against the client address; refused with `rate_limited` (and
    /// when to retry) past the limit, before any password is hashed.
    pub async fn admit_registration(&self, client_ip: &str) -> Result<(), Error> {
        self.admit(
            &format!("register:ip:{client_ip}"),
            self.limits.max_registrations_per_ip,
        )
        .await
    }

    /// Counts a new guest cart against the client address; refused with `rate_limited`
    /// (and when to retry) past the limit, before anything is stored.
    pub async fn admit_guest_cart(&self, client_ip: &str) -> Result<(), Error> {
        self.admit(
            &format!("guest-cart:ip:{client_ip}"),
            self.limits.max_guest_carts_per_ip,
        )
        .await
    }

    /// Every attempt counts against the client address; wrong passwords count against
    /// the account too (`AccountGuesses`), so a guesser spread over many addresses is
    /// still stopped.
    #[tracing::instrument(name = "login", skip_all, fields(client_ip))]
    pub async fn login(
        &self,
        raw_email: &str,
        password: &str,
        client_ip: &str,
    ) -> Result<TokenPair, Error> {
        tracing::Span::current().record("client_ip", client_ip);
        let ip_key = format!("login:ip:{client_ip}");
        self.admit(&ip_key, self.limits.max_attempts_per_ip).await?;
        let email =
            Email::parse(raw_email).map_err(|_| Error::from_code(ErrorCode::InvalidCredentials))?;
        let user = users::find_by_email(self.db.pool(), email.as_str()).await?;
        let verified = self
            .guesses
            .check(email.as_str(), async {
                match &user {
                    Some(user) => self.hasher.verify(password, &user.password_hash).await,
                    None => self.hasher.verify_decoy(password).await.map(|_| false),
                }
            })
            .await?;
        let Some(user) = user.filter(|_| verified) else {
            tracing::info!("login refused: wrong email or password");
            return Err(Error::from_code(ErrorCode::InvalidCredentials));
        };
        if user.status != UserStatus::Active.as_str() {
            return Err(Error::from_code(ErrorCode::AccountDisabled));
        }
        let family_id = souk_db::ids::new_id();
        let (refresh_token, record) = self.new_refresh_token(&user.id, &family_id);
        sessions::insert_refresh_token(self.db.pool(), &record).await?;
        tracing::info!(user_id = %user.id, session_id = %family_id, "login");
        self.pair(&user, &family_id, refresh_token)
    }

    #[tracing::instrument(name = "refresh", skip_all)]
    pub async fn refresh(&self, presented: &str) -> Result<TokenPair, Error> {
        let invalid = || Error::from_code(ErrorCode::InvalidRefreshToken);
        if !secret_token::looks_valid(presented) {
            return Err(invalid());
        }
        let current = sessions::find_refresh_token(self.db.pool(), &secret_token::hash(presented))
            .await?
            .ok_or_else(invalid)?;
        if current.revoked_at.is_some() {
            return Err(invalid());
        }
        let now = now_micros();
        if current.expires_at <= now {
            return Err(invalid());
        }
        let mut transaction = self.db.begin().await?;
        // The transaction writes first: conditional on the token still being unspent, so
        // of two refreshes racing with one token one wins and the other is treated as the
        // reuse it is (and SQLite takes its write lock before reading anything stale).
        if !sessions::mark_refresh_token_used(&mut *transaction, &current.id, now).await? {
            return self.revoke_after_reuse(transaction, &current).await;
        }
        let user = users::find_by_id(&mut *transaction, &current.user_id)
            .await?
            .ok_or_else(invalid)?;
        if user.status != UserStatus::Active.as_str() {
            return Err(Error::from_code(ErrorCode::AccountDisabled));
        }
        let (refresh_token, record) = self.new_refresh_token(&user.id, &current.family_id);
        sessions::insert_refresh_token(&mut *transaction, &record).await?;
        transaction.commit().await.map_err(DbError::from)?;
        self.pair(&user, &current.family_id, refresh_token)
    }

    async fn revoke_after_reuse(
        &self,
        mut transaction: souk_db::Transaction,
        token: &RefreshTokenRecord,
    ) -> Result<TokenPair, Error> {
        let revoked =
            sessions::revoke_family(&mut *transaction, &token.family_id, now_micros()).await?;
        self.access
            .commit_change(transaction, &token.user_id)
            .await?;
        tracing::warn!(user_id = %token.user_id, session_id = %token.family_id, revoked, "refresh token reused; session revoked");
        metrics::counter!("souk_auth_refresh_reuse_total").increment(1);
        Err(Error::from_code(ErrorCode::RefreshTokenReused))
    }

    /// Ends the session the token belongs to. Logging out twice is not an error.
    #[tracing::instrument(name = "logout", skip_all)]
    pub async fn logout(&self, presented: &str) -> Result<(), Error> {
        let invalid = || Error::from_code(ErrorCode::InvalidRefreshToken);
        if !secret_token::looks_valid(presented) {
            return Err(invalid());
        }
        let token = sessions::find_refresh_token(self.db.pool(), &secret_token::hash(presented))
            .await?
            .ok_or_else(invalid)?;
        let mut transaction = self.db.begin().await?;
        sessions::revoke_family(&mut *transaction, &token.family_id, now_micros()).await?;
        self.access
            .commit_change(transaction, &token.user_id)
            .await?;
        tracing::info!(user_id = %token.user_id, session_id = %token.family_id, "logout");
        Ok(())
    }

    /// Changes the password and ends every other session of the account and its pending
    /// email changes; the caller's own session (`session_id`) survives.
    #[tracing::instrument(name = "change_password", skip(self, current_password, new_password))]
    pub async fn change_password(
        &self,
        user_id: &str,
        session_id: &str,
        current_password: &str,
        new_password: &Password,
    ) -> Result<(), Error> {
        let user = users::find_by_id(self.db.pool(), user_id)
            .await?
            .ok_or_else(|| Error::not_found("user"))?;
        let right = self
            .guesses
            .check(&user.email, async {
                self.hasher
                    .verify(current_password, &user.password_hash)
                    .await
            })
            .await?;
        if !right {
            return Err(Error::from_code(ErrorCode::WrongPassword));
        }
        let new_hash = self.hasher.hash(new_password).await?;
        let now = now_micros();
        let mut transaction = self.db.begin().await?;
        users::update_password(&mut *transaction, user_id, &new_hash, now).await?;
        let revoked =
            sessions::revoke_user_sessions(&mut *transaction, user_id, Some(session_id), now)
                .await?;
        sessions::forget_email_changes(&mut *transaction, user_id).await?;
        self.access.commit_change(transaction, user_id).await?;
        tracing::info!(revoked_tokens = revoked, "password changed");
        Ok(())
    }

    /// Always succeeds from the caller's point of view, so it cannot be used to learn
    /// which addresses have accounts. For an active account it stores a hashed,
    /// expiring token and queues `password.reset_requested` in the same transaction.
    #[tracing::instrument(name = "request_password_reset", skip_all, fields(client_ip))]
    pub async fn request_password_reset(
        &self,
        raw_email: &str,
        client_ip: &str,
    ) -> Result<(), Error> {
        tracing::Span::current().record("client_ip", client_ip);
        self.admit(
            &format!("reset:ip:{client_ip}"),
            self.limits.max_attempts_per_ip,
        )
        .await?;
        let Ok(email) = Email::parse(raw_email) else {
            return Ok(());
        };
        let Some(user) = users::find_by_email(self.db.pool(), email.as_str()).await? else {
            return Ok(());
        };
        if user.status != UserStatus::Active.as_str() {
            return Ok(());
        }
        let token = secret_token::generate();
        let now = now_micros();
        let reset = OneTimeToken {
            id: souk_db::ids::new_id(),
            token_hash: secret_token::hash(&token),
            user_id: user.id.clone(),
            created_at: now,
            expires_at: now + self.reset_ttl_micros,
            used_at: None,
        };
        // The mailer needs the token itself to build the link; the event is the only
        // place it exists outside the user's inbox (see README, "Password reset").
        let requested = Topic::PasswordResetRequested.event(
            &user.id,
            &json!({
                "user_id": user.id,
                "email": user.email,
                "name": user.name,
                "reset_id": reset.id,
                "token": token,
                "expires_at": souk_db::clock::to_datetime(reset.expires_at).to_rfc3339(),
            }),
        )?;
        let mut transaction = self.db.begin().await?;
        one_time_tokens::insert(&mut *transaction, TokenKind::PasswordReset, &reset).await?;
        outbox::append(&mut *transaction, &requested).await?;
        transaction.commit().await.map_err(DbError::from)?;
        tracing::info!(user_id = %user.id, "password reset requested");
        Ok(())
    }

    /// Mails the account a new verification link (`user.verification_reminder`), at
    /// most `max_verification_resends` times per window; refused once the address is
    /// verified.
    #[tracing::instrument(name = "resend_verification", skip(self))]
    pub async fn resend_verification(&self, user_id: &str) -> Result<(), Error> {
        let user = users::find_by_id(self.db.pool(), user_id)
            .await?
            .ok_or_else(|| Error::not_found("user"))?;
        if user.email_verified_at.is_some() {
            return Err(Error::new(
                ErrorCode::AlreadyVerified,
                "the email address is already verified",
            ));
        }
        self.admit(
            &format!("verify-resend:account:{user_id}"),
            self.limits.max_verification_resends,
        )
        .await?;
        let event = Topic::UserVerificationReminder.event(
            &user.id,
            &json!({"user_id": user.id, "email": user.email, "name": user.name}),
        )?;
        outbox::append(self.db.pool(), &event).await?;
        tracing::info!(user_id, "verification mail requested");
        Ok(())
    }

    /// Spends the reset token, sets the password and ends every session and pending
    /// email change.
    #[tracing::instrument(name = "confirm_password_reset", skip_all)]
    pub async fn confirm_password_reset(
        &self,
        presented: &str,
        new_password: &Password,
    ) -> Result<(), Error> {
        const INVALID: ErrorCode = ErrorCode::InvalidResetToken;
        let invalid = || Error::from_code(INVALID);
        let kind = TokenKind::PasswordReset;
        let now = now_micros();
        let reset = secret_token::find_live(&self.db, kind, presented, now, INVALID).await?;
        let new_hash = self.hasher.hash(new_password).await?;
        let mut transaction = self.db.begin().await?;
        secret_token::spend(&mut *transaction, kind, &reset, now, INVALID).await?;
        if !users::update_password(&mut *transaction, &reset.user_id, &new_hash, now).await? {
            return Err(invalid());
        }
        sessions::revoke_user_sessions(&mut *transaction, &reset.user_id, None, now).await?;
        sessions::forget_email_changes(&mut *transaction, &reset.user_id).await?;
        self.access
            .commit_change(transaction, &reset.user_id)
            .await?;
        tracing::info!(user_id = %reset.user_id, "password reset completed");
        Ok(())
    }

    /// The active account a live session belongs to: from the node's cache while its
    /// entry is fresh, else read (account and session together) and kept. A token
    /// outlives neither a disabled or deleted account nor a logout, password change or
    /// reset (see `identity::access` for how soon every node knows).
    pub async fn session_principal(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<Principal, Error> {
        if let Some(principal) = self.access.get(user_id, session_id) {
            return Ok(principal);
        }
        let ticket = self.access.ticket();
        let pool = self.db.pool();
        let (user, live) = tokio::try_join!(
            users::find_by_id(pool, user_id),
            sessions::family_live(pool, user_id, session_id, now_micros()),
        )?;
        let principal = principal_of(user)?;
        if !live {
            return Err(Error::new(
                ErrorCode::InvalidToken,
                "the token's session has ended (logged out or revoked)",
            ));
        }
        self.access.put(ticket, &principal, session_id);
        Ok(principal)
    }

    fn new_refresh_token(&self, user_id: &str, family_id: &str) -> (String, RefreshTokenRecord) {
        let token = secret_token::generate();
        let now = now_micros();
        let record = RefreshTokenRecord {
            id: souk_db::ids::new_id(),
            token_hash: secret_token::hash(&token),
            family_id: family_id.to_owned(),
            user_id: user_id.to_owned(),
            issued_at: now,
            expires_at: now + self.refresh_ttl_micros,
            used_at: None,
            revoked_at: None,
        };
        (token, record)
    }

    fn pair(
        &self,
        user: &UserRecord,
        family_id: &str,
        refresh_token: String,
    ) -> Result<TokenPair, Error> {
        Ok(TokenPair {
            access_token: self.jwt.issue(&user.id, &user.role, family_id)?,
            refresh_token,
            expires_in: self.jwt.ttl_secs(),
        })
    }
}
