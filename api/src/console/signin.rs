//! Signing in and out. Sign-in goes through the auth service's login — the same
//! password check and the same rate limits (per client address and per account) as
//! `POST /api/v1/auth/login` — and then admits admins only: anyone else's new session is
//! ended at once. Signing out ends the auth session and clears the cookie.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::csrf;
use super::page::{self, ConsoleError};
use super::session::{self, AdminSession};
use super::Console;
use crate::error::ErrorCode;
use crate::http::client_ip::client_ip;
use crate::state::AppState;
use souk_actors::identity::Role;

#[derive(Template)]
#[template(path = "console/login.html")]
struct SignInPage<'a> {
    csrf: &'a str,
    email: &'a str,
    next: &'a str,
    problem: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    email: Option<String>,
    password: Option<String>,
    csrf: Option<String>,
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

/// Where to go after signing in: a console page, never another site. Printable ASCII
/// only (no space, control or other character), so it is always a valid `Location`.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next)
            if next.starts_with("/admin/")
                && !next.contains("//")
                && !next.contains('\\')
                && next.len() <= 300
                && next.bytes().all(|byte| byte.is_ascii_graphic()) =>
        {
            next
        }
        _ => "/admin/stock",
    }
}

/// The sign-in page with a form token (the cookie's, or a new one).
fn sign_in_page(
    console: &Console,
    request: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    email: &str,
    next: &str,
    problem: Option<&str>,
) -> HttpResponse {
    let existing = csrf::sign_in_token(console, request);
    let token = existing
        .clone()
        .unwrap_or_else(souk_actors::identity::secret_token::generate);
    let mut response = page::render(
        status,
        &SignInPage {
            csrf: &token,
            email,
            next,
            problem,
        },
    );
    if existing.is_none() {
        let cookie = csrf::sign_in_cookie(console, &token, session::over_tls(request, state));
        let _ = response.add_cookie(&cookie);
    }
    response
}

pub async fn form(
    state: web::Data<AppState>,
    console: web::Data<Console>,
    request: HttpRequest,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let next = safe_next(query.next.as_deref());
    if session::authenticate(&state, &console, &request)
        .await
        .is_ok()
    {
        return Ok(page::see_other(next));
    }
    Ok(sign_in_page(
        &console,
        &request,
        &state,
        StatusCode::OK,
        "",
        next,
        None,
    ))
}

pub async fn sign_in(
    state: web::Data<AppState>,
    console: web::Data<Console>,
    request: HttpRequest,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, ConsoleError> {
    let form = form.into_inner();
    csrf::check_sign_in(&console, &request, form.csrf.as_deref())?;
    let next = safe_next(form.next.as_deref());
    let email = form.email.unwrap_or_default();
    let refuse = |status: StatusCode, problem: &str| {
        sign_in_page(
            &console,
            &request,
            &state,
            status,
            &email,
            next,
            Some(problem),
        )
    };
    let ip = client_ip(&request, state.config.http.trust_forwarded_for);
    let pair = match state
        .auth
        .login(&email, form.password.as_deref().unwrap_or(""), &ip)
        .await
    {
        Ok(pair) => pair,
        Err(error) => {
            let problem = match error.code() {
                ErrorCode::InvalidCredentials => "Wrong email or password.".to_owned(),
                ErrorCode::RateLimited => format!("Too many attempts: {}.", error.detail()),
                ErrorCode::AccountDisabled => "This account is disabled.".to_owned(),
                _ => return Err(error.into()),
            };
            return Ok(refuse(crate::error::http_status(error.code()), &problem));
        }
    };
    let claims = state.auth.jwt().verify(&pair.access_token)?;
    let principal = state.users.principal(&claims.sub).await?;
    if principal.role != Role::Admin {
        // Not an admin: the session the login opened is closed again at once.
        if let Err(error) = state.auth.logout(&pair.refresh_token).await {
            tracing::warn!(%error, "cannot end the session of a refused console sign-in");
        }
        tracing::info!(user_id = %principal.id, "console sign-in refused: not an admin");
        return Ok(refuse(
            StatusCode::FORBIDDEN,
            "This console is for admins only.",
        ));
    }
    let admin = AdminSession::start(principal.id, claims.sid, pair.refresh_token);
    tracing::info!(user_id = %admin.user_id, session_id = %admin.session_id, "console sign-in");
    let secure = session::over_tls(&request, &state);
    let mut response = page::see_other(next);
    let _ = response.add_cookie(&admin.cookie(&console, secure));
    let mut spent = actix_web::cookie::Cookie::build(csrf::SIGN_IN_COOKIE, "")
        .path("/admin")
        .finish();
    spent.make_removal();
    let _ = response.add_cookie(&spent);
    Ok(response)
}

pub async fn sign_out(
    state: web::Data<AppState>,
    admin: AdminSession,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    csrf::check(&admin, form.csrf.as_deref())?;
    if let Err(error) = state.auth.logout(admin.refresh_token()).await {
        tracing::warn!(%error, "cannot end the auth session on console sign-out");
    }
    tracing::info!(user_id = %admin.user_id, session_id = %admin.session_id, "console sign-out");
    let mut response = page::see_other("/admin/login");
    let _ = response.add_cookie(&session::removal());
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_a_console_page_that_makes_a_valid_location() {
        assert_eq!(
            safe_next(Some("/admin/stock/SKU-1?page=2")),
            "/admin/stock/SKU-1?page=2"
        );
        for bad in [
            None,
            Some("https://evil.example/admin/"),
            Some("//evil.example/admin/"),
            Some("/admin//evil"),
            Some("/admin/\\evil"),
            Some("/admin/a\nb"),
            Some("/admin/a\rLocation: x"),
            Some("/admin/a\tb"),
            Some("/admin/a\u{7f}b"),
            Some("/admin/a b"),
            Some("/admin/caf\u{e9}"),
        ] {
            assert_eq!(safe_next(bad), "/admin/stock", "{bad:?}");
        }
    }
}
