//! The six services as six `souk` processes over one MariaDB and NATS, calling one
//! another over gRPC: the shopper flow gives what one all-in-one process gives, and an
//! order placed while the inventory is down fails fast, creates nothing, and completes
//! with the same Idempotency-Key once the inventory is back. Here: what the tests share
//! (other modules use `Deployment` too): a deployment's shared settings and its `souk serve`
//! processes, a gateway that routes REST paths as an ingress would, a shopper's HTTP
//! client, and the six processes started in order. The tests: one shopper flow on six
//! processes and on one (`shopper_flow`), and an order while the inventory is down
//! (`inventory_down`).

mod inventory_down;
mod shopper_flow;

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use souk_db::testing::TestDatabase;

use crate::cli::{admin_create, souk, wait_listening};
use crate::email::SmtpSink;
use crate::helpers::*;

const SERVICES: [&str; 6] = ["user", "auth", "email", "product", "order", "inventory"];

/// One `souk serve` process.
pub(crate) struct Node {
    pub(crate) child: Child,
    pub(crate) http: String,
    /// Its gRPC API's URL, as it logged it.
    pub(crate) grpc: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What every process of one deployment shares: the database, the signing key, NATS.
pub(crate) struct Deployment {
    dir: TempDir,
    env: Vec<(String, String)>,
}

impl Deployment {
    pub(crate) fn new(database: &TestDatabase, sink: &SmtpSink) -> Self {
        let mut env = vec![
            ("SOUK_SMTP_URL".to_owned(), sink.url()),
            (
                "SOUK_PUBLIC_BASE_URL".to_owned(),
                "http://shop.test".to_owned(),
            ),
            ("SOUK_OUTBOX_POLL_MS".to_owned(), "50".to_owned()),
            // Streams and consumers of their own on the shared NATS server.
            (
                "SOUK_EVENTS_NAMESPACE".to_owned(),
                format!("split{}", uuid::Uuid::now_v7().simple()),
            ),
            ("SOUK_DATABASE_URL".to_owned(), database.url.clone()),
            ("SOUK_JWT_SECRET".to_owned(), TEST_JWT_SECRET.to_owned()),
            ("SOUK_LOG_FORMAT".to_owned(), "json".to_owned()),
            ("SOUK_GRPC_DEADLINE_MS".to_owned(), "2000".to_owned()),
            ("SOUK_SHUTDOWN_TIMEOUT_SECS".to_owned(), "1".to_owned()),
        ];
        if let Ok(nats) = std::env::var("SOUK_TEST_NATS_URL") {
            env.push(("SOUK_NATS_URL".to_owned(), nats));
        }
        Self {
            dir: TempDir::new(),
            env,
        }
    }

    pub(crate) fn command(&self) -> std::process::Command {
        let mut command = souk(&self.dir.0);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    pub(crate) fn create_admin(&self, email: &str) {
        let created = admin_create(self.command(), email, PASSWORD);
        assert!(
            created.status.success(),
            "souk admin create: {}",
            String::from_utf8_lossy(&created.stderr)
        );
    }

    /// Starts `souk serve --services <services>` with its gRPC API on `grpc_port` (0:
    /// any free port, for a process no other one calls) and waits until it listens.
    pub(crate) fn start(&self, services: &str, grpc_port: u16, extra: &[(String, String)]) -> Node {
        let mut command = self.command();
        command
            .args([
                "serve",
                "--services",
                services,
                "--http-addr",
                "127.0.0.1:0",
                "--grpc-addr",
                &format!("127.0.0.1:{grpc_port}"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in extra {
            command.env(key, value);
        }
        let (child, entry) = wait_listening(
            command.spawn().unwrap(),
            &format!("souk serve --services {services}"),
        );
        let http = entry["fields"]["address"].as_str().unwrap().to_owned();
        let grpc = entry["fields"]["grpc"].as_str().unwrap().to_owned();
        Node { child, http, grpc }
    }
}

/// Which process answers which REST path, as an ingress would route them.
struct Gateway {
    routes: BTreeMap<&'static str, String>,
}

impl Gateway {
    fn one(address: &str) -> Self {
        Self {
            routes: SERVICES
                .iter()
                .map(|service| (*service, address.to_owned()))
                .collect(),
        }
    }

    fn url(&self, path: &str) -> String {
        let service = if path.starts_with("/api/v1/auth") {
            "auth"
        } else if path.starts_with("/api/v1/users") || path.starts_with("/api/v1/admin/users") {
            "user"
        } else if path.starts_with("/api/v1/products")
            || path.starts_with("/api/v1/categories")
            || path.starts_with("/api/v1/admin/products")
            || path.starts_with("/api/v1/admin/categories")
        {
            "product"
        } else if path.starts_with("/api/v1/orders")
            || path.starts_with("/api/v1/admin/orders")
            || path.starts_with("/api/v1/cart")
        {
            "order"
        } else if path.starts_with("/api/v1/admin/inventory") {
            "inventory"
        } else if path.starts_with("/api/v1/admin/emails") {
            "email"
        } else {
            panic!("no service routes {path}")
        };
        format!("{}{path}", self.routes[service])
    }
}

struct Shopper {
    client: reqwest::Client,
}

impl Shopper {
    fn new() -> Self {
        Self {
            client: crate::helpers::http_client_builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    async fn send(
        &self,
        gateway: &Gateway,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, gateway.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn login(&self, gateway: &Gateway, email: &str) -> String {
        let (status, tokens) = self
            .send(
                gateway,
                reqwest::Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"email": email, "password": PASSWORD})),
                None,
            )
            .await;
        assert_eq!(status, 200, "login {email}: {tokens}");
        tokens["access_token"].as_str().unwrap().to_owned()
    }
}

fn six_processes(deployment: &Deployment) -> (Vec<Node>, Gateway, u16) {
    // The two services the others call start first, on ports the system picks; the
    // others are told the addresses they logged, so no other test can take a port
    // picked for them in between.
    let inventory = deployment.start("inventory", 0, &[]);
    let product = deployment.start("product", 0, &[]);
    let remote = vec![
        ("SOUK_INVENTORY_GRPC_URL".to_owned(), inventory.grpc.clone()),
        ("SOUK_PRODUCT_GRPC_URL".to_owned(), product.grpc.clone()),
    ];
    let inventory_port = inventory
        .grpc
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap();
    let mut routes = BTreeMap::new();
    routes.insert("inventory", inventory.http.clone());
    routes.insert("product", product.http.clone());
    let mut nodes = vec![inventory, product];
    for service in SERVICES {
        if matches!(service, "inventory" | "product") {
            continue;
        }
        let node = deployment.start(service, 0, &remote);
        routes.insert(service, node.http.clone());
        nodes.push(node);
    }
    (nodes, Gateway { routes }, inventory_port)
}
