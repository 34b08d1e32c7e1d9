//! Console sessions: an encrypted, authenticated cookie (AES-256-GCM, actix-web's
//! private cookie jar) naming the admin, the auth session (refresh family) the sign-in
//! opened, its refresh token (to end it on sign-out) and the CSRF token of its forms.
//! Every request checks, besides the cookie, that the account is still an active admin
//! and that the auth session is still live, so signing out, a password change or reset,
//! disabling or demoting the account all end console access at once.

use actix_web::cookie::{Cookie, CookieJar, SameSite};
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};

use super::page::ConsoleError;
use super::Console;
use crate::state::AppState;
use souk_actors::identity::Role;

pub const SESSION_COOKIE: &str = "souk_console";
/// A console session lasts a working day, whatever happens meanwhile.
pub const SESSION_MAX_AGE_SECS: i64 = 8 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sealed {
    #[serde(rename = "u")]
    user_id: String,
    #[serde(rename = "s")]
    session_id: String,
    #[serde(rename = "r")]
    refresh_token: String,
    #[serde(rename = "c")]
    csrf: String,
    /// Unix seconds.
    #[serde(rename = "i")]
    issued_at: i64,
}

/// A signed-in, active admin with a live session.
#[derive(Debug, Clone)]
pub struct AdminSession {
    pub user_id: String,
    pub session_id: String,
    pub csrf: String,
    refresh_token: String,
}

impl AdminSession {
    /// A new console session for an admin who just signed in.
    pub fn start(user_id: String, session_id: String, refresh_token: String) -> Self {
        Self {
            user_id,
            session_id,
            refresh_token,
            csrf: souk_actors::identity::secret_token::generate(),
        }
    }

    pub fn refresh_token(&self) -> &str {
        &self.refresh_token
    }

    /// The encrypted cookie holding this session.
    pub fn cookie(&self, console: &Console, secure: bool) -> Cookie<'static> {
        let sealed = Sealed {
            user_id: self.user_id.clone(),
            session_id: self.session_id.clone(),
            refresh_token: self.refresh_token.clone(),
            csrf: self.csrf.clone(),
            issued_at: chrono::Utc::now().timestamp(),
        };
        let value = serde_json::to_string(&sealed).unwrap_or_default();
        let cookie = hardened(
            Cookie::build(SESSION_COOKIE, value),
            secure,
            SESSION_MAX_AGE_SECS,
        );
        seal(console, cookie)
    }
}

/// HttpOnly, SameSite=Strict, scoped to `/admin`, Secure over TLS.
pub fn hardened(
    builder: actix_web::cookie::CookieBuilder<'static>,
    secure: bool,
    max_age_secs: i64,
) -> Cookie<'static> {
    builder
        .path("/admin")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age_secs))
        .finish()
}

/// Encrypts a cookie's value with the console key (the name is authenticated too).
pub fn seal(console: &Console, cookie: Cookie<'static>) -> Cookie<'static> {
    let mut jar = CookieJar::new();
    jar.private_mut(console.key()).add(cookie);
    jar.delta()
        .next()
        .cloned()
        .unwrap_or_else(|| Cookie::new("", ""))
}

/// The decrypted value of a sealed cookie, if it is there and genuine.
pub fn unseal(console: &Console, request: &HttpRequest, name: &str) -> Option<String> {
    let cookie = request.cookie(name)?;
    let mut jar = CookieJar::new();
    jar.add_original(cookie);
    jar.private(console.key())
        .get(name)
        .map(|cookie| cookie.value().to_owned())
}

/// Clears the session cookie.
pub fn removal() -> Cookie<'static> {
    let mut cookie = Cookie::build(SESSION_COOKIE, "").path("/admin").finish();
    cookie.make_removal();
    cookie
}

/// Whether the browser reached the console over TLS (directly, or through a proxy that
/// says so, or as the configured public address says): then cookies are `Secure`.
pub fn over_tls(request: &HttpRequest, state: &AppState) -> bool {
    request.connection_info().scheme() == "https"
        || state.config.http.public_base_url.starts_with("https://")
}

fn read(console: &Console, request: &HttpRequest) -> Option<Sealed> {
    let value = unseal(console, request, SESSION_COOKIE)?;
    let sealed: Sealed = serde_json::from_str(&value).ok()?;
    let age = chrono::Utc::now().timestamp() - sealed.issued_at;
    (0..SESSION_MAX_AGE_SECS).contains(&age).then_some(sealed)
}

/// The session of the request, checked against the accounts and sessions of now.
pub async fn authenticate(
    state: &AppState,
    console: &Console,
    request: &HttpRequest,
) -> Result<AdminSession, ConsoleError> {
    let Some(sealed) = read(console, request) else {
        return Err(ConsoleError::SignIn);
    };
    let principal = match state
        .auth
        .session_principal(&sealed.user_id, &sealed.session_id)
        .await
    {
        Ok(principal) => principal,
        Err(error) if crate::error::http_status(error.code()).is_server_error() => {
            return Err(error.into())
        }
        Err(_) => return Err(ConsoleError::SignIn),
    };
    if principal.role != Role::Admin {
        return Err(ConsoleError::SignIn);
    }
    Ok(AdminSession {
        user_id: sealed.user_id,
        session_id: sealed.session_id,
        csrf: sealed.csrf,
        refresh_token: sealed.refresh_token,
    })
}

impl FromRequest for AdminSession {
    type Error = ConsoleError;
    type Future = LocalBoxFuture<'static, Result<Self, ConsoleError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let state = request
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or(ConsoleError::Internal)?;
            let console = request
                .app_data::<web::Data<Console>>()
                .cloned()
                .ok_or(ConsoleError::Internal)?;
            authenticate(&state, &console, &request).await
        })
    }
}
