//! Clients for the services a node does not run. Every call has a deadline; calls that
//! are safe to repeat are retried with backoff within it; a dependency that keeps
//! failing opens a circuit breaker so callers fail fast (503 naming the dependency)
//! instead of waiting on it, until a trial call succeeds again.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use rand::Rng;
use souk_actors::entity::EntityRouter;
use souk_actors::inventory::stock::{Command, Held, Stock};
use souk_actors::inventory::{InventoryError, Sku, SkuReply, SkuRequest};
use souk_proto::v1 as pb;
use souk_proto::v1::inventory_service_client::InventoryServiceClient;
use souk_proto::v1::product_service_client::ProductServiceClient;
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

use crate::error::{Error, ErrorCode};
use crate::topology::Service;
use crate::wire::inventory::{command_to_wire, inventory_error_from_status, outcome_from_wire};
use crate::wire::status::{error_from_status, is_transport_failure};
use souk_actors::catalog::model::ProductStatus;
use souk_actors::catalog::service::{Money, ProductView};
use souk_actors::catalog::variants::{PriceRange, ProductOption, VariantView};
use souk_actors::identity::jwt::SERVICE_ROLE;
use souk_actors::identity::JwtKeys;
use souk_actors::ports::ProductLookup;

/// Consecutive transport failures that open the circuit.
const FAILURES_TO_OPEN: u32 = 3;
/// How long an open circuit refuses calls before letting one trial through.
const OPEN_FOR: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
struct BreakerState {
    consecutive_failures: u32,
    open_until: Option<Instant>,
}

/// A circuit breaker per remote service.
#[derive(Debug, Clone, Default)]
pub struct CircuitBreaker {
    state: Arc<Mutex<BreakerState>>,
}

impl CircuitBreaker {
    /// Whether a call may go out now. An open circuit lets one trial through once its
    /// time is up (half-open); the trial's result closes or re-opens it.
    fn allows(&self) -> bool {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match state.open_until {
            Some(until) if Instant::now() < until => false,
            Some(_) => {
                state.open_until = Some(Instant::now() + OPEN_FOR);
                true
            }
            None => true,
        }
    }

    fn succeeded(&self) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.consecutive_failures = 0;
        state.open_until = None;
    }

    fn failed(&self) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.consecutive_failures += 1;
        if state.consecutive_failures >= FAILURES_TO_OPEN {
            state.open_until = Some(Instant::now() + OPEN_FOR);
        }
    }

    pub fn is_open(&self) -> bool {
        let state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.open_until.is_some_and(|until| Instant::now() < until)
    }
}

/// Why a remote call gave up.
#[derive(Debug)]
pub enum CallError {
    /// The service answered with a refusal of its own.
    Refused(Status),
    /// It could not be reached within the deadline, or its circuit is open.
    Unreachable(String),
}

/// One remote service: a lazily connected channel, the caller's identity, a deadline
/// and a circuit breaker.
#[derive(Clone)]
pub struct RemoteService {
    service: Service,
    channel: Channel,
    jwt: JwtKeys,
    caller_name: String,
    deadline: Duration,
    breaker: CircuitBreaker,
}

impl RemoteService {
    pub fn new(
        service: Service,
        url: &str,
        jwt: JwtKeys,
        caller: &str,
        deadline: Duration,
    ) -> Result<Self, String> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|error| format!("{url}: {error}"))?
            .connect_timeout(deadline.min(Duration::from_secs(1)))
            .tcp_nodelay(true);
        Ok(Self {
            service,
            channel: endpoint.connect_lazy(),
            jwt,
            caller_name: caller.to_owned(),
            deadline,
            breaker: CircuitBreaker::default(),
        })
    }

    pub fn service(&self) -> Service {
        self.service
    }

    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A short-lived token that proves to the other service that this is a Souk service.
    fn service_token(&self) -> Result<String, Status> {
        self.jwt
            .issue(
                &format!("service:{}", self.caller_name),
                SERVICE_ROLE,
                "service",
            )
            .map_err(|_| Status::internal("cannot sign a service token"))
    }

    /// A request carrying the service token and what is left of the deadline.
    pub fn request<T>(&self, message: T, remaining: Duration) -> Result<tonic::Request<T>, Status> {
        let mut request = tonic::Request::new(message);
        let token = self.service_token()?;
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::internal("cannot encode the service token"))?;
        request.metadata_mut().insert("authorization", value);
        request.set_timeout(remaining);
        Ok(request)
    }

    /// Runs `attempt` until it succeeds, is refused by the service, or the deadline
    /// passes; transport failures are retried only when `idempotent`.
    pub async fn call<T, F, Fut>(&self, idempotent: bool, mut attempt: F) -> Result<T, CallError>
    where
        F: FnMut(Duration) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let started = Instant::now();
        let mut tries = 0u32;
        loop {
            if !self.breaker.allows() {
                metrics::counter!("souk_grpc_client_fast_failures_total", "service" => self.service.as_str()).increment(1);
                return Err(CallError::Unreachable(format!(
                    "{} is failing; not calling it for a moment (circuit open)",
                    self.service
                )));
            }
            let remaining = self.deadline.saturating_sub(started.elapsed());
            let outcome = tokio::time::timeout(remaining, attempt(remaining)).await;
            let status = match outcome {
                Ok(Ok(value)) => {
                    self.breaker.succeeded();
                    return Ok(value);
                }
                Ok(Err(status)) if !is_transport_failure(&status) => {
                    self.breaker.succeeded();
                    return Err(CallError::Refused(status));
                }
                Ok(Err(status)) => status,
                Err(_) => Status::deadline_exceeded("deadline passed"),
            };
            self.breaker.failed();
            metrics::counter!("souk_grpc_client_failures_total", "service" => self.service.as_str()).increment(1);
            tries += 1;
            let backoff = Duration::from_millis(50 * 2u64.pow(tries.min(5)))
                + Duration::from_millis(rand::thread_rng().gen_range(0..50));
            if !idempotent || started.elapsed() + backoff >= self.deadline || self.breaker.is_open()
            {
                tracing::warn!(service = %self.service, tries, error = %status.message(), "remote service unreachable");
                return Err(CallError::Unreachable(format!(
                    "{} did not answer: {}",
                    self.service,
                    status.message()
                )));
            }
            tokio::time::sleep(backoff).await;
        }
    }
}

/// The inventory of another process, behind the same router interface as local
/// actors: the order service does not know where stock lives.
#[derive(Clone)]
pub struct RemoteInventory {
    remote: RemoteService,
}

impl RemoteInventory {
    pub fn new(remote: RemoteService) -> Self {
        Self { remote }
    }
}

fn inventory_failure(error: CallError) -> InventoryError {
    match error {
        CallError::Refused(status) => inventory_error_from_status(&status)
            .unwrap_or_else(|| InventoryError::Unavailable(status.message().to_owned())),
        CallError::Unreachable(detail) => InventoryError::Unreachable(detail),
    }
}

fn micros_of(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|time| time.timestamp_micros())
        .unwrap_or(0)
}

impl EntityRouter<Sku> for RemoteInventory {
    fn send(
        &self,
        sku: String,
        request: SkuRequest,
    ) -> BoxFuture<'static, Result<SkuReply, InventoryError>> {
        match request {
            SkuRequest::Execute(command) => self.execute_remote(sku, command),
            SkuRequest::Snapshot => self.stock_remote(sku),
        }
    }

    /// SKU actors run on the inventory service, whose nodes sweep their own.
    fn serves_here(&self, _sku: &str) -> bool {
        false
    }
}

impl RemoteInventory {
    fn execute_remote(
        &self,
        sku: String,
        command: Command,
    ) -> BoxFuture<'static, Result<SkuReply, InventoryError>> {
        let remote = self.remote.clone();
        Box::pin(async move {
            let Some(message) = command_to_wire(&sku, &command) else {
                return Err(InventoryError::Unavailable(
                    "adjustments are made on the inventory service itself".to_owned(),
                ));
            };
            // Every order command is idempotent by order id, so retrying is safe.
            let response = remote
                .call(true, |remaining| {
                    let mut client = InventoryServiceClient::new(remote.channel());
                    let request = remote.request(message.clone(), remaining);
                    async move { client.execute(request?).await }
                })
                .await
                .map_err(inventory_failure)?;
            outcome_from_wire(response.get_ref()).map(SkuReply::Done)
        })
    }

    fn stock_remote(&self, sku: String) -> BoxFuture<'static, Result<SkuReply, InventoryError>> {
        let remote = self.remote.clone();
        Box::pin(async move {
            let response = remote
                .call(true, |remaining| {
                    let mut client = InventoryServiceClient::new(remote.channel());
                    let request =
                        remote.request(pb::GetStockRequest { sku: sku.clone() }, remaining);
                    async move { client.get_stock(request?).await }
                })
                .await
                .map_err(inventory_failure)?;
            let stock = response.into_inner();
            Ok(SkuReply::Stock(Stock {
                sku: stock.sku,
                on_hand: stock.on_hand,
                reserved: stock.reserved,
                low_stock_threshold: stock.low_stock_threshold,
                version: Some(stock.version).filter(|version| *version > 0),
                reservations: stock
                    .reservations
                    .into_iter()
                    .map(|reservation| {
                        (
                            reservation.order_id,
                            Held {
                                quantity: reservation.quantity,
                                expires_at: micros_of(&reservation.expires_at),
                                created_at: 0,
                                // A snapshot for reading; the owning actor keeps the
                                // holders, which only it counts.
                                customer_id: None,
                            },
                        )
                    })
                    .collect(),
            }))
        })
    }
}

/// The catalog of another process, for the order service's price snapshots.
#[derive(Clone)]
pub struct RemoteProducts {
    remote: RemoteService,
}

impl RemoteProducts {
    pub fn new(remote: RemoteService) -> Self {
        Self { remote }
    }
}

fn money(money: Option<pb::Money>) -> Money {
    let money = money.unwrap_or_default();
    Money {
        amount: money.amount,
        currency: money.currency,
    }
}

fn product_view(product: pb::Product) -> ProductView {
    let range = product.price_range.unwrap_or_default();
    ProductView {
        options: product
            .options
            .into_iter()
            .map(|option| ProductOption {
                name: option.name,
                values: option.values,
            })
            .collect(),
        variants: product
            .variants
            .into_iter()
            .map(|variant| VariantView {
                sku: variant.sku,
                options: variant.options.into_iter().collect(),
                price: money(variant.price),
                images: variant.images,
                available: variant.available,
            })
            .collect(),
        price_range: PriceRange {
            min: money(range.min),
            max: money(range.max),
        },
        id: product.id,
        sku: product.sku,
        name: product.name,
        description: product.description,
        price: money(product.price),
        category_id: Some(product.category_id).filter(|id| !id.is_empty()),
        tags: product.tags,
        attributes: product.attributes.into_iter().collect::<BTreeMap<_, _>>(),
        images: product.images,
        status: ProductStatus::parse(&product.status).unwrap_or(ProductStatus::Draft),
        available: product.available,
        created_at: product.created_at,
        updated_at: product.updated_at,
    }
}

impl ProductLookup for RemoteProducts {
    fn active_by_sku(&self, sku: String) -> BoxFuture<'static, Result<ProductView, Error>> {
        let remote = self.remote.clone();
        Box::pin(async move {
            let response = remote
                .call(true, |remaining| {
                    let mut client = ProductServiceClient::new(remote.channel());
                    // A public read: sent without a token, so only active products answer.
                    let mut request =
                        tonic::Request::new(pb::GetProductBySkuRequest { sku: sku.clone() });
                    request.set_timeout(remaining);
                    async move { client.get_product_by_sku(request).await }
                })
                .await;
            match response {
                Ok(response) => product_view(response.into_inner()).sold_as(&sku),
                Err(CallError::Refused(status)) => {
                    Err(error_from_status(&status, ErrorCode::ServiceUnavailable))
                }
                Err(CallError::Unreachable(detail)) => Err(Error::new(
                    ErrorCode::DependencyUnavailable,
                    format!("the product service is unreachable: {detail}"),
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_after_repeated_failures_and_closes_on_success() {
        let breaker = CircuitBreaker::default();
        for _ in 0..FAILURES_TO_OPEN - 1 {
            breaker.failed();
            assert!(breaker.allows(), "still closed below the threshold");
        }
        breaker.failed();
        assert!(breaker.is_open());
        assert!(!breaker.allows(), "open: calls fail fast");
        breaker.succeeded();
        assert!(!breaker.is_open() && breaker.allows());
    }
}
