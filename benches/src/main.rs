//! `souk-bench`: Souk's benchmark harness.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use souk_bench::console;
use souk_bench::contention::{self, StrategyName, Workload};
use souk_bench::{search, search_index};

#[derive(Parser)]
#[command(
    name = "souk-bench",
    about = "Souk benchmarks; results go to bench-results/"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The servers every benchmark runs against (the test suite's, by default).
#[derive(Args)]
struct Servers {
    /// MariaDB/MySQL server URL without a database name.
    #[arg(
        long,
        env = "SOUK_TEST_MYSQL_URL",
        default_value = "mysql://souk:souk@127.0.0.1:3306"
    )]
    mysql_url: String,
    #[arg(
        long,
        env = "SOUK_TEST_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,
    /// NATS server (>= 2.11, JetStream) of the `souk-cluster` strategy.
    #[arg(
        long,
        env = "SOUK_TEST_NATS_URL",
        default_value = "nats://127.0.0.1:14222"
    )]
    nats_url: String,
}

#[derive(Subcommand)]
enum Command {
    /// Catalog search at scale: Souk's embedded index against a SQL baseline on MariaDB.
    Search {
        #[command(flatten)]
        servers: Servers,
        /// Database to seed and search (kept between runs, so seeding happens once).
        #[arg(long, default_value = "souk_bench_search")]
        database: String,
        #[arg(long, default_value_t = 100_000)]
        products: usize,
        #[arg(long, default_value_t = 200)]
        distinct_queries: usize,
        /// Searches per side (SQL, then Souk), after one warm-up pass.
        #[arg(long, default_value_t = 1_000)]
        requests: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Searches per second of the paced run of Souk's side (open loop).
        #[arg(long, default_value_t = 1_000)]
        paced_rate: u32,
        /// A few seconds at small scale, to check the harness works.
        #[arg(long)]
        smoke: bool,
    },
    /// Catalog search on the embedded index (tantivy): the `search` catalog read from
    /// MariaDB, indexed (build time, size), then the same query mix from concurrent
    /// clients for a fixed time, uncached.
    SearchIndex {
        #[command(flatten)]
        servers: Servers,
        /// Database seeded as by `search` (the same one by default, so both see one catalog).
        #[arg(long, default_value = "souk_bench_search")]
        database: String,
        #[arg(long, default_value_t = 100_000)]
        products: usize,
        #[arg(long, default_value_t = 200)]
        distinct_queries: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Threads running searches, the clients queueing for them (default: one per core).
        #[arg(long)]
        search_threads: Option<usize>,
        /// Seconds of searching.
        #[arg(long, default_value_t = 20.0)]
        duration: f64,
        /// A few seconds at small scale, to check the harness works.
        #[arg(long)]
        smoke: bool,
    },
    /// Oversell-free reservations/s on hot, skewed and uniform SKUs: Souk's actors against
    /// SQL transactions, SELECT … FOR UPDATE, a bare UPDATE and Redis Lua, in one run.
    /// Exits non-zero if any strategy oversold or lost an acknowledged reservation.
    Contention {
        #[command(flatten)]
        servers: Servers,
        /// Bench database (dropped and created afresh; `<name>_http` and `<name>_grpc` for
        /// the souk-http and souk-grpc nodes).
        #[arg(long, default_value = "souk_bench_contention")]
        database: String,
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = StrategyName::ALL.to_vec())]
        strategies: Vec<StrategyName>,
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = Workload::ALL.to_vec())]
        workloads: Vec<Workload>,
        #[arg(long, value_delimiter = ',', default_values_t = vec![1, 16, 64, 256, 1024])]
        concurrency: Vec<usize>,
        /// Seconds per cell (strategy × workload × concurrency).
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// SKUs of the skewed and uniform workloads.
        #[arg(long, default_value_t = 10_000)]
        skus: usize,
        /// Units of the hot SKU (large enough not to sell out within a cell).
        #[arg(long, default_value_t = 10_000_000)]
        hot_stock: i64,
        /// Units per SKU in skewed and uniform.
        #[arg(long, default_value_t = 100_000)]
        stock_per_sku: i64,
        /// Connections per database pool (baselines, souk-actor, the souk-http and
        /// souk-grpc nodes). Four such pools are open at once: keep 4 × this well under
        /// the server's max_connections (151 by default), which other clients share.
        #[arg(long, default_value_t = 24)]
        pool_size: u32,
        /// Connections per souk-cluster node. Default: `--pool-size` split over the
        /// three nodes, so the cluster holds as many as one node; `--pool-size` gives
        /// each node as many as one node has, as a deployment of identical nodes would.
        #[arg(long)]
        cluster_node_pool: Option<u32>,
        /// Cores each souk-cluster node sizes its threads to (HTTP workers, SKU actor
        /// arbiters: `node.cpus`). Default: the machine's cores split over the three
        /// nodes, at least one each, as CPU limits would size three pods sharing them.
        #[arg(long)]
        cluster_node_cpus: Option<usize>,
        /// Email workers per souk-cluster node. Default: one node's (`email.workers`)
        /// split over the three nodes, at least one each, so the cluster does not mail
        /// much more of a cell's orders within the cell than one node does.
        #[arg(long)]
        cluster_node_email_workers: Option<usize>,
        /// Every Souk node runs every service but email: the cells measure checkouts
        /// without the confirmation mail the nodes otherwise send beside them (and a
        /// cell settles once its events are relayed).
        #[arg(long)]
        without_email: bool,
        /// Cores of CPU per second each Souk node (souk-http, souk-grpc, souk-cluster,
        /// souk-cluster-1) may use, enforced as Kubernetes enforces a pod's CPU limit (a
        /// cgroup v1 CFS quota; Linux, root). A one-node deployment sizes its threads to
        /// the limit rounded up; souk-cluster nodes keep `--cluster-node-cpus`. Three
        /// clustered nodes get three times one node's CPU, as three pods would. Default:
        /// no limit.
        #[arg(long)]
        node_cpu_limit: Option<f64>,
        /// Times each workload × concurrency runs its strategies, in the given order
        /// in odd rounds and reversed in even ones, so that no strategy always runs
        /// after another on a database the run has grown; the report adds each
        /// strategy's rate over all rounds.
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        /// Every strategy × every workload at 1 and 16 clients, under a second each,
        /// with stock small enough to sell out.
        #[arg(long)]
        smoke: bool,
        #[arg(long, default_value = "bench-results")]
        output: std::path::PathBuf,
    },
    /// Checkouts/s on one hot SKU with no admin console open, then with live consoles
    /// following it (server-sent events), alternating in one run.
    Console {
        #[command(flatten)]
        servers: Servers,
        /// Bench database (dropped and created afresh).
        #[arg(long, default_value = "souk_bench_console")]
        database: String,
        /// Concurrent checkout clients.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Live consoles open in the watched phases.
        #[arg(long, default_value_t = 50)]
        consoles: usize,
        /// Seconds per phase.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Rounds of (no consoles, consoles).
        #[arg(long, default_value_t = 2)]
        rounds: usize,
        #[arg(long, default_value_t = 24)]
        pool_size: u32,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Search {
            servers: Servers { mysql_url, .. },
            database,
            products,
            distinct_queries,
            requests,
            concurrency,
            paced_rate,
            smoke,
        } => {
            let options = if smoke {
                search::Options {
                    mysql_server_url: mysql_url,
                    database: format!("{database}_smoke"),
                    products: 500,
                    distinct_queries: 20,
                    requests: 200,
                    concurrency: 4,
                    paced_rate: 200,
                }
            } else {
                search::Options {
                    mysql_server_url: mysql_url,
                    database,
                    products,
                    distinct_queries,
                    requests,
                    concurrency,
                    paced_rate,
                }
            };
            let report = runtime.block_on(search::bench(&options))?;
            let markdown = search::markdown(&report, &command_line());
            write_report("search", &report, &markdown)?;
        }
        Command::SearchIndex {
            servers: Servers { mysql_url, .. },
            database,
            products,
            distinct_queries,
            concurrency,
            search_threads,
            duration,
            smoke,
        } => {
            anyhow::ensure!(duration > 0.0, "--duration must be positive");
            let search_threads = search_threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, |cores| cores.get())
            });
            let directory = std::env::temp_dir()
                .join(format!("souk-bench-search-index-{}", std::process::id()));
            let options = if smoke {
                search_index::Options {
                    mysql_server_url: mysql_url,
                    database: format!("{database}_smoke"),
                    products: 500,
                    distinct_queries: 20,
                    concurrency: 4,
                    search_threads,
                    duration: Duration::from_secs(2),
                    directory,
                }
            } else {
                search_index::Options {
                    mysql_server_url: mysql_url,
                    database,
                    products,
                    distinct_queries,
                    concurrency,
                    search_threads,
                    duration: Duration::from_secs_f64(duration),
                    directory,
                }
            };
            let report = search_index::bench(&runtime, &options)?;
            let markdown = search_index::markdown(&report, &command_line());
            write_report("search-index", &report, &markdown)?;
        }
        Command::Contention {
            servers:
                Servers {
                    mysql_url,
                    redis_url,
                    nats_url,
                },
            database,
            strategies,
            workloads,
            concurrency,
            duration,
            skus,
            hot_stock,
            stock_per_sku,
            pool_size,
            cluster_node_pool,
            cluster_node_cpus,
            cluster_node_email_workers,
            node_cpu_limit,
            without_email,
            rounds,
            smoke,
            output,
        } => {
            anyhow::ensure!(rounds >= 1, "--rounds must be at least 1");
            let options = if smoke {
                contention::Options {
                    strategies,
                    node_cpu_limit,
                    without_email,
                    rounds,
                    ..contention::Options::smoke(
                        mysql_url,
                        redis_url,
                        nats_url,
                        format!("{database}_smoke"),
                    )
                }
            } else {
                anyhow::ensure!(duration > 0.0, "--duration must be positive");
                contention::Options {
                    mysql_server_url: mysql_url,
                    redis_url,
                    nats_url,
                    database,
                    strategies,
                    workloads,
                    concurrency,
                    duration: Duration::from_secs_f64(duration),
                    skus,
                    hot_stock,
                    stock_per_sku,
                    pool_size,
                    cluster_node_pool,
                    cluster_node_cpus,
                    cluster_node_email_workers,
                    node_cpu_limit,
                    without_email,
                    rounds,
                    drop_databases: false,
                }
            };
            let progress = indicatif::ProgressBar::new(contention::cell_count(&options));
            progress.set_style(indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} cells · {msg}",
            )?);
            progress.enable_steady_tick(Duration::from_millis(200));
            // The in-process Souk node handles SIGINT/SIGTERM by stopping its HTTP
            // server only; the harness must stop as a whole.
            runtime.spawn(async {
                let mut terminate =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("install a SIGTERM handler");
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
                eprintln!("interrupted; results of this run are not written");
                std::process::exit(130);
            });
            let report = runtime.block_on(contention::run(&options, Some(&progress)))?;
            progress.finish_and_clear();
            let written = contention::report::write(&report, &output)?;
            println!("{}", contention::report::markdown(&report));
            for path in written {
                println!("wrote {}", path.display());
            }
            let violations = report.violations();
            if !violations.is_empty() {
                anyhow::bail!(
                    "{} cells violated the checks ({} units oversold)",
                    violations.len(),
                    report.oversold_units()
                );
            }
        }
        Command::Console {
            servers: Servers { mysql_url, .. },
            database,
            clients,
            consoles,
            duration,
            rounds,
            pool_size,
        } => {
            anyhow::ensure!(duration > 0.0, "--duration must be positive");
            anyhow::ensure!(
                clients > 0 && rounds > 0,
                "--clients and --rounds must be positive"
            );
            let options = console::Options {
                mysql_server_url: mysql_url,
                database,
                clients,
                consoles,
                duration: Duration::from_secs_f64(duration),
                rounds,
                pool_size,
            };
            let report = runtime.block_on(console::bench(&options))?;
            let markdown = console::markdown(&report, &command_line());
            write_report("console", &report, &markdown)?;
        }
    }
    Ok(())
}

/// The command line this run was started with, as its report quotes it.
fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

/// Writes a run's report to `bench-results/`: `NAME-STAMP.json`, kept per run, and
/// `NAME.md`, the latest run's; then prints the markdown.
fn write_report(name: &str, report: &impl serde::Serialize, markdown: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all("bench-results")?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    std::fs::write(
        format!("bench-results/{name}-{stamp}.json"),
        serde_json::to_string_pretty(report)?,
    )?;
    std::fs::write(format!("bench-results/{name}.md"), markdown)?;
    println!("{markdown}");
    Ok(())
}
