//! What operators see of a node: a fresh process's scrape (help text for every metric,
//! the alert rules' series before any traffic, process figures), gRPC calls counted,
//! timed and logged with their request ids, and logs that carry no personal data.

use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_proto::v1 as pb;
use souk_proto::v1::product_service_client::ProductServiceClient;
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::cli::{admin_create, souk, start_server_logging};
use crate::deploy::repo;
use crate::grpc_edges::{call_raw, channel};
use crate::helpers::*;

/// A `souk serve` process whose every log line is kept as it comes.
struct Process {
    child: std::process::Child,
    listening: Value,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Process {
    fn start(command: std::process::Command) -> Self {
        let (child, listening, lines) = start_server_logging(command);
        let logs = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&logs);
        // Drained all along, so the process never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            listening,
            logs,
        }
    }

    fn field(&self, name: &str) -> String {
        self.listening["fields"][name].as_str().unwrap().to_owned()
    }

    /// Stops the process and returns everything it logged.
    fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The reader thread ends with the pipe; give it the moment it needs.
        let mut last = usize::MAX;
        loop {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let now = self.logs.lock().unwrap().len();
            if now == last {
                break;
            }
            last = now;
        }
        let logs = self.logs.lock().unwrap().clone();
        logs
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The metric names of an exposition's sample lines.
fn sample_names(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

/// Every metric a fresh node exports has help text; every metric an alert rule selects
/// is there before the first request; the process figures are there.
#[actix_web::test]
async fn a_fresh_node_describes_its_metrics_and_has_every_alerted_series() {
    let dir = TempDir::new();
    let node = Process::start(souk(&dir.0));
    let text = reqwest::get(format!("{}/metrics", node.field("ops")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut typed = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap();
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{name} has no help text:\n{text}"
            );
            typed += 1;
        }
    }
    assert!(typed >= 5, "{text}");
    let samples = sample_names(&text);
    let rules = std::fs::read_to_string(repo("deploy/helm/souk/files/souk-alerts.yaml")).unwrap();
    let mut alerted = std::collections::BTreeSet::new();
    for token in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if token.starts_with("souk_") {
            alerted.insert(token.to_owned());
        }
    }
    assert!(alerted.len() >= 5, "{alerted:?}");
    for name in &alerted {
        assert!(
            samples.contains(name),
            "{name} (alert rules) is not in a fresh node's scrape:\n{text}"
        );
    }
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(samples.contains(name), "{name}:\n{text}");
    }
    node.stop();
}

/// A gRPC call is counted and timed by its service, method and code; a path that is no
/// served method adds no series, however many a client invents.
#[actix_web::test]
async fn grpc_calls_are_counted_by_method_and_code_without_raw_paths() {
    let app = spawn_app().await;
    let channel = channel(&app).await;
    let missing = ProductServiceClient::new(channel.clone())
        .get_product_by_sku(pb::GetProductBySkuRequest {
            sku: "NO-SUCH-SKU".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    for index in 0..5 {
        let status = call_raw(
            &channel,
            &format!("/souk.v1.Invented{index}/Probe"),
            Vec::new(),
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
    }
    let text = app.metrics().await;
    let has = |needle: &str| {
        text.lines()
            .any(|line| needle.split('|').all(|part| line.contains(part)))
    };
    assert!(
        has("souk_grpc_requests_total{|service=\"souk.v1.ProductService\"|method=\"GetProductBySku\"|code=\"NOT_FOUND\"} "),
        "{text}"
    );
    assert!(
        has("souk_grpc_request_duration_seconds_bucket{|method=\"GetProductBySku\"|le=\"+Inf\""),
        "{text}"
    );
    assert!(
        !text.contains("Invented"),
        "a client's path became a label: {text}"
    );
    assert!(
        has("souk_grpc_requests_total{|service=\"unknown\"|method=\"unknown\"|code=\"UNIMPLEMENTED\"}"),
        "{text}"
    );
}

/// A gRPC call logs one line carrying its request id (the caller's, if plain), and the
/// same id comes back in the response metadata; a call without one gets a fresh id.
#[actix_web::test]
async fn grpc_calls_are_logged_with_their_echoed_request_id() {
    let dir = TempDir::new();
    let node = Process::start(souk(&dir.0));
    let channel = tonic::transport::Channel::from_shared(node.field("grpc"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let mut request = tonic::Request::new(HealthCheckRequest::default());
    request
        .metadata_mut()
        .insert("x-request-id", "grpc-trace-42".parse().unwrap());
    let response = health.check(request).await.unwrap();
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "grpc-trace-42"
    );
    let generated = health.check(HealthCheckRequest::default()).await.unwrap();
    let generated = generated
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(souk_db::ids::is_well_formed(&generated), "{generated}");
    let logs = node.stop();
    let calls: Vec<Value> = logs
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| entry["span"]["name"] == "grpc_request")
        .collect();
    for id in ["grpc-trace-42", generated.as_str()] {
        let lines: Vec<&Value> = calls
            .iter()
            .filter(|entry| entry["span"]["request_id"] == id)
            .collect();
        assert_eq!(lines.len(), 1, "one line per call for {id}: {calls:?}");
        let line = lines[0];
        assert_eq!(line["fields"]["message"], "call served", "{line}");
        assert_eq!(line["fields"]["code"], "OK", "{line}");
        assert_eq!(line["span"]["service"], "grpc.health.v1.Health", "{line}");
        assert_eq!(line["span"]["method"], "Check", "{line}");
        let latency = line["fields"]["latency_ms"].to_string();
        assert!(
            latency
                .split('.')
                .nth(1)
                .is_none_or(|decimals| decimals.len() <= 3),
            "latency to the microsecond: {line}"
        );
    }
}

/// Registration, login, a failed login, an order placed with an Idempotency-Key (over
/// REST and gRPC) and a password reset leave no email address, name or key in the log,
/// even at debug level for Souk's own crates; request latencies are logged to the
/// microsecond.
#[actix_web::test]
async fn logs_carry_no_email_address_name_or_idempotency_key() {
    let dir = TempDir::new();
    let admin_email = unique_email("log-admin");
    let created = admin_create(souk(&dir.0), &admin_email, PASSWORD);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let mut command = souk(&dir.0);
    command.env(
        "SOUK_LOG_FILTER",
        "info,souk_api=debug,souk_actors=debug,souk_db=debug,sqlx=warn,async_nats=warn",
    );
    let node = Process::start(command);
    let base = node.field("address");
    let client = crate::helpers::http_client();
    let post = |path: &str, token: Option<&str>, body: Value| {
        let mut request = client.post(format!("{base}{path}")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
    };
    let login = |email: String| {
        let request = post(
            "/api/v1/auth/login",
            None,
            json!({"email": email, "password": PASSWORD}),
        );
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let tokens: Value = response.json().await.unwrap();
            tokens["access_token"].as_str().unwrap().to_owned()
        }
    };
    let admin = login(admin_email.clone()).await;
    let email = unique_email("quixote-private");
    let name = "Zelinda Quixoteworth";
    let registered = post(
        "/api/v1/auth/register",
        None,
        json!({"email": email, "password": PASSWORD, "name": name}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let wrong = post(
        "/api/v1/auth/login",
        None,
        json!({"email": email, "password": "not the password"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let customer = login(email.clone()).await;
    let product = post(
        "/api/v1/admin/products",
        Some(&admin),
        json!({"sku": "LOG-1", "name": "Log item", "price": {"amount": 500, "currency": "EUR"}, "status": "active"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(product.status(), StatusCode::CREATED);
    let stocked = post(
        "/api/v1/admin/inventory/LOG-1/adjust",
        Some(&admin),
        json!({"delta": 10, "reason": "delivery"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(stocked.status(), StatusCode::OK);
    let key = format!("idem-secret-{}", uuid::Uuid::now_v7().simple());
    for _ in 0..2 {
        let order = post(
            "/api/v1/orders",
            Some(&customer),
            json!({"items": [{"sku": "LOG-1", "quantity": 1}]}),
        )
        .header("Idempotency-Key", &key)
        .send()
        .await
        .unwrap();
        assert!(order.status().is_success(), "{}", order.status());
    }
    let grpc_key = format!("grpc-idem-secret-{}", uuid::Uuid::now_v7().simple());
    let channel = tonic::transport::Channel::from_shared(node.field("grpc"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut request = tonic::Request::new(pb::CreateOrderRequest {
        items: vec![pb::OrderItem {
            sku: "LOG-1".to_owned(),
            quantity: 1,
        }],
        idempotency_key: grpc_key.clone(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {customer}").parse().unwrap(),
    );
    souk_proto::v1::order_service_client::OrderServiceClient::new(channel)
        .create_order(request)
        .await
        .unwrap();
    let reset = post("/api/v1/auth/password-reset", None, json!({"email": email}))
        .send()
        .await
        .unwrap();
    assert!(reset.status().is_success(), "{}", reset.status());
    let lines = node.stop();
    let mut served = 0;
    for entry in lines
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
    {
        if entry["fields"]["message"] == "request served" {
            served += 1;
            let latency = entry["fields"]["latency_ms"].to_string();
            assert!(
                latency
                    .split('.')
                    .nth(1)
                    .is_none_or(|decimals| decimals.len() <= 3),
                "latency to the microsecond, without float noise: {entry}"
            );
        }
    }
    assert!(served >= 8, "the node logged its requests: {lines:?}");
    let logs = lines.join("\n");
    let (local_part, _) = email.split_once('@').unwrap();
    for secret in [
        email.as_str(),
        local_part,
        admin_email.as_str(),
        name,
        &key,
        &grpc_key,
    ] {
        assert!(!logs.contains(secret), "`{secret}` is in the log:\n{logs}");
    }
}
