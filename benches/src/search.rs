//! Catalog search at scale: Souk's served search (the embedded index, with the live
//! stock of each hit read from the database) against the SQL baseline a team would
//! usually write (`search_sql`), over the same seeded MariaDB catalog and the same
//! query mix, in one run, with no result cache.

use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use souk_actors::catalog::cache::Cache;
use souk_actors::catalog::index::Sort;
use souk_actors::catalog::service::SearchParams;
use souk_actors::catalog::{CatalogService, SearchEngine};
use souk_db::{Db, PoolSettings};
use sqlx::Connection;

use crate::search_sql;
use crate::stats::{summarise, Summary};

#[derive(Debug, Clone)]
pub struct Options {
    pub mysql_server_url: String,
    pub database: String,
    pub products: usize,
    pub distinct_queries: usize,
    pub requests: usize,
    pub concurrency: usize,
    /// Searches per second of the paced (open-loop) run of Souk's side.
    pub paced_rate: u32,
}

#[derive(Debug, Serialize)]
pub struct Environment {
    pub cores: usize,
    pub database_version: String,
    pub innodb_flush_log_at_trx_commit: String,
    pub innodb_buffer_pool_size: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub environment: Environment,
    pub products: usize,
    pub distinct_queries: usize,
    pub concurrency: usize,
    /// Building the node's index from the database, as a node does at start.
    pub index_build_secs: f64,
    pub index_bytes: u64,
    pub sql: Summary,
    pub souk: Summary,
    /// Souk's side with searches arriving at a fixed rate, whatever the answers' pace:
    /// latency without the queueing a saturated closed loop adds.
    pub paced_rate: u32,
    pub souk_paced: Summary,
    /// Souk's searches/s over the SQL baseline's.
    pub throughput_ratio: f64,
    /// SQL p50 / Souk p50 (how many times faster the median is).
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
            params.sort = Sort::parse(sort);
            params
        })
        .collect()
}

/// `concurrency` clients replay `queries` round-robin until `requests` searches are done.
async fn run<F, Fut>(
    search: F,
    queries: &[SearchParams],
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<Summary>
where
    F: Fn(SearchParams) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let queries = Arc::new(queries.to_vec());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let search = search.clone();
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
                search(params).await?;
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

/// Starts one search every `1 / rate` seconds for `requests` searches, each in its own
/// task, and summarises their latencies (an open loop: a slow answer does not delay
/// the next arrival).
async fn run_paced<F, Fut>(
    search: F,
    queries: &[SearchParams],
    requests: usize,
    rate: u32,
) -> anyhow::Result<Summary>
where
    F: Fn(SearchParams) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let interval = std::time::Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(requests);
    for index in 0..requests {
        let due = started + interval * index as u32;
        tokio::time::sleep_until(due.into()).await;
        let params = queries[index % queries.len()].clone();
        let search = search.clone();
        tasks.push(tokio::spawn(async move {
            let begun = Instant::now();
            search(params).await?;
            Ok::<_, anyhow::Error>(begun.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    for task in tasks {
        latencies.push(task.await??);
    }
    Ok(summarise(latencies, started.elapsed()))
}

async fn environment(db: &Db) -> anyhow::Result<Environment> {
    let scalar = |sql: &'static str| async move {
        let (value,): (String,) = sqlx::query_as(sql).fetch_one(db.pool()).await?;
        Ok::<_, anyhow::Error>(value)
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
    let catalog = CatalogService::new(
        db.clone(),
        Cache::disabled(),
        SearchEngine::open(None).map_err(|error| anyhow::anyhow!("{error}"))?,
    );
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
    search_sql::prepare(&db).await?;

    eprintln!("building the search index from the database…");
    let engine = SearchEngine::open(None).map_err(|error| anyhow::anyhow!("{error}"))?;
    let build = engine
        .rebuild(&db)
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let status = engine
        .status(&db, 100)
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    if !status.agrees {
        anyhow::bail!("the index disagrees with the database: {status:?}");
    }
    let catalog = CatalogService::new(db.clone(), Cache::disabled(), engine);

    let categories: Vec<String> = catalog
        .categories()
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?
        .into_iter()
        .map(|category| category.id)
        .collect();
    let queries = query_mix(options.distinct_queries, &categories);

    let souk = {
        let catalog = catalog.clone();
        move |params: SearchParams| {
            let catalog = catalog.clone();
            async move {
                catalog
                    .search(params, false)
                    .await
                    .map(|_| ())
                    .map_err(|error| anyhow::anyhow!("{error}"))
            }
        }
    };
    let sql = {
        let db = db.clone();
        move |params: SearchParams| {
            let db = db.clone();
            async move {
                let mut connection = db.pool().acquire().await?;
                search_sql::search(&mut connection, &params)
                    .await
                    .map(|_| ())
            }
        }
    };

    eprintln!("warming up: every distinct query once on each side…");
    run(sql.clone(), &queries, queries.len(), options.concurrency).await?;
    run(souk.clone(), &queries, queries.len(), options.concurrency).await?;
    eprintln!(
        "SQL baseline: {} searches at concurrency {}…",
        options.requests, options.concurrency
    );
    let sql_summary = run(sql, &queries, options.requests, options.concurrency).await?;
    eprintln!(
        "Souk (index): {} searches at concurrency {}…",
        options.requests, options.concurrency
    );
    let souk_summary = run(
        souk.clone(),
        &queries,
        options.requests,
        options.concurrency,
    )
    .await?;
    eprintln!(
        "Souk (index), paced: {} searches arriving at {}/s…",
        options.requests, options.paced_rate
    );
    let souk_paced = run_paced(souk, &queries, options.requests, options.paced_rate).await?;

    let environment = environment(&db).await?;
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    Ok(Report {
        environment,
        products: options.products,
        distinct_queries: options.distinct_queries,
        concurrency: options.concurrency,
        index_build_secs: build.seconds,
        index_bytes: status.size_bytes,
        throughput_ratio: ratio(
            souk_summary.throughput_per_sec,
            sql_summary.throughput_per_sec,
        ),
        p50_speedup: ratio(sql_summary.p50_ms, souk_summary.p50_ms),
        p99_speedup: ratio(sql_summary.p99_ms, souk_summary.p99_ms),
        sql: sql_summary,
        souk: souk_summary,
        paced_rate: options.paced_rate,
        souk_paced,
    })
}

pub fn markdown(report: &Report, command: &str) -> String {
    let environment = &report.environment;
    format!(
        "## Catalog search: Souk's index against SQL\n\n\
         `{command}`\n\n\
         {} products (index built from MariaDB in {:.1} s, {:.1} MiB in memory), {} distinct \
         shopper queries replayed round-robin, {} concurrent clients, no result cache; {} cores, {} \
         (innodb_flush_log_at_trx_commit={}, buffer pool {} bytes). Souk's figure is the served \
         search: the index, then each hit's live stock read from MariaDB.\n\n\
         | search | searches | searches/s | p50 ms | p95 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|\n{}{}{}\n\
         Souk/SQL throughput: **{:.1}×**; median latency {:.1}× lower, p99 {:.1}× lower.\n",
        report.products,
        report.index_build_secs,
        report.index_bytes as f64 / (1024.0 * 1024.0),
        report.distinct_queries,
        report.concurrency,
        environment.cores,
        environment.database_version,
        environment.innodb_flush_log_at_trx_commit,
        environment.innodb_buffer_pool_size,
        report.sql.markdown_row("SQL baseline (MariaDB FULLTEXT)"),
        report.souk.markdown_row("Souk (embedded index)"),
        report
            .souk_paced
            .markdown_row(&format!("Souk, paced at {}/s (open loop)", report.paced_rate)),
        report.throughput_ratio,
        report.p50_speedup,
        report.p99_speedup,
    )
}
