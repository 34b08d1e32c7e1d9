//! The inventory supervisor: starts a SKU's actor on first use (spread over a pool of
//! arbiters, one per core), forwards commands to it, passivates nothing itself (actors
//! stop when idle) and restarts actors that fail — error or panic — from the database.
//! Repeated failures of one SKU back off exponentially, and every restart is counted.
//!
//! actix's own `Supervisor` restarts an actor after `stop`, but not after a panic, which
//! unwinds through the actor's task; here the actor's `Drop` reports the crash.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use actix::prelude::*;
use souk_db::Db;

use super::actor::{Execute, ReservationExpired, SkuActor, Snapshot};
use super::feed::{new_feed, CommittedStock, StockFeed};
use super::stock::{Command, Outcome, Stock};
use super::InventoryError;

#[derive(Debug, Clone)]
pub struct SupervisorSettings {
    /// An actor with nothing to do for this long stops and frees its memory.
    pub idle_timeout: Duration,
    /// First restart delay after a failure; doubles with each failure in a row.
    pub restart_backoff: Duration,
    pub max_restart_backoff: Duration,
    /// A failure further back than this no longer counts towards the backoff.
    pub failure_memory: Duration,
    pub arbiters: usize,
}

impl Default for SupervisorSettings {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(60),
            restart_backoff: Duration::from_millis(50),
            max_restart_backoff: Duration::from_secs(10),
            failure_memory: Duration::from_secs(60),
            arbiters: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Passivated,
    Fenced,
    Failed,
    Crashed,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct ActorStopped {
    pub sku: String,
    pub instance: u64,
    pub reason: StopReason,
}

/// A command for a SKU, routed to its actor.
#[derive(Message)]
#[rtype(result = "Result<Outcome, InventoryError>")]
pub struct Route {
    pub sku: String,
    pub command: Command,
}

#[derive(Message)]
#[rtype(result = "Result<Stock, InventoryError>")]
pub struct Inspect {
    pub sku: String,
}

/// A receiver of every batch the SKU actors of this supervisor commit from now on.
#[derive(Message)]
#[rtype(result = "tokio::sync::broadcast::Receiver<std::sync::Arc<CommittedStock>>")]
pub struct SubscribeCommitted;

/// How many SKU actors are alive now.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct LiveActors;

/// The address of a SKU's actor (starting it if needed); tests use it to inject faults.
#[derive(Message)]
#[rtype(result = "Result<Addr<SkuActor>, InventoryError>")]
pub struct ActorOf {
    pub sku: String,
}

struct Running {
    address: Addr<SkuActor>,
    instance: u64,
}

#[derive(Default)]
struct Failures {
    count: u32,
    last: Option<Instant>,
    blocked_until: Option<Instant>,
}

pub struct InventorySupervisor {
    db: Db,
    settings: SupervisorSettings,
    arbiters: Vec<Arbiter>,
    running: HashMap<String, Running>,
    failures: HashMap<String, Failures>,
    expiry_listener: Option<Recipient<ReservationExpired>>,
    next_instance: u64,
    feed: StockFeed,
}

impl InventorySupervisor {
    pub fn new(
        db: Db,
        settings: SupervisorSettings,
        expiry_listener: Option<Recipient<ReservationExpired>>,
    ) -> Self {
        let arbiters = (0..settings.arbiters.max(1))
            .map(|_| Arbiter::new())
            .collect();
        Self {
            db,
            settings,
            arbiters,
            running: HashMap::new(),
            failures: HashMap::new(),
            expiry_listener,
            next_instance: 0,
            feed: new_feed(),
        }
    }

    fn actor_for(
        &mut self,
        sku: &str,
        context: &mut Context<Self>,
    ) -> Result<Addr<SkuActor>, InventoryError> {
        if let Some(running) = self.running.get(sku) {
            if running.address.connected() {
                return Ok(running.address.clone());
            }
        }
        if let Some(blocked_until) = self
            .failures
            .get(sku)
            .and_then(|failures| failures.blocked_until)
        {
            let now = Instant::now();
            if blocked_until > now {
                return Err(InventoryError::Restarting {
                    retry_after_ms: (blocked_until - now).as_millis() as u64 + 1,
                });
            }
        }
        Ok(self.start(sku, context))
    }

    fn start(&mut self, sku: &str, context: &mut Context<Self>) -> Addr<SkuActor> {
        self.next_instance += 1;
        let instance = self.next_instance;
        let arbiter = &self.arbiters[arbiter_index(sku, self.arbiters.len())];
        let (db, supervisor, listener, idle) = (
            self.db.clone(),
            context.address(),
            self.expiry_listener.clone(),
            self.settings.idle_timeout,
        );
        let owned_sku = sku.to_owned();
        let feed = self.feed.clone();
        let address = SkuActor::start_in_arbiter(&arbiter.handle(), move |_| {
            SkuActor::new(owned_sku, instance, db, supervisor, listener, idle).with_feed(feed)
        });
        self.running.insert(
            sku.to_owned(),
            Running {
                address: address.clone(),
                instance,
            },
        );
        metrics::gauge!("souk_inventory_actors_live").set(self.running.len() as f64);
        address
    }
}

fn arbiter_index(sku: &str, count: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    sku.hash(&mut hasher);
    (hasher.finish() % count as u64) as usize
}

impl Actor for InventorySupervisor {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Context<Self>) {
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
    }
}

impl Handler<ActorStopped> for InventorySupervisor {
    type Result = ();

    fn handle(&mut self, stopped: ActorStopped, context: &mut Context<Self>) {
        let current = self
            .running
            .get(&stopped.sku)
            .map(|running| running.instance);
        if current == Some(stopped.instance) {
            self.running.remove(&stopped.sku);
        }
        metrics::gauge!("souk_inventory_actors_live").set(self.running.len() as f64);
        let reason = match stopped.reason {
            StopReason::Passivated => {
                metrics::counter!("souk_inventory_actor_passivations_total").increment(1);
                return;
            }
            // Fencing is not a failure of this actor: the next message loads the SKU
            // again, and the version check decides who owns it.
            StopReason::Fenced => return,
            StopReason::Failed => "error",
            StopReason::Crashed => "panic",
        };
        let settings = self.settings.clone();
        let failures = self.failures.entry(stopped.sku.clone()).or_default();
        let now = Instant::now();
        if failures
            .last
            .is_some_and(|last| now.duration_since(last) > settings.failure_memory)
        {
            failures.count = 0;
        }
        failures.count += 1;
        failures.last = Some(now);
        let exponent = failures.count.saturating_sub(1).min(16);
        let delay = settings
            .restart_backoff
            .saturating_mul(1 << exponent)
            .min(settings.max_restart_backoff);
        failures.blocked_until = Some(now + delay);
        tracing::warn!(sku = %stopped.sku, reason, failures = failures.count, backoff_ms = delay.as_millis() as u64,
            "inventory actor failed; restarting from the database");
        metrics::counter!("souk_inventory_actor_restarts_total", "reason" => reason).increment(1);
        metrics::gauge!("souk_inventory_actor_restart_backoff_seconds", "sku" => stopped.sku.clone()).set(delay.as_secs_f64());
        // Restart eagerly once the backoff has passed, so reservations held by the SKU
        // keep their expiry timers even if no one writes to it.
        let sku = stopped.sku;
        context.run_later(delay, move |supervisor, context| {
            if let Some(failures) = supervisor.failures.get_mut(&sku) {
                failures.blocked_until = None;
            }
            if !supervisor.running.contains_key(&sku) {
                supervisor.start(&sku, context);
            }
        });
    }
}

impl Handler<Route> for InventorySupervisor {
    type Result = ResponseFuture<Result<Outcome, InventoryError>>;

    fn handle(&mut self, route: Route, context: &mut Context<Self>) -> Self::Result {
        let actor = self.actor_for(&route.sku, context);
        Box::pin(async move {
            actor?
                .send(Execute(route.command))
                .await
                .map_err(|_| InventoryError::Unavailable("the sku actor stopped; retry".into()))?
        })
    }
}

impl Handler<Inspect> for InventorySupervisor {
    type Result = ResponseFuture<Result<Stock, InventoryError>>;

    fn handle(&mut self, inspect: Inspect, context: &mut Context<Self>) -> Self::Result {
        let actor = self.actor_for(&inspect.sku, context);
        Box::pin(async move {
            actor?
                .send(Snapshot)
                .await
                .map_err(|_| InventoryError::Unavailable("the sku actor stopped; retry".into()))?
        })
    }
}

impl Handler<SubscribeCommitted> for InventorySupervisor {
    type Result = MessageResult<SubscribeCommitted>;

    fn handle(&mut self, _: SubscribeCommitted, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.feed.subscribe())
    }
}

impl Handler<LiveActors> for InventorySupervisor {
    type Result = usize;

    fn handle(&mut self, _: LiveActors, _: &mut Context<Self>) -> usize {
        self.running
            .values()
            .filter(|running| running.address.connected())
            .count()
    }
}

impl Handler<ActorOf> for InventorySupervisor {
    type Result = Result<Addr<SkuActor>, InventoryError>;

    fn handle(&mut self, actor_of: ActorOf, context: &mut Context<Self>) -> Self::Result {
        self.actor_for(&actor_of.sku, context)
    }
}
