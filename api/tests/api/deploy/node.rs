//! A real `souk serve` process (MariaDB, Redis, NATS, an SMTP server) driven through the
//! traffic every dashboard panel and alert rule is about — requests, checkout, stock
//! batches, mails sent and dead-lettered, an inventory actor failing and restarting —
//! then: every metric name the dashboard and the alert rules query must be in its
//! /metrics, and its JSON request logs, through the Fluent Bit filters, must carry the
//! request id the index template maps.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::{fresh, TestBackend};

use super::{deploy_check, repo, run};
use crate::cli::{admin_create, souk};
use crate::email::SmtpSink;
use crate::helpers::*;

/// How long the test waits for a metric to appear before it fails; never asserted on.
const PATIENCE: Duration = Duration::from_secs(60);

/// The `souk serve` process; its stdout lines (JSON logs) are kept as they come.
struct Node {
    child: Child,
    address: String,
    /// The operations address (`/metrics`), as the node logged it.
    ops: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn start(mut command: std::process::Command) -> Self {
        let mut child = command
            .args([
                "serve",
                "--http-addr",
                "127.0.0.1:0",
                "--grpc-addr",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start souk serve");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (listening, address) = mpsc::channel();
        let kept = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if let Ok(entry) = serde_json::from_str::<Value>(&line) {
                    if entry["fields"]["message"] == "souk listening" {
                        let field = |name: &str| {
                            entry["fields"][name]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned()
                        };
                        let _ = listening.send((field("address"), field("ops")));
                    }
                }
                kept.lock().unwrap().push(line);
            }
        });
        let (address, ops) = address
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("souk serve did not listen: {:?}", logs.lock().unwrap()));
        Self {
            child,
            address,
            ops,
            logs,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }
}

struct Shop {
    node: Node,
    client: reqwest::Client,
}

impl Shop {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.node.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    async fn login(&self, email: &str) -> String {
        let (status, tokens) = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login {email}: {tokens}");
        tokens["access_token"].as_str().unwrap().to_owned()
    }

    async fn metrics(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.node.ops))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    }

    /// Waits until /metrics has a non-zero sample named `name` (the series an alert
    /// uses exist from the start, at zero: their presence says nothing happened yet).
    async fn wait_for_metric(&self, name: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.metrics().await;
            let counted = text.lines().any(|line| {
                line.starts_with(name)
                    && line
                        .rsplit(' ')
                        .next()
                        .and_then(|value| value.parse::<f64>().ok())
                        .is_some_and(|value| value > 0.0)
            });
            if counted {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never counted anything in /metrics:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[actix_web::test]
async fn a_running_node_exports_every_metric_the_dashboard_and_alerts_query() {
    let database = fresh(TestBackend::MySql).await;
    let sink = SmtpSink::start();
    let dir = TempDir::new();
    let environment = [
        ("SOUK_DATABASE_URL", database.url.clone()),
        ("SOUK_REDIS_URL", redis_url()),
        (
            "SOUK_REDIS_KEY_PREFIX",
            format!("souk-deploy:{}:", uuid::Uuid::now_v7().simple()),
        ),
        ("SOUK_NATS_URL", nats_url()),
        (
            "SOUK_EVENTS_NAMESPACE",
            format!("deploy{}", uuid::Uuid::now_v7().simple()),
        ),
        ("SOUK_SMTP_URL", sink.url()),
        ("SOUK_JWT_SECRET", TEST_JWT_SECRET.to_owned()),
        ("SOUK_LOG_FORMAT", "json".to_owned()),
        ("SOUK_OUTBOX_POLL_MS", "50".to_owned()),
        ("SOUK_EMAIL_MAX_ATTEMPTS", "2".to_owned()),
        ("SOUK_EMAIL_RETRY_BASE_MS", "50".to_owned()),
        ("SOUK_EMAIL_RETRY_MAX_MS", "100".to_owned()),
        ("SOUK_SHUTDOWN_TIMEOUT_SECS", "1".to_owned()),
    ];
    let command = || {
        let mut command = souk(&dir.0);
        command.envs(
            environment
                .iter()
                .map(|(key, value)| (*key, value.as_str())),
        );
        command
    };
    let admin_email = unique_email("deploy-admin");
    let created = admin_create(command(), &admin_email, PASSWORD);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let shop = Shop {
        node: Node::start(command()),
        client: crate::helpers::http_client_builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    };
    let admin = shop.login(&admin_email).await;

    // A mail that fails every attempt: retried once, then dead-lettered.
    sink.refuse(true);
    let customer_email = unique_email("deploy-customer");
    let (status, body) = shop
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": customer_email, "password": PASSWORD, "name": "Ops"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    shop.wait_for_metric("souk_emails_dead_lettered_total")
        .await;
    sink.refuse(false);
    let customer = shop.login(&customer_email).await;

    // Catalog reads through the cache, stock batches, a checkout that is paid (mails sent).
    let (status, body) = shop
        .post("/api/v1/admin/products", Some(&admin), json!({"sku": "OPS-1", "name": "Ops item", "price": {"amount": 1250, "currency": "EUR"}, "status": "active"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let adjust = json!({"delta": 10, "reason": "delivery"});
    let (status, body) = shop
        .post(
            "/api/v1/admin/inventory/OPS-1/adjust",
            Some(&admin),
            adjust.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for path in [
        "/api/v1/products?limit=5",
        "/api/v1/products/sku/OPS-1",
        "/api/v1/products/sku/OPS-1",
    ] {
        let (status, body) = shop.send(reqwest::Method::GET, path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (status, order) = shop
        .post(
            "/api/v1/orders",
            Some(&customer),
            json!({"items": [{"sku": "OPS-1", "quantity": 2}]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let pay = format!("/api/v1/orders/{}/pay", order["id"].as_str().unwrap());
    let (status, body) = shop
        .post(
            &pay,
            Some(&customer),
            json!({"payment_method": "test-card-ok"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    shop.wait_for_metric("souk_emails_sent_total").await;

    // An inventory batch that fails in the database (its ledger table is gone for a
    // moment): the SKU's actor stops and its supervisor restarts it.
    let pool = database.db.pool();
    sqlx::query("RENAME TABLE inventory_movements TO inventory_movements_away")
        .execute(pool)
        .await
        .unwrap();
    let (status, body) = shop
        .post(
            "/api/v1/admin/inventory/OPS-1/adjust",
            Some(&admin),
            adjust.clone(),
        )
        .await;
    sqlx::query("RENAME TABLE inventory_movements_away TO inventory_movements")
        .execute(pool)
        .await
        .unwrap();
    assert!(
        status.is_server_error(),
        "a batch without its ledger table fails: {status} {body}"
    );
    shop.wait_for_metric("souk_entity_restarts_total").await;

    let (status, ready) = shop.send(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK, "{ready}");

    let work = TempDir::new();
    let exposition = work.0.join("metrics.txt");
    std::fs::write(&exposition, shop.metrics().await).unwrap();
    let rules = repo("deploy/helm/souk/files/souk-alerts.yaml");
    let dashboard = repo("deploy/helm/souk/files/souk-dashboard.json");
    let printed = run(&mut deploy_check(&[
        "metrics",
        exposition.to_str().unwrap(),
        rules.to_str().unwrap(),
        dashboard.to_str().unwrap(),
    ]));
    assert!(!printed.contains("MISSING"), "{printed}");

    // The request log lines of this very node, through each Fluent Bit config.
    let logs = work.0.join("souk.log");
    std::fs::write(&logs, shop.node.logs.lock().unwrap().join("\n")).unwrap();
    let kubernetes = repo("deploy/logging/fluent-bit.yaml");
    let compose = repo("deploy/logging/fluent-bit-compose.yaml");
    let template = repo("deploy/logging/souk-index-template.json");
    run(&mut deploy_check(&[
        "logging",
        logs.to_str().unwrap(),
        kubernetes.to_str().unwrap(),
        compose.to_str().unwrap(),
        template.to_str().unwrap(),
    ]));
}
