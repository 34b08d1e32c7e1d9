//! What the cluster tests share: the test NATS server (`SOUK_TEST_NATS_URL`, a
//! nats-server >= 2.11 with JetStream, provisioned by `scripts/test-services`), private
//! servers a test may stop (`SOUK_TEST_NATS_BIN`), a fresh namespace per test so tests
//! never see each other's buckets, and settings with short timings.

#![allow(dead_code)]

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use souk_cluster::ClusterSettings;

pub const DEFAULT_TEST_NATS_URL: &str = "nats://127.0.0.1:14222";

pub fn nats_url() -> String {
    std::env::var("SOUK_TEST_NATS_URL").unwrap_or_else(|_| DEFAULT_TEST_NATS_URL.to_owned())
}

/// Logs to the test's output when `SOUK_TEST_LOG` holds a filter (`souk_cluster=debug`).
pub fn init_logs() {
    if let Ok(filter) = std::env::var("SOUK_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
}

pub async fn connect(url: &str) -> async_nats::Client {
    init_logs();
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(url)
        .await
        .unwrap_or_else(|error| {
            panic!(
                "cannot reach NATS at {url} ({error}); run `eval \"$(scripts/test-services)\"` \
                 or set SOUK_TEST_NATS_URL"
            )
        })
}

/// A namespace no other test uses.
pub fn fresh_namespace() -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("t{}", &id[id.len() - 12..])
}

/// Short timings: leases of 2 s renewed every 300 ms, served until 600 ms before they
/// could expire; membership records of 2 s.
pub fn settings(node: &str, namespace: &str) -> ClusterSettings {
    ClusterSettings {
        node_id: node.to_owned(),
        shards: 64,
        namespace: namespace.to_owned(),
        lease_ttl_secs: 2,
        lease_renew_ms: 300,
        lease_margin_ms: 600,
        membership_ttl_secs: 2,
        membership_renew_ms: 300,
        kv_replicas: 1,
        handoff_timeout_ms: 500,
        ..ClusterSettings::default()
    }
}

/// Deletes the namespace's buckets (best effort).
pub async fn drop_namespace(client: &async_nats::Client, namespace: &str) {
    let jetstream = async_nats::jetstream::new(client.clone());
    for bucket in ["members", "leases"] {
        let _ = jetstream
            .delete_key_value(format!("{namespace}_{bucket}"))
            .await;
    }
}

/// Polls `condition` every 20 ms until it holds; panics with `what` after `patience`.
pub async fn eventually<F, Fut>(patience: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + patience;
    loop {
        if condition().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A nats-server of the test's own, on a free loopback port, with JetStream in a
/// temporary folder; stopped (SIGKILL) on `stop` or drop.
pub struct PrivateNats {
    child: Option<Child>,
    port: u16,
    store: PathBuf,
}

impl PrivateNats {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let store = std::env::temp_dir().join(format!(
            "souk-cluster-nats-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&store).expect("nats store folder");
        let binary = std::env::var("SOUK_TEST_NATS_BIN").unwrap_or_else(|_| {
            panic!("SOUK_TEST_NATS_BIN is not set: run `eval \"$(scripts/test-services)\"`")
        });
        let child = Command::new(&binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(&store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {binary}: {error}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child: Some(child),
            port,
            store,
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}
