//! Results of a run: per-cell figures and checks, ratios to `mysql-tx`, the goal, and
//! their JSON and Markdown forms.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::cpu::CpuUse;
use super::env::Environment;
use super::node_cgroup::NodesCpuUse;
use super::profile::{BatchProfile, MailboxProfile};
use super::rounds::{pooled, Pooled};
use super::strategies::{Cell, Verification};
use super::workload::Workload;
use super::Options;
use crate::stats::Summary;

#[derive(Debug, Clone, Serialize)]
pub struct CellResult {
    pub strategy: String,
    /// Which run of its workload × concurrency's strategies this cell was in, from 1
    /// (`--rounds`).
    pub round: usize,
    pub workload: Workload,
    pub concurrency: usize,
    pub skus: usize,
    pub stock_per_sku: i64,
    pub wall_secs: f64,
    /// Reservations the clients were told succeeded.
    pub reserved: u64,
    /// Refused for lack of stock.
    pub rejected: u64,
    /// Neither: failures of the store or the transport.
    pub errors: u64,
    pub first_error: Option<String>,
    /// Latency of successful reservations, and their rate.
    pub latency: Summary,
    pub verification: Verification,
    /// Acknowledged to a client but not found in the store. Must be 0.
    pub missing_acknowledged: u64,
    /// Found in the store beyond what was acknowledged (possible only when a client saw
    /// an error for a reservation that did commit).
    pub unacknowledged_recorded: u64,
    /// Successful reservations/s over those of `mysql-tx` in the same workload and
    /// concurrency of this run.
    pub ratio_to_mysql_tx: Option<f64>,
    /// Group commit of the SKU actors during this cell (souk strategies).
    pub actor_batches: Option<BatchProfile>,
    /// Seconds after the cell until the deployment had relayed its events and sent its
    /// confirmation mails (souk strategies); the next cell started only then, so no
    /// cell runs beside another's queued work.
    pub settled_secs: Option<f64>,
    /// The machine's CPU while the clients ran (Linux only).
    pub cpu: Option<CpuUse>,
    /// The Souk nodes' own CPU, when each ran under a CPU limit.
    pub nodes_cpu: Option<NodesCpuUse>,
    /// The cluster mailbox's forwarded calls and messages during the cell.
    pub mailbox: Option<MailboxProfile>,
}

impl CellResult {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        strategy: &str,
        cell: &Cell,
        wall: Duration,
        reserved: u64,
        rejected: u64,
        errors: u64,
        first_error: Option<String>,
        latency: Summary,
        verification: Verification,
        actor_batches: Option<BatchProfile>,
    ) -> Self {
        Self {
            strategy: strategy.to_owned(),
            round: 1,
            workload: cell.workload,
            concurrency: cell.concurrency,
            skus: cell.skus,
            stock_per_sku: cell.stock_per_sku,
            wall_secs: wall.as_secs_f64(),
            reserved,
            rejected,
            errors,
            first_error,
            latency,
            missing_acknowledged: reserved.saturating_sub(verification.recorded),
            unacknowledged_recorded: verification.recorded.saturating_sub(reserved),
            verification,
            ratio_to_mysql_tx: None,
            actor_batches,
            settled_secs: None,
            cpu: None,
            nodes_cpu: None,
            mailbox: None,
        }
    }

    /// Orders placed and mailed per second: the cell's reservations over the cell and
    /// the time its deployment took after it to relay their events and send their
    /// confirmations (souk strategies). What a deployment sustains when mail must keep
    /// up, where reservations/s counts a burst whose mail may run on after it.
    pub fn placed_and_mailed_per_sec(&self) -> Option<f64> {
        self.settled_secs
            .map(|settled| self.reserved as f64 / (self.wall_secs + settled).max(1e-9))
    }

    /// Oversold, lost an acknowledged reservation, recorded more than clients could
    /// have caused, or left counters disagreeing with their rows.
    pub fn violates(&self) -> bool {
        self.verification.oversold_units > 0
            || self.missing_acknowledged > 0
            || self.unacknowledged_recorded > self.errors
            || self.verification.inconsistent_skus > 0
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Unavailable {
    pub strategy: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub started_at: String,
    pub command: String,
    pub environment: Environment,
    pub duration_secs: f64,
    pub skus: usize,
    pub hot_stock: i64,
    pub stock_per_sku: i64,
    pub concurrency: Vec<usize>,
    /// Runs of each workload × concurrency's strategies (`--rounds`).
    pub rounds: usize,
    pub cells: Vec<CellResult>,
    /// Each strategy's rate over all rounds of a workload × concurrency.
    pub pooled: Vec<Pooled>,
    pub unavailable: Vec<Unavailable>,
    pub notes: Vec<String>,
    /// The open issues' goals, evaluated (reported, never asserted).
    pub goal: Vec<String>,
}

pub const NOTES: &[&str] = &[
    "mysql-autocommit records no reservation row: only the counter moves, so it is not comparable in what it records (no order can be released, audited or proven).",
    "redis-lua keeps stock and reservations in memory: a reservation is acknowledged before anything reaches disk, so it is not durable like the SQL strategies and Souk.",
    "souk-actor: Souk's per-SKU actors in process (LocalInventory router), group-committing the SKU row, reservation rows and ledger rows in one fenced transaction per batch.",
    "souk-http: a real Souk node in the same process, driven over loopback REST: POST /api/v1/orders (one line of one unit, Idempotency-Key), so each success is an order persisted with its reservation; skewed/uniform cells share one catalogue whose stock covers all of them.",
    "mysql-tx-http: the order endpoint a team would usually write, in the same process over loopback REST like souk-http: an actix-web handler (bearer JWT, Idempotency-Key) running one transaction per order on the same MariaDB (price read, conditional stock UPDATE, order, line and outbox INSERTs).",
    "souk-cluster: three clustered Souk nodes in the same process, meeting on nats-server; clients send to them in turn, so two in three checkouts are forwarded to the SKU's owner over NATS.",
    "souk-cluster-1: one Souk node configured as each souk-cluster node (events through JetStream, shard leases in NATS KV), with souk-http's whole pool: it owns every SKU, so it measures the cluster's configuration without forwarding.",
    "Souk nodes under a CPU limit (--node-cpu-limit): each Souk node's threads run in a cgroup of their own with CFS bandwidth control, as a pod's resources.limits.cpu is enforced (a quota per 100 ms period), so three nodes have three times one node's CPU, as three pods would; MariaDB, nats-server and the clients are not limited. used of the limit: the nodes' CPU (cpuacct) over what their limits allowed in the cell; nodes' cpu ms/res: the nodes' own core-milliseconds per successful reservation; periods throttled: the share of 100 ms periods in which a node used up its quota.",
    "cpu busy and cpu ms/res: the whole machine's CPU while the cell's clients ran (Linux's /proc/stat; clients, nodes, MariaDB and nats-server alike): the share of all cores that was busy, and busy core-milliseconds per successful reservation. A cell near 100 % busy was bound by the cores, and its rate by what a reservation costs in all.",
    "settled s: after a souk-http, souk-grpc or souk-cluster cell the harness waits until that deployment has relayed every event and recorded every order's confirmation mail, and only then starts the next cell, so no cell runs beside the mail and events another left queued. placed+mailed/s: the cell's reservations over the cell and its settling, what the deployment sustains when its mail must keep up with its orders.",
    "Latency percentiles are of successful reservations; a hot cell ends early when its SKU sells out. SQL baselines use sqlx's native MySQL driver, Souk its Any driver.",
];

impl Report {
    pub fn new(
        options: &Options,
        started_at: chrono::DateTime<chrono::Utc>,
        environment: Environment,
        mut cells: Vec<CellResult>,
        unavailable: Vec<Unavailable>,
    ) -> Self {
        let baselines: Vec<(Workload, usize, usize, f64)> = cells
            .iter()
            .filter(|cell| cell.strategy == "mysql-tx")
            .map(|cell| {
                (
                    cell.workload,
                    cell.concurrency,
                    cell.round,
                    cell.latency.throughput_per_sec,
                )
            })
            .collect();
        for cell in &mut cells {
            cell.ratio_to_mysql_tx = baselines
                .iter()
                .find(|(workload, concurrency, round, _)| {
                    *workload == cell.workload
                        && *concurrency == cell.concurrency
                        && *round == cell.round
                })
                .filter(|(_, _, _, baseline)| *baseline > 0.0)
                .map(|(_, _, _, baseline)| cell.latency.throughput_per_sec / baseline);
        }
        let pooled = pooled(&cells);
        let goal = goal(&cells, &pooled);
        Self {
            started_at: started_at.to_rfc3339(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            environment,
            duration_secs: options.duration.as_secs_f64(),
            skus: options.skus,
            hot_stock: options.hot_stock,
            stock_per_sku: options.stock_per_sku,
            concurrency: options.concurrency.clone(),
            rounds: options.rounds,
            cells,
            pooled,
            unavailable,
            notes: NOTES.iter().map(|note| (*note).to_owned()).collect(),
            goal,
        }
    }

    pub fn violations(&self) -> Vec<&CellResult> {
        self.cells.iter().filter(|cell| cell.violates()).collect()
    }

    pub fn oversold_units(&self) -> i64 {
        self.cells
            .iter()
            .map(|cell| cell.verification.oversold_units)
            .sum()
    }
}

/// The goals of the write-path and cluster issues that this run measured: the first
/// round's cells, and for the cluster's goal the rates over every round.
pub(super) fn goal(cells: &[CellResult], pooled: &[Pooled]) -> Vec<String> {
    let find = |strategy: &str, workload: Workload| {
        cells.iter().find(|cell| {
            cell.strategy == strategy && cell.workload == workload && cell.concurrency == 256
        })
    };
    let find_pooled = |strategy: &str| {
        pooled.iter().find(|pooled| {
            pooled.strategy == strategy
                && pooled.workload == Workload::Hot
                && pooled.concurrency == 256
        })
    };
    let met = |yes: bool| if yes { "met" } else { "NOT met" };
    let mut lines = Vec::new();
    if let Some(http) = find("souk-http", Workload::Hot) {
        let ratio = http.ratio_to_mysql_tx.unwrap_or(0.0);
        let to_peer = find("mysql-tx-http", Workload::Hot)
            .map(|peer| peer.latency.throughput_per_sec)
            .filter(|rate| *rate > 0.0)
            .map(|rate| http.latency.throughput_per_sec / rate);
        lines.push(format!(
            "hot, 256 clients: souk-http = {ratio:.2}× mysql-tx (goal ≥ 2×), {} mysql-tx-http (goal ≥ 4×), p99 {:.1} ms (goal ≤ 50 ms), oversold {}: {}",
            to_peer.map_or("not measured against".to_owned(), |ratio| format!("{ratio:.2}×")),
            http.latency.p99_ms,
            http.verification.oversold_units,
            met(ratio >= 2.0
                && to_peer.is_some_and(|ratio| ratio >= 4.0)
                && http.latency.p99_ms <= 50.0
                && http.verification.oversold_units == 0)
        ));
    }
    for workload in [Workload::Skewed, Workload::Uniform] {
        if let Some(actor) = find("souk-actor", workload) {
            let ratio = actor.ratio_to_mysql_tx.unwrap_or(0.0);
            lines.push(format!(
                "{}, 256 clients: souk-actor = {ratio:.2}× mysql-tx (goal ≥ 3×): {}",
                workload.name(),
                met(ratio >= 3.0)
            ));
        }
    }
    if let Some(actor) = find("souk-actor", Workload::Hot) {
        let ratio = actor.ratio_to_mysql_tx.unwrap_or(0.0);
        lines.push(format!(
            "hot, 256 clients: souk-actor = {ratio:.1}× mysql-tx (goal ≥ 10×), p99 {:.1} ms (goal ≤ 25 ms): {}",
            actor.latency.p99_ms,
            met(ratio >= 10.0 && actor.latency.p99_ms <= 25.0)
        ));
    }
    // One node as souk-http runs it, and one node configured as a cluster node.
    for baseline in ["souk-http", "souk-cluster-1"] {
        if let (Some(cluster), Some(one)) = (find_pooled("souk-cluster"), find_pooled(baseline)) {
            let ratio = cluster.reservations_per_sec / one.reservations_per_sec.max(1e-9);
            let limit = find(baseline, Workload::Hot)
                .and_then(|one| one.nodes_cpu)
                .map(|nodes| format!(", every node limited to {:.2} cores", nodes.limit_cores))
                .unwrap_or_default();
            let rounds = match cluster.rates.len() {
                1 => String::new(),
                rounds => format!(" over {rounds} rounds"),
            };
            let sustained = cluster
                .placed_and_mailed_per_sec
                .zip(one.placed_and_mailed_per_sec)
                .map(|(cluster, one)| {
                    format!("; placed and mailed {:.2}×", cluster / one.max(1e-9))
                })
                .unwrap_or_default();
            lines.push(format!(
                "hot, 256 clients: souk-cluster = {ratio:.2}× {baseline}{limit}{rounds} (goal ≥ 0.8×): {}{sustained}",
                met(ratio >= 0.8)
            ));
        }
    }
    if lines.is_empty() {
        lines.push("no goal's cells were measured in this run".to_owned());
    }
    lines
}

/// A table cell's text, or a dash where the figure does not apply.
fn or_dash(text: Option<String>) -> String {
    text.unwrap_or_else(|| "–".to_owned())
}

/// A cell's strategy as the tables name it: with its round when the run had several.
fn cell_label(report: &Report, cell: &CellResult) -> String {
    if report.rounds > 1 {
        format!("{} (round {})", cell.strategy, cell.round)
    } else {
        cell.strategy.clone()
    }
}

pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Stock contention: {}\n", report.started_at);
    let _ = writeln!(out, "`{}`\n", report.command);
    let _ = writeln!(out, "Environment: {}.\n", report.environment.describe());
    let _ = writeln!(
        out,
        "{:.1} s per cell; hot = 1 SKU with {} units; skewed (Zipf s=1.1) and uniform = {} SKUs with {} units each; one unit per reservation; closed-loop clients.\n",
        report.duration_secs, report.hot_stock, report.skus, report.stock_per_sku
    );
    for workload in Workload::ALL {
        let rows: Vec<&CellResult> = report
            .cells
            .iter()
            .filter(|cell| cell.workload == workload)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {}\n", workload.name());
        let _ = writeln!(
            out,
            "| strategy | clients | reservations/s | × mysql-tx | reserved | rejected | errors | p50 ms | p95 ms | p99 ms | max ms | oversold | settled s | placed+mailed/s | cpu busy | cpu ms/res | check |"
        );
        let _ = writeln!(
            out,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for cell in rows {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} |",
                cell_label(report, cell),
                cell.concurrency,
                cell.latency.throughput_per_sec,
                or_dash(cell.ratio_to_mysql_tx.map(|ratio| format!("{ratio:.2}×"))),
                cell.reserved,
                cell.rejected,
                cell.errors,
                cell.latency.p50_ms,
                cell.latency.p95_ms,
                cell.latency.p99_ms,
                cell.latency.max_ms,
                cell.verification.oversold_units,
                or_dash(cell.settled_secs.map(|settled| format!("{settled:.1}"))),
                or_dash(cell.placed_and_mailed_per_sec().map(|rate| format!("{rate:.0}"))),
                or_dash(cell.cpu.map(|cpu| format!("{:.0} %", cpu.busy * 100.0))),
                or_dash(
                    cell.cpu
                        .and_then(|cpu| cpu.ms_per_reservation)
                        .map(|ms| format!("{ms:.2}"))
                ),
                if cell.violates() { "**FAILED**" } else { "ok" },
            );
        }
        out.push('\n');
    }
    if report.rounds > 1 {
        let _ = writeln!(
            out,
            "### Over all rounds\n\nEach workload × concurrency ran its strategies {} times, in the given order in odd rounds and reversed in even ones; a strategy's rate over all rounds is its reservations over its cells' seconds. The figures plot the first round.\n",
            report.rounds
        );
        let _ = writeln!(
            out,
            "| workload | clients | strategy | each round, reservations/s | all rounds, reservations/s | × first strategy | placed+mailed/s |"
        );
        let _ = writeln!(out, "|---|---:|---|---|---:|---:|---:|");
        for pooled in &report.pooled {
            let first = report
                .pooled
                .iter()
                .find(|other| {
                    other.workload == pooled.workload && other.concurrency == pooled.concurrency
                })
                .map_or(0.0, |first| first.reservations_per_sec);
            let rates: Vec<String> = pooled
                .rates
                .iter()
                .map(|rate| format!("{rate:.0}"))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.0} | {:.2}× | {} |",
                pooled.workload.name(),
                pooled.concurrency,
                pooled.strategy,
                rates.join(" · "),
                pooled.reservations_per_sec,
                pooled.reservations_per_sec / first.max(1e-9),
                or_dash(
                    pooled
                        .placed_and_mailed_per_sec
                        .map(|rate| format!("{rate:.0}"))
                ),
            );
        }
        out.push('\n');
    }
    let limited: Vec<&CellResult> = report
        .cells
        .iter()
        .filter(|cell| cell.nodes_cpu.is_some())
        .collect();
    if !limited.is_empty() {
        let _ = writeln!(out, "### Souk nodes under a CPU limit\n");
        let _ = writeln!(
            out,
            "| strategy | workload | clients | reservations/s | limit, all nodes (cores) | used of the limit | nodes' cpu ms/res | periods throttled |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|");
        for cell in limited {
            let Some(nodes) = cell.nodes_cpu else {
                continue;
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {:.2} | {:.0} % | {} | {} |",
                cell_label(report, cell),
                cell.workload.name(),
                cell.concurrency,
                cell.latency.throughput_per_sec,
                nodes.limit_cores,
                nodes.busy_of_limit * 100.0,
                or_dash(nodes.ms_per_reservation.map(|ms| format!("{ms:.2}"))),
                or_dash(
                    nodes
                        .throttled_share
                        .map(|share| format!("{:.0} %", share * 100.0))
                ),
            );
        }
        out.push('\n');
    }
    write_mailbox(&mut out, report);
    let profiled: Vec<&CellResult> = report
        .cells
        .iter()
        .filter(|cell| cell.actor_batches.is_some())
        .collect();
    if !profiled.is_empty() {
        let _ = writeln!(out, "### SKU actor group commit\n");
        let _ = writeln!(
            out,
            "| strategy | workload | clients | batches | batches/s | mean size | p50 size | p99 size | max size | commit p50 ms | commit p99 ms | sizes (≤bound: count) |"
        );
        let _ = writeln!(
            out,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for cell in profiled {
            let batches = cell.actor_batches.as_ref().expect("filtered");
            let histogram: Vec<String> = batches
                .batch_size_histogram
                .iter()
                .map(|(bound, count)| format!("≤{bound}: {count}"))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.0} | {:.1} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {} |",
                cell_label(report, cell),
                cell.workload.name(),
                cell.concurrency,
                batches.batches,
                batches.batches_per_sec,
                batches.mean_batch_size,
                batches.p50_batch_size,
                batches.p99_batch_size,
                batches.max_batch_size,
                batches.p50_commit_ms,
                batches.p99_commit_ms,
                histogram.join(", ")
            );
        }
        out.push('\n');
    }
    for unavailable in &report.unavailable {
        let _ = writeln!(
            out,
            "- **{}**: {}",
            unavailable.strategy, unavailable.reason
        );
    }
    for note in &report.notes {
        let _ = writeln!(out, "- {note}");
    }
    let _ = writeln!(out, "\nGoal (reported, not asserted):\n");
    for line in &report.goal {
        let _ = writeln!(out, "- {line}");
    }
    let violations = report.violations();
    let _ = writeln!(
        out,
        "\nChecks: {} cells, {} with a violation; {} units oversold in total.",
        report.cells.len(),
        violations.len(),
        report.oversold_units()
    );
    out
}

/// The cluster mailbox table: forwarded calls and answers per NATS message.
fn write_mailbox(out: &mut String, report: &Report) {
    let forwarding: Vec<(&CellResult, &MailboxProfile)> = report
        .cells
        .iter()
        .filter_map(|cell| cell.mailbox.as_ref().map(|mailbox| (cell, mailbox)))
        .collect();
    if forwarding.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "### Cluster mailbox
"
    );
    let _ = writeln!(
        out,
        "| strategy | workload | clients | forwarded calls | per reservation | call messages | calls/message | answer messages | answers/message |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (cell, mailbox) in forwarding {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.2} | {} | {:.2} | {} | {:.2} |",
            cell_label(report, cell),
            cell.workload.name(),
            cell.concurrency,
            mailbox.calls,
            mailbox.calls as f64 / cell.reserved.max(1) as f64,
            mailbox.call_messages,
            mailbox.calls_per_message(),
            mailbox.answer_messages,
            mailbox.answers_per_message(),
        );
    }
    out.push('\n');
}

/// Writes `contention-<stamp>.json`, `.md` and the plots into `directory`; returns the
/// paths written.
pub fn write(
    report: &Report,
    directory: &std::path::Path,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(directory)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let json = directory.join(format!("contention-{stamp}.json"));
    std::fs::write(&json, serde_json::to_string_pretty(report)?)?;
    let markdown_path = directory.join(format!("contention-{stamp}.md"));
    let mut written = vec![json, markdown_path.clone()];
    let mut text = markdown(report);
    for (kind, path) in super::plot::draw(report, directory, &stamp.to_string())? {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(text, "\n![{kind}]({name})");
        written.push(path);
    }
    std::fs::write(&markdown_path, text)?;
    Ok(written)
}
