//! Catalog search on MariaDB, uncached (every query hits the database) against cached
//! (Redis), over the same seeded catalog and the same query mix, in one run.

use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use souk_actors::catalog::cache::Cache;
use souk_actors::catalog::service::{parse_sort, SearchParams};
use souk_actors::catalog::CatalogService;
use souk_actors::redis_store::RedisStore;
use souk_db::{Db, PoolSettings};
use sqlx::Connection;

use crate::stats::{summarise, Summary};

#[derive(Debug, Clone)]
pub struct Options {
    pub mysql_server_url: String,
    pub redis_url: String,
    pub database: String,
    pub products: usize,
    pub distinct_queries: usize,
    pub requests: usize,
    pub concurrency: usize,
}

#[derive(Debug, Serialize)]
pub struct Environment {
    pub cores: usize,
    pub database_version: String,
    pub innodb_flush_log_at_trx_commit: String,
    pub innodb_buffer_pool_size: String,
    pub redis_version: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub environment: Environment,
    pub products: usize,
    pub distinct_queries: usize,
    pub concurrency: usize,
    pub uncached: Summary,
    pub cached: Summary,
    /// cached throughput / uncached throughput.
    pub throughput_ratio: f64,
    /// uncached p50 / cached p50 (how many times faster the median is).
    pub p50_speedup: f64,
    pub p99_speedup: f64,
}

const WORDS: &[&str] = &[
    "wireless",
    "headphones",
    "speaker",
    "linen",
    "shirt",
    "jacket",
    "merino",
    "running",
    "shoe",
    "trail",
    "helmet",
    "carbon",
    "kettle",
    "copper",
    "planter",
    "solar",
    "laptop",
    "keyboard",
    "mechanical",
    "dress",
    "floral",
    "boots",
];
const SORTS: &[&str] = &["relevance", "newest", "price_asc", "price_desc", "name"];

/// A deterministic mix of shopper queries: text, category, price and attribute filters.
pub fn query_mix(count: usize, categories: &[String]) -> Vec<SearchParams> {
    let mut rng = StdRng::seed_from_u64(7);
    (0..count)
        .map(|_| {
            let mut params = SearchParams {
                limit: 20,
                ..SearchParams::default()
            };
            if rng.gen_bool(0.6) {
                let first = WORDS[rng.gen_range(0..WORDS.len())];
                params.q = Some(if rng.gen_bool(0.3) {
                    format!("{first} {}", WORDS[rng.gen_range(0..WORDS.len())])
                } else {
                    first.to_owned()
                });
            }
            if rng.gen_bool(0.4) && !categories.is_empty() {
                params.category_id = Some(categories[rng.gen_range(0..categories.len())].clone());
            }
            if rng.gen_bool(0.3) {
                let low = rng.gen_range(0..20_000);
                params.price_min = Some(low);
                params.price_max = Some(low + rng.gen_range(1_000..50_000));
            }
            if rng.gen_bool(0.2) {
                params.attributes.push((
                    "colour".to_owned(),
                    ["black", "red", "blue", "white"][rng.gen_range(0..4)].to_owned(),
                ));
            }
            let sort = SORTS[rng.gen_range(if params.q.is_some() { 0 } else { 1 }..SORTS.len())];
            params.sort = parse_sort(sort);
            params
        })
        .collect()
}

async fn run(
    catalog: &CatalogService,
    queries: &[SearchParams],
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<Summary> {
    let queries = Arc::new(queries.to_vec());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let catalog = catalog.clone();
        let queries = queries.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if index >= requests {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let params = queries[index % queries.len()].clone();
                let begun = Instant::now();
                catalog
                    .search(params, false)
                    .await
                    .map_err(|error| anyhow::anyhow!("{error}"))?;
                latencies.push(begun.elapsed());
            }
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    for worker in workers {
        latencies.extend(worker.await??);
    }
    Ok(summarise(latencies, started.elapsed()))
}

async fn environment(db: &Db, redis_url: &str) -> anyhow::Result<Environment> {
    let scalar = |sql: &'static str| async move {
        let (value,): (String,) = sqlx::query_as(sql).fetch_one(db.pool()).await?;
        Ok::<_, anyhow::Error>(value)
    };
    let redis_info: String = {
        let client = redis::Client::open(redis_url)?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::cmd("INFO")
            .arg("server")
            .query_async(&mut connection)
            .await?
    };
    Ok(Environment {
        cores: std::thread::available_parallelism()
            .map(|cores| cores.get())
            .unwrap_or(1),
        database_version: scalar("SELECT VERSION()").await?,
        innodb_flush_log_at_trx_commit: scalar(
            "SELECT CAST(@@innodb_flush_log_at_trx_commit AS CHAR)",
        )
        .await?,
        innodb_buffer_pool_size: scalar("SELECT CAST(@@innodb_buffer_pool_size AS CHAR)").await?,
        redis_version: redis_info
            .lines()
            .find_map(|line| line.strip_prefix("redis_version:"))
            .unwrap_or("unknown")
            .trim()
            .to_owned(),
    })
}

/// Connects to (creating if needed) the bench database on `mysql_server_url` and
/// seeds it up to `products` seeded products; resumable, so seeding happens once.
pub async fn seeded_database(
    mysql_server_url: &str,
    database: &str,
    products: usize,
    max_connections: u32,
) -> anyhow::Result<Db> {
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(mysql_server_url).await?;
    sqlx::Executor::execute(
        &mut admin,
        format!("CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4").as_str(),
    )
    .await?;
    let db = Db::connect(
        &format!("{}/{database}", mysql_server_url.trim_end_matches('/')),
        &PoolSettings {
            max_connections: max_connections.max(4),
            ..PoolSettings::default()
        },
    )
    .await?;
    db.migrate().await?;
    eprintln!("seeding up to {products} products (resumable; only the missing ones are added)…");
    let catalog = CatalogService::new(db.clone(), Cache::disabled());
    souk_actors::catalog::seed::seed(&catalog, &db, products, |done, target| {
        if done % 10_000 == 0 || done == target {
            eprintln!("  {done}/{target}");
        }
    })
    .await
    .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(db)
}

pub async fn bench(options: &Options) -> anyhow::Result<Report> {
    let db = seeded_database(
        &options.mysql_server_url,
        &options.database,
        options.products,
        options.concurrency as u32,
    )
    .await?;

    let redis = Arc::new(RedisStore::new(
        &options.redis_url,
        &format!("souk-bench:{}:", souk_db::ids::new_id()),
    )?);
    let cached = CatalogService::new(db.clone(), Cache::new(Some(redis)));
    let uncached = CatalogService::new(db.clone(), Cache::disabled());

    let categories: Vec<String> = uncached
        .categories()
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?
        .into_iter()
        .map(|category| category.id)
        .collect();
    let queries = query_mix(options.distinct_queries, &categories);

    eprintln!("warming the database buffer pool…");
    run(&uncached, &queries, queries.len(), options.concurrency).await?;
    eprintln!(
        "uncached: {} searches at concurrency {}…",
        options.requests, options.concurrency
    );
    let uncached_summary = run(&uncached, &queries, options.requests, options.concurrency).await?;
    eprintln!(
        "cached (Redis): {} searches at concurrency {}…",
        options.requests, options.concurrency
    );
    let cached_summary = run(&cached, &queries, options.requests, options.concurrency).await?;

    let environment = environment(&db, &options.redis_url).await?;
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    Ok(Report {
        environment,
        products: options.products,
        distinct_queries: options.distinct_queries,
        concurrency: options.concurrency,
        throughput_ratio: ratio(
            cached_summary.throughput_per_sec,
            uncached_summary.throughput_per_sec,
        ),
        p50_speedup: ratio(uncached_summary.p50_ms, cached_summary.p50_ms),
        p99_speedup: ratio(uncached_summary.p99_ms, cached_summary.p99_ms),
        uncached: uncached_summary,
        cached: cached_summary,
    })
}

pub fn markdown(report: &Report, command: &str) -> String {
    let row = |name: &str, summary: &Summary| {
        format!(
            "| {name} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            summary.requests,
            summary.throughput_per_sec,
            summary.p50_ms,
            summary.p95_ms,
            summary.p99_ms,
            summary.max_ms
        )
    };
    let environment = &report.environment;
    format!(
        "## Catalog search: cached vs uncached\n\n\
         `{command}`\n\n\
         {} products, {} distinct queries replayed round-robin, {} concurrent clients; {} cores, {} \
         (innodb_flush_log_at_trx_commit={}, buffer pool {} bytes), Redis {}.\n\n\
         | mode | searches | searches/s | p50 ms | p95 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|\n{}{}\n\
         Cached/uncached throughput: **{:.1}×**; median latency {:.1}× lower, p99 {:.1}× lower.\n",
        report.products,
        report.distinct_queries,
        report.concurrency,
        environment.cores,
        environment.database_version,
        environment.innodb_flush_log_at_trx_commit,
        environment.innodb_buffer_pool_size,
        environment.redis_version,
        row("uncached (MariaDB)", &report.uncached),
        row("cached (Redis)", &report.cached),
        report.throughput_ratio,
        report.p50_speedup,
        report.p99_speedup,
    )
}
