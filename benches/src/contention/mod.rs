//! `souk-bench contention`: how many oversell-free reservations per second each way of
//! reserving stock sustains, on the same machine, MariaDB and Redis, in one run.
//!
//! Every cell (strategy × workload × concurrency) seeds fresh stock, runs closed-loop
//! clients for a fixed time (a hot cell also ends when its SKU sells out), then counts
//! what the store recorded and compares it with what the clients were told.

pub mod cpu;
pub mod env;
pub mod host;
pub mod node_cgroup;
pub mod plot;
pub mod profile;
pub mod report;
mod rounds;
pub mod strategies;
pub mod workload;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use rand::rngs::StdRng;
use rand::SeedableRng;
use sqlx::Connection;

use crate::stats::summarise;
pub use report::{CellResult, Report, Unavailable};
use rounds::round_order;
use strategies::{Attempt, Cell, Strategy};
pub use workload::Workload;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
pub enum StrategyName {
    SoukActor,
    MysqlTx,
    MysqlTxHttp,
    MysqlForUpdate,
    MysqlAutocommit,
    RedisLua,
    SoukHttp,
    SoukGrpc,
    SoukCluster,
    #[value(name = "souk-cluster-1")]
    SoukClusterOne,
}

impl StrategyName {
    pub const ALL: [StrategyName; 10] = [
        StrategyName::MysqlTx,
        StrategyName::MysqlTxHttp,
        StrategyName::MysqlForUpdate,
        StrategyName::MysqlAutocommit,
        StrategyName::RedisLua,
        StrategyName::SoukActor,
        StrategyName::SoukHttp,
        StrategyName::SoukGrpc,
        StrategyName::SoukCluster,
        StrategyName::SoukClusterOne,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StrategyName::SoukActor => "souk-actor",
            StrategyName::MysqlTx => "mysql-tx",
            StrategyName::MysqlTxHttp => "mysql-tx-http",
            StrategyName::MysqlForUpdate => "mysql-for-update",
            StrategyName::MysqlAutocommit => "mysql-autocommit",
            StrategyName::RedisLua => "redis-lua",
            StrategyName::SoukHttp => "souk-http",
            StrategyName::SoukGrpc => "souk-grpc",
            StrategyName::SoukCluster => "souk-cluster",
            StrategyName::SoukClusterOne => "souk-cluster-1",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// MariaDB server URL without a database name.
    pub mysql_server_url: String,
    pub redis_url: String,
    /// The NATS server (>= 2.11) the `souk-cluster` nodes meet on.
    pub nats_url: String,
    /// The bench database; `<database>_http`, `_grpc` and `_cluster` hold the Souk
    /// nodes'. All are dropped and created afresh at the start of a run.
    pub database: String,
    pub strategies: Vec<StrategyName>,
    pub workloads: Vec<Workload>,
    pub concurrency: Vec<usize>,
    pub duration: Duration,
    /// SKUs of the skewed and uniform workloads.
    pub skus: usize,
    /// Units of the one SKU of `hot`.
    pub hot_stock: i64,
    /// Units per SKU of `skewed` and `uniform`.
    pub stock_per_sku: i64,
    pub pool_size: u32,
    /// Connections per souk-cluster node; `None`: `pool_size` split over the nodes.
    pub cluster_node_pool: Option<u32>,
    /// Cores each souk-cluster node sizes its threads to (`node.cpus`); `None`: the
    /// machine's cores split over the nodes, at least one each.
    pub cluster_node_cpus: Option<usize>,
    /// Email workers per souk-cluster node; `None`: one node's default split over the
    /// nodes, at least one each.
    pub cluster_node_email_workers: Option<usize>,
    /// Cores of CPU time per second each Souk node (souk-http, souk-grpc, souk-cluster,
    /// souk-cluster-1) may use, enforced as a pod's CPU limit is; `None`: unlimited.
    pub node_cpu_limit: Option<f64>,
    /// Every Souk node runs every service but email, so the cells measure checkouts
    /// without the confirmation mail the nodes otherwise send beside them.
    pub without_email: bool,
    /// Times each workload × concurrency runs its strategies ([`round_order`]).
    pub rounds: usize,
    /// Drop the bench databases when done (the test suite's runs).
    pub drop_databases: bool,
}

impl Options {
    /// Every strategy × every workload at small scale, in well under a minute; stock is
    /// small so that hot SKUs sell out and the oversell check meets the boundary.
    pub fn smoke(
        mysql_server_url: String,
        redis_url: String,
        nats_url: String,
        database: String,
    ) -> Self {
        Self {
            mysql_server_url,
            redis_url,
            nats_url,
            database,
            strategies: StrategyName::ALL.to_vec(),
            workloads: Workload::ALL.to_vec(),
            concurrency: vec![1, 16],
            duration: Duration::from_millis(500),
            skus: 200,
            hot_stock: 300,
            stock_per_sku: 3,
            pool_size: 16,
            cluster_node_pool: None,
            cluster_node_cpus: None,
            cluster_node_email_workers: None,
            node_cpu_limit: None,
            without_email: false,
            rounds: 1,
            drop_databases: true,
        }
    }

    fn cluster_node_pool(&self) -> u32 {
        self.cluster_node_pool
            .unwrap_or_else(|| self.pool_size.div_ceil(CLUSTER_NODES as u32).max(2))
    }

    fn cluster_node_cpus(&self) -> usize {
        self.cluster_node_cpus.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
            (cores / CLUSTER_NODES).max(1)
        })
    }

    fn cluster_node_email_workers(&self) -> usize {
        self.cluster_node_email_workers
            .unwrap_or_else(|| (souk_api::Config::default().email.workers / CLUSTER_NODES).max(1))
    }

    fn database_url(&self, database: &str) -> String {
        format!("{}/{database}", self.mysql_server_url.trim_end_matches('/'))
    }
}

async fn recreate_database(options: &Options, name: &str) -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::mysql::MySqlConnection::connect(&options.mysql_server_url).await?;
    sqlx::Executor::execute(
        &mut admin,
        format!("DROP DATABASE IF EXISTS `{name}`").as_str(),
    )
    .await?;
    sqlx::Executor::execute(
        &mut admin,
        format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            .as_str(),
    )
    .await?;
    admin.close().await?;
    Ok(())
}

async fn drop_database(options: &Options, name: &str) -> anyhow::Result<()> {
    let mut admin = sqlx::mysql::MySqlConnection::connect(&options.mysql_server_url).await?;
    sqlx::Executor::execute(
        &mut admin,
        format!("DROP DATABASE IF EXISTS `{name}`").as_str(),
    )
    .await?;
    admin.close().await?;
    Ok(())
}

/// Nodes of the `souk-cluster` deployment.
const CLUSTER_NODES: usize = 3;

#[derive(Default)]
struct Tally {
    reserved: u64,
    rejected: u64,
    errors: u64,
    first_error: Option<String>,
    latencies: Vec<Duration>,
}

/// Runs one cell: seeds, drives `cell.concurrency` closed-loop clients, verifies.
async fn run_cell<S: Strategy>(
    strategy: &Arc<S>,
    cell: Cell,
    duration: Duration,
) -> anyhow::Result<CellResult> {
    strategy.prepare(&cell).await?;
    // Whatever the seeding recorded is not part of the cell.
    let _ = profile::take(1.0);
    let _ = profile::take_mailbox();
    let picker = Arc::new(workload::Picker::new(cell.workload, cell.skus));
    let cell = Arc::new(cell);
    let sold_out = Arc::new(AtomicBool::new(false));
    let cpu_before = cpu::read();
    let nodes_before = strategy.node_cpu()?;
    let started = Instant::now();
    let deadline = started + duration;
    let mut clients = Vec::with_capacity(cell.concurrency);
    for client in 0..cell.concurrency {
        let (strategy, cell, picker, sold_out) = (
            strategy.clone(),
            cell.clone(),
            picker.clone(),
            sold_out.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64((cell.id as u64) << 20 | client as u64);
            let mut tally = Tally::default();
            while Instant::now() < deadline && !sold_out.load(Ordering::Relaxed) {
                let sku = picker.pick(&mut rng);
                let order_id = uuid::Uuid::now_v7().simple().to_string();
                let begun = Instant::now();
                match strategy.reserve(&cell, sku, order_id).await {
                    Ok(Attempt::Reserved) => {
                        tally.latencies.push(begun.elapsed());
                        tally.reserved += 1;
                    }
                    Ok(Attempt::OutOfStock) => {
                        tally.rejected += 1;
                        if cell.workload == Workload::Hot {
                            sold_out.store(true, Ordering::Relaxed);
                        }
                    }
                    Err(error) => {
                        tally.errors += 1;
                        tally
                            .first_error
                            .get_or_insert_with(|| format!("{error:#}"));
                        // A failing store must not turn the client into a busy loop.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            tally
        }));
    }
    let mut total = Tally::default();
    for client in clients {
        let tally = client.await?;
        total.reserved += tally.reserved;
        total.rejected += tally.rejected;
        total.errors += tally.errors;
        if total.first_error.is_none() {
            total.first_error = tally.first_error;
        }
        total.latencies.extend(tally.latencies);
    }
    let wall = started.elapsed();
    let cpu_after = cpu::read();
    let nodes_after = strategy.node_cpu()?;
    let profile = profile::take(wall.as_secs_f64());
    let mailbox = profile::take_mailbox();
    let settled = strategy.settle().await?;
    let verification = strategy.verify(&cell).await?;
    strategy.clean(&cell).await?;
    let mut result = CellResult::new(
        strategy.name(),
        &cell,
        wall,
        total.reserved,
        total.rejected,
        total.errors,
        total.first_error,
        summarise(total.latencies, wall),
        verification,
        profile,
    );
    result.settled_secs = settled.map(|settled| settled.as_secs_f64());
    result.mailbox = mailbox;
    result.cpu = cpu_before
        .zip(cpu_after)
        .and_then(|(before, after)| cpu::between(before, after, wall, total.reserved));
    result.nodes_cpu = nodes_before
        .zip(nodes_after)
        .and_then(|(before, after)| node_cgroup::between(before, after, wall, total.reserved));
    Ok(result)
}

struct Strategies {
    mysql_tx: Option<Arc<strategies::mysql::MySqlStrategy>>,
    mysql_tx_http: Option<Arc<strategies::mysql_http::MySqlTxHttp>>,
    mysql_for_update: Option<Arc<strategies::mysql::MySqlStrategy>>,
    mysql_autocommit: Option<Arc<strategies::mysql::MySqlStrategy>>,
    redis_lua: Option<Arc<strategies::redis_lua::RedisLua>>,
    souk_actor: Option<Arc<strategies::souk_actor::SoukActor>>,
    souk_http: Option<Arc<strategies::http::SoukHttp>>,
    souk_grpc: Option<Arc<strategies::http::SoukHttp>>,
    souk_cluster: Option<Arc<strategies::http::SoukHttp>>,
    souk_cluster_one: Option<Arc<strategies::http::SoukHttp>>,
}

/// Runs the whole sweep. `progress` advances by one per cell.
pub async fn run(options: &Options, progress: Option<&ProgressBar>) -> anyhow::Result<Report> {
    profile::install();
    let started_at = chrono::Utc::now();
    let http_database = format!("{}_http", options.database);
    let grpc_database = format!("{}_grpc", options.database);
    let cluster_database = format!("{}_cluster", options.database);
    let cluster_one_database = format!("{}_cluster1", options.database);
    recreate_database(options, &options.database).await?;
    let wanted = |name: StrategyName| options.strategies.contains(&name);
    if wanted(StrategyName::SoukHttp) {
        recreate_database(options, &http_database).await?;
    }
    if wanted(StrategyName::SoukGrpc) {
        recreate_database(options, &grpc_database).await?;
    }
    if wanted(StrategyName::SoukCluster) {
        recreate_database(options, &cluster_database).await?;
    }
    if wanted(StrategyName::SoukClusterOne) {
        recreate_database(options, &cluster_one_database).await?;
    }
    let pool = strategies::mysql::pool(&options.database_url(&options.database), options.pool_size)
        .await?;
    let environment = env::probe(
        &pool,
        &options.redis_url,
        options.pool_size,
        options.cluster_node_pool(),
        options.cluster_node_cpus(),
        (!options.without_email).then(|| options.cluster_node_email_workers()),
        options.node_cpu_limit,
    )
    .await?;
    let sql = |form| {
        let pool = pool.clone();
        async move {
            anyhow::Ok(Some(Arc::new(
                strategies::mysql::MySqlStrategy::new(pool, form).await?,
            )))
        }
    };
    use strategies::http::Deployment;
    use strategies::mysql::Form;
    let non_hot_cells = options
        .workloads
        .iter()
        .filter(|workload| **workload != Workload::Hot)
        .count()
        * options.concurrency.len();
    // Souk nodes on a database of their own, with the stock the many-SKU cells share.
    let souk_deployment = |database: &str, pool_size: u32, deployment: Deployment| {
        let url = options.database_url(database);
        async move {
            let check = strategies::mysql::pool(&url, 4).await?;
            let shared_stock = options.stock_per_sku * non_hot_cells.max(1) as i64;
            anyhow::Ok(Arc::new(
                strategies::http::SoukHttp::new(
                    &url,
                    pool_size,
                    check,
                    shared_stock,
                    deployment,
                    options.node_cpu_limit,
                    options.without_email,
                )
                .await?,
            ))
        }
    };
    let set = Strategies {
        mysql_tx: if wanted(StrategyName::MysqlTx) {
            sql(Form::Transaction).await?
        } else {
            None
        },
        mysql_tx_http: if wanted(StrategyName::MysqlTxHttp) {
            // Its own pool, as a service of its own would have.
            let peer_pool = strategies::mysql::pool(
                &options.database_url(&options.database),
                options.pool_size,
            )
            .await?;
            Some(Arc::new(
                strategies::mysql_http::MySqlTxHttp::new(peer_pool).await?,
            ))
        } else {
            None
        },
        mysql_for_update: if wanted(StrategyName::MysqlForUpdate) {
            sql(Form::ForUpdate).await?
        } else {
            None
        },
        mysql_autocommit: if wanted(StrategyName::MysqlAutocommit) {
            sql(Form::Autocommit).await?
        } else {
            None
        },
        redis_lua: if wanted(StrategyName::RedisLua) {
            Some(Arc::new(
                strategies::redis_lua::RedisLua::new(
                    &options.redis_url,
                    format!("souk-bench:{}:", uuid::Uuid::now_v7().simple()),
                )
                .await?,
            ))
        } else {
            None
        },
        souk_actor: if wanted(StrategyName::SoukActor) {
            // The actors' own bench tables live beside the SQL baselines' tables.
            Some(Arc::new(
                strategies::souk_actor::SoukActor::new(
                    &options.database_url(&options.database),
                    options.pool_size,
                    pool.clone(),
                )
                .await?,
            ))
        } else {
            None
        },
        souk_http: if wanted(StrategyName::SoukHttp) {
            Some(souk_deployment(&http_database, options.pool_size, Deployment::Rest).await?)
        } else {
            None
        },
        souk_grpc: if wanted(StrategyName::SoukGrpc) {
            Some(souk_deployment(&grpc_database, options.pool_size, Deployment::Grpc).await?)
        } else {
            None
        },
        souk_cluster: if wanted(StrategyName::SoukCluster) {
            let deployment = Deployment::Cluster {
                nodes: CLUSTER_NODES,
                nats_url: options.nats_url.clone(),
                cpus: Some(options.cluster_node_cpus()),
                email_workers: Some(options.cluster_node_email_workers()),
            };
            Some(souk_deployment(&cluster_database, options.cluster_node_pool(), deployment).await?)
        } else {
            None
        },
        souk_cluster_one: if wanted(StrategyName::SoukClusterOne) {
            let deployment = Deployment::Cluster {
                nodes: 1,
                nats_url: options.nats_url.clone(),
                cpus: None,
                email_workers: None,
            };
            Some(souk_deployment(&cluster_one_database, options.pool_size, deployment).await?)
        } else {
            None
        },
    };

    let mut cells = Vec::new();
    let mut next_id = 1;
    for &workload in &options.workloads {
        for &concurrency in &options.concurrency {
            for (round, name) in round_order(&options.strategies, options.rounds) {
                let cell = Cell {
                    id: next_id,
                    workload,
                    skus: if workload == Workload::Hot {
                        1
                    } else {
                        options.skus
                    },
                    stock_per_sku: if workload == Workload::Hot {
                        options.hot_stock
                    } else {
                        options.stock_per_sku
                    },
                    concurrency,
                };
                next_id += 1;
                if let Some(progress) = progress {
                    progress.set_message(format!(
                        "{} · {} · {concurrency} clients",
                        name.name(),
                        workload.name()
                    ));
                }
                let duration = options.duration;
                let mut result = match name {
                    StrategyName::MysqlTx => {
                        run_cell(set.mysql_tx.as_ref().unwrap(), cell, duration).await
                    }
                    StrategyName::MysqlTxHttp => {
                        run_cell(set.mysql_tx_http.as_ref().unwrap(), cell, duration).await
                    }
                    StrategyName::MysqlForUpdate => {
                        run_cell(set.mysql_for_update.as_ref().unwrap(), cell, duration).await
                    }
                    StrategyName::MysqlAutocommit => {
                        run_cell(set.mysql_autocommit.as_ref().unwrap(), cell, duration).await
                    }
                    StrategyName::RedisLua => {
                        run_cell(set.redis_lua.as_ref().unwrap(), cell, duration).await
                    }
                    StrategyName::SoukActor => {
                        run_cell(set.souk_actor.as_ref().unwrap(), cell, duration).await
                    }
                    StrategyName::SoukHttp => {
                        run_cell(set.souk_http.as_ref().unwrap(), cell, duration).await
                    }
                    StrategyName::SoukGrpc => {
                        run_cell(set.souk_grpc.as_ref().unwrap(), cell, duration).await
                    }
                    StrategyName::SoukCluster => {
                        run_cell(set.souk_cluster.as_ref().unwrap(), cell, duration).await
                    }
                    StrategyName::SoukClusterOne => {
                        run_cell(set.souk_cluster_one.as_ref().unwrap(), cell, duration).await
                    }
                }?;
                if let Some(progress) = progress {
                    if result.violates() {
                        progress.println(format!(
                            "VIOLATION: {} {} {} clients: oversold {} units, {} acknowledged but not recorded, {} inconsistent",
                            result.strategy, result.workload.name(), result.concurrency,
                            result.verification.oversold_units, result.missing_acknowledged,
                            result.verification.inconsistent_skus
                        ));
                    }
                    progress.inc(1);
                }
                result.round = round;
                cells.push(result);
            }
        }
    }
    drop(set);
    pool.close().await;
    if options.drop_databases {
        drop_database(options, &options.database).await?;
        drop_database(options, &http_database).await?;
        drop_database(options, &grpc_database).await?;
        drop_database(options, &cluster_database).await?;
        drop_database(options, &cluster_one_database).await?;
    }
    let unavailable: Vec<Unavailable> = Vec::new();
    Ok(Report::new(
        options,
        started_at,
        environment,
        cells,
        unavailable,
    ))
}

/// How many cells a run of `options` has (for the progress bar).
pub fn cell_count(options: &Options) -> u64 {
    let strategies = options.strategies.len();
    (strategies * options.rounds * options.workloads.len() * options.concurrency.len()) as u64
}
