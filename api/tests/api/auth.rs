use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    register_login_me,
    duplicate_email_conflicts,
    refresh_rotates_and_reuse_revokes_the_family,
    password_reset_end_to_end
);

async fn register_login_me(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let email = unique_email("ada");
    let registered = app.register(&email.to_uppercase(), PASSWORD).await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    assert_eq!(registered.headers()["location"], "/api/v1/users/me");
    let user: Value = registered.json().await.unwrap();
    assert_eq!(user["email"], email, "emails are stored lowercase");
    assert_eq!(user["role"], "customer");
    assert_eq!(user["status"], "active");
    assert_eq!(user["email_verified"], false);
    assert!(user.get("password_hash").is_none());
    let id = user["id"].as_str().unwrap();
    assert!(souk_db::ids::is_well_formed(id));

    let login = app.login(&email, PASSWORD).await;
    assert_eq!(login.status(), StatusCode::OK);
    let tokens: Value = login.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let access = tokens["access_token"].as_str().unwrap();

    let me = app.get_as("/api/v1/users/me", access).await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["id"], id);
    assert_eq!(me["email"], email);

    let events = app.events("user.registered", id).await;
    assert_eq!(events.len(), 1, "one user.registered event in the outbox");
    assert_eq!(events[0]["email"], email);

    // The stored password is a bcrypt hash, never the password.
    let stored = souk_db::users::find_by_id(app.database.db.pool(), id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        stored.password_hash.starts_with("$2"),
        "{}",
        stored.password_hash
    );
    assert!(!stored.password_hash.contains(PASSWORD));
}

async fn duplicate_email_conflicts(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let email = unique_email("dup");
    assert_eq!(
        app.register(&email, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    let again = app
        .register(&format!("  {}  ", email.to_uppercase()), PASSWORD)
        .await;
    assert_problem(again, 409, "email_taken").await;
}

#[actix_web::test]
async fn registration_reports_every_invalid_field() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": "not-an-email", "password": "short", "name": "  "}),
        )
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "password", "name"]);
    // Password longer than bcrypt reads is refused rather than silently truncated.
    let response = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": unique_email("long"), "password": "x".repeat(73), "name": "Long"}),
        )
        .await;
    assert_problem(response, 422, "validation_failed").await;
}

#[actix_web::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let app = spawn_app().await;
    let user = app.customer("wrong").await;
    let wrong = assert_problem(
        app.login(&user.email, "not the password").await,
        401,
        "invalid_credentials",
    )
    .await;
    let unknown = assert_problem(
        app.login(&unique_email("nobody"), PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(wrong["detail"], unknown["detail"]);
}

async fn refresh_rotates_and_reuse_revokes_the_family(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let user = app.customer("rotate").await;
    let other_session = app.session_for(&user.id, &user.email).await;

    let first = app.refresh(&user.refresh_token).await;
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.unwrap();
    let second_token = first["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_token, user.refresh_token, "refresh tokens rotate");
    assert_eq!(
        app.get_as("/api/v1/users/me", first["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );

    // Replaying the spent token: reuse is detected and the whole family dies.
    assert_problem(
        app.refresh(&user.refresh_token).await,
        401,
        "refresh_token_reused",
    )
    .await;
    assert_problem(
        app.refresh(&second_token).await,
        401,
        "invalid_refresh_token",
    )
    .await;

    // Another session of the same user is a different family and lives on.
    assert_eq!(
        app.refresh(&other_session.refresh_token).await.status(),
        StatusCode::OK
    );
    // Only hashes are stored.
    let stored = souk_db::sessions::find_refresh_token(app.database.db.pool(), &second_token)
        .await
        .unwrap();
    assert!(stored.is_none(), "the raw token must not be a stored value");
}

#[actix_web::test]
async fn concurrent_refreshes_with_one_token_let_at_most_one_win() {
    let app = spawn_app().await;
    let user = app.customer("race").await;
    let (first, second) = tokio::join!(
        app.refresh(&user.refresh_token),
        app.refresh(&user.refresh_token)
    );
    let statuses = [first.status(), second.status()];
    assert!(
        statuses
            .iter()
            .filter(|status| **status == StatusCode::OK)
            .count()
            <= 1,
        "{statuses:?}"
    );
    assert!(statuses.contains(&StatusCode::UNAUTHORIZED), "{statuses:?}");
}

#[actix_web::test]
async fn logout_revokes_the_session() {
    let app = spawn_app().await;
    let user = app.customer("logout").await;
    let other = app.session_for(&user.id, &user.email).await;
    assert_eq!(
        app.get_as("/api/v1/users/me", &user.access_token)
            .await
            .status(),
        StatusCode::OK
    );
    let response = app
        .post_json(
            "/api/v1/auth/logout",
            &json!({"refresh_token": user.refresh_token}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.refresh(&user.refresh_token).await,
        401,
        "invalid_refresh_token",
    )
    .await;
    // The access token of the ended session stops working at once, long before it
    // expires; another session of the same account goes on.
    let me = app.get_as("/api/v1/users/me", &user.access_token).await;
    assert_eq!(me.headers()["www-authenticate"], "Bearer");
    assert_problem(me, 401, "invalid_token").await;
    assert_eq!(
        app.get_as("/api/v1/users/me", &other.access_token)
            .await
            .status(),
        StatusCode::OK
    );
    // Idempotent for a token we issued; unknown tokens are refused.
    let again = app
        .post_json(
            "/api/v1/auth/logout",
            &json!({"refresh_token": user.refresh_token}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
    let forged = app
        .post_json(
            "/api/v1/auth/logout",
            &json!({"refresh_token": "x".repeat(43)}),
        )
        .await;
    assert_problem(forged, 401, "invalid_refresh_token").await;
}

#[actix_web::test]
async fn changing_the_password_revokes_other_sessions() {
    let app = spawn_app().await;
    let user = app.customer("change").await;
    let other = app.session_for(&user.id, &user.email).await;
    let new_password = "a brand new password";

    let wrong = app
        .post_json_as(
            "/api/v1/auth/password",
            &user.access_token,
            &json!({"current_password": "nope nope nope", "new_password": new_password}),
        )
        .await;
    assert_problem(wrong, 403, "wrong_password").await;
    let weak = app
        .post_json_as(
            "/api/v1/auth/password",
            &user.access_token,
            &json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_problem(weak, 422, "validation_failed").await;
    let unauthenticated = app
        .post_json(
            "/api/v1/auth/password",
            &json!({"current_password": PASSWORD, "new_password": new_password}),
        )
        .await;
    assert_problem(unauthenticated, 401, "missing_token").await;

    let changed = app
        .post_json_as(
            "/api/v1/auth/password",
            &user.access_token,
            &json!({"current_password": PASSWORD, "new_password": new_password}),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);

    assert_problem(
        app.login(&user.email, PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(
        app.login(&user.email, new_password).await.status(),
        StatusCode::OK
    );
    assert_problem(
        app.refresh(&other.refresh_token).await,
        401,
        "invalid_refresh_token",
    )
    .await;
    assert_eq!(
        app.refresh(&user.refresh_token).await.status(),
        StatusCode::OK,
        "the caller's own session survives"
    );
}

async fn password_reset_end_to_end(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let user = app.customer("reset").await;

    // Unknown addresses get the same answer and produce nothing.
    let unknown = app
        .post_json(
            "/api/v1/auth/password-reset",
            &json!({"email": unique_email("ghost")}),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    let garbage = app
        .post_json(
            "/api/v1/auth/password-reset",
            &json!({"email": "not an email"}),
        )
        .await;
    assert_eq!(garbage.status(), StatusCode::ACCEPTED);

    let requested = app
        .post_json("/api/v1/auth/password-reset", &json!({"email": user.email}))
        .await;
    assert_eq!(requested.status(), StatusCode::ACCEPTED);
    let events = app.events("password.reset_requested", &user.id).await;
    assert_eq!(events.len(), 1);
    let token = events[0]["token"].as_str().unwrap().to_owned();
    assert_eq!(events[0]["email"], user.email);
    let stored = souk_db::one_time_tokens::find(
        app.database.db.pool(),
        souk_db::one_time_tokens::TokenKind::PasswordReset,
        &token,
    )
    .await
    .unwrap();
    assert!(stored.is_none(), "the token is stored hashed");

    let weak = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({"token": token, "new_password": "short"}),
        )
        .await;
    assert_problem(weak, 422, "validation_failed").await;
    let confirmed = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({"token": token, "new_password": "reset password 1"}),
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::NO_CONTENT);
    let replayed = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({"token": token, "new_password": "reset password 2"}),
        )
        .await;
    assert_problem(replayed, 400, "invalid_reset_token").await;

    assert_eq!(
        app.login(&user.email, "reset password 1").await.status(),
        StatusCode::OK
    );
    assert_problem(
        app.refresh(&user.refresh_token).await,
        401,
        "invalid_refresh_token",
    )
    .await;
}

#[actix_web::test]
async fn expired_and_forged_reset_tokens_are_refused() {
    let app = spawn_app().await;
    let user = app.customer("expire").await;
    app.post_json("/api/v1/auth/password-reset", &json!({"email": user.email}))
        .await;
    let token = app.events("password.reset_requested", &user.id).await[0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    sqlx::query("UPDATE password_resets SET expires_at = 0")
        .execute(app.database.db.pool())
        .await
        .unwrap();
    let expired = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({"token": token, "new_password": "whatever 12345"}),
        )
        .await;
    assert_problem(expired, 400, "invalid_reset_token").await;
    let forged = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({"token": "' OR 1=1 --", "new_password": "whatever 12345"}),
        )
        .await;
    assert_problem(forged, 400, "invalid_reset_token").await;
    assert_eq!(
        app.login(&user.email, PASSWORD).await.status(),
        StatusCode::OK,
        "password unchanged"
    );
}
