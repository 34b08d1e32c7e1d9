//! Delivery when the SMTP server says no, is slow, or is absent: a refusing server gets
//! retries until it accepts (the mail sent once), a mail refused past its attempts becomes
//! a dead letter that a replay sends once (both engines), a worker sends several mails at
//! once to a slow server (from the in-process bus and from JetStream), the admin
//! endpoints for sends and dead letters refuse bad requests, and in embedded mode mails
//! are written as .eml files to the data directory's outbox.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use super::{
    assert_one_mail_each, email_settings, register, register_many, settle, wait_until, SmtpSink,
    PATIENCE,
};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(dead_letters_can_be_replayed);

async fn send_statuses(app: &TestApp, email: &str) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT status, attempts FROM email_sends WHERE recipient = ?")
        .bind(email)
        .fetch_all(app.database.db.pool())
        .await
        .unwrap()
}

#[actix_web::test]
async fn a_refusing_smtp_server_gets_retries_until_it_accepts() {
    let sink = SmtpSink::start();
    sink.refuse(true);
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        email_settings(config, &sink);
        config.email.max_attempts = 1000;
    })
    .await;
    let (_, email) = register(&app, "patient").await;
    // Several refusals happen and are logged as failed attempts.
    wait_until("three refused attempts", || async {
        send_statuses(&app, &email)
            .await
            .first()
            .is_some_and(|(status, attempts)| status == "failed" && *attempts >= 3)
    })
    .await;
    assert!(sink.mails_to(&email).is_empty());
    sink.refuse(false);
    let mails = sink.wait_for(&email, 1).await;
    assert!(mails[0]["text"]
        .as_str()
        .unwrap()
        .contains("verify-email?token="));
    wait_until("the send logged as sent", || async {
        send_statuses(&app, &email)
            .await
            .first()
            .is_some_and(|(status, _)| status == "sent")
    })
    .await;
    settle().await;
    assert_eq!(sink.mails_to(&email).len(), 1, "sent once");
    let metrics = app.metrics().await;
    for name in [
        "souk_emails_retried_total",
        "souk_emails_failed_total",
        "souk_emails_sent_total",
    ] {
        assert!(metrics.contains(name), "{name} in {metrics}");
    }
}

/// Registers six users with one email worker of `in_flight` against a server that holds
/// every mail `hold` seconds; returns the most mails the server held at once, after
/// checking that each user got their one mail.
async fn mails_held_at_once(nats: bool, in_flight: usize, hold: f64) -> usize {
    let sink = SmtpSink::start();
    sink.hold(hold);
    let backend = if nats {
        TestBackend::MySql
    } else {
        TestBackend::Sqlite
    };
    let app = spawn_app_with(backend, |config| {
        email_settings(config, &sink);
        if nats {
            config.nats.url = Some(nats_url());
        }
        config.email.workers = 1;
        config.email.in_flight = in_flight;
    })
    .await;
    let emails = register_many(&app, "held", 6).await;
    assert_one_mail_each(&sink, &emails).await;
    sink.peak_held()
}

#[actix_web::test]
async fn a_worker_sends_several_mails_at_once_from_the_bus() {
    let peak = mails_held_at_once(false, 4, 1.0).await;
    assert!((2..=4).contains(&peak), "mails held at once: {peak}");
}

#[actix_web::test]
async fn a_worker_sends_several_mails_at_once_from_jetstream() {
    let peak = mails_held_at_once(true, 4, 1.0).await;
    assert!((2..=4).contains(&peak), "mails held at once: {peak}");
}

#[actix_web::test]
async fn a_worker_of_one_in_flight_sends_one_mail_at_a_time() {
    assert_eq!(mails_held_at_once(false, 1, 0.3).await, 1);
}

/// Always refused → dead letter; once the server is back, a replay sends it, once.
async fn dead_letters_can_be_replayed(backend: TestBackend) {
    let sink = SmtpSink::start();
    sink.refuse(true);
    let app = spawn_app_with(backend, |config| {
        email_settings(config, &sink);
        config.email.max_attempts = 3;
    })
    .await;
    let admin = app.admin().await;
    let (user_id, email) = register(&app, "unlucky").await;
    let deadline = Instant::now() + PATIENCE;
    let letters = loop {
        let page: Value = app
            .get_as("/api/v1/admin/emails/dead-letters", &admin.access_token)
            .await
            .json()
            .await
            .unwrap();
        let letters = page["items"].as_array().unwrap().clone();
        if letters
            .iter()
            .any(|letter| letter["aggregate_id"] == user_id.as_str())
        {
            break letters;
        }
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let letter = letters
        .iter()
        .find(|letter| letter["aggregate_id"] == user_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(letter["attempts"], 3);
    assert!(
        letter["last_error"].as_str().unwrap().contains("451"),
        "{letter}"
    );
    assert!(letter["replayed_at"].is_null());
    let sends: Value = app
        .get_as("/api/v1/admin/emails", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        sends["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|send| send["recipient"] == email
                && send["status"] == "dead_lettered"
                && send["template"] == "welcome"),
        "{sends}"
    );
    assert!(sink.mails_to(&email).is_empty());

    sink.refuse(false);
    let id = letter["id"].as_str().unwrap();
    let replayed = app
        .post_json_as(
            &format!("/api/v1/admin/emails/dead-letters/{id}/replay"),
            &admin.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(replayed.status(), StatusCode::ACCEPTED);
    let body: Value = replayed.json().await.unwrap();
    assert!(body["replayed_at"].is_string());
    let mails = sink.wait_for(&email, 1).await;
    assert!(mails[0]["html"]
        .as_str()
        .unwrap()
        .contains("verify-email?token="));
    let twice = app
        .post_json_as(
            &format!("/api/v1/admin/emails/dead-letters/{id}/replay"),
            &admin.access_token,
            &json!({}),
        )
        .await;
    assert_problem(twice, 409, "already_replayed").await;
    settle().await;
    assert_eq!(sink.mails_to(&email).len(), 1);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("souk_emails_dead_lettered_total"),
        "{metrics}"
    );
}

#[actix_web::test]
async fn admin_email_endpoints_refuse_bad_requests() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer("nosy").await;
    for path in ["/api/v1/admin/emails", "/api/v1/admin/emails/dead-letters"] {
        assert_problem(app.get(path).await, 401, "missing_token").await;
        assert_problem(
            app.get_as(path, "forged.jwt.token").await,
            401,
            "invalid_token",
        )
        .await;
        assert_problem(
            app.get_as(path, &customer.access_token).await,
            403,
            "forbidden",
        )
        .await;
        assert_problem(
            app.get_as(&format!("{path}?limit=0"), &admin.access_token)
                .await,
            400,
            "invalid_query",
        )
        .await;
        assert_problem(
            app.get_as(&format!("{path}?limit=abc"), &admin.access_token)
                .await,
            400,
            "invalid_query",
        )
        .await;
        assert_problem(
            app.get_as(&format!("{path}?cursor=nope"), &admin.access_token)
                .await,
            400,
            "invalid_cursor",
        )
        .await;
        assert_problem(
            app.get_as(&format!("{path}?unknown=1"), &admin.access_token)
                .await,
            400,
            "invalid_query",
        )
        .await;
        let empty: Value = app
            .get_as(path, &admin.access_token)
            .await
            .json()
            .await
            .unwrap();
        assert!(empty["next_cursor"].is_null());
    }
    let unknown = format!(
        "/api/v1/admin/emails/dead-letters/{}/replay",
        uuid::Uuid::now_v7()
    );
    assert_problem(
        app.post_json(&unknown, &json!({})).await,
        401,
        "missing_token",
    )
    .await;
    assert_problem(
        app.post_json_as(&unknown, &customer.access_token, &json!({}))
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.post_json_as(&unknown, &admin.access_token, &json!({}))
            .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.post_json_as(
            "/api/v1/admin/emails/dead-letters/not-an-id/replay",
            &admin.access_token,
            &json!({}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get_as(&unknown, &admin.access_token).await,
        405,
        "method_not_allowed",
    )
    .await;
    assert_problem(
        app.post_json_as("/api/v1/auth/verify-email", &admin.access_token, &json!({}))
            .await,
        405,
        "method_not_allowed",
    )
    .await;
}

/// Embedded mode: no NATS, no SMTP server; mails land as .eml files in data_dir/outbox.
#[actix_web::test]
async fn embedded_mode_writes_mails_to_the_file_outbox() {
    let app = spawn_app().await;
    let (_, email) = register(&app, "local").await;
    let outbox = app.state.config.node.data_dir.join("outbox");
    let deadline = Instant::now() + PATIENCE;
    let eml = 'wait: loop {
        for entry in std::fs::read_dir(&outbox).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|ext| ext == "eml") {
                let text = std::fs::read_to_string(&path).unwrap();
                if text.contains(&email) {
                    break 'wait text;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no .eml file in {}",
            outbox.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        eml.contains("Subject: Welcome to Souk: please verify your email address"),
        "{eml}"
    );
    assert!(eml.contains("multipart/alternative"), "{eml}");
    assert!(
        eml.contains("text/plain") && eml.contains("text/html"),
        "{eml}"
    );
    // Providers want a Message-ID (in the sender's domain) and a Date.
    let header = |name: &str| {
        eml.lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} header in {eml}"))
            .to_owned()
    };
    assert!(
        header("Message-ID: <").ends_with("@souk.localhost>"),
        "{eml}"
    );
    assert!(header("Date: ").len() > "Date: ".len() + 20, "{eml}");
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert!(ready["outbox_lag_seconds"].is_number(), "{ready}");
}
