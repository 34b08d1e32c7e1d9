//! Access tokens presented to the API: every way of getting them wrong is a 401 or 403
//! with a clear code.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;
use souk_actors::identity::{AccessClaims, JwtKeys};

use crate::helpers::*;

fn claims_for(user_id: &str, role: &str) -> AccessClaims {
    let now = chrono::Utc::now().timestamp();
    AccessClaims {
        iss: "souk".into(),
        aud: "souk-api".into(),
        sub: user_id.into(),
        iat: now,
        exp: now + 600,
        jti: "test".into(),
        role: role.into(),
        sid: "test-session".into(),
    }
}

fn keys(secret: &str, audience: &str) -> JwtKeys {
    JwtKeys::new(secret.as_bytes(), "souk", audience, 900)
}

#[actix_web::test]
async fn missing_and_malformed_authorization_headers() {
    let app = spawn_app().await;
    let missing = app.get("/api/v1/users/me").await;
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_problem(missing, 401, "missing_token").await;
    for header in [
        "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
        "Bearer",
        "Bearer ",
        "garbage",
        "Bearer not.a.jwt",
    ] {
        let response = app
            .client
            .get(app.url("/api/v1/users/me"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header:?}");
    }
}

#[actix_web::test]
async fn forged_expired_wrong_audience_and_alg_none_tokens_are_refused() {
    let app = spawn_app().await;
    let user = app.customer("forge").await;

    let forged = keys("another-secret-0123456789abcdef0123456789", "souk-api")
        .sign(&claims_for(&user.id, "admin"))
        .unwrap();
    assert_problem(
        app.get_as("/api/v1/users/me", &forged).await,
        401,
        "invalid_token",
    )
    .await;

    let mut other_audience = claims_for(&user.id, "customer");
    other_audience.aud = "someone-else".into();
    let wrong_audience = keys(TEST_JWT_SECRET, "someone-else")
        .sign(&other_audience)
        .unwrap();
    assert_problem(
        app.get_as("/api/v1/users/me", &wrong_audience).await,
        401,
        "invalid_token",
    )
    .await;

    let mut expired_claims = claims_for(&user.id, "customer");
    expired_claims.iat -= 7200;
    expired_claims.exp = chrono::Utc::now().timestamp() - 120;
    let expired = keys(TEST_JWT_SECRET, "souk-api")
        .sign(&expired_claims)
        .unwrap();
    assert_problem(
        app.get_as("/api/v1/users/me", &expired).await,
        401,
        "token_expired",
    )
    .await;

    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload =
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims_for(&user.id, "admin")).unwrap());
    let unsigned = format!("{header}.{payload}.");
    assert_problem(
        app.get_as("/api/v1/users/me", &unsigned).await,
        401,
        "invalid_token",
    )
    .await;

    // Algorithm confusion: same secret, another HMAC algorithm.
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &claims_for(&user.id, "admin"),
        &jsonwebtoken::EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap();
    assert_problem(
        app.get_as("/api/v1/admin/users", &hs512).await,
        401,
        "invalid_token",
    )
    .await;

    // A tampered payload under a real signature.
    let mut parts: Vec<String> = user.access_token.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims_for(&user.id, "admin")).unwrap());
    assert_problem(
        app.get_as("/api/v1/admin/users", &parts.join(".")).await,
        401,
        "invalid_token",
    )
    .await;

    // A correctly signed token claiming admin, in the customer's own live session, does
    // not make a customer an admin: the role comes from the account.
    let mut promoted = claims_for(&user.id, "admin");
    promoted.sid = app.state.auth.jwt().verify(&user.access_token).unwrap().sid;
    let self_promoted = keys(TEST_JWT_SECRET, "souk-api").sign(&promoted).unwrap();
    assert_problem(
        app.get_as("/api/v1/admin/users", &self_promoted).await,
        403,
        "forbidden",
    )
    .await;
}

#[actix_web::test]
async fn disabled_accounts_lose_access_at_once() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let user = app.customer("disabled").await;
    let disabled = app
        .post_json_as(
            &format!("/api/v1/admin/users/{}/disable", user.id),
            &admin.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(disabled.status(), StatusCode::OK);

    assert_problem(
        app.get_as("/api/v1/users/me", &user.access_token).await,
        403,
        "account_disabled",
    )
    .await;
    assert_problem(
        app.login(&user.email, PASSWORD).await,
        403,
        "account_disabled",
    )
    .await;
    assert_problem(
        app.refresh(&user.refresh_token).await,
        401,
        "invalid_refresh_token",
    )
    .await;

    let enabled = app
        .post_json_as(
            &format!("/api/v1/admin/users/{}/enable", user.id),
            &admin.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(enabled.status(), StatusCode::OK);
    assert_eq!(
        app.login(&user.email, PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn tokens_of_deleted_accounts_stop_working() {
    let app = spawn_app().await;
    let user = app.customer("gone").await;
    let deleted = app
        .client
        .delete(app.url("/api/v1/users/me"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_as("/api/v1/users/me", &user.access_token).await,
        401,
        "invalid_token",
    )
    .await;
    assert_problem(
        app.refresh(&user.refresh_token).await,
        401,
        "invalid_refresh_token",
    )
    .await;
    assert_problem(
        app.login(&user.email, PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(app.events("user.deleted", &user.id).await.len(), 1);
}
