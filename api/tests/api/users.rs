use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(profile_updates);

async fn profile_updates(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let user = app.customer("profile").await;
    let other = app.customer("other").await;
    let patch = |body: Value| {
        let request = app
            .client
            .patch(app.url("/api/v1/users/me"))
            .bearer_auth(&user.access_token)
            .json(&body);
        async move { request.send().await.unwrap() }
    };

    let renamed = patch(json!({"name": "  Grace Hopper "})).await;
    assert_eq!(renamed.status(), StatusCode::OK);
    let renamed: Value = renamed.json().await.unwrap();
    assert_eq!(renamed["name"], "Grace Hopper");
    assert_eq!(renamed["email"], user.email);

    // A new address needs the account's password with it.
    let unconfirmed = assert_problem(
        patch(json!({"email": unique_email("nopassword")})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(unconfirmed["errors"][0]["field"], "current_password");
    assert_problem(
        patch(json!({"email": unique_email("wrong"), "current_password": "not the password"}))
            .await,
        403,
        "wrong_password",
    )
    .await;
    // Someone else's address is taken; the failed change leaves the profile alone.
    assert_problem(
        patch(json!({"email": other.email, "current_password": PASSWORD})).await,
        409,
        "email_taken",
    )
    .await;
    // Role and status are not the user's to set.
    let escalate = assert_problem(patch(json!({"role": "admin"})).await, 400, "invalid_body").await;
    assert!(escalate["detail"].as_str().unwrap().contains("role"));
    let wrong_type = assert_problem(patch(json!({"name": 42})).await, 400, "invalid_body").await;
    assert_eq!(wrong_type["errors"][0]["field"], "name");
    assert_problem(
        patch(json!({"name": "x".repeat(101)})).await,
        422,
        "validation_failed",
    )
    .await;

    // The new address takes effect only once the link mailed to it is used.
    let new_email = unique_email("moved");
    let moved =
        patch(json!({"email": new_email.to_uppercase(), "current_password": PASSWORD})).await;
    assert_eq!(moved.status(), StatusCode::OK);
    let moved: Value = moved.json().await.unwrap();
    assert_eq!(moved["email"], user.email, "pending, not applied");
    assert_eq!(
        app.login(&new_email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let requested = app.events("user.email_change_requested", &user.id).await;
    assert_eq!(requested.len(), 1, "{requested:?}");
    assert_eq!(requested[0]["email"], user.email);
    assert_eq!(requested[0]["new_email"], new_email);
    let token = requested[0]["token"].as_str().unwrap().to_owned();
    let confirm = |token: String| {
        let request = app
            .client
            .post(app.url("/api/v1/auth/confirm-email-change"))
            .json(&json!({"token": token}));
        async move { request.send().await.unwrap() }
    };
    let confirmed = confirm(token.clone()).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert_eq!(
        confirmed.json::<Value>().await.unwrap()["user_id"],
        user.id.as_str()
    );
    assert_problem(confirm(token).await, 400, "invalid_verification_token").await;
    assert_problem(
        confirm("x".repeat(43)).await,
        400,
        "invalid_verification_token",
    )
    .await;
    for bad in [
        json!({}),
        json!({"token": 5}),
        json!({"token": "t", "extra": 1}),
    ] {
        let refused = app
            .post_json("/api/v1/auth/confirm-email-change", &bad)
            .await;
        assert_problem(refused, 400, "invalid_body").await;
    }
    assert_eq!(
        app.login(&new_email, PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login(&user.email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let me: Value = app
        .get_as("/api/v1/users/me", &user.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "Grace Hopper");
    assert_eq!(me["email"], new_email);
    assert_eq!(
        me["email_verified"], true,
        "confirmed by the link mailed to it"
    );
    let untouched: Value = app
        .get_as("/api/v1/users/me", &other.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(untouched["email"], other.email);
}

#[actix_web::test]
async fn deleting_the_account_removes_only_that_account() {
    let app = spawn_app().await;
    let user = app.customer("delete").await;
    let other = app.customer("stays").await;
    let deleted = app
        .client
        .delete(app.url("/api/v1/users/me"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(souk_db::users::find_by_id(app.database.db.pool(), &user.id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        app.get_as("/api/v1/users/me", &other.access_token)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.refresh(&other.refresh_token).await.status(),
        StatusCode::OK
    );
    // The address can be registered again.
    assert_eq!(
        app.register(&user.email, PASSWORD).await.status(),
        StatusCode::CREATED
    );
}

/// A password change or reset ends the account's pending email changes: a confirmation
/// link mailed before it (perhaps asked for by someone who knew the old password) no
/// longer moves the account.
#[actix_web::test]
async fn a_password_change_or_reset_ends_pending_email_changes() {
    let app = spawn_app().await;
    let user = app.customer("pending-change").await;
    let ask_change = |password: &'static str| {
        let request = app
            .client
            .patch(app.url("/api/v1/users/me"))
            .bearer_auth(&user.access_token)
            .json(&json!({"email": unique_email("taker"), "current_password": password}));
        async move { assert_eq!(request.send().await.unwrap().status(), StatusCode::OK) }
    };
    let latest_change_token = || async {
        let requested = app.events("user.email_change_requested", &user.id).await;
        requested.last().unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let app = &app;
    let confirm = |token: String| async move {
        app.post_json(
            "/api/v1/auth/confirm-email-change",
            &json!({"token": token}),
        )
        .await
    };

    ask_change(PASSWORD).await;
    let before_change = latest_change_token().await;
    let new_password = "a password only the owner knows";
    let changed = app
        .post_json_as(
            "/api/v1/auth/password",
            &user.access_token,
            &json!({"current_password": PASSWORD, "new_password": new_password}),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    assert_problem(
        confirm(before_change).await,
        400,
        "invalid_verification_token",
    )
    .await;

    ask_change(new_password).await;
    let before_reset = latest_change_token().await;
    app.post_json("/api/v1/auth/password-reset", &json!({"email": user.email}))
        .await;
    let reset_token = app.events("password.reset_requested", &user.id).await[0]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let reset = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({"token": reset_token, "new_password": "yet another passphrase"}),
        )
        .await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert_problem(
        confirm(before_reset).await,
        400,
        "invalid_verification_token",
    )
    .await;
    let (email,): (String,) = sqlx::query_as("SELECT email FROM users WHERE id = ?")
        .bind(&user.id)
        .fetch_one(app.database.db.pool())
        .await
        .unwrap();
    assert_eq!(email, user.email);
}
