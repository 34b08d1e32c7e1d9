//! Email end to end, against real servers: a real SMTP server (scripts/smtp-sink.py,
//! aiosmtpd) started per test, and NATS JetStream (the shared test server, or a private
//! nats-server that a test restarts). Mails are asserted as they arrive at the server:
//! recipient, subject, both parts and their rendered content.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::web;
use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_api::config::Config;
use souk_api::state::AppState;
use souk_api::Application;
use souk_db::testing::TestBackend;

use crate::helpers::*;
use crate::on_both_backends;

/// How long a test waits for mail before it fails; generous, never asserted on.
const PATIENCE: Duration = Duration::from_secs(60);

on_both_backends!(
    welcome_mail_verifies_the_address_once,
    order_mails_follow_the_order
);

// --- the SMTP server -------------------------------------------------------------------

pub struct SmtpSink {
    pub port: u16,
    pub directory: TempDir,
    child: Child,
}

impl SmtpSink {
    pub fn start() -> Self {
        let python = std::env::var("SOUK_TEST_SMTP_PYTHON").unwrap_or_else(|_| {
            panic!("SOUK_TEST_SMTP_PYTHON is not set: run `eval \"$(scripts/test-services)\"` (it installs aiosmtpd)")
        });
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/smtp-sink.py");
        let directory = TempDir::new();
        // The free port is picked before the sink binds it, so a test running beside
        // this one may take it first: the sink then exits without saying "ready", and
        // another port is tried.
        for _ in 0..5 {
            let port = dead_port();
            let mut child = Command::new(&python)
                .arg(&script)
                .arg(port.to_string())
                .arg(&directory.0)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|error| {
                    panic!("cannot start the SMTP sink with {python}: {error}")
                });
            let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
            if line.trim() == "ready" {
                return Self {
                    port,
                    directory,
                    child,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "the SMTP sink did not start on any of five ports (is aiosmtpd installed in {python}?)"
        );
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// While refusing, the server answers every recipient with a 451.
    pub fn refuse(&self, refusing: bool) {
        let flag = self.directory.0.join("refuse");
        if refusing {
            std::fs::write(flag, b"").unwrap();
        } else {
            let _ = std::fs::remove_file(flag);
        }
    }

    /// Every mail accepted so far, in arrival order.
    pub fn mails(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.directory.0)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        names.sort_by_key(|path| {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let (time, count) = stem.split_once('-').unwrap();
            (time.parse::<u128>().unwrap(), count.parse::<u64>().unwrap())
        });
        names
            .into_iter()
            .map(|path| serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap())
            .collect()
    }

    /// Mails to `recipient`, waiting until at least `count` arrived.
    pub async fn wait_for(&self, recipient: &str, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mails = self.mails_to(recipient);
            if mails.len() >= count || Instant::now() > deadline {
                assert!(
                    mails.len() >= count,
                    "expected {count} mails to {recipient}, got {}: {mails:?}",
                    mails.len()
                );
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn mails_to(&self, recipient: &str) -> Vec<Value> {
        self.mails()
            .into_iter()
            .filter(|mail| {
                mail["rcpt_to"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|to| to == recipient)
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- helpers ------------------------------------------------------------------------------

pub(crate) fn email_settings(config: &mut Config, sink: &SmtpSink) {
    config.smtp.url = Some(sink.url());
    config.http.public_base_url = "http://shop.test".to_owned();
    config.email.from = "Souk Test <shop@shop.test>".to_owned();
    config.email.retry_base_ms = 20;
    config.email.retry_max_ms = 100;
    config.outbox.poll_ms = 50;
}

/// The value of `token=` in the first link of `text` that starts with `prefix`.
pub(crate) fn token_in(text: &str, prefix: &str) -> String {
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no link {prefix} in {text}"));
    text[start + prefix.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Gives stray duplicate deliveries a chance to show up before a test counts mails.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

async fn register(app: &TestApp, tag: &str) -> (String, String) {
    let email = unique_email(tag);
    let response = app.register(&email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let user: Value = response.json().await.unwrap();
    (user["id"].as_str().unwrap().to_owned(), email)
}

/// A second node on another app's database (another process, as far as the node knows).
struct Node {
    address: String,
    state: web::Data<AppState>,
    handle: actix_web::dev::ServerHandle,
    _data_dir: TempDir,
}

impl Node {
    async fn start(app: &TestApp, tweak: impl FnOnce(&mut Config)) -> Self {
        let data_dir = TempDir::new();
        let mut config = test_config(&app.database, &data_dir.0);
        config.events.namespace = app.state.config.events.namespace.clone();
        config.nats.url = app.state.config.nats.url.clone();
        tweak(&mut config);
        let application = Application::build(config)
            .await
            .expect("build a second node");
        let address = format!("http://127.0.0.1:{}", application.port());
        let state = application.state();
        let handle = application.handle();
        actix_web::rt::spawn(application.run_until_stopped());
        Self {
            address,
            state,
            handle,
            _data_dir: data_dir,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

// --- flows ---------------------------------------------------------------------------------

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

async fn product(app: &TestApp, admin: &Session, sku: &str, name: &str, amount: i64) {
    let created = app
        .post_json_as(
            "/api/v1/admin/products",
            &admin.access_token,
            &json!({"sku": sku, "name": name, "price": {"amount": amount, "currency": "EUR"}, "status": "active"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let adjusted = app
        .post_json_as(
            &format!("/api/v1/admin/inventory/{sku}/adjust"),
            &admin.access_token,
            &json!({"delta": 50, "reason": "initial stock"}),
        )
        .await;
    assert_eq!(adjusted.status(), StatusCode::OK);
}

async fn place(app: &TestApp, shopper: &Session, items: Value) -> String {
    let placed = app
        .post_json_as(
            "/api/v1/orders",
            &shopper.access_token,
            &json!({"items": items}),
        )
        .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order: Value = placed.json().await.unwrap();
    order["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn mail_with_subject(sink: &SmtpSink, recipient: &str, subject: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(mail) = sink
            .mails_to(recipient)
            .into_iter()
            .find(|mail| mail["subject"] == subject)
        {
            return mail;
        }
        assert!(
            Instant::now() < deadline,
            "no mail {subject:?} to {recipient}: {:?}",
            sink.mails_to(recipient)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Placed, paid, shipped, cancelled (with the reason) and expired, relayed over JetStream.
async fn order_mails_follow_the_order(backend: TestBackend) {
    let sink = SmtpSink::start();
    let app = spawn_app_with(backend, |config| {
        email_settings(config, &sink);
        config.nats.url = Some(nats_url());
    })
    .await;
    let admin = app.admin().await;
    let shopper = app.customer("buyer").await;
    product(&app, &admin, "MAIL-1", "<script>alert(1)</script>", 1999).await;
    product(&app, &admin, "MAIL-2", "Tea & biscuits", 250).await;

    let first = place(
        &app,
        &shopper,
        json!([{"sku": "MAIL-1", "quantity": 2}, {"sku": "MAIL-2", "quantity": 1}]),
    )
    .await;
    let placed = mail_with_subject(
        &sink,
        &shopper.email,
        &format!("Order {first} received: awaiting payment"),
    )
    .await;
    let text = placed["text"].as_str().unwrap();
    let html = placed["html"].as_str().unwrap();
    assert!(
        text.contains("- 2 x <script>alert(1)</script> (MAIL-1) at EUR 19.99 = EUR 39.98"),
        "{text}"
    );
    assert!(
        text.contains("- 1 x Tea & biscuits (MAIL-2) at EUR 2.50 = EUR 2.50"),
        "{text}"
    );
    // No shipping method, no address: no shipping, no tax, the total is the subtotal.
    for total in [
        "Subtotal: EUR 42.48",
        "Shipping: EUR 0.00",
        "Tax (0%, included): EUR 0.00",
        "Total: EUR 42.48",
    ] {
        assert!(text.contains(total), "{text}");
    }
    assert!(
        text.contains(&format!("http://shop.test/account/orders/{first}?sig=")),
        "{text}"
    );
    assert!(
        !html.contains("<script>"),
        "the product name arrives as text: {html}"
    );
    assert!(
        html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
        "{html}"
    );
    assert!(
        html.contains("Tea &#38; biscuits") || html.contains("Tea &amp; biscuits"),
        "{html}"
    );
    assert!(html.contains("EUR 42.48"), "{html}");

    let paid = app
        .post_json_as(
            &format!("/api/v1/orders/{first}/pay"),
            &shopper.access_token,
            &json!({"payment_method": "test-card"}),
        )
        .await;
    assert_eq!(paid.status(), StatusCode::OK, "{:?}", paid.text().await);
    let receipt = mail_with_subject(
        &sink,
        &shopper.email,
        &format!("Payment received for order {first}"),
    )
    .await;
    assert!(receipt["text"]
        .as_str()
        .unwrap()
        .contains("payment of EUR 42.48"));

    let shipped = app
        .post_json_as(
            &format!("/api/v1/admin/orders/{first}/ship"),
            &admin.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(
        shipped.status(),
        StatusCode::OK,
        "{:?}",
        shipped.text().await
    );
    let shipping =
        mail_with_subject(&sink, &shopper.email, &format!("Order {first} shipped")).await;
    assert!(shipping["html"].as_str().unwrap().contains("is on its way"));

    let second = place(&app, &shopper, json!([{"sku": "MAIL-2", "quantity": 3}])).await;
    mail_with_subject(
        &sink,
        &shopper.email,
        &format!("Order {second} received: awaiting payment"),
    )
    .await;
    let cancelled = app
        .post_json_as(
            &format!("/api/v1/orders/{second}/cancel"),
            &shopper.access_token,
            &json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(
        cancelled.status(),
        StatusCode::OK,
        "{:?}",
        cancelled.text().await
    );
    let cancellation =
        mail_with_subject(&sink, &shopper.email, &format!("Order {second} cancelled")).await;
    assert!(
        cancellation["text"]
            .as_str()
            .unwrap()
            .contains("Reason: changed my mind"),
        "{cancellation}"
    );
    assert!(
        cancellation["html"]
            .as_str()
            .unwrap()
            .contains("Reason: changed my mind"),
        "{cancellation}"
    );

    let third = place(&app, &shopper, json!([{"sku": "MAIL-1", "quantity": 1}])).await;
    mail_with_subject(
        &sink,
        &shopper.email,
        &format!("Order {third} received: awaiting payment"),
    )
    .await;
    sqlx::query("UPDATE orders SET expires_at = 0 WHERE id = ?")
        .bind(&third)
        .execute(app.database.db.pool())
        .await
        .unwrap();
    let expiry = mail_with_subject(&sink, &shopper.email, &format!("Order {third} expired")).await;
    assert!(expiry["text"]
        .as_str()
        .unwrap()
        .contains("was not paid in time"));

    settle().await;
    let subjects: Vec<String> = sink
        .mails_to(&shopper.email)
        .iter()
        .map(|mail| mail["subject"].as_str().unwrap().to_owned())
        .collect();
    let mut unique = subjects.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), subjects.len(), "no mail twice: {subjects:?}");
}

// --- faults ----------------------------------------------------------------------------------

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

on_both_backends!(dead_letters_can_be_replayed);

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

/// The relay dies after the commit, before publishing: another node's relay publishes
/// the event later and the mail arrives, once. And a relay that published but died
/// before marking publishes again: JetStream and the send log drop the duplicate.
#[actix_web::test]
async fn events_survive_a_relay_dying_between_commit_and_publish() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(TestBackend::MySql, |config| {
        email_settings(config, &sink);
        config.nats.url = Some(nats_url());
        config.outbox.relay = false;
    })
    .await;
    let (user_id, email) = register(&app, "orphan").await;
    let unpublished =
        souk_db::outbox::for_aggregate(app.database.db.pool(), "user.registered", &user_id)
            .await
            .unwrap();
    assert_eq!(unpublished.len(), 1);
    assert!(
        unpublished[0].published_at.is_none(),
        "nothing relays on this node"
    );

    // Published, but the node died before marking it: the row still says unpublished.
    let publisher = app.state.email.publisher();
    publisher.ensure_stream().await.unwrap();
    publisher
        .publish(
            &souk_actors::outbox::PublishedEvent::from_outbox(&unpublished[0]),
            &unpublished[0].id,
        )
        .await
        .unwrap();
    sink.wait_for(&email, 1).await;

    // A node with a relay picks the event up and publishes it (again).
    let relay_node = Node::start(&app, |config| {
        email_settings(config, &sink);
    })
    .await;
    wait_until("the event marked published", || async {
        souk_db::outbox::for_aggregate(relay_node.state.db.pool(), "user.registered", &user_id)
            .await
            .unwrap()[0]
            .published_at
            .is_some()
    })
    .await;
    // And a second user registered while no relay ran on the first node.
    let (_, later) = register(&app, "later").await;
    sink.wait_for(&later, 1).await;
    settle().await;
    assert_eq!(
        sink.mails_to(&email).len(),
        1,
        "the duplicate publish sent nothing"
    );
    assert_eq!(sink.mails_to(&later).len(), 1);
    assert!(relay_node.address.starts_with("http://"));
}

/// Two nodes relay the same outbox at once: every event reaches the stream once.
#[actix_web::test]
async fn two_relays_publish_each_event_once() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(TestBackend::MySql, |config| {
        email_settings(config, &sink);
        config.nats.url = Some(nats_url());
        config.outbox.poll_ms = 10;
    })
    .await;
    let _second = Node::start(&app, |config| {
        email_settings(config, &sink);
        config.outbox.poll_ms = 10;
    })
    .await;
    let mut emails = Vec::new();
    for index in 0..12 {
        emails.push(register(&app, &format!("pair{index}")).await.1);
    }
    for email in &emails {
        sink.wait_for(email, 1).await;
    }
    settle().await;
    for email in &emails {
        assert_eq!(sink.mails_to(email).len(), 1, "{email}");
    }
    let souk_actors::outbox::relay::Publisher::JetStream { context, names } =
        app.state.email.publisher()
    else {
        panic!("this node publishes to JetStream");
    };
    let mut stream = context.get_stream(names.stream()).await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.state.messages, 12, "each event on the stream once");
}

/// A private NATS server, restarted mid-stream: no event is lost.
struct PrivateNats {
    port: u16,
    store: TempDir,
    child: Option<Child>,
}

impl PrivateNats {
    fn start() -> Self {
        let mut nats = Self {
            port: dead_port(),
            store: TempDir::new(),
            child: None,
        };
        nats.launch();
        nats
    }

    fn launch(&mut self) {
        let binary = std::env::var("SOUK_TEST_NATS_BIN").unwrap_or_else(|_| {
            panic!("SOUK_TEST_NATS_BIN is not set: run `eval \"$(scripts/test-services)\"`")
        });
        let child = Command::new(&binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {binary}: {error}"));
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.stop();
    }
}

#[actix_web::test]
async fn no_event_is_lost_when_nats_restarts() {
    let mut nats = PrivateNats::start();
    let sink = SmtpSink::start();
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        email_settings(config, &sink);
        config.nats.url = Some(nats.url());
    })
    .await;
    let mut emails = Vec::new();
    for index in 0..3 {
        emails.push(register(&app, &format!("before{index}")).await.1);
    }
    for email in &emails {
        sink.wait_for(email, 1).await;
    }
    nats.stop();
    // Written while NATS is down: they wait in the outbox.
    for index in 0..3 {
        emails.push(register(&app, &format!("during{index}")).await.1);
    }
    nats.launch();
    for index in 0..3 {
        emails.push(register(&app, &format!("after{index}")).await.1);
    }
    for email in &emails {
        sink.wait_for(email, 1).await;
    }
    settle().await;
    for email in &emails {
        assert_eq!(sink.mails_to(email).len(), 1, "{email}");
    }
}

#[actix_web::test]
async fn admins_get_low_stock_alerts() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(TestBackend::Sqlite, |config| email_settings(config, &sink)).await;
    let admin = app.admin().await;
    let shopper = app.customer("hoarder").await;
    let created = app
        .post_json_as(
            "/api/v1/admin/products",
            &admin.access_token,
            &json!({"sku": "LOW-1", "name": "Scarce", "price": {"amount": 500, "currency": "EUR"}, "status": "active"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let adjusted = app
        .post_json_as(
            "/api/v1/admin/inventory/LOW-1/adjust",
            &admin.access_token,
            &json!({"delta": 10, "low_stock_threshold": 5, "reason": "initial stock"}),
        )
        .await;
    assert_eq!(adjusted.status(), StatusCode::OK);
    place(&app, &shopper, json!([{"sku": "LOW-1", "quantity": 6}])).await;
    let alert = mail_with_subject(&sink, &admin.email, "Low stock: LOW-1").await;
    let text = alert["text"].as_str().unwrap();
    assert!(
        text.contains("Stock of LOW-1 fell below its threshold: 4 available, threshold 5."),
        "{text}"
    );
    assert!(
        text.contains("http://shop.test/admin/stock/LOW-1"),
        "{text}"
    );
    assert!(alert["html"]
        .as_str()
        .unwrap()
        .contains("<strong>LOW-1</strong>"));
    assert!(sink
        .mails_to(&shopper.email)
        .iter()
        .all(|mail| mail["subject"] != "Low stock: LOW-1"));
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
