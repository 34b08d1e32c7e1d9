//! The contention harness's smoke mode against the real MariaDB, Redis and NATS: every
//! strategy × every workload at small scale, with stock small enough to sell out. Fails
//! on any oversell, lost acknowledged reservation or disagreeing counter — never on
//! speed.

use souk_bench::contention::{self, report, StrategyName, Workload};

/// Smoke options over the test services, on a database of its own.
fn smoke_options() -> contention::Options {
    let mysql = std::env::var("SOUK_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://souk:souk@127.0.0.1:3306".to_owned());
    let redis = std::env::var("SOUK_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    // souk_t_* databases are the test suite's: scripts/test-services drops leftovers.
    let database = format!("souk_t_bench_{}", uuid::Uuid::now_v7().simple());
    let nats =
        std::env::var("SOUK_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:14222".to_owned());
    contention::Options::smoke(mysql, redis, nats, database)
}

/// `--without-email`: the nodes place every order and mail none of them, and each cell
/// still settles (on its events being relayed); the report says how the nodes ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_email_the_nodes_place_orders_and_mail_none() {
    let options = contention::Options {
        strategies: vec![StrategyName::SoukHttp, StrategyName::SoukClusterOne],
        workloads: vec![Workload::Hot],
        concurrency: vec![4],
        without_email: true,
        drop_databases: false,
        ..smoke_options()
    };
    let report = contention::run(&options, None)
        .await
        .expect("the run completes");
    assert_eq!(report.cells.len(), 2);
    for cell in &report.cells {
        assert_eq!(cell.errors, 0, "{}: {:?}", cell.strategy, cell.first_error);
        assert!(cell.reserved > 0, "{} placed nothing", cell.strategy);
        assert!(cell.settled_secs.is_some(), "{} settled", cell.strategy);
    }
    assert!(report
        .environment
        .describe()
        .contains("without the email service"));
    let server = sqlx::MySqlPool::connect(&options.mysql_server_url)
        .await
        .unwrap();
    for suffix in ["_http", "_cluster1"] {
        let database = format!("{}{suffix}", options.database);
        let (orders, mails): (i64, i64) = sqlx::query_as(&format!(
            "SELECT (SELECT COUNT(*) FROM `{database}`.orders), \
             (SELECT COUNT(*) FROM `{database}`.email_sends)"
        ))
        .fetch_one(&server)
        .await
        .unwrap();
        assert!(orders > 0, "{database}: no order");
        assert_eq!(mails, 0, "{database}: mail sent without the email service");
    }
    for suffix in ["", "_http", "_grpc", "_cluster", "_cluster1"] {
        let database = format!("{}{suffix}", options.database);
        sqlx::query(&format!("DROP DATABASE IF EXISTS `{database}`"))
            .execute(&server)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_run_never_oversells_and_records_every_acknowledged_reservation() {
    let options = smoke_options();
    let report = contention::run(&options, None)
        .await
        .expect("the smoke run completes");

    for name in &StrategyName::ALL {
        for workload in Workload::ALL {
            for concurrency in &options.concurrency {
                let cell = report
                    .cells
                    .iter()
                    .find(|cell| {
                        cell.strategy == name.name()
                            && cell.workload == workload
                            && cell.concurrency == *concurrency
                    })
                    .unwrap_or_else(|| {
                        panic!(
                            "no cell for {} {} {concurrency}",
                            name.name(),
                            workload.name()
                        )
                    });
                let label = format!("{} {} {concurrency} clients", name.name(), workload.name());
                assert_eq!(cell.verification.oversold_units, 0, "{label} oversold");
                assert_eq!(
                    cell.missing_acknowledged, 0,
                    "{label} lost acknowledged reservations"
                );
                assert_eq!(
                    cell.verification.inconsistent_skus, 0,
                    "{label} counters disagree with rows"
                );
                assert_eq!(cell.errors, 0, "{label} failed: {:?}", cell.first_error);
                // Fresh stock per cell: every client's first attempt must succeed.
                assert!(cell.reserved > 0, "{label} reserved nothing");
                assert_eq!(
                    cell.verification.recorded, cell.reserved,
                    "{label}: store and clients disagree"
                );
                // The deployments that mail their orders' confirmations settle after a
                // cell; the others queue nothing.
                let mails = matches!(
                    name,
                    StrategyName::SoukHttp
                        | StrategyName::SoukGrpc
                        | StrategyName::SoukCluster
                        | StrategyName::SoukClusterOne
                );
                assert_eq!(cell.settled_secs.is_some(), mails, "{label} settling");
                // Only the three-node cluster forwards calls, several to a message at
                // most. Its clients send to the nodes in turn, so of any three requests
                // for the hot SKU two reach a node that does not own it; in the other
                // workloads a short cell's few requests may each reach their SKU's owner.
                if *name == StrategyName::SoukCluster {
                    let requests = cell.reserved + cell.rejected;
                    match cell.mailbox {
                        Some(mailbox) => {
                            // Present only when a call left: calls >= messages > 0.
                            assert!(
                                mailbox.call_messages <= mailbox.calls,
                                "{label}: {mailbox:?}"
                            );
                            assert!(
                                mailbox.answer_messages > 0
                                    && mailbox.answer_messages <= mailbox.answers,
                                "{label}: {mailbox:?}"
                            );
                        }
                        None => assert!(
                            workload != Workload::Hot || requests < 3,
                            "{label}: nothing forwarded in {requests} requests"
                        ),
                    }
                } else {
                    assert_eq!(cell.mailbox, None, "{label} forwards nothing");
                }
            }
        }
    }
    assert!(report.violations().is_empty());
    assert!(
        report.unavailable.is_empty(),
        "every strategy is measured: {:?}",
        report.unavailable
    );

    let directory = std::env::temp_dir().join(format!(
        "souk-bench-smoke-{}",
        uuid::Uuid::now_v7().simple()
    ));
    let written = report::write(&report, &directory).expect("results are written");
    let text = |suffix: &str| {
        let path = written
            .iter()
            .find(|path| path.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("no {suffix} written"));
        std::fs::read_to_string(path).unwrap()
    };
    let json: serde_json::Value = serde_json::from_str(&text(".json")).unwrap();
    assert_eq!(json["cells"].as_array().unwrap().len(), report.cells.len());
    assert!(json["environment"]["innodb_flush_log_at_trx_commit"].is_string());
    assert!(text(".md").contains("| mysql-tx | 16 |"));
    assert!(text(".md").contains("### Cluster mailbox"));
    for plot in ["-throughput.svg", "-latency.svg"] {
        let svg = text(plot);
        assert!(
            svg.contains("<svg") && svg.contains("souk-actor"),
            "{plot} names the strategies"
        );
    }
    let _ = std::fs::remove_dir_all(&directory);
}
