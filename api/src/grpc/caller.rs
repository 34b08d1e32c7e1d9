//! Who calls: the same bearer JWT as REST, in the `authorization` metadata.

use tonic::metadata::MetadataMap;

use crate::auth::{authenticate, AuthUser};
use crate::error::{Error, ErrorCode};
use crate::state::AppState;
use souk_actors::identity::Role;

use souk_actors::identity::jwt::SERVICE_ROLE;

fn bearer(metadata: &MetadataMap) -> Result<String, Error> {
    let value = metadata.get("authorization").ok_or_else(|| {
        Error::new(
            ErrorCode::MissingToken,
            "send an access token as authorization: Bearer <token> metadata",
        )
    })?;
    let value = value.to_str().map_err(|_| {
        Error::new(
            ErrorCode::InvalidToken,
            "the authorization metadata is not text",
        )
    })?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim().to_owned())
        }
        _ => Err(Error::new(
            ErrorCode::InvalidToken,
            "the authorization metadata must be Bearer <token>",
        )),
    }
}

/// An active user, exactly as the REST extractor decides it.
pub async fn user(state: &AppState, metadata: &MetadataMap) -> Result<AuthUser, Error> {
    authenticate(state, &bearer(metadata)?).await
}

pub async fn admin(state: &AppState, metadata: &MetadataMap) -> Result<AuthUser, Error> {
    let user = user(state, metadata).await?;
    if user.role != Role::Admin {
        return Err(Error::new(
            ErrorCode::Forbidden,
            "this method is for admins",
        ));
    }
    Ok(user)
}

/// The caller if a token was sent; a token that is sent but invalid is refused.
pub async fn maybe_user(
    state: &AppState,
    metadata: &MetadataMap,
) -> Result<Option<AuthUser>, Error> {
    if metadata.get("authorization").is_none() {
        return Ok(None);
    }
    user(state, metadata).await.map(Some)
}

/// Another Souk service, proven by a token signed with the cluster's key and carrying
/// the service role. Returns the calling service's name.
pub fn service(state: &AppState, metadata: &MetadataMap) -> Result<String, Error> {
    let claims = state.auth.jwt().verify(&bearer(metadata)?)?;
    if claims.role != SERVICE_ROLE {
        return Err(Error::new(
            ErrorCode::Forbidden,
            "this method is for Souk services",
        ));
    }
    Ok(claims.sub)
}
