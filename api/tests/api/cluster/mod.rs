//! Clusters of real `souk` processes over one MariaDB database and a real nats-server
//! (>= 2.11, JetStream KV): what they share, how a member is started, stopped, killed
//! and frozen, a checkout load spread over every member, and the checks that the
//! database holds every acknowledged reservation and never more than the stock.

mod carried;
mod deadline;
mod fencing;
mod proofs;
mod split;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cli::{admin_create, souk, wait_listening};
use crate::crash::{login, register};
use crate::helpers::*;

/// Shards of the test deployments: few enough to read, enough to spread.
pub(crate) const SHARDS: u32 = 64;
const ADMIN: &str = "boss@example.com";
/// How long a member may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The runtime a cluster test drives its members from.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// One `souk serve` process of a cluster.
pub(crate) struct Member {
    pub(crate) id: String,
    pub(crate) child: Child,
    pub(crate) http: String,
    pub(crate) ops: String,
    /// Its gRPC API's URL, as it logged it.
    pub(crate) grpc: String,
}

impl Member {
    pub(crate) fn signal(&self, signal: &str) {
        let sent = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal} {}", self.id);
    }

    /// SIGKILL, and reap it.
    pub(crate) fn kill(mut self) {
        self.signal("KILL");
        let _ = self.child.wait();
    }

    /// SIGTERM, and wait for a graceful exit.
    pub(crate) fn stop(mut self) {
        self.signal("TERM");
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "{} exited with {status} after SIGTERM",
            self.id
        );
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What every member of one test cluster shares: the database, the NATS namespace,
/// the signing key, short lease timings.
pub(crate) struct Deployment {
    dir: TempDir,
    pub(crate) database_url: String,
    env: Vec<(String, String)>,
}

impl Deployment {
    /// A deployment on a new, empty database (the first members migrate it).
    pub(crate) async fn new() -> Self {
        let database_url = souk_db::testing::empty_mysql().await;
        let nats = std::env::var("SOUK_TEST_NATS_URL")
            .unwrap_or_else(|_| "nats://127.0.0.1:14222".to_owned());
        let namespace = format!("c{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
        let env = [
            ("SOUK_DATABASE_URL", database_url.as_str()),
            ("SOUK_NATS_URL", nats.as_str()),
            ("SOUK_JWT_SECRET", TEST_JWT_SECRET),
            ("SOUK_LOG_FORMAT", "json"),
            ("SOUK_EVENTS_NAMESPACE", namespace.as_str()),
            ("SOUK_CLUSTER_ENABLED", "true"),
            ("SOUK_CLUSTER_NAMESPACE", namespace.as_str()),
            ("SOUK_CLUSTER_SHARDS", "64"),
            // Leases of 2 s renewed every 300 ms, served until 600 ms before they could
            // expire: a dead member's shards move within about 2.5 s.
            ("SOUK_CLUSTER_LEASE_TTL_SECS", "2"),
            ("SOUK_CLUSTER_LEASE_RENEW_MS", "300"),
            ("SOUK_CLUSTER_LEASE_MARGIN_MS", "600"),
            ("SOUK_CLUSTER_MEMBERSHIP_TTL_SECS", "2"),
            ("SOUK_CLUSTER_MEMBERSHIP_RENEW_MS", "300"),
            ("SOUK_CLUSTER_HANDOFF_TIMEOUT_MS", "2000"),
            ("SOUK_SHUTDOWN_TIMEOUT_SECS", "2"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
        Self {
            dir: TempDir::new(),
            database_url,
            env,
        }
    }

    fn command(&self) -> std::process::Command {
        let mut command = souk(&self.dir.0);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    pub(crate) fn create_admin(&self) {
        let created = admin_create(self.command(), ADMIN, PASSWORD);
        assert!(
            created.status.success(),
            "souk admin create: {}",
            String::from_utf8_lossy(&created.stderr)
        );
    }

    /// `souk serve` as member `id` on ports the system picks, with the deployment's
    /// environment and `extra` over it; output piped.
    fn serve(&self, id: &str, extra: &[(&str, String)]) -> std::process::Command {
        let mut command = self.command();
        command
            .args([
                "serve",
                "--http-addr",
                "127.0.0.1:0",
                "--grpc-addr",
                "127.0.0.1:0",
            ])
            .env("SOUK_NODE_ID", id)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in extra {
            command.env(key, value);
        }
        command
    }

    /// Spawns `souk serve` for every id at once, then waits until each listens.
    pub(crate) fn start_all(&self, ids: &[&str]) -> Vec<Member> {
        self.start_all_with(ids, &[])
    }

    /// [`Self::start_all`] with `extra` over the deployment's environment.
    pub(crate) fn start_all_with(&self, ids: &[&str], extra: &[(&str, String)]) -> Vec<Member> {
        let children: Vec<(String, Child)> = ids
            .iter()
            .map(|id| (id.to_string(), self.serve(id, extra).spawn().unwrap()))
            .collect();
        children
            .into_iter()
            .map(|(id, child)| listening(id, child))
            .collect()
    }

    pub(crate) fn start(&self, id: &str) -> Member {
        self.start_all(&[id]).pop().unwrap()
    }

    pub(crate) async fn db(&self) -> souk_db::Db {
        souk_db::Db::connect(&self.database_url, &souk_db::PoolSettings::default())
            .await
            .unwrap()
    }
}

/// The member once its log says it listens.
fn listening(id: String, child: Child) -> Member {
    let (child, entry) = wait_listening(child, &format!("souk serve ({id})"));
    Member {
        http: entry["fields"]["address"].as_str().unwrap().to_owned(),
        ops: entry["fields"]["ops"].as_str().unwrap().to_owned(),
        grpc: entry["fields"]["grpc"].as_str().unwrap().to_owned(),
        id,
        child,
    }
}

/// Waits until the member's `/readyz` answers 200.
pub(crate) async fn wait_ready(client: &reqwest::Client, member: &Member) {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < READY_TIMEOUT {
        if let Ok(response) = client.get(format!("{}/readyz", member.http)).send().await {
            if response.status() == 200 {
                return;
            }
            last = response.text().await.unwrap_or_default();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} not ready after {READY_TIMEOUT:?}: {last}", member.id);
}

pub(crate) async fn admin_token(client: &reqwest::Client, address: &str) -> String {
    login(client, address, ADMIN, PASSWORD).await
}

/// `GET {address}{path}` as the admin, which must answer 200 with JSON.
pub(crate) async fn admin_get(
    client: &reqwest::Client,
    address: &str,
    admin: &str,
    path: &str,
) -> Value {
    let response = client
        .get(format!("{address}{path}"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

/// A counter in a member's metrics (`/metrics` on its operations address), summed over
/// the series whose line starts with `prefix`; 0 when there is none.
pub(crate) async fn counter(client: &reqwest::Client, member: &Member, prefix: &str) -> f64 {
    let metrics = client
        .get(format!("{}/metrics", member.ops))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}

/// The SKU's stock as the member at `address` reads it.
pub(crate) async fn stock_on(
    client: &reqwest::Client,
    address: &str,
    admin: &str,
    sku: &str,
) -> Value {
    admin_get(
        client,
        address,
        admin,
        &format!("/api/v1/admin/inventory/{sku}"),
    )
    .await
}

/// One unit of `sku` ordered through the member at `address`, under `key`.
pub(crate) async fn checkout_one(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    key: &str,
    sku: &str,
) -> reqwest::Response {
    client
        .post(format!("{address}/api/v1/orders"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&serde_json::json!({"items": [{"sku": sku, "quantity": 1}]}))
        .send()
        .await
        .unwrap()
}

/// `GET /api/v1/admin/cluster` on one member.
pub(crate) async fn cluster_view(client: &reqwest::Client, address: &str, admin: &str) -> Value {
    admin_get(client, address, admin, "/api/v1/admin/cluster").await
}

/// Shard → holder, as a member's view lists them.
pub(crate) fn holders(view: &Value) -> BTreeMap<u64, String> {
    let mut holders = BTreeMap::new();
    for member in view["members"].as_array().unwrap() {
        for lease in member["shards"].as_array().unwrap() {
            let previous = holders.insert(
                lease["shard"].as_u64().unwrap(),
                member["node_id"].as_str().unwrap().to_owned(),
            );
            assert!(
                previous.is_none(),
                "a shard listed under two holders: {view}"
            );
        }
    }
    holders
}

/// Polls a member's view until every shard is held by one of `members` and the ring
/// is exactly `members`; the holders then.
pub(crate) async fn settled(
    client: &reqwest::Client,
    address: &str,
    admin: &str,
    members: &[&str],
) -> BTreeMap<u64, String> {
    let expected: BTreeSet<&str> = members.iter().copied().collect();
    let started = Instant::now();
    loop {
        let view = cluster_view(client, address, admin).await;
        let holders = holders(&view);
        let ring: BTreeSet<&str> = view["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|member| member["ring_shards"].as_u64() > Some(0))
            .map(|member| member["node_id"].as_str().unwrap())
            .collect();
        let settled = holders.len() == SHARDS as usize
            && holders
                .values()
                .all(|holder| expected.contains(holder.as_str()))
            && ring == expected
            && view["handoffs"].as_array().unwrap().is_empty();
        if settled {
            return holders;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the cluster did not settle on {members:?}: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates an active product over REST and stocks it through `address`.
pub(crate) async fn stock_sku(
    client: &reqwest::Client,
    address: &str,
    admin: &str,
    sku: &str,
    stock: i64,
) {
    crate::crash::stocked_product(client, address, admin, sku, 500, stock).await;
}

/// Registers `count` customers through `address`; their access tokens.
pub(crate) async fn customers(
    client: &reqwest::Client,
    address: &str,
    count: usize,
) -> Vec<String> {
    let mut tokens = Vec::new();
    for index in 0..count {
        let email = format!("shopper{index}@example.com");
        register(client, address, &email, "Shopper").await;
        tokens.push(login(client, address, &email, PASSWORD).await);
    }
    tokens
}

/// Checkouts of one unit each, by several shoppers in closed loops, sent round-robin
/// to every address (so most are forwarded to the SKU's owner).
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    pub(crate) addresses: Arc<RwLock<Vec<String>>>,
    /// Order id → SKU of every checkout answered 201.
    acknowledged: Arc<Mutex<BTreeMap<String, String>>>,
    /// HTTP status → count; 0 counts transport errors (a killed member's connections).
    statuses: Arc<Mutex<BTreeMap<u16, usize>>>,
    /// The first few answers that were neither 201 nor 409, for the test's report.
    refusals: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub(crate) fn start(addresses: Vec<String>, tokens: &[String], skus: &[String]) -> Self {
        let load = Self {
            stop: Arc::default(),
            addresses: Arc::new(RwLock::new(addresses)),
            acknowledged: Arc::default(),
            statuses: Arc::default(),
            refusals: Arc::default(),
            tasks: Vec::new(),
        };
        let sequence = Arc::new(AtomicUsize::new(0));
        let client = crate::helpers::http_client_builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let tasks = (0..8)
            .map(|worker| {
                let (client, token) = (client.clone(), tokens[worker % tokens.len()].clone());
                let (stop, addresses) = (load.stop.clone(), load.addresses.clone());
                let (acknowledged, statuses) = (load.acknowledged.clone(), load.statuses.clone());
                let refusals = load.refusals.clone();
                let (skus, sequence) = (skus.to_vec(), sequence.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let index = sequence.fetch_add(1, Ordering::Relaxed);
                        let address = {
                            let addresses = addresses.read().unwrap();
                            addresses[index % addresses.len()].clone()
                        };
                        let sku = &skus[index % skus.len()];
                        let sent = client
                            .post(format!("{address}/api/v1/orders"))
                            .bearer_auth(&token)
                            .header("Idempotency-Key", format!("load-{index}"))
                            .json(&json!({"items": [{"sku": sku, "quantity": 1}]}))
                            .send()
                            .await;
                        let status = match sent {
                            Ok(response) => {
                                let status = response.status().as_u16();
                                if status == 201 {
                                    if let Ok(order) = response.json::<Value>().await {
                                        let id = order["id"].as_str().unwrap().to_owned();
                                        acknowledged.lock().unwrap().insert(id, sku.clone());
                                    }
                                } else if status != 409 {
                                    let body = response.text().await.unwrap_or_default();
                                    let mut refusals = refusals.lock().unwrap();
                                    if refusals.len() < 5 {
                                        refusals.push(format!("{status} from {address}: {body}"));
                                    }
                                }
                                status
                            }
                            Err(_) => {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                0
                            }
                        };
                        *statuses.lock().unwrap().entry(status).or_default() += 1;
                    }
                })
            })
            .collect();
        Self { tasks, ..load }
    }

    pub(crate) fn acknowledged_count(&self) -> usize {
        self.acknowledged.lock().unwrap().len()
    }

    /// Waits until `more` further checkouts were acknowledged.
    pub(crate) async fn wait_for(&self, more: usize) {
        let target = self.acknowledged_count() + more;
        let started = Instant::now();
        while self.acknowledged_count() < target {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the load stalled at {} acknowledged checkouts: {:?}",
                self.acknowledged_count(),
                self.statuses.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the shoppers; what they were answered.
    pub(crate) async fn finish(self) -> (BTreeMap<String, String>, BTreeMap<u16, usize>) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        let acknowledged = self.acknowledged.lock().unwrap().clone();
        let statuses = self.statuses.lock().unwrap().clone();
        for refusal in self.refusals.lock().unwrap().iter() {
            eprintln!("refused under load: {refusal}");
        }
        (acknowledged, statuses)
    }
}

/// The database agrees with what the shoppers were told: every acknowledged checkout is
/// an order holding its reservation, each SKU's `reserved` is the sum of its
/// reservations, no SKU is oversold, and no request was answered with a 5xx other than
/// a retryable 503.
pub(crate) async fn assert_nothing_lost(
    db: &souk_db::Db,
    acknowledged: &BTreeMap<String, String>,
    statuses: &BTreeMap<u16, usize>,
    stock: i64,
) {
    let failed: Vec<_> = statuses
        .iter()
        .filter(|(status, _)| **status >= 500 && **status != 503)
        .collect();
    assert!(failed.is_empty(), "server errors under load: {statuses:?}");
    let pool = db.pool();
    let reservations: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT sku, order_id, quantity FROM inventory_reservations")
            .fetch_all(pool)
            .await
            .unwrap();
    let held: BTreeMap<(String, String), i64> = reservations
        .iter()
        .map(|(sku, order, quantity)| ((sku.clone(), order.clone()), *quantity))
        .collect();
    let orders: BTreeMap<String, String> =
        sqlx::query_as::<_, (String, String)>("SELECT id, status FROM orders")
            .fetch_all(pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    for (order, sku) in acknowledged {
        assert_eq!(
            orders.get(order).map(String::as_str),
            Some("pending_payment"),
            "acknowledged order {order} is missing or moved"
        );
        assert_eq!(
            held.get(&(sku.clone(), order.clone())),
            Some(&1),
            "acknowledged order {order} lost its reservation of {sku}"
        );
    }
    let items: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT sku, on_hand, reserved FROM inventory_items")
            .fetch_all(pool)
            .await
            .unwrap();
    for (sku, on_hand, reserved) in items {
        let sum: i64 = reservations
            .iter()
            .filter(|(held_sku, _, _)| *held_sku == sku)
            .map(|(_, _, quantity)| quantity)
            .sum();
        assert_eq!(
            reserved, sum,
            "{sku}: reserved is not the sum of its reservations"
        );
        assert_eq!(on_hand, stock, "{sku}: on_hand changed without a sale");
        assert!(
            reserved <= on_hand,
            "{sku} oversold: {reserved} reserved of {on_hand}"
        );
    }
}

/// Milliseconds at the 50th percentile and the maximum.
pub(crate) fn p50_and_max(mut samples: Vec<u128>) -> (u128, u128) {
    samples.sort_unstable();
    let p50 = samples.get(samples.len() / 2).copied().unwrap_or(0);
    (p50, samples.last().copied().unwrap_or(0))
}
