//! Account mails over SMTP: the welcome mail's link verifies the address once (expired,
//! forged and missing tokens are refused, and no token is stored in clear), a password
//! reset completes through the mailed link (its published event carries no token), and
//! an unverified account gets one reminder.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use super::{email_settings, register, settle, token_in, SmtpSink};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(welcome_mail_verifies_the_address_once);

async fn welcome_mail_verifies_the_address_once(backend: TestBackend) {
    let sink = SmtpSink::start();
    let app = spawn_app_with(backend, |config| email_settings(config, &sink)).await;
    let (user_id, email) = register(&app, "welcome").await;

    let mails = sink.wait_for(&email, 1).await;
    let mail = &mails[0];
    assert_eq!(mail["to"], email);
    assert_eq!(mail["from"], "Souk Test <shop@shop.test>");
    assert_eq!(
        mail["subject"],
        "Welcome to Souk: please verify your email address"
    );
    let text = mail["text"].as_str().unwrap();
    let html = mail["html"].as_str().unwrap();
    assert!(text.contains("Hello Test User,"), "{text}");
    assert!(html.contains("<p>Hello Test User,</p>"), "{html}");
    let link = "http://shop.test/account/verify-email?token=";
    let token = token_in(text, link);
    assert_eq!(
        token,
        token_in(html, link),
        "both parts carry the same link"
    );
    assert_eq!(token.len(), 43);

    let verified = app
        .get(&format!("/api/v1/auth/verify-email?token={token}"))
        .await;
    assert_eq!(verified.status(), StatusCode::OK);
    let body: Value = verified.json().await.unwrap();
    assert_eq!(body["user_id"], user_id);
    let session = app.session_for(&user_id, &email).await;
    let me: Value = app
        .get_as("/api/v1/users/me", &session.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email_verified"], true);

    let again = app
        .get(&format!("/api/v1/auth/verify-email?token={token}"))
        .await;
    assert_problem(again, 400, "invalid_verification_token").await;

    // Expired: a second user's token, aged past its deadline.
    let (_, other) = register(&app, "late").await;
    let late = token_in(
        sink.wait_for(&other, 1).await[0]["text"].as_str().unwrap(),
        link,
    );
    sqlx::query("UPDATE email_verifications SET expires_at = 0")
        .execute(app.database.db.pool())
        .await
        .unwrap();
    let expired = app
        .get(&format!("/api/v1/auth/verify-email?token={late}"))
        .await;
    assert_problem(expired, 400, "invalid_verification_token").await;

    // Forged and missing tokens.
    let forged = app
        .get(&format!(
            "/api/v1/auth/verify-email?token={}",
            "A".repeat(43)
        ))
        .await;
    assert_problem(forged, 400, "invalid_verification_token").await;
    assert_problem(
        app.get("/api/v1/auth/verify-email?token=short").await,
        400,
        "invalid_verification_token",
    )
    .await;
    assert_problem(
        app.get("/api/v1/auth/verify-email").await,
        400,
        "invalid_query",
    )
    .await;

    settle().await;
    assert_eq!(sink.mails_to(&email).len(), 1, "one welcome mail");
    // The token never leaves the database in clear.
    let stored: Vec<(String,)> = sqlx::query_as("SELECT token_hash FROM email_verifications")
        .fetch_all(app.database.db.pool())
        .await
        .unwrap();
    assert!(stored.iter().all(|(hash,)| hash != &token && hash != &late));
}

#[actix_web::test]
async fn password_reset_completes_through_the_mailed_link() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(TestBackend::Sqlite, |config| email_settings(config, &sink)).await;
    let (_, email) = register(&app, "forgot").await;
    sink.wait_for(&email, 1).await;

    let requested = app
        .post_json("/api/v1/auth/password-reset", &json!({"email": email}))
        .await;
    assert_eq!(requested.status(), StatusCode::ACCEPTED);
    let mails = sink.wait_for(&email, 2).await;
    let mail = mails
        .iter()
        .find(|mail| mail["subject"] == "Reset your Souk password")
        .expect("a reset mail");
    let link = "http://shop.test/account/reset-password?token=";
    let token = token_in(mail["text"].as_str().unwrap(), link);
    assert_eq!(token, token_in(mail["html"].as_str().unwrap(), link));

    let confirmed = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({"token": token, "new_password": "a brand new password"}),
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.login(&email, "a brand new password").await.status(),
        StatusCode::OK
    );

    // The published event carries no token: consumers read it from the outbox row.
    let user = souk_db::users::find_by_email(app.database.db.pool(), &email)
        .await
        .unwrap()
        .unwrap();
    let events = souk_db::outbox::for_aggregate(
        app.database.db.pool(),
        "password.reset_requested",
        &user.id,
    )
    .await
    .unwrap();
    let published = souk_actors::outbox::PublishedEvent::from_outbox(&events[0]);
    assert!(published.payload.get("token").is_none());
    assert_eq!(published.payload["email"], email);
}

#[actix_web::test]
async fn unverified_accounts_get_one_reminder() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(TestBackend::Sqlite, |config| email_settings(config, &sink)).await;
    let (forgetful, forgetful_email) = register(&app, "forgetful").await;
    let (_, diligent_email) = register(&app, "diligent").await;
    let (_, fresh_email) = register(&app, "fresh").await;
    let link = "http://shop.test/account/verify-email?token=";
    let welcome = sink.wait_for(&diligent_email, 1).await;
    let token = token_in(welcome[0]["text"].as_str().unwrap(), link);
    let verified = app
        .get(&format!("/api/v1/auth/verify-email?token={token}"))
        .await;
    assert_eq!(verified.status(), StatusCode::OK);
    sink.wait_for(&forgetful_email, 1).await;
    sink.wait_for(&fresh_email, 1).await;
    // Two accounts are two days old; the third was just made.
    sqlx::query("UPDATE users SET created_at = created_at - 172800000000 WHERE email <> ?")
        .bind(&fresh_email)
        .execute(app.database.db.pool())
        .await
        .unwrap();

    let day = Duration::from_secs(24 * 3600);
    assert_eq!(app.state.email.remind_unverified(day).await.unwrap(), 1);
    assert_eq!(
        app.state.email.remind_unverified(day).await.unwrap(),
        0,
        "once"
    );
    let mails = sink.wait_for(&forgetful_email, 2).await;
    let reminder = mails
        .iter()
        .find(|mail| mail["subject"] == "Reminder: please verify your email address")
        .expect("a reminder");
    let token = token_in(reminder["text"].as_str().unwrap(), link);
    let verified = app
        .get(&format!("/api/v1/auth/verify-email?token={token}"))
        .await;
    assert_eq!(verified.status(), StatusCode::OK);
    let body: Value = verified.json().await.unwrap();
    assert_eq!(body["user_id"], forgetful);
    settle().await;
    assert_eq!(
        sink.mails_to(&diligent_email).len(),
        1,
        "verified: no reminder"
    );
    assert_eq!(sink.mails_to(&fresh_email).len(), 1, "too new: no reminder");
}
