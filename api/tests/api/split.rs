//! The six services as six `souk` processes over one MariaDB and NATS, calling one
//! another over gRPC: the shopper flow gives what one all-in-one process gives, and an
//! order placed while the inventory is down fails fast, creates nothing, and completes
//! with the same Idempotency-Key once the inventory is back.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use souk_db::testing::TestDatabase;

use crate::cli::{admin_create, souk, wait_listening};
use crate::email::{token_in, SmtpSink};
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
            client: reqwest::Client::builder()
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

/// The shopper flow; returns what a shopper and an admin can observe of it, without
/// ids and times (which differ between runs by design).
async fn shopper_flow(gateway: &Gateway, admin_email: &str, sink: &SmtpSink) -> Value {
    use reqwest::Method;
    let shopper = Shopper::new();
    let admin = shopper.login(gateway, admin_email).await;
    let (status, product) = shopper
        .send(
            gateway,
            Method::POST,
            "/api/v1/admin/products",
            Some(&admin),
            Some(
                json!({"sku": "SPLIT-1", "name": "Split kettle", "description": "boils apart",
                "price": {"amount": 3450, "currency": "EUR"}, "status": "active"}),
            ),
            None,
        )
        .await;
    assert_eq!(status, 201, "{product}");
    let (status, stock) = shopper
        .send(
            gateway,
            Method::POST,
            "/api/v1/admin/inventory/SPLIT-1/adjust",
            Some(&admin),
            Some(json!({"delta": 10, "reason": "first delivery"})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{stock}");

    let email = unique_email("split-shopper");
    let (status, registered) = shopper
        .send(
            gateway,
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({"email": email, "password": PASSWORD, "name": "Sam Split"})),
            None,
        )
        .await;
    assert_eq!(status, 201, "{registered}");
    // The welcome mail comes from the email service, told by the auth service over NATS.
    let welcome = sink.wait_for(&email, 1).await;
    let link = "http://shop.test/account/verify-email?token=";
    let verification = token_in(welcome[0]["text"].as_str().unwrap(), link);
    let (status, verified) = shopper
        .send(
            gateway,
            Method::GET,
            &format!("/api/v1/auth/verify-email?token={verification}"),
            None,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{verified}");
    let token = shopper.login(gateway, &email).await;
    let (status, me) = shopper
        .send(
            gateway,
            Method::GET,
            "/api/v1/users/me",
            Some(&token),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{me}");

    let (status, found) = shopper
        .send(
            gateway,
            Method::GET,
            "/api/v1/products?q=kettle",
            None,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["items"][0]["sku"], "SPLIT-1", "{found}");

    let (status, placed) = shopper
        .send(
            gateway,
            Method::POST,
            "/api/v1/orders",
            Some(&token),
            Some(json!({"items": [{"sku": "SPLIT-1", "quantity": 3}]})),
            Some("split-flow-1"),
        )
        .await;
    assert_eq!(status, 201, "{placed}");
    let order_id = placed["id"].as_str().unwrap().to_owned();
    let (status, paid) = shopper
        .send(
            gateway,
            Method::POST,
            &format!("/api/v1/orders/{order_id}/pay"),
            Some(&token),
            Some(json!({"payment_method": "card"})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{paid}");
    // The cart is the order service's: its lines are priced by the product service
    // and checked against the inventory service's actors, over gRPC.
    let (status, cart) = shopper
        .send(
            gateway,
            Method::PUT,
            "/api/v1/cart/items/SPLIT-1",
            Some(&token),
            Some(json!({"quantity": 2})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{cart}");
    let (cleared, _) = shopper
        .send(
            gateway,
            Method::DELETE,
            "/api/v1/cart",
            Some(&token),
            None,
            None,
        )
        .await;
    // A variant is priced as itself across services too: the order service asks the
    // product service for the product of the variant's SKU and prices the variant.
    let (status, tee) = shopper
        .send(
            gateway,
            Method::POST,
            "/api/v1/admin/products",
            Some(&admin),
            Some(json!({"sku": "SPLIT-TEE", "name": "Split tee",
                "price": {"amount": 1500, "currency": "EUR"}, "status": "active",
                "options": [{"name": "size", "values": ["S", "M"]}],
                "variants": [{"sku": "SPLIT-TEE-S", "options": {"size": "S"}},
                    {"sku": "SPLIT-TEE-M", "options": {"size": "M"},
                     "price": {"amount": 1700, "currency": "EUR"}}]})),
            None,
        )
        .await;
    assert_eq!(status, 201, "{tee}");
    let (status, stocked) = shopper
        .send(
            gateway,
            Method::POST,
            "/api/v1/admin/inventory/SPLIT-TEE-M/adjust",
            Some(&admin),
            Some(json!({"delta": 4, "reason": "first delivery"})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{stocked}");
    let (_, variant_cart) = shopper
        .send(
            gateway,
            Method::PUT,
            "/api/v1/cart/items/SPLIT-TEE-M",
            Some(&token),
            Some(json!({"quantity": 1})),
            None,
        )
        .await;
    let (family_status, family) = shopper
        .send(
            gateway,
            Method::PUT,
            "/api/v1/cart/items/SPLIT-TEE",
            Some(&token),
            Some(json!({"quantity": 1})),
            None,
        )
        .await;
    let (_, stock) = shopper
        .send(
            gateway,
            Method::GET,
            "/api/v1/admin/inventory/SPLIT-1",
            Some(&admin),
            None,
            None,
        )
        .await;
    let (_, product) = shopper
        .send(
            gateway,
            Method::GET,
            "/api/v1/products/sku/SPLIT-1",
            None,
            None,
            None,
        )
        .await;
    let (_, orders) = shopper
        .send(
            gateway,
            Method::GET,
            "/api/v1/orders",
            Some(&token),
            None,
            None,
        )
        .await;
    // Welcome, order confirmation and payment received.
    let mails = sink.wait_for(&email, 3).await;
    let mut subjects: Vec<String> = mails
        .iter()
        .map(|mail| {
            mail["subject"]
                .as_str()
                .unwrap()
                .replace(&order_id, "<order>")
        })
        .collect();
    subjects.sort();
    let confirmation = mails
        .iter()
        .find(|mail| mail["text"].as_str().unwrap().contains("Split kettle"))
        .expect("the order confirmation lists the line");
    json!({
        "me": {"name": me["name"], "role": me["role"], "email_verified": me["email_verified"]},
        "mail_subjects": subjects,
        "confirmation_line": confirmation["text"].as_str().unwrap()
            .contains("- 3 x Split kettle (SPLIT-1) at EUR 34.50 = EUR 103.50"),
        "placed": {"status": placed["status"], "total": placed["total"],
            "lines": placed["items"].as_array().unwrap().iter().map(|line| json!({
                "sku": line["sku"], "name": line["name"], "quantity": line["quantity"],
                "unit_price": line["unit_price"], "line_total": line["line_total"],
            })).collect::<Vec<_>>()},
        "paid": {"status": paid["status"], "payment_status": paid["payment_status"]},
        "stock": {"on_hand": stock["on_hand"], "reserved": stock["reserved"], "available": stock["available"]},
        "product_available": product["available"],
        "cart_line": {"unit_price": cart["items"][0]["unit_price"],
            "available": cart["items"][0]["available"], "status": cart["items"][0]["status"]},
        "cart_cleared": cleared,
        "variant_line": {"name": variant_cart["items"][0]["name"],
            "unit_price": variant_cart["items"][0]["unit_price"],
            "available": variant_cart["items"][0]["available"]},
        "family_refused": [family_status, family["errors"][0]["field"]],
        "orders_listed": orders["items"].as_array().map(Vec::len),
    })
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

#[test]
fn six_processes_give_the_same_outcome_as_one() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (split_database, single_database) = runtime.block_on(async {
        (
            souk_db::testing::fresh_mysql().await,
            souk_db::testing::fresh_mysql().await,
        )
    });

    let split_sink = SmtpSink::start();
    let split = Deployment::new(&split_database, &split_sink);
    split.create_admin("boss@split.example");
    let (nodes, gateway, _) = six_processes(&split);
    let split_outcome = runtime.block_on(shopper_flow(&gateway, "boss@split.example", &split_sink));
    drop(nodes);

    let single_sink = SmtpSink::start();
    let single = Deployment::new(&single_database, &single_sink);
    single.create_admin("boss@single.example");
    let node = single.start("all", 0, &[]);
    let single_outcome = runtime.block_on(shopper_flow(
        &Gateway::one(&node.http),
        "boss@single.example",
        &single_sink,
    ));
    drop(node);

    assert_eq!(
        split_outcome["stock"],
        json!({"on_hand": 7, "reserved": 0, "available": 7})
    );
    assert_eq!(split_outcome["paid"]["status"], "paid");
    assert_eq!(split_outcome["me"]["email_verified"], true);
    assert_eq!(split_outcome["confirmation_line"], true);
    assert_eq!(split_outcome["mail_subjects"].as_array().unwrap().len(), 3);
    assert_eq!(
        split_outcome["variant_line"],
        json!({"name": "Split tee (M)", "unit_price": {"amount": 1700, "currency": "EUR"}, "available": 4})
    );
    assert_eq!(split_outcome["family_refused"], json!([422, "sku"]));
    assert_eq!(split_outcome, single_outcome);
}

#[test]
fn an_order_while_inventory_is_down_fails_fast_and_completes_after() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = runtime.block_on(souk_db::testing::fresh_mysql());
    let sink = SmtpSink::start();
    let deployment = Deployment::new(&database, &sink);
    deployment.create_admin("boss@down.example");
    let (mut nodes, gateway, inventory_port) = six_processes(&deployment);
    let shopper = Shopper::new();
    runtime.block_on(async {
        use reqwest::Method;
        let admin = shopper.login(&gateway, "boss@down.example").await;
        let (status, _) = shopper
            .send(&gateway, Method::POST, "/api/v1/admin/products", Some(&admin),
                Some(json!({"sku": "DOWN-1", "name": "Fragile", "price": {"amount": 500, "currency": "EUR"}, "status": "active"})), None)
            .await;
        assert_eq!(status, 201);
        let (status, _) = shopper
            .send(&gateway, Method::POST, "/api/v1/admin/inventory/DOWN-1/adjust", Some(&admin),
                Some(json!({"delta": 5, "reason": "stock"})), None)
            .await;
        assert_eq!(status, 200);
        let email = unique_email("down");
        let (status, _) = shopper
            .send(&gateway, Method::POST, "/api/v1/auth/register", None,
                Some(json!({"email": email, "password": PASSWORD, "name": "Dana Down"})), None)
            .await;
        assert_eq!(status, 201);
        let token = shopper.login(&gateway, &email).await;

        // The inventory process dies.
        let inventory = nodes.iter().position(|node| gateway.routes["inventory"] == node.http).unwrap();
        drop(nodes.remove(inventory));

        let started = Instant::now();
        let (status, problem) = shopper
            .send(&gateway, Method::POST, "/api/v1/orders", Some(&token),
                Some(json!({"items": [{"sku": "DOWN-1", "quantity": 2}]})), Some("while-down"))
            .await;
        let waited = started.elapsed();
        assert_eq!(status, 503, "{problem}");
        assert_eq!(problem["code"], "dependency_unavailable", "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("inventory"), "{problem}");
        // Within the configured 2 s deadline plus slack for a loaded machine, not a hang.
        assert!(waited < Duration::from_secs(15), "answered after {waited:?}");

        // Nothing half-created: no order, no reservation, no ledger entry beyond the stocking.
        let pool = database.db.pool();
        let count = |sql: &'static str| async move {
            let (n,): (i64,) = sqlx::query_as(sql).fetch_one(pool).await.unwrap();
            n
        };
        assert_eq!(count("SELECT COUNT(*) FROM orders").await, 0);
        assert_eq!(count("SELECT COUNT(*) FROM inventory_reservations").await, 0);

        // The order service says what it is missing.
        let (status, readiness) = shopper
            .send_raw_get(&format!("{}/readyz", gateway.routes["order"]))
            .await;
        assert_eq!(status, 503, "{readiness}");
        assert!(readiness["checks"]["souk.v1.InventoryService"].as_str().unwrap().starts_with("error"), "{readiness}");

        // The inventory comes back on its address; the same key completes the order.
        nodes.push(deployment.start("inventory", inventory_port, &[]));
        let mut outcome = (0, Value::Null);
        for _ in 0..40 {
            outcome = shopper
                .send(&gateway_with_inventory(&gateway, &nodes), Method::POST, "/api/v1/orders", Some(&token),
                    Some(json!({"items": [{"sku": "DOWN-1", "quantity": 2}]})), Some("while-down"))
                .await;
            if outcome.0 != 503 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_eq!(outcome.0, 201, "{}", outcome.1);
        assert_eq!(outcome.1["status"], "pending_payment");
        let again = shopper
            .send(&gateway_with_inventory(&gateway, &nodes), Method::POST, "/api/v1/orders", Some(&token),
                Some(json!({"items": [{"sku": "DOWN-1", "quantity": 2}]})), Some("while-down"))
            .await;
        assert_eq!(again.0, 200, "a retry with the same key is the same order");
        assert_eq!(again.1["id"], outcome.1["id"]);
        assert_eq!(count("SELECT COUNT(*) FROM orders").await, 1);
        let (status, stock) = shopper
            .send(&gateway_with_inventory(&gateway, &nodes), Method::GET, "/api/v1/admin/inventory/DOWN-1", Some(&admin), None, None)
            .await;
        assert_eq!(status, 200);
        assert_eq!((stock["on_hand"].as_i64(), stock["reserved"].as_i64()), (Some(5), Some(2)));
    });
}

/// The gateway with the restarted inventory's new HTTP address.
fn gateway_with_inventory(gateway: &Gateway, nodes: &[Node]) -> Gateway {
    let mut routes = gateway.routes.clone();
    routes.insert("inventory", nodes.last().unwrap().http.clone());
    Gateway { routes }
}

impl Shopper {
    async fn send_raw_get(&self, url: &str) -> (u16, Value) {
        let response = self.client.get(url).send().await.unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }
}
