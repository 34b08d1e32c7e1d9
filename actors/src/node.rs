//! The node root: owns every child of a running node — the entity hosts of inventory
//! and orders, the email workers, the outbox relay and the order expiry sweeper —
//! lists them as a tree, and stops them in a fixed order.
//!
//! Two kinds of children: entity hosts (keyed actors, see [`crate::entity`]) and
//! supervised tasks — loops (a worker's consume loop, the relay, the sweeper) that are
//! restarted with capped exponential backoff when they fail or panic, and stopped by
//! the root's signal. Background tasks (the email workers) run on the node's
//! [`BackgroundThread`], at a lower CPU priority than the threads serving requests;
//! the others on the runtime that spawns them.
//!
//! Stop order ([`NodeRoot::shutdown`]; the edges have already stopped accepting and
//! finished their in-flight requests): drain the order host (running commands finish),
//! then the SKU host (open batches commit), then signal every task and await it (the
//! relay makes one last pass, so what the final batches wrote is published), then end
//! the background thread. The caller closes the database pools last.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use actix::Addr;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use crate::background::BackgroundThread;
use crate::entity::host::{Describe, Drain, FailureReport};
use crate::entity::EntityHost;
use crate::inventory::SkuActor;
use crate::orders::OrderEntity;

/// First pause before a failed task runs again; doubles per failure in a row.
const TASK_RESTART_BACKOFF: Duration = Duration::from_millis(500);
const TASK_MAX_RESTART_BACKOFF: Duration = Duration::from_secs(30);

/// One node of the supervision tree, as `GET /api/v1/admin/system/tree` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TreeNode {
    pub name: String,
    /// `node`, `domain`, `service`, `host` (keyed entities), `task`.
    pub kind: String,
    /// `running`, `draining` or `stopped`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_entities: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<FailureReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub children: Vec<TreeNode>,
}

impl TreeNode {
    fn new(name: &str, kind: &str) -> Self {
        Self {
            name: name.to_owned(),
            kind: kind.to_owned(),
            state: "running".to_owned(),
            active_entities: None,
            restarts: None,
            last_failure: None,
            children: Vec::new(),
        }
    }
}

#[derive(Default)]
struct TaskStats {
    restarts: AtomicU64,
    last_failure: Mutex<Option<FailureReport>>,
}

struct OwnedTask {
    domain: &'static str,
    name: String,
    stats: Arc<TaskStats>,
    handle: JoinHandle<()>,
}

/// Everything a node runs, owned in one place.
pub struct NodeRoot {
    /// The domains this node serves, in the order the tree lists them.
    domains: Vec<&'static str>,
    inventory: Option<Addr<EntityHost<SkuActor>>>,
    orders: Option<Addr<EntityHost<OrderEntity>>>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<OwnedTask>>,
    /// Started with the first background task.
    background: Mutex<Option<BackgroundThread>>,
}

impl Default for NodeRoot {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl NodeRoot {
    pub fn new(domains: Vec<&'static str>) -> Self {
        Self {
            domains,
            inventory: None,
            orders: None,
            stop: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
            background: Mutex::new(None),
        }
    }

    pub fn own_inventory(&mut self, host: Addr<EntityHost<SkuActor>>) {
        self.inventory = Some(host);
    }

    pub fn own_orders(&mut self, host: Addr<EntityHost<OrderEntity>>) {
        self.orders = Some(host);
    }

    /// A receiver that turns `true` when the node stops; tasks end their loop on it.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Runs `run` as a supervised task of `domain`: when it returns an error or panics
    /// it runs again after a backoff (doubling, capped); when the node stops, the task
    /// is asked to end through the receiver it gets and is awaited.
    pub fn spawn_task<F, Fut>(&self, domain: &'static str, name: impl Into<String>, run: F)
    where
        F: Fn(watch::Receiver<bool>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.own_task(domain, name.into(), run, None);
    }

    /// [`Self::spawn_task`] on the node's background thread, for work no request waits
    /// for: when the cores are full it yields them to the serving threads.
    pub fn spawn_background_task<F, Fut>(
        &self,
        domain: &'static str,
        name: impl Into<String>,
        run: F,
    ) where
        F: Fn(watch::Receiver<bool>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let mut background = self.background.lock().expect("node background lock");
        if background.is_none() {
            match BackgroundThread::start() {
                Ok(started) => *background = Some(started),
                Err(error) => {
                    tracing::warn!(%error, "no background thread; background tasks run with the others")
                }
            }
        }
        self.own_task(domain, name.into(), run, background.as_ref());
    }

    fn own_task<F, Fut>(
        &self,
        domain: &'static str,
        name: String,
        run: F,
        background: Option<&BackgroundThread>,
    ) where
        F: Fn(watch::Receiver<bool>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let stats = Arc::new(TaskStats::default());
        let stopping = self.stop.subscribe();
        let supervised = supervise(domain, name.clone(), stats.clone(), stopping, run);
        let handle = match background {
            Some(background) => background.spawn(supervised),
            None => tokio::spawn(supervised),
        };
        self.tasks.lock().expect("node tasks lock").push(OwnedTask {
            domain,
            name,
            stats,
            handle,
        });
    }

    /// The live tree: the node, its domains, and under them their hosts and tasks.
    pub async fn tree(&self, node_name: &str) -> TreeNode {
        let stopping = *self.stop.borrow();
        let mut root = TreeNode::new(node_name, "node");
        if stopping {
            root.state = "draining".to_owned();
        }
        let tasks: Vec<(&'static str, TreeNode)> = {
            let tasks = self.tasks.lock().expect("node tasks lock");
            tasks
                .iter()
                .map(|task| {
                    let mut node = TreeNode::new(&task.name, "task");
                    node.state = if task.handle.is_finished() {
                        "stopped"
                    } else if stopping {
                        "draining"
                    } else {
                        "running"
                    }
                    .to_owned();
                    node.restarts = Some(task.stats.restarts.load(Ordering::Relaxed));
                    node.last_failure = task.stats.last_failure.lock().expect("stats lock").clone();
                    (task.domain, node)
                })
                .collect()
        };
        for domain in &self.domains {
            let mut node = TreeNode::new(domain, "domain");
            match *domain {
                "inventory" => {
                    if let Some(host) = &self.inventory {
                        node.children
                            .push(describe_host(host.send(Describe).await.ok(), "sku actors"));
                    }
                }
                "orders" => {
                    if let Some(host) = &self.orders {
                        node.children.push(describe_host(
                            host.send(Describe).await.ok(),
                            "order actors",
                        ));
                    }
                }
                _ => {}
            }
            node.children.extend(
                tasks
                    .iter()
                    .filter(|(task_domain, _)| task_domain == domain)
                    .map(|(_, task)| task.clone()),
            );
            if node.children.is_empty() {
                node.kind = "service".to_owned();
            }
            root.children.push(node);
        }
        root
    }

    /// Stops every child in the documented order and waits for them, at most `grace`
    /// for the entity hosts and `grace` for the tasks.
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self.stop.send(true);
        if let Some(orders) = &self.orders {
            let left = orders.send(Drain { timeout: grace }).await.unwrap_or(0);
            tracing::info!(left, "order actors stopped");
        }
        if let Some(inventory) = &self.inventory {
            let left = inventory.send(Drain { timeout: grace }).await.unwrap_or(0);
            tracing::info!(left, "sku actors flushed and stopped");
        }
        let tasks: Vec<OwnedTask> =
            std::mem::take(&mut *self.tasks.lock().expect("node tasks lock"));
        for task in tasks {
            let abort = task.handle.abort_handle();
            if tokio::time::timeout(grace, task.handle).await.is_err() {
                tracing::warn!(task = %task.name, "task did not stop within the grace period; aborted");
                abort.abort();
            }
        }
        let background = self.background.lock().expect("node background lock").take();
        if let Some(background) = background {
            background.stop().await;
        }
        tracing::info!("node children stopped");
    }
}

fn describe_host(report: Option<crate::entity::HostReport>, name: &str) -> TreeNode {
    let mut node = TreeNode::new(name, "host");
    match report {
        Some(report) => {
            node.state = if report.accepting {
                "running"
            } else {
                "draining"
            }
            .to_owned();
            node.active_entities = Some(report.active_entities);
            node.restarts = Some(report.restarts);
            node.last_failure = report.last_failure;
        }
        None => node.state = "stopped".to_owned(),
    }
    node
}

async fn supervise<F, Fut>(
    domain: &'static str,
    name: String,
    stats: Arc<TaskStats>,
    stopping: watch::Receiver<bool>,
    run: F,
) where
    F: Fn(watch::Receiver<bool>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let mut failures_in_a_row: u32 = 0;
    loop {
        let outcome = tokio::spawn(run(stopping.clone())).await;
        if *stopping.borrow() {
            return;
        }
        let reason = match outcome {
            Ok(Ok(())) => {
                failures_in_a_row = 0;
                "ended"
            }
            Ok(Err(error)) => {
                tracing::warn!(domain, task = %name, %error, "task failed; restarting");
                "error"
            }
            Err(join_error) if join_error.is_panic() => {
                tracing::error!(domain, task = %name, "task panicked; restarting");
                "panic"
            }
            Err(_) => return,
        };
        if reason != "ended" {
            failures_in_a_row += 1;
            stats.restarts.fetch_add(1, Ordering::Relaxed);
            *stats.last_failure.lock().expect("stats lock") = Some(FailureReport {
                key: name.clone(),
                reason: reason.to_owned(),
                at: chrono::DateTime::<chrono::Utc>::from(SystemTime::now()).to_rfc3339(),
            });
            metrics::counter!("souk_task_restarts_total", "task" => task_label(&name), "reason" => reason)
                .increment(1);
        }
        let exponent = failures_in_a_row.saturating_sub(1).min(16);
        let delay = TASK_RESTART_BACKOFF
            .saturating_mul(1 << exponent)
            .min(TASK_MAX_RESTART_BACKOFF);
        let mut stop = stopping.clone();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}

/// A bounded metric label: the task's name without its index (`email-worker-3` →
/// `email-worker`).
fn task_label(name: &str) -> String {
    name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[tokio::test]
    async fn a_failing_task_is_restarted_counted_and_stopped_on_shutdown() {
        let root = NodeRoot::new(vec!["outbox"]);
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        root.spawn_task("outbox", "flaky", move |mut stopping| {
            let runs = counted.clone();
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    anyhow::bail!("first run fails");
                }
                let _ = stopping.wait_for(|stopped| *stopped).await;
                Ok(())
            }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while runs.load(Ordering::SeqCst) < 2 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let tree = root.tree("test-node").await;
        let task = &tree.children[0].children[0];
        assert_eq!(task.name, "flaky");
        assert_eq!(task.restarts, Some(1));
        assert_eq!(task.last_failure.as_ref().unwrap().reason, "error");
        assert_eq!(task.state, "running");
        tokio::time::timeout(
            Duration::from_secs(5),
            root.shutdown(Duration::from_secs(2)),
        )
        .await
        .expect("shutdown finishes");
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "not restarted after the stop"
        );
    }

    #[test]
    fn task_labels_are_bounded() {
        assert_eq!(task_label("email-worker-12"), "email-worker");
        assert_eq!(task_label("outbox-relay"), "outbox-relay");
    }
}
