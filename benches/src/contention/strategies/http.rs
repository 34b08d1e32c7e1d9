//! End to end against real Souk nodes, over REST (`souk-http`), gRPC (`souk-grpc`),
//! REST spread over a three-node cluster (`souk-cluster`), or REST to a cluster of one
//! node (`souk-cluster-1`: configured as each of the three, NATS events and shard
//! leases included, so it owns every SKU and forwards nothing): a logged-in customer places
//! orders (`POST /api/v1/orders`, or `OrderService.CreateOrder`; one line of one unit,
//! with an idempotency key). Each order goes through authentication, validation, the
//! catalog snapshot, the SKU actor's reservation and the order's own persistence, so
//! this measures a whole checkout's reservation step, not the inventory alone.
//!
//! The nodes run in this process (`Application::build`, as the API tests do, each on an
//! actix system of its own) on their own fresh database; the clients reach them over
//! loopback sockets. In the cluster the clients send to the nodes in turn, so two
//! requests in three land on a node that does not own the SKU and are forwarded over
//! NATS to its owner.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_proto::v1 as pb;
use souk_proto::v1::order_service_client::OrderServiceClient;
use sqlx::mysql::MySqlPool;
use tokio::sync::Mutex;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use super::souk_actor::{check_souk_items, seed_souk_items};
use super::{Attempt, Cell, Strategy, Verification};
use crate::contention::host::{bench_node_config, ActixHost, NodeDir};
use crate::contention::node_cgroup::{self, NodeCgroup, NodesCpuTimes};
use crate::contention::workload::Workload;

/// Which nodes, reached how.
#[derive(Debug, Clone)]
pub enum Deployment {
    /// One node over REST.
    Rest,
    /// One node over gRPC.
    Grpc,
    /// `nodes` clustered nodes over REST, meeting on the NATS server at `nats_url`; each
    /// node has the `pool_size` given to [`SoukHttp::new`], sizes its threads to `cpus`
    /// cores (`None`: the machine's) and runs `email_workers` (`None`: the default).
    Cluster {
        nodes: usize,
        nats_url: String,
        cpus: Option<usize>,
        email_workers: Option<usize>,
    },
}

/// How the clients reach the nodes.
enum Transport {
    Rest,
    /// A few HTTP/2 connections, each multiplexing many clients' calls.
    Grpc(Vec<OrderServiceClient<Channel>>),
    Cluster,
}

pub struct SoukHttp {
    transport: Transport,
    /// Every node's REST base; requests go to them in turn.
    bases: Vec<String>,
    next_base: AtomicUsize,
    client: reqwest::Client,
    token: String,
    catalog: souk_actors::catalog::CatalogService,
    check: MySqlPool,
    /// Skewed and uniform cells share one catalogue (creating 10k products per cell
    /// would dominate the run); it is created on first use with `shared_stock` units per
    /// SKU, enough for every cell that draws on it.
    shared: Mutex<bool>,
    shared_stock: i64,
    /// Whether the nodes send confirmation mail (their email service runs).
    mailing: bool,
    orders_before: AtomicI64,
    reservations_before: AtomicI64,
    _data_dirs: Vec<NodeDir>,
    /// Stops the nodes when dropped.
    _hosts: Vec<ActixHost>,
    /// Each node's CPU limit, when limited; dropped after the nodes have stopped.
    cgroups: Vec<Arc<NodeCgroup>>,
}

/// The shared catalogue's SKUs are those of a cell numbered 0, which no real cell uses.
fn shared_cell(template: &Cell) -> Cell {
    Cell {
        id: 0,
        ..template.clone()
    }
}

/// One node of a bench deployment: its REST and gRPC ports, its catalog service.
struct StartedNode {
    host: ActixHost,
    cgroup: Option<Arc<NodeCgroup>>,
    data_dir: NodeDir,
    port: u16,
    grpc_port: u16,
    catalog: souk_actors::catalog::CatalogService,
}

/// What every node of one deployment shares.
struct NodeSettings {
    database_url: String,
    pool_size: u32,
    jwt_secret: String,
    /// Node id, NATS URL and namespace of a clustered node.
    cluster: Option<(String, String, String)>,
    /// The node's `node.cpus`.
    cpus: Option<usize>,
    /// The node's `email.workers`, if not the default.
    email_workers: Option<usize>,
    /// Cores of CPU the node may use, if limited.
    cpu_limit: Option<f64>,
    /// Every service but email.
    without_email: bool,
}

async fn start_node(settings: &NodeSettings) -> anyhow::Result<StartedNode> {
    let (mut config, data_dir) = bench_node_config(
        settings.database_url.clone(),
        settings.pool_size,
        settings.jwt_secret.clone(),
    )?;
    if let Some((node_id, nats_url, namespace)) = &settings.cluster {
        config.nats.url = Some(nats_url.clone());
        config.events.namespace = namespace.clone();
        config.cluster.enabled = true;
        config.cluster.node_id = node_id.clone();
        config.cluster.namespace = namespace.clone();
    }
    config.node.cpus = settings.cpus;
    if settings.without_email {
        config.node.services = "user,auth,product,order,inventory".to_owned();
    }
    if let Some(workers) = settings.email_workers {
        config.email.workers = workers;
    }
    let cgroup = settings
        .cpu_limit
        .map(|cores| {
            let name = format!("souk-bench-{}", uuid::Uuid::now_v7().simple());
            NodeCgroup::create(&name, cores).map(Arc::new)
        })
        .transpose()?;
    let node_cpus = config.cpus();
    let (host, (port, grpc_port, catalog)) =
        ActixHost::start_on(cgroup.clone(), Some(node_cpus), move || async move {
            let application = souk_api::Application::build(config).await?;
            let port = application.port();
            let grpc_port = application.grpc_port();
            let catalog = application.state().catalog.clone();
            actix_rt::spawn(application.run_until_stopped());
            Ok((port, grpc_port, catalog))
        })
        .await?;
    if let Some(cgroup) = &cgroup {
        eprintln!(
            "a bench node started under a cpu limit of {cores} cores: {threads} threads in {path}",
            cores = cgroup.cores(),
            threads = cgroup.threads()?,
            path = cgroup.path().display(),
        );
    }
    Ok(StartedNode {
        host,
        cgroup,
        data_dir,
        port,
        grpc_port,
        catalog,
    })
}

/// Waits until the node at `base` answers `/readyz` (a clustered node: holds its shards).
async fn wait_ready(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    for _ in 0..600 {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await {
            if response.status() == StatusCode::OK {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the node at {base} did not become ready within a minute")
}

impl SoukHttp {
    pub async fn new(
        database_url: &str,
        pool_size: u32,
        check: MySqlPool,
        shared_stock: i64,
        deployment: Deployment,
        cpu_limit: Option<f64>,
        without_email: bool,
    ) -> anyhow::Result<Self> {
        let namespace = format!("bench{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
        let (node_count, cpus, email_workers) = match &deployment {
            Deployment::Cluster {
                nodes,
                cpus,
                email_workers,
                ..
            } => ((*nodes).max(1), *cpus, *email_workers),
            _ => (1, None, None),
        };
        // A limited node not sized otherwise sizes its threads to its limit, as in a pod.
        let cpus = cpus.or(cpu_limit.map(|cores| cores.ceil().max(1.0) as usize));
        let mut nodes = Vec::new();
        for index in 0..node_count {
            let settings = NodeSettings {
                database_url: database_url.to_owned(),
                pool_size,
                jwt_secret: namespace.repeat(4),
                cluster: match &deployment {
                    Deployment::Cluster { nats_url, .. } => Some((
                        format!("bench-{index}"),
                        nats_url.clone(),
                        namespace.clone(),
                    )),
                    _ => None,
                },
                cpus,
                email_workers,
                cpu_limit,
                without_email,
            };
            nodes.push(start_node(&settings).await?);
        }
        let bases: Vec<String> = nodes
            .iter()
            .map(|node| format!("http://127.0.0.1:{}", node.port))
            .collect();
        let base = bases[0].clone();
        let grpc_port = nodes[0].grpc_port;
        let catalog = nodes[0].catalog.clone();
        let client = http_client()?;
        for base in &bases {
            wait_ready(&client, base).await?;
        }
        let token = customer_token(&client, &base).await?;
        let transport = if let Deployment::Grpc = deployment {
            let mut clients = Vec::new();
            for _ in 0..GRPC_CONNECTIONS {
                let channel = Channel::from_shared(format!("http://127.0.0.1:{grpc_port}"))?
                    .connect()
                    .await?;
                clients.push(OrderServiceClient::new(channel));
            }
            Transport::Grpc(clients)
        } else if let Deployment::Cluster { .. } = deployment {
            Transport::Cluster
        } else {
            Transport::Rest
        };
        let cgroups = nodes
            .iter()
            .filter_map(|node| node.cgroup.clone())
            .collect();
        let (hosts, data_dirs) = nodes
            .into_iter()
            .map(|node| (node.host, node.data_dir))
            .unzip();
        Ok(Self {
            transport,
            bases,
            next_base: AtomicUsize::new(0),
            client,
            token,
            catalog,
            check,
            shared: Mutex::new(false),
            shared_stock,
            mailing: !without_email,
            orders_before: AtomicI64::new(0),
            reservations_before: AtomicI64::new(0),
            _data_dirs: data_dirs,
            _hosts: hosts,
            cgroups,
        })
    }

    fn sku(&self, cell: &Cell, index: usize) -> String {
        match cell.workload {
            Workload::Hot => cell.sku(index),
            _ => shared_cell(cell).sku(index),
        }
    }

    async fn create_products(&self, cell: &Cell) -> anyhow::Result<()> {
        let rows = (0..cell.skus)
            .map(|index| {
                let input = serde_json::from_value(json!({
                    "sku": cell.sku(index),
                    "name": format!("Bench item {}", cell.sku(index)),
                    "price": {"amount": 1999, "currency": "EUR"},
                    "status": "active",
                }))
                .map_err(|error| {
                    vec![souk_actors::error::FieldError::new(
                        "row",
                        error.to_string(),
                    )]
                });
                (index + 1, input)
            })
            .collect();
        let report = self
            .catalog
            .import(rows)
            .await
            .map_err(|error| anyhow::anyhow!("cannot create the bench products: {error}"))?;
        anyhow::ensure!(
            report.failed == 0,
            "{} bench products were refused",
            report.failed
        );
        Ok(())
    }

    fn sku_like(&self, cell: &Cell) -> String {
        match cell.workload {
            Workload::Hot => cell.sku(0),
            _ => shared_cell(cell).sku_prefix_like(),
        }
    }

    async fn counts(&self, cell: &Cell) -> anyhow::Result<(i64, i64)> {
        let (orders,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM orders")
            .fetch_one(&self.check)
            .await?;
        let (reservations,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM inventory_reservations WHERE sku LIKE ?")
                .bind(self.sku_like(cell))
                .fetch_one(&self.check)
                .await?;
        Ok((orders, reservations))
    }
}

/// HTTP/2 connections of `souk-grpc`; calls spread over them by order id.
const GRPC_CONNECTIONS: usize = 4;
/// How long a deployment may take to relay and mail what one cell queued.
const SETTLE_LIMIT: Duration = Duration::from_secs(300);
/// How often settling looks again.
const SETTLE_POLL: Duration = Duration::from_millis(500);

impl SoukHttp {
    async fn reserve_over_grpc(
        &self,
        clients: &[OrderServiceClient<Channel>],
        sku: String,
        order_id: String,
    ) -> anyhow::Result<Attempt> {
        let index = order_id.bytes().map(usize::from).sum::<usize>() % clients.len();
        let mut client = clients[index].clone();
        let mut request = tonic::Request::new(pb::CreateOrderRequest {
            items: vec![pb::OrderItem { sku, quantity: 1 }],
            idempotency_key: order_id,
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {}", self.token).parse()?);
        match client.create_order(request).await {
            Ok(_) => Ok(Attempt::Reserved),
            Err(status) => {
                let code = status
                    .get_details_error_info()
                    .map(|info| info.reason)
                    .unwrap_or_default();
                if code == "insufficient_stock" {
                    Ok(Attempt::OutOfStock)
                } else {
                    anyhow::bail!(
                        "order refused with {:?} {code}: {}",
                        status.code(),
                        status.message()
                    )
                }
            }
        }
    }
}

/// The HTTP client of the harnesses that drive servers over REST (Souk's nodes and the
/// `mysql-tx-http` server, both keeping idle connections for
/// [`souk_api::http::KEEP_ALIVE`]; also `souk-bench console`'s checkouts and live
/// streams): it pools a connection for every closed-loop client,
/// and drops one left idle for [`souk_api::http::CLIENT_IDLE`], so a connection idle
/// through a cell's settling is not reused as the server closes it.
pub fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(2048)
        .pool_idle_timeout(souk_api::http::CLIENT_IDLE)
        .build()
}

/// Registers a fresh shopper at the node at `base` and signs it in: its access token.
pub async fn customer_token(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let email = format!("bench-{}@example.com", uuid::Uuid::now_v7().simple());
    let password = "bench password 123";
    let registered = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"email": email, "password": password, "name": "Bench Shopper"}))
        .send()
        .await?;
    anyhow::ensure!(
        registered.status() == StatusCode::CREATED,
        "cannot register the bench customer: {}",
        registered.text().await?
    );
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    login["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("login returned no access token"))
}

/// Places an order of one unit of `sku` at `url` under `Idempotency-Key: order_id`:
/// `201` is a reservation, `409 insufficient_stock` is out of stock, anything else an
/// error.
pub async fn post_order(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    order_id: String,
    sku: &str,
) -> anyhow::Result<Attempt> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .header("Idempotency-Key", order_id)
        .json(&json!({"items": [{"sku": sku, "quantity": 1}]}))
        .send()
        .await?;
    match response.status() {
        StatusCode::CREATED => Ok(Attempt::Reserved),
        status => {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if status == StatusCode::CONFLICT && body["code"] == "insufficient_stock" {
                Ok(Attempt::OutOfStock)
            } else {
                anyhow::bail!("order refused with {status}: {body}")
            }
        }
    }
}

impl Strategy for SoukHttp {
    fn name(&self) -> &'static str {
        match self.transport {
            Transport::Rest => "souk-http",
            Transport::Grpc(_) => "souk-grpc",
            Transport::Cluster if self.bases.len() == 1 => "souk-cluster-1",
            Transport::Cluster => "souk-cluster",
        }
    }

    async fn prepare(&self, cell: &Cell) -> anyhow::Result<()> {
        match cell.workload {
            Workload::Hot => {
                self.create_products(cell).await?;
                seed_souk_items(&self.check, cell, cell.stock_per_sku).await?;
            }
            _ => {
                let mut shared = self.shared.lock().await;
                if !*shared {
                    let catalogue = shared_cell(cell);
                    self.create_products(&catalogue).await?;
                    seed_souk_items(&self.check, &catalogue, self.shared_stock).await?;
                    *shared = true;
                }
            }
        }
        let (orders, reservations) = self.counts(cell).await?;
        self.orders_before.store(orders, Ordering::SeqCst);
        self.reservations_before
            .store(reservations, Ordering::SeqCst);
        Ok(())
    }

    async fn reserve(&self, cell: &Cell, sku: usize, order_id: String) -> anyhow::Result<Attempt> {
        if let Transport::Grpc(clients) = &self.transport {
            return self
                .reserve_over_grpc(clients, self.sku(cell, sku), order_id)
                .await;
        }
        let base = &self.bases[self.next_base.fetch_add(1, Ordering::Relaxed) % self.bases.len()];
        post_order(
            &self.client,
            &format!("{base}/api/v1/orders"),
            &self.token,
            order_id,
            &self.sku(cell, sku),
        )
        .await
    }

    async fn verify(&self, cell: &Cell) -> anyhow::Result<Verification> {
        let initial = match cell.workload {
            Workload::Hot => cell.stock_per_sku,
            _ => self.shared_stock,
        };
        let mut verification = check_souk_items(&self.check, &self.sku_like(cell), initial).await?;
        let (orders, reservations) = self.counts(cell).await?;
        let orders = orders - self.orders_before.load(Ordering::SeqCst);
        let reservations = reservations - self.reservations_before.load(Ordering::SeqCst);
        verification.recorded = reservations.max(0) as u64;
        // One order per reservation: any difference is an order without its stock or
        // stock held for no order.
        verification.inconsistent_skus += orders.abs_diff(reservations);
        Ok(verification)
    }

    /// Every order's confirmation mail in the send log (a send attempt finished), unless
    /// the nodes run without the email service, and every event relayed: until then
    /// the nodes' relays and email workers are still busy with the cell's orders.
    async fn settle(&self) -> anyhow::Result<Option<Duration>> {
        let started = std::time::Instant::now();
        loop {
            let (orders, mailed, unpublished): (i64, i64, i64) = sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM orders), \
                 (SELECT COUNT(*) FROM email_sends WHERE template = 'order_confirmation'), \
                 (SELECT COUNT(*) FROM outbox_events WHERE published_at IS NULL)",
            )
            .fetch_one(&self.check)
            .await?;
            if (mailed >= orders || !self.mailing) && unpublished == 0 {
                return Ok(Some(started.elapsed()));
            }
            anyhow::ensure!(
                started.elapsed() < SETTLE_LIMIT,
                "{}: {} of {orders} confirmation mails and {unpublished} events still queued after {} s",
                self.name(),
                orders - mailed,
                SETTLE_LIMIT.as_secs()
            );
            tokio::time::sleep(SETTLE_POLL).await;
        }
    }

    fn node_cpu(&self) -> anyhow::Result<Option<NodesCpuTimes>> {
        node_cgroup::read_all(&self.cgroups)
    }
}
