//! Extractors that authenticate the caller from `Authorization: Bearer <jwt>`.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

use crate::error::{ApiError, Error, ErrorCode};
use crate::state::AppState;
use souk_actors::identity::Role;

/// An authenticated, active user.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
    pub role: Role,
    /// The session (refresh-token family) the access token was issued in.
    pub session_id: String,
}

/// An authenticated, active admin; anyone else gets 403.
#[derive(Debug, Clone)]
pub struct AdminUser(pub AuthUser);

fn bearer_token(request: &HttpRequest) -> Result<String, Error> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| {
            Error::new(
                ErrorCode::MissingToken,
                "send an access token as Authorization: Bearer <token>",
            )
        })?;
    let value = value.to_str().map_err(|_| {
        Error::new(
            ErrorCode::InvalidToken,
            "the Authorization header is not text",
        )
    })?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        Error::new(
            ErrorCode::InvalidToken,
            "the Authorization header must be Bearer <token>",
        )
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Error::new(
            ErrorCode::InvalidToken,
            "the Authorization header must be Bearer <token>",
        ));
    }
    Ok(token.trim().to_owned())
}

/// The active user a bearer token belongs to, in a session that is still live; REST's
/// extractors and gRPC's handlers both decide through here.
pub async fn authenticate(state: &AppState, token: &str) -> Result<AuthUser, Error> {
    let claims = state.auth.jwt().verify(token)?;
    if claims.role == souk_actors::identity::jwt::SERVICE_ROLE {
        return Err(Error::new(
            ErrorCode::InvalidToken,
            "service tokens do not act as users",
        ));
    }
    let principal = state
        .auth
        .session_principal(&claims.sub, &claims.sid)
        .await?;
    Ok(AuthUser {
        id: principal.id,
        role: principal.role,
        session_id: claims.sid,
    })
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = request.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(request);
        Box::pin(async move {
            let state = state.ok_or_else(|| Error::internal("app state is not registered"))?;
            Ok(authenticate(&state, &token?).await?)
        })
    }
}

impl FromRequest for AdminUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = AuthUser::from_request(request, payload);
        Box::pin(async move {
            let user = user.await?;
            if user.role != Role::Admin {
                return Err(Error::new(ErrorCode::Forbidden, "this endpoint is for admins").into());
            }
            Ok(AdminUser(user))
        })
    }
}

/// The caller if a token was sent; no token means an anonymous shopper. A token that is
/// sent but invalid is still refused (401), never silently treated as anonymous.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<AuthUser>);

impl FromRequest for MaybeUser {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if !request.headers().contains_key(header::AUTHORIZATION) {
            return Box::pin(async { Ok(MaybeUser(None)) });
        }
        let user = AuthUser::from_request(request, payload);
        Box::pin(async move { Ok(MaybeUser(Some(user.await?))) })
    }
}
