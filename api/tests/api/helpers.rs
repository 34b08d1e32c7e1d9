//! The test harness: a real Souk node on port 0 over a fresh database, driven through
//! HTTP with reqwest.

use actix_web::web;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use souk_api::config::{Config, Secret};
use souk_api::state::AppState;
use souk_api::Application;
use souk_db::testing::{fresh, TestBackend, TestDatabase};

pub const TEST_JWT_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";
pub const PASSWORD: &str = "correct horse battery";

pub fn redis_url() -> String {
    std::env::var("SOUK_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

pub fn nats_url() -> String {
    std::env::var("SOUK_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:14222".to_owned())
}

/// A loopback port nothing listens on: a dependency that is down.
pub fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

pub struct TestApp {
    pub address: String,
    /// `http://127.0.0.1:<port>` of the node's gRPC API.
    pub grpc_address: String,
    /// `http://127.0.0.1:<port>` of the node's operations address (`/metrics`, probes).
    pub ops_address: String,
    pub client: reqwest::Client,
    pub database: TestDatabase,
    pub state: web::Data<AppState>,
    handle: actix_web::dev::ServerHandle,
    _data_dir: TempDir,
}

pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!("souk-it-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stops accepting; the runtime of the test ends the rest.
        drop(self.handle.stop(false));
    }
}

/// The configuration tests start from: fast bcrypt, one worker, a fixed JWT key.
pub fn test_config(database: &TestDatabase, data_dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.http.addr = "127.0.0.1:0".parse().unwrap();
    config.grpc.addr = "127.0.0.1:0".parse().unwrap();
    config.http.ops_addr = "127.0.0.1:0".parse().unwrap();
    config.node.data_dir = data_dir.to_path_buf();
    config.database.url = Some(database.url.clone());
    config.jwt.secret = Some(Secret::new(TEST_JWT_SECRET));
    config.auth.bcrypt_cost = 4;
    // Tests sign many accounts up from one address; the throttle has its own test.
    config.auth.register_max_per_ip = 1_000;
    config.cart.guest_max_per_ip = 1_000;
    // Tests place many orders as one customer; the purchase limits have their own test.
    config.orders.max_unpaid_orders = 0;
    config.orders.max_units_per_sku = 0;
    config.http.workers = Some(1);
    config.http.shutdown_timeout_secs = 1;
    // Unique per app so apps sharing one Redis never see each other's counters.
    config.redis.key_prefix = own_redis_prefix();
    // Apps sharing the test NATS server must not consume each other's events.
    config.events.namespace = format!("t{}", uuid::Uuid::now_v7().simple());
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestBackend::Sqlite, |_| {}).await
}

pub async fn spawn_app_on(backend: TestBackend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// A node on SQLite whose caches, carts and rate limits live in the test Redis,
/// configured further by `tweak`.
pub async fn spawn_app_with_redis(tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_with(TestBackend::Sqlite, |config| {
        config.redis.url = Some(redis_url());
        tweak(config);
    })
    .await
}

/// A Redis key prefix of this test's own, so that it can look at its keys alone.
pub fn own_redis_prefix() -> String {
    format!("souk-test:{}:", uuid::Uuid::now_v7().simple())
}

pub async fn spawn_app_with(backend: TestBackend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let database = fresh(backend).await;
    let data_dir = TempDir::new();
    let mut config = test_config(&database, &data_dir.0);
    tweak(&mut config);
    let application = Application::build(config)
        .await
        .expect("build the application");
    let address = format!("http://127.0.0.1:{}", application.port());
    let grpc_address = format!("http://127.0.0.1:{}", application.grpc_port());
    let ops_address = format!("http://127.0.0.1:{}", application.ops_port());
    let state = application.state();
    let handle = application.handle();
    actix_web::rt::spawn(application.run_until_stopped());
    // As an orchestrator waits for readiness: the search index's first build (an
    // empty or small catalog: milliseconds).
    let search = state.catalog.search_engine().clone();
    let started = std::time::Instant::now();
    while !search.is_ready() && started.elapsed() < std::time::Duration::from_secs(10) {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    TestApp {
        address,
        grpc_address,
        ops_address,
        client: http_client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        database,
        state,
        handle,
        _data_dir: data_dir,
    }
}

/// Every reqwest client of the tests starts from this builder: it drops a pooled
/// connection idle for [`souk_api::http::CLIENT_IDLE`], under the servers' keep-alive.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().pool_idle_timeout(souk_api::http::CLIENT_IDLE)
}

/// A test's HTTP client with nothing else set (see [`http_client_builder`]).
pub fn http_client() -> reqwest::Client {
    http_client_builder()
        .build()
        .expect("a client with only a pool timeout builds")
}

pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.com", uuid::Uuid::now_v7().simple())
}

/// A registered and logged-in user.
pub struct Session {
    pub id: String,
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_json_as(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_as(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// A GET on the operations address (`/metrics`, `/healthz`, `/readyz`).
    pub async fn ops_get(&self, path: &str) -> Response {
        self.client
            .get(format!("{}{path}", self.ops_address))
            .send()
            .await
            .unwrap()
    }

    /// The Prometheus exposition of the node, from its operations address.
    pub async fn metrics(&self) -> String {
        let response = self.ops_get("/metrics").await;
        assert_eq!(response.status(), StatusCode::OK, "GET /metrics");
        response.text().await.unwrap()
    }

    pub async fn register(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/api/v1/auth/register",
            &json!({"email": email, "password": password, "name": "Test User"}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/api/v1/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": refresh_token}),
        )
        .await
    }

    /// Registers a customer and logs in.
    pub async fn customer(&self, tag: &str) -> Session {
        let email = unique_email(tag);
        let registered = self.register(&email, PASSWORD).await;
        assert_eq!(registered.status(), StatusCode::CREATED, "register {email}");
        let user: Value = registered.json().await.unwrap();
        self.session_for(user["id"].as_str().unwrap(), &email).await
    }

    /// Creates an admin through the same service `souk admin create` uses, and logs in.
    pub async fn admin(&self) -> Session {
        let email = unique_email("admin");
        let (user, created) = self
            .state
            .users
            .create_or_promote_admin(souk_actors::identity::users::Registration {
                email: souk_actors::identity::Email::parse(&email).unwrap(),
                password: souk_actors::identity::Password::parse(PASSWORD).unwrap(),
                name: souk_actors::identity::PersonName::parse("Admin").unwrap(),
            })
            .await
            .unwrap();
        assert!(created);
        self.session_for(&user.id, &email).await
    }

    pub async fn session_for(&self, id: &str, email: &str) -> Session {
        let response = self.login(email, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK, "login {email}");
        let tokens: Value = response.json().await.unwrap();
        Session {
            id: id.to_owned(),
            email: email.to_owned(),
            access_token: tokens["access_token"].as_str().unwrap().to_owned(),
            refresh_token: tokens["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Outbox events of one topic about one aggregate, as JSON payloads.
    pub async fn events(&self, topic: &str, aggregate_id: &str) -> Vec<Value> {
        souk_db::outbox::for_aggregate(self.database.db.pool(), topic, aggregate_id)
            .await
            .unwrap()
            .into_iter()
            .map(|event| serde_json::from_str(&event.payload).unwrap())
            .collect()
    }
}

/// Reads a problem+json body and checks its status and code.
pub async fn assert_problem(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "status of a `{code}` problem"
    );
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/problem+json"),
        "content type {content_type}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "problem {body}");
    assert_eq!(body["status"], status);
    assert!(body["detail"]
        .as_str()
        .is_some_and(|detail| !detail.is_empty()));
    body
}

/// One test per backend from `async fn name(backend: TestBackend)`, on actix's runtime.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        souk_db::on_both_backends!(#[actix_web::test] $($name),*);
    };
}

/// Polls `check` until it holds, failing the test once `bound` has passed; returns how
/// long it took. For what the server documents as eventually true within a bound (a
/// stock flag in search, a write seen by another node).
pub async fn within<F, Fut>(
    bound: std::time::Duration,
    what: &str,
    mut check: F,
) -> std::time::Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < bound, "{what}: not within {bound:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A gRPC request carrying `token` as its bearer token.
pub fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}
