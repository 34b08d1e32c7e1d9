//! Souk's actors need an actix `System`; the harness's clients run on a multi-threaded
//! tokio runtime. Each system lives on its own thread, and the clients reach it through
//! actor addresses and sockets. A Souk node's system is the one the `souk` binary
//! builds (`souk_api::startup::node_system`: a multi-thread runtime of `node.cpus`
//! workers); the baselines' and the in-process actors' is actix's default, one thread.
//! Also here: the configuration every in-process bench node starts from, and its data
//! directory. A node's system thread may first enter a cgroup that limits its CPU
//! (`node_cgroup`).

use std::future::Future;
use std::sync::Arc;

use super::node_cgroup::NodeCgroup;

pub struct ActixHost {
    system: actix_rt::System,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ActixHost {
    /// Starts a one-thread system, runs `make` on it and hands back what it built.
    pub async fn start<T, F, Fut>(make: F) -> anyhow::Result<(Self, T)>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<T>> + 'static,
        T: Send + 'static,
    {
        Self::start_on(None, None, make).await
    }

    /// Starts a system thread, first entering `cgroup` (when given) so that every thread
    /// of what `make` builds runs under its CPU limit; the system is a Souk node's of
    /// `cpus` runtime workers when `cpus` is given, otherwise a one-thread one. Runs
    /// `make` on it and hands back what it built.
    pub async fn start_on<T, F, Fut>(
        cgroup: Option<Arc<NodeCgroup>>,
        cpus: Option<usize>,
        make: F,
    ) -> anyhow::Result<(Self, T)>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<T>> + 'static,
        T: Send + 'static,
    {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("souk-bench-actix".into())
            .spawn(move || {
                let entered = cgroup.map_or(Ok(()), |cgroup| cgroup.enter_current_thread());
                let system = match cpus {
                    Some(cpus) => souk_api::startup::node_system(cpus),
                    None => actix_rt::System::new(),
                };
                let (handle, made) = system.block_on(async move {
                    let made = match entered {
                        Ok(()) => make().await,
                        Err(error) => Err(error),
                    };
                    (actix_rt::System::current(), made)
                });
                let failed = made.is_err();
                let _ = sender.send((handle, made));
                if !failed {
                    let _ = system.run();
                }
            })?;
        let (system, made) = receiver.await?;
        let mut host = Self {
            system,
            thread: Some(thread),
        };
        match made {
            Ok(value) => Ok((host, value)),
            Err(error) => {
                host.thread.take();
                Err(error)
            }
        }
    }
}

impl Drop for ActixHost {
    fn drop(&mut self) {
        self.system.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A bench node's data directory, removed when dropped.
pub struct NodeDir(pub std::path::PathBuf);

impl Drop for NodeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The configuration of an in-process bench node on MariaDB at `database_url`: ports
/// picked by the system, a fresh data directory, one bench customer who may place every
/// order (no purchase limits), cheap password hashing and long-lived tokens.
pub fn bench_node_config(
    database_url: String,
    pool_size: u32,
    jwt_secret: String,
) -> anyhow::Result<(souk_api::Config, NodeDir)> {
    let data_dir =
        NodeDir(std::env::temp_dir().join(format!("souk-bench-{}", uuid::Uuid::now_v7().simple())));
    std::fs::create_dir_all(&data_dir.0)?;
    let mut config = souk_api::Config::default();
    config.http.addr = "127.0.0.1:0".parse()?;
    config.grpc.addr = "127.0.0.1:0".parse()?;
    config.http.ops_addr = "127.0.0.1:0".parse()?;
    config.node.data_dir = data_dir.0.clone();
    config.database.url = Some(database_url);
    config.database.max_connections = pool_size;
    config.jwt.secret = Some(souk_api::config::Secret::new(jwt_secret));
    // Only the bench customer (and admin) sign in, once.
    config.auth.bcrypt_cost = 4;
    config.jwt.access_token_ttl_secs = 24 * 3600;
    config.orders.reservation_ttl_secs = 3600;
    // One bench customer places every order: the purchase limits would refuse it.
    config.orders.max_unpaid_orders = 0;
    config.orders.max_units_per_sku = 0;
    config.http.shutdown_timeout_secs = 1;
    Ok((config, data_dir))
}
