//! The conditions a run was measured under, printed and stored with every result.

use serde::Serialize;
use sqlx::mysql::MySqlPool;

#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    pub cores: usize,
    pub cpu_model: String,
    pub os: String,
    pub database_version: String,
    pub innodb_flush_log_at_trx_commit: String,
    pub sync_binlog: String,
    pub log_bin: String,
    pub innodb_buffer_pool_size: String,
    pub innodb_doublewrite: String,
    pub max_connections: String,
    pub redis_version: String,
    /// Redis persistence: `appendonly` and `save` (the harness's Redis numbers are in
    /// memory either way: nothing waits for an fsync per reservation).
    pub redis_appendonly: String,
    pub redis_save: String,
    /// Connections of the SQL baselines' pool, of the souk-actor database pool and of
    /// the souk-http node's pool.
    pub pool_size: u32,
    /// Connections of each souk-cluster node's pool.
    pub cluster_node_pool: u32,
    pub cluster_node_cpus: usize,
    /// `None`: every Souk node ran without the email service.
    pub cluster_node_email_workers: Option<usize>,
    /// Cores of CPU each Souk node was limited to, if it was.
    pub node_cpu_limit: Option<f64>,
}

async fn variable(pool: &MySqlPool, name: &str) -> String {
    let query = format!("SELECT CAST(@@{name} AS CHAR)");
    sqlx::query_as::<_, (String,)>(&query)
        .fetch_one(pool)
        .await
        .map(|(value,)| value)
        .unwrap_or_else(|_| "unknown".to_owned())
}

async fn redis_config(connection: &mut redis::aio::MultiplexedConnection, name: &str) -> String {
    redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query_async::<Vec<String>>(connection)
        .await
        .ok()
        .and_then(|pair| pair.get(1).cloned())
        .unwrap_or_else(|| "unknown".to_owned())
}

pub async fn probe(
    pool: &MySqlPool,
    redis_url: &str,
    pool_size: u32,
    cluster_node_pool: u32,
    cluster_node_cpus: usize,
    cluster_node_email_workers: Option<usize>,
    node_cpu_limit: Option<f64>,
) -> anyhow::Result<Environment> {
    let client = redis::Client::open(redis_url)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut connection)
        .await?;
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    Ok(Environment {
        cores: std::thread::available_parallelism()
            .map(|cores| cores.get())
            .unwrap_or(1),
        cpu_model,
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        database_version: variable(pool, "version").await,
        innodb_flush_log_at_trx_commit: variable(pool, "innodb_flush_log_at_trx_commit").await,
        sync_binlog: variable(pool, "sync_binlog").await,
        log_bin: variable(pool, "log_bin").await,
        innodb_buffer_pool_size: variable(pool, "innodb_buffer_pool_size").await,
        innodb_doublewrite: variable(pool, "innodb_doublewrite").await,
        max_connections: variable(pool, "max_connections").await,
        redis_version: info
            .lines()
            .find_map(|line| line.strip_prefix("redis_version:"))
            .unwrap_or("unknown")
            .trim()
            .to_owned(),
        redis_appendonly: redis_config(&mut connection, "appendonly").await,
        redis_save: redis_config(&mut connection, "save").await,
        pool_size,
        cluster_node_pool,
        cluster_node_cpus,
        cluster_node_email_workers,
        node_cpu_limit,
    })
}

impl Environment {
    pub fn describe(&self) -> String {
        format!(
            "{} cores ({}, {}); {} with innodb_flush_log_at_trx_commit={}, sync_binlog={}, log_bin={}, \
             innodb_doublewrite={}, buffer pool {} bytes, max_connections={}; Redis {} (appendonly={}, save=\"{}\"); \
             pool size {} connections per pool ({} per souk-cluster node, sized to {} cores each, {}); {}",
            self.cores,
            self.cpu_model,
            self.os,
            self.database_version,
            self.innodb_flush_log_at_trx_commit,
            self.sync_binlog,
            self.log_bin,
            self.innodb_doublewrite,
            self.innodb_buffer_pool_size,
            self.max_connections,
            self.redis_version,
            self.redis_appendonly,
            self.redis_save,
            self.pool_size,
            self.cluster_node_pool,
            self.cluster_node_cpus,
            match self.cluster_node_email_workers {
                Some(workers) => format!("with {workers} email workers each"),
                None => "every Souk node without the email service: no confirmation mail, in a cell or after it".to_owned(),
            },
            match self.node_cpu_limit {
                Some(cores) => format!(
                    "every Souk node limited to {cores} cores of CPU (a cgroup's CFS quota, as a pod's CPU limit), a one-node deployment sized to {} cores",
                    cores.ceil().max(1.0)
                ),
                None => "Souk nodes not CPU-limited".to_owned(),
            },
        )
    }
}
