//! The account pages with a form: each GET shows the form for the token in its link,
//! each POST spends the token and says what happened.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use souk_actors::identity::Password;

use super::page::{self, Field, Form, Page, PageError};
use crate::http::client_ip::client_ip;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    pub token: String,
}

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    pub token: String,
}

#[derive(Debug, Deserialize)]
pub struct ResetForm {
    pub token: String,
    pub new_password: String,
}

#[derive(Debug, Deserialize)]
pub struct ForgotForm {
    pub email: String,
}

/// A page whose form sends the link's token back with one button.
fn token_page(title: &str, message: &str, action: &str, token: &str, button: &str) -> HttpResponse {
    page::render(
        StatusCode::OK,
        &Page {
            title,
            message,
            form: Some(Form {
                action,
                hidden: vec![("token", token)],
                fields: Vec::new(),
                button,
            }),
        },
    )
}

/// A page with the form that asks for a password-reset link.
fn forgot_page(title: &str, message: &str) -> HttpResponse {
    page::render(
        StatusCode::OK,
        &Page {
            title,
            message,
            form: Some(Form {
                action: "/account/forgot-password",
                hidden: Vec::new(),
                fields: vec![Field {
                    name: "email",
                    label: "Email address",
                    kind: "email",
                    autocomplete: "email",
                }],
                button: "Send me a link",
            }),
        },
    )
}

/// `GET /account`: where every mail's footer points.
pub async fn home() -> HttpResponse {
    forgot_page(
        "Your Souk account",
        "Your account is used through the shop's apps. Lost your password? Ask for a link to choose a new one.",
    )
}

/// `GET /account/verify-email?token=…`: the welcome mail's link.
pub async fn verify_email_form(query: web::Query<TokenQuery>) -> HttpResponse {
    token_page(
        "Confirm your email address",
        "Confirm that this email address is yours to finish setting up your Souk account.",
        "/account/verify-email",
        &query.token,
        "Confirm my email address",
    )
}

pub async fn verify_email(
    state: web::Data<AppState>,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, PageError> {
    state.email.verify_email(&form.token).await?;
    Ok(page::message(
        StatusCode::OK,
        "Email address confirmed",
        "Thank you: your email address is confirmed. You can close this page.",
    ))
}

/// `GET /account/confirm-email?token=…`: the link mailed to a new address.
pub async fn confirm_email_form(query: web::Query<TokenQuery>) -> HttpResponse {
    token_page(
        "Confirm your new email address",
        "Confirm to make this address the one your Souk account uses from now on.",
        "/account/confirm-email",
        &query.token,
        "Use this address",
    )
}

pub async fn confirm_email(
    state: web::Data<AppState>,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, PageError> {
    state.email.confirm_email_change(&form.token).await?;
    Ok(page::message(
        StatusCode::OK,
        "Email address changed",
        "Your account now uses this address; sign in with it from now on.",
    ))
}

fn reset_page(status: StatusCode, message: &str, token: &str) -> HttpResponse {
    page::render(
        status,
        &Page {
            title: "Choose a new password",
            message,
            form: Some(Form {
                action: "/account/reset-password",
                hidden: vec![("token", token)],
                fields: vec![Field {
                    name: "new_password",
                    label: "New password",
                    kind: "password",
                    autocomplete: "new-password",
                }],
                button: "Set my password",
            }),
        },
    )
}

/// `GET /account/reset-password?token=…`: the password-reset mail's link.
pub async fn reset_password_form(query: web::Query<TokenQuery>) -> HttpResponse {
    let hint = format!(
        "At least {} characters. Every device signed in to your account will be signed out.",
        Password::MIN_CHARS
    );
    reset_page(StatusCode::OK, &hint, &query.token)
}

pub async fn reset_password(
    state: web::Data<AppState>,
    form: web::Form<ResetForm>,
) -> Result<HttpResponse, PageError> {
    let password = match Password::parse(&form.new_password) {
        Ok(password) => password,
        Err(problem) => {
            return Ok(reset_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("That password cannot be used: it {problem}. Choose another."),
                &form.token,
            ))
        }
    };
    state
        .auth
        .confirm_password_reset(&form.token, &password)
        .await?;
    Ok(page::message(
        StatusCode::OK,
        "Password changed",
        "Your new password is set and every other session is signed out. Sign in with it.",
    ))
}

/// `GET /account/forgot-password`: where a user asks for a reset link (the email
/// change notice links here).
pub async fn forgot_password_form() -> HttpResponse {
    forgot_page(
        "Reset your password",
        "Give your account's email address; we send a link to choose a new password.",
    )
}

pub async fn forgot_password(
    request: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<ForgotForm>,
) -> Result<HttpResponse, PageError> {
    let ip = client_ip(&request, state.config.http.trust_forwarded_for);
    state.auth.request_password_reset(&form.email, &ip).await?;
    // The same answer whether or not the address has an account.
    Ok(page::message(
        StatusCode::OK,
        "Check your inbox",
        "If an account uses this address, a link to choose a new password is on its way.",
    ))
}
