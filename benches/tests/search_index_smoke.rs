//! The search-index harness's smoke mode against the real MariaDB: a small seeded
//! catalog is read, indexed, checked against the rows and searched. Fails on any error
//! or disagreement — never on speed.

use std::time::Duration;

use souk_bench::search_index::{self, Options};

#[test]
fn smoke_run_indexes_the_database_catalog_and_searches_it() {
    let mysql = std::env::var("SOUK_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://souk:souk@127.0.0.1:3306".to_owned());
    let id = uuid::Uuid::now_v7().simple();
    let options = Options {
        mysql_server_url: mysql,
        // souk_t_* databases are the test suite's: scripts/test-services drops leftovers.
        database: format!("souk_t_bench_index_{id}"),
        products: 300,
        distinct_queries: 30,
        concurrency: 4,
        search_threads: 2,
        duration: Duration::from_millis(500),
        directory: std::env::temp_dir().join(format!("souk-bench-index-smoke-{id}")),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let report = search_index::bench(&runtime, &options).expect("the smoke run completes");

    assert_eq!(report.products, 300);
    assert!(report.check_agrees, "the index agrees with the database");
    assert!(report.index_bytes > 0);
    assert!(report.with_text.requests > 0 && report.without_text.requests > 0);
    assert_eq!(
        report.all.requests,
        report.with_text.requests + report.without_text.requests
    );
    assert!(
        !options.directory.exists(),
        "the index directory is removed afterwards"
    );
    let markdown = search_index::markdown(&report, "souk-bench search-index --smoke");
    assert!(markdown.contains("check against the database: agrees"));
}
