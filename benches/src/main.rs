//! `souk-bench`: Souk's benchmark harness.

use clap::{Parser, Subcommand};
use souk_bench::search;

#[derive(Parser)]
#[command(
    name = "souk-bench",
    about = "Souk benchmarks; results go to bench-results/"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Catalog search latency and throughput on MariaDB, uncached vs cached (Redis).
    Search {
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
        /// Database to seed and search (kept between runs, so seeding happens once).
        #[arg(long, default_value = "souk_bench_search")]
        database: String,
        #[arg(long, default_value_t = 100_000)]
        products: usize,
        #[arg(long, default_value_t = 200)]
        distinct_queries: usize,
        /// Searches per mode (uncached, then cached), after one warm-up pass.
        #[arg(long, default_value_t = 1_000)]
        requests: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// A few seconds at small scale, to check the harness works.
        #[arg(long)]
        smoke: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Search {
            mysql_url,
            redis_url,
            database,
            products,
            distinct_queries,
            requests,
            concurrency,
            smoke,
        } => {
            let options = if smoke {
                search::Options {
                    mysql_server_url: mysql_url,
                    redis_url,
                    database: format!("{database}_smoke"),
                    products: 500,
                    distinct_queries: 20,
                    requests: 200,
                    concurrency: 4,
                }
            } else {
                search::Options {
                    mysql_server_url: mysql_url,
                    redis_url,
                    database,
                    products,
                    distinct_queries,
                    requests,
                    concurrency,
                }
            };
            let report = runtime.block_on(search::bench(&options))?;
            let command = std::env::args().collect::<Vec<_>>().join(" ");
            let markdown = search::markdown(&report, &command);
            std::fs::create_dir_all("bench-results")?;
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
            std::fs::write(
                format!("bench-results/search-{stamp}.json"),
                serde_json::to_string_pretty(&report)?,
            )?;
            std::fs::write("bench-results/search.md", &markdown)?;
            println!("{markdown}");
        }
    }
    Ok(())
}
