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
        let port = dead_port();
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(port.to_string())
            .arg(&directory.0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start the SMTP sink with {python}: {error}"));
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "the SMTP sink did not start (is aiosmtpd installed in {python}?)"
        );
        Self {
            port,
            directory,
            child,
        }
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

fn email_settings(config: &mut Config, sink: &SmtpSink) {
    config.smtp_url = Some(sink.url());
    config.public_base_url = "http://shop.test".to_owned();
    config.email_from = "Souk Test <shop@shop.test>".to_owned();
    config.email_retry_base_ms = 20;
    config.email_retry_max_ms = 100;
    config.outbox_poll_ms = 50;
}

/// The value of `token=` in the first link of `text` that starts with `prefix`.
fn token_in(text: &str, prefix: &str) -> String {
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
        config.events_namespace = app.state.config.events_namespace.clone();
        config.nats_url = app.state.config.nats_url.clone();
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
    let link = "http://shop.test/api/v1/auth/verify-email?token=";
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
    let link = "http://shop.test/reset-password?token=";
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
    let published = souk_api::events::PublishedEvent::from_outbox(&events[0]);
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

async fn mail_with_subject(sink: &SmtpSink, recipient: &str, subject: &str) -> Value {
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
        config.nats_url = Some(nats_url());
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
    let placed =
        mail_with_subject(&sink, &shopper.email, &format!("Order {first} confirmed")).await;
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
    assert!(text.contains("Total: EUR 42.48"), "{text}");
    assert!(
        text.contains(&format!("http://shop.test/orders/{first}")),
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
    mail_with_subject(&sink, &shopper.email, &format!("Order {second} confirmed")).await;
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
    mail_with_subject(&sink, &shopper.email, &format!("Order {third} confirmed")).await;
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
