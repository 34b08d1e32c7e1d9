//! Catalog search on the embedded index (tantivy): the catalog `souk-bench search`
//! seeds into MariaDB is read once, indexed in a fresh directory (build time and size
//! reported), checked against the rows, and searched with the same query mix by
//! concurrent clients for a fixed time, with no result cache.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use souk_actors::catalog::index::{
    IndexSettings, IndexedProduct, ProductIndex, SearchRequest, Status,
};
use souk_actors::catalog::search::indexed_products;
use souk_actors::catalog::service::SearchParams;
use souk_db::Db;

use crate::search::{query_mix, seeded_database};
use crate::stats::{summarise, Summary};

#[derive(Debug, Clone)]
pub struct Options {
    pub mysql_server_url: String,
    pub database: String,
    pub products: usize,
    pub distinct_queries: usize,
    pub concurrency: usize,
    /// Threads that run searches (the clients queue for them).
    pub search_threads: usize,
    pub duration: Duration,
    /// Where the index is built (emptied first, removed after).
    pub directory: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub cores: usize,
    pub products: usize,
    pub distinct_queries: usize,
    pub concurrency: usize,
    pub search_threads: usize,
    pub duration_secs: f64,
    /// Reading the products, tags, attributes, categories and stock from MariaDB.
    pub read_secs: f64,
    /// Indexing them and committing.
    pub build_secs: f64,
    pub index_bytes: u64,
    /// Whether a 1 000-product sample and the count agree with the database.
    pub check_agrees: bool,
    /// CPU time of this process per search while searching (clients included): a figure
    /// that other load on the machine does not inflate as it does latencies.
    pub cpu_ms_per_search: f64,
    pub all: Summary,
    pub with_text: Summary,
    pub without_text: Summary,
}

/// Every seeded product as the index takes it, read as a node reads it at start.
async fn load_products(db: &Db) -> anyhow::Result<Vec<IndexedProduct>> {
    let mut connection = db.pool().acquire().await?;
    let categories = souk_db::catalog::list_categories(&mut *connection).await?;
    let mut products = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let rows =
            souk_db::catalog::products_after(&mut connection, after.as_deref(), 2_000).await?;
        let Some(last) = rows.last() else {
            return Ok(products);
        };
        after = Some(last.product.id.clone());
        products.extend(
            indexed_products(&mut connection, &categories, rows)
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?,
        );
    }
}

/// The SQL bench's query as the index takes it, for a shopper (active products only).
fn request(params: &SearchParams) -> SearchRequest {
    SearchRequest {
        text: params.q.clone(),
        category_id: params.category_id.clone(),
        price_min: params.price_min,
        price_max: params.price_max,
        currency: params.currency.clone(),
        tags: params.tags.clone(),
        attributes: params.attributes.clone(),
        statuses: vec![Status::Active],
        in_stock: params.in_stock,
        sort: params.sort,
        limit: params.limit as usize,
        cursor: None,
    }
}

/// User and system CPU time of this process so far (Linux).
fn process_cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow::anyhow!("unexpected /proc/self/stat"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |position: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(position)
            .ok_or_else(|| anyhow::anyhow!("unexpected /proc/self/stat"))?
            .parse::<f64>()?)
    };
    // Linux reports these in USER_HZ, 100 on every common configuration.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

fn directory_bytes(directory: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(directory)? {
        let metadata = entry?.metadata()?;
        if metadata.is_file() {
            total += metadata.len();
        }
    }
    Ok(total)
}

/// `concurrency` clients search in a closed loop until `duration` has passed, through
/// a pool of `search_threads` threads (as a node runs searches: a bounded pool, not a
/// thread per request). Each latency (queueing included) is tagged with whether its
/// search had text.
fn load(
    index: &ProductIndex,
    requests: &[SearchRequest],
    options: &Options,
) -> anyhow::Result<(Vec<(Duration, bool)>, Duration)> {
    type Job = (usize, mpsc::Sender<anyhow::Result<()>>);
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let deadline = started + options.duration;
    let (submit, jobs) = mpsc::channel::<Job>();
    let jobs = Mutex::new(jobs);
    let latencies = std::thread::scope(|scope| {
        for _ in 0..options.search_threads.max(1) {
            scope.spawn(|| loop {
                let job = match jobs.lock() {
                    Ok(jobs) => jobs.recv(),
                    Err(_) => return,
                };
                let Ok((position, reply)) = job else {
                    return;
                };
                let outcome = index
                    .search(&requests[position])
                    .map(|_| ())
                    .map_err(Into::into);
                let _ = reply.send(outcome);
            });
        }
        let clients: Vec<_> = (0..options.concurrency)
            .map(|_| {
                let submit = submit.clone();
                let next = &next;
                scope.spawn(move || {
                    let mut latencies = Vec::new();
                    let (reply, answer) = mpsc::channel();
                    while Instant::now() < deadline {
                        let position = next.fetch_add(1, Ordering::Relaxed) % requests.len();
                        let begun = Instant::now();
                        submit
                            .send((position, reply.clone()))
                            .map_err(|_| anyhow::anyhow!("the search pool stopped"))?;
                        answer.recv()??;
                        latencies.push((begun.elapsed(), requests[position].text.is_some()));
                    }
                    Ok::<_, anyhow::Error>(latencies)
                })
            })
            .collect();
        drop(submit);
        let mut all = Vec::new();
        for client in clients {
            all.extend(
                client
                    .join()
                    .map_err(|_| anyhow::anyhow!("a search client panicked"))??,
            );
        }
        Ok::<_, anyhow::Error>(all)
    })?;
    Ok((latencies, started.elapsed()))
}

pub fn bench(runtime: &tokio::runtime::Runtime, options: &Options) -> anyhow::Result<Report> {
    let (products, categories, read_secs) = runtime.block_on(async {
        let db = seeded_database(
            &options.mysql_server_url,
            &options.database,
            options.products,
            4,
        )
        .await?;
        eprintln!("reading the catalog from MariaDB…");
        let started = Instant::now();
        let products = load_products(&db).await?;
        let read_secs = started.elapsed().as_secs_f64();
        let categories: Vec<String> = souk_db::catalog::list_categories(db.pool())
            .await?
            .into_iter()
            .map(|category| category.id)
            .collect();
        Ok::<_, anyhow::Error>((products, categories, read_secs))
    })?;

    if options.directory.exists() {
        std::fs::remove_dir_all(&options.directory)?;
    }
    eprintln!(
        "indexing {} products in {}…",
        products.len(),
        options.directory.display()
    );
    let started = Instant::now();
    let index = ProductIndex::open_in_dir(&options.directory, IndexSettings::default())?;
    for chunk in products.chunks(5_000) {
        index.upsert(chunk)?;
    }
    index.commit()?;
    let build_secs = started.elapsed().as_secs_f64();
    let index_bytes = directory_bytes(&options.directory)?;
    let check = index.check(&products, 1_000)?;
    if !check.agrees() {
        eprintln!("the index disagrees with the database: {check:?}");
    }

    let requests: Vec<SearchRequest> = query_mix(options.distinct_queries, &categories)
        .iter()
        .map(request)
        .collect();
    eprintln!("warming up: every distinct query once…");
    for request in &requests {
        index.search(request)?;
    }
    eprintln!(
        "searching: {} clients, {} search threads, for {:?}…",
        options.concurrency, options.search_threads, options.duration
    );
    let cpu_before = process_cpu_seconds()?;
    let (latencies, wall) = load(&index, &requests, options)?;
    let cpu_secs = process_cpu_seconds()? - cpu_before;
    let part = |text: Option<bool>| {
        summarise(
            latencies
                .iter()
                .filter(|(_, has_text)| text.is_none_or(|wanted| wanted == *has_text))
                .map(|(latency, _)| *latency)
                .collect(),
            wall,
        )
    };
    let report = Report {
        cores: std::thread::available_parallelism()
            .map(|cores| cores.get())
            .unwrap_or(1),
        products: products.len(),
        distinct_queries: requests.len(),
        concurrency: options.concurrency,
        search_threads: options.search_threads,
        duration_secs: wall.as_secs_f64(),
        read_secs,
        build_secs,
        index_bytes,
        check_agrees: check.agrees(),
        cpu_ms_per_search: cpu_secs * 1000.0 / latencies.len().max(1) as f64,
        all: part(None),
        with_text: part(Some(true)),
        without_text: part(Some(false)),
    };
    drop(index);
    std::fs::remove_dir_all(&options.directory)?;
    Ok(report)
}

pub fn markdown(report: &Report, command: &str) -> String {
    format!(
        "## Catalog search: embedded index (tantivy)\n\n\
         `{command}`\n\n\
         {} products read from MariaDB in {:.1} s, indexed in {:.1} s, {:.1} MiB on disk \
         (check against the database: {}); {} distinct queries (the `souk-bench search` mix, \
         shoppers) replayed round-robin by {} clients through {} search threads for {:.0} s, \
         no result cache; {} cores. CPU per search: {:.2} ms.\n\n\
         | searches | count | searches/s | p50 ms | p95 ms | p99 ms | max ms |\n\
         |---|---|---|---|---|---|---|\n{}{}{}",
        report.products,
        report.read_secs,
        report.build_secs,
        report.index_bytes as f64 / (1024.0 * 1024.0),
        if report.check_agrees {
            "agrees"
        } else {
            "DISAGREES"
        },
        report.distinct_queries,
        report.concurrency,
        report.search_threads,
        report.duration_secs,
        report.cores,
        report.cpu_ms_per_search,
        report.all.markdown_row("all"),
        report.with_text.markdown_row("with text"),
        report.without_text.markdown_row("without text"),
    )
}
