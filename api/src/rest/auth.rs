//! `/api/v1/auth/*`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::error::{ApiResult, Error, FieldErrors, Problem};
use crate::http::client_ip::client_ip;
use crate::http::json::Json;
use crate::rest::views::{TokenResponse, UserView};
use crate::state::AppState;
use souk_actors::identity::users::Registration;
use souk_actors::identity::Password;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(min_length = 1, max_length = 254)]
    pub email: String,
    /// 8 characters to 72 bytes (UTF-8), not only whitespace.
    #[schema(min_length = 8, max_length = 72)]
    pub password: String,
    /// 1 to 100 characters, at least one visible.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// 8 characters to 72 bytes (UTF-8), not only whitespace.
    #[schema(min_length = 8, max_length = 72)]
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetConfirmRequest {
    pub token: String,
    /// 8 characters to 72 bytes (UTF-8), not only whitespace.
    #[schema(min_length = 8, max_length = 72)]
    pub new_password: String,
}

#[utoipa::path(post, path = "/api/v1/auth/register", operation_id = "register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = UserView), (status = 409, description = "email_taken", body = Problem), (status = 422, body = Problem),
              (status = 429, description = "rate_limited: too many sign-ups from this address; see Retry-After", body = Problem)))]
pub async fn register(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Json<RegisterRequest>,
) -> ApiResult<HttpResponse> {
    let registration = Registration::parse(&body.email, &body.password, &body.name)?;
    let ip = client_ip(&request, state.config.http.trust_forwarded_for);
    state.auth.admit_registration(&ip).await?;
    let user = state.users.register(registration).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", "/api/v1/users/me"))
        .json(UserView::try_from(user)?))
}

#[utoipa::path(post, path = "/api/v1/auth/login", operation_id = "login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, description = "invalid_credentials", body = Problem),
              (status = 403, description = "account_disabled", body = Problem),
              (status = 429, description = "rate_limited; see Retry-After", body = Problem)))]
pub async fn login(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Json<LoginRequest>,
) -> ApiResult<HttpResponse> {
    let ip = client_ip(&request, state.config.http.trust_forwarded_for);
    let pair = state.auth.login(&body.email, &body.password, &ip).await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(pair)))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", operation_id = "refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse),
              (status = 401, description = "invalid_refresh_token or refresh_token_reused (the session is then revoked)", body = Problem),
              (status = 403, description = "account_disabled", body = Problem)))]
pub async fn refresh(
    state: web::Data<AppState>,
    body: Json<RefreshRequest>,
) -> ApiResult<HttpResponse> {
    let pair = state.auth.refresh(&body.refresh_token).await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(pair)))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", operation_id = "logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "the session is revoked"), (status = 401, description = "invalid_refresh_token", body = Problem)))]
pub async fn logout(
    state: web::Data<AppState>,
    body: Json<RefreshRequest>,
) -> ApiResult<HttpResponse> {
    state.auth.logout(&body.refresh_token).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/auth/password", operation_id = "change_password", tag = "auth", request_body = ChangePasswordRequest, security(("bearer" = [])),
    responses((status = 204, description = "changed; every other session is revoked"),
              (status = 403, description = "wrong_password or account_disabled", body = Problem), (status = 422, body = Problem),
              (status = 429, description = "rate_limited: too many wrong passwords for this account (counted with sign-ins); see Retry-After", body = Problem)))]
pub async fn change_password(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Json<ChangePasswordRequest>,
) -> ApiResult<HttpResponse> {
    let mut errors = FieldErrors::default();
    let new_password = errors.check("new_password", Password::parse(&body.new_password));
    errors.finish()?;
    let Some(new_password) = new_password else {
        return Err(Error::internal("validated fields missing").into());
    };
    state
        .auth
        .change_password(
            &user.id,
            &user.session_id,
            &body.current_password,
            &new_password,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/auth/password-reset", operation_id = "request_password_reset", tag = "auth", request_body = PasswordResetRequest,
    responses((status = 202, description = "accepted, whether or not the address has an account"), (status = 429, description = "rate_limited; see Retry-After", body = Problem)))]
pub async fn request_password_reset(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Json<PasswordResetRequest>,
) -> ApiResult<HttpResponse> {
    let ip = client_ip(&request, state.config.http.trust_forwarded_for);
    state.auth.request_password_reset(&body.email, &ip).await?;
    Ok(HttpResponse::Accepted().finish())
}

#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", operation_id = "confirm_password_reset", tag = "auth", request_body = PasswordResetConfirmRequest,
    responses((status = 204, description = "password set; every session is revoked"), (status = 400, description = "invalid_reset_token", body = Problem),
              (status = 422, body = Problem)))]
pub async fn confirm_password_reset(
    state: web::Data<AppState>,
    body: Json<PasswordResetConfirmRequest>,
) -> ApiResult<HttpResponse> {
    let mut errors = FieldErrors::default();
    let new_password = errors.check("new_password", Password::parse(&body.new_password));
    errors.finish()?;
    let Some(new_password) = new_password else {
        return Err(Error::internal("validated fields missing").into());
    };
    state
        .auth
        .confirm_password_reset(&body.token, &new_password)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VerifyEmailQuery {
    /// The token of the link in the welcome mail.
    pub token: String,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct EmailVerified {
    pub status: &'static str,
    pub user_id: String,
}

/// Mails the caller a new verification link (the first one came with the welcome mail).
#[utoipa::path(post, path = "/api/v1/auth/verify-email/resend", operation_id = "resend_verification_email", tag = "auth", security(("bearer" = [])),
    responses((status = 202, description = "a new verification link is on its way"), (status = 409, description = "already_verified", body = Problem),
              (status = 429, description = "rate_limited; see Retry-After", body = Problem)))]
pub async fn resend_verification_email(
    state: web::Data<AppState>,
    user: AuthUser,
) -> ApiResult<HttpResponse> {
    state.auth.resend_verification(&user.id).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// The link of the welcome mail: single use, expiring.
#[utoipa::path(get, path = "/api/v1/auth/verify-email", operation_id = "verify_email", tag = "auth", params(VerifyEmailQuery),
    responses((status = 200, body = EmailVerified), (status = 400, description = "invalid_verification_token or invalid_query", body = Problem)))]
pub async fn verify_email(
    state: web::Data<AppState>,
    query: web::Query<VerifyEmailQuery>,
) -> ApiResult<HttpResponse> {
    let user_id = state.email.verify_email(&query.token).await?;
    Ok(HttpResponse::Ok().json(EmailVerified {
        status: "verified",
        user_id,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmEmailChangeRequest {
    /// The token of the link mailed to the new address.
    #[schema(min_length = 1, max_length = 128)]
    pub token: String,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct EmailChanged {
    pub status: &'static str,
    pub user_id: String,
}

/// Spends the token mailed to a new address and moves the account to it (verified).
#[utoipa::path(post, path = "/api/v1/auth/confirm-email-change", operation_id = "confirm_email_change", tag = "auth", request_body = ConfirmEmailChangeRequest,
    responses((status = 200, body = EmailChanged), (status = 400, description = "invalid_verification_token", body = Problem),
              (status = 409, description = "email_taken: the address was registered meanwhile", body = Problem)))]
pub async fn confirm_email_change(
    state: web::Data<AppState>,
    body: Json<ConfirmEmailChangeRequest>,
) -> ApiResult<HttpResponse> {
    let user_id = state.email.confirm_email_change(&body.token).await?;
    Ok(HttpResponse::Ok().json(EmailChanged {
        status: "email_changed",
        user_id,
    }))
}
