//! The entity host: starts an entity's actor on its first message (spread over a pool
//! of arbiters), forwards requests to it, forgets it when it passivates and restarts it
//! — after an error or a panic — from the database. Repeated failures of one entity
//! back off exponentially up to a cap; every restart is counted in metrics and kept
//! for the node's tree. At shutdown it refuses new requests, asks every entity to
//! finish and stop, and answers once they all have.
//!
//! On a clustered node the host asks its [`Ownership`] before every request: an entity
//! runs only while this node serves its shard, under the epoch of that tenure (an
//! entity of an older tenure is passivated and a new one loads), and [`PassivateWhere`]
//! stops the entities of a shard that moves away.
//!
//! actix's own `Supervisor` restarts an actor after `stop`, but not after a panic, which
//! unwinds through the actor's task; here the entity's `stopped` (run while unwinding)
//! or its `Drop` reports the crash.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::dev::ToEnvelope;
use actix::prelude::*;

use super::{
    Entity, EntityKind, EntityLink, EntityStopped, HostError, Ownership, Passivate, Request,
    StopReason,
};

#[derive(Debug, Clone)]
pub struct HostSettings {
    /// An entity with nothing to do for this long stops and frees its memory.
    pub idle_timeout: Duration,
    /// First restart delay after a failure; doubles with each failure in a row.
    pub restart_backoff: Duration,
    pub max_restart_backoff: Duration,
    /// A failure further back than this no longer counts towards the backoff.
    pub failure_memory: Duration,
    /// Arbiters (threads) the entities are spread over; 0 runs them on the host's.
    pub arbiters: usize,
}

impl Default for HostSettings {
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

/// A request for the entity of `key`, routed by the host.
pub struct Deliver<K: EntityKind> {
    pub key: String,
    pub request: K::Request,
}

impl<K: EntityKind> Message for Deliver<K> {
    type Result = Result<K::Reply, K::Error>;
}

/// What the host answers a request with, once its entity has.
type Answer<K> = ResponseFuture<Result<<K as EntityKind>::Reply, <K as EntityKind>::Error>>;

/// A request that found its entity's actor gone before the host had read how it
/// stopped. An entity reports before its mailbox closes, so the report is already in
/// the host's mailbox, ahead of this: handled after it, the request meets the entity as
/// the report left it (started afresh after a passivation, or waiting out a failure's
/// backoff), and a crash loop under requests is counted and backs off.
struct Redeliver<K: EntityKind>(Deliver<K>);

impl<K: EntityKind> Message for Redeliver<K> {
    type Result = Result<K::Reply, K::Error>;
}

/// How many entities are alive now.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct LiveEntities;

/// The address of an entity's actor (starting it if needed); tests use it to inject
/// faults.
pub struct ActorOf<E: Entity> {
    pub key: String,
    _entity: std::marker::PhantomData<fn() -> E>,
}

impl<E: Entity> ActorOf<E> {
    pub fn new(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            _entity: std::marker::PhantomData,
        }
    }
}

impl<E: Entity> Message for ActorOf<E> {
    type Result = Result<Addr<E>, HostError>;
}

/// What the node's tree shows of a host.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct HostReport {
    /// The entity kind: `sku`, `order`.
    pub kind: String,
    pub active_entities: usize,
    /// Restarts after an error or a panic since the node started.
    pub restarts: u64,
    pub passivations: u64,
    /// Entities waiting out a restart backoff now.
    pub backing_off: usize,
    pub last_failure: Option<FailureReport>,
    pub accepting: bool,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct FailureReport {
    pub key: String,
    /// `error` or `panic`.
    pub reason: String,
    /// RFC 3339, UTC.
    pub at: String,
}

#[derive(Message)]
#[rtype(result = "HostReport")]
pub struct Describe;

/// Refuse new requests, ask every entity to finish and stop; answered once all have
/// stopped or `timeout` passed (then with the number still running).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Drain {
    pub timeout: Duration,
}

/// Asks the entities whose key matches to finish and stop (a shard handed to another
/// node); answered once they have, or when `timeout` passed, with how many still run.
pub struct PassivateWhere {
    pub matches: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    pub timeout: Duration,
}

impl Message for PassivateWhere {
    type Result = usize;
}

/// How many running entities match.
struct CountWhere(Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl Message for CountWhere {
    type Result = usize;
}

/// How often a [`PassivateWhere`] checks whether its entities have stopped.
const PASSIVATION_POLL: Duration = Duration::from_millis(10);

struct Running<E: Actor> {
    address: Addr<E>,
    instance: u64,
    epoch: Option<u64>,
}

#[derive(Default)]
struct Failures {
    count: u32,
    last: Option<Instant>,
    blocked_until: Option<Instant>,
}

pub struct EntityHost<E: Entity> {
    deps: E::Deps,
    settings: HostSettings,
    arbiters: Vec<Arbiter>,
    running: HashMap<String, Running<E>>,
    failures: HashMap<String, Failures>,
    next_instance: u64,
    restarts: u64,
    passivations: u64,
    last_failure: Option<FailureReport>,
    accepting: bool,
    drained: Vec<tokio::sync::oneshot::Sender<()>>,
    ownership: Option<Arc<dyn Ownership>>,
}

impl<E: Entity> EntityHost<E> {
    pub fn new(deps: E::Deps, settings: HostSettings) -> Self {
        let arbiters = (0..settings.arbiters).map(|_| Arbiter::new()).collect();
        Self {
            deps,
            settings,
            arbiters,
            running: HashMap::new(),
            failures: HashMap::new(),
            next_instance: 0,
            restarts: 0,
            passivations: 0,
            last_failure: None,
            accepting: true,
            drained: Vec::new(),
            ownership: None,
        }
    }

    /// Runs only the entities `ownership` says this node serves, fenced on its epochs.
    pub fn with_ownership(mut self, ownership: Arc<dyn Ownership>) -> Self {
        self.ownership = Some(ownership);
        self
    }

    /// The epoch to run `key` under: `None` when this node owns every entity.
    fn epoch_of(&self, key: &str) -> Result<Option<u64>, HostError> {
        match &self.ownership {
            None => Ok(None),
            Some(ownership) => ownership
                .epoch_of(key)
                .map(Some)
                .map_err(|_| HostError::NotOwner),
        }
    }

    fn actor_for(&mut self, key: &str, context: &mut Context<Self>) -> Result<Addr<E>, HostError> {
        if !self.accepting {
            return Err(HostError::ShuttingDown);
        }
        let epoch = self.epoch_of(key)?;
        if let Some(running) = self.running.get(key) {
            if running.address.connected() && running.epoch == epoch {
                return Ok(running.address.clone());
            }
            if running.epoch != epoch {
                // A tenure of this node that ended: its actor finishes what it holds
                // (its writes are fenced on the old epoch) while a new one loads.
                running.address.do_send(Passivate);
                self.running.remove(key);
            }
        }
        if let Some(blocked_until) = self
            .failures
            .get(key)
            .and_then(|failures| failures.blocked_until)
        {
            let now = Instant::now();
            if blocked_until > now {
                return Err(HostError::Restarting {
                    retry_after_ms: (blocked_until - now).as_millis() as u64 + 1,
                });
            }
        }
        Ok(self.start(key, epoch, context))
    }

    /// Whether `key`'s actor has stopped and the host has not yet read its report.
    fn awaits_stop_report(&self, key: &str) -> bool {
        self.running
            .get(key)
            .is_some_and(|running| !running.address.connected())
    }

    fn start(&mut self, key: &str, epoch: Option<u64>, context: &mut Context<Self>) -> Addr<E> {
        self.next_instance += 1;
        let mut link = EntityLink::new(
            key.to_owned(),
            self.next_instance,
            context.address().recipient(),
            self.settings.idle_timeout,
        );
        if let Some(epoch) = epoch {
            link = link.with_epoch(epoch);
        }
        let deps = self.deps.clone();
        let owned_key = key.to_owned();
        let address = if self.arbiters.is_empty() {
            E::for_key(owned_key, deps, link).start()
        } else {
            let arbiter = &self.arbiters[arbiter_index(key, self.arbiters.len())];
            E::start_in_arbiter(&arbiter.handle(), move |_| {
                E::for_key(owned_key, deps, link)
            })
        };
        self.running.insert(
            key.to_owned(),
            Running {
                address: address.clone(),
                instance: self.next_instance,
                epoch,
            },
        );
        self.record_live();
        address
    }

    fn record_live(&self) {
        metrics::gauge!("souk_entities_live", "kind" => <E::Kind as EntityKind>::NAME)
            .set(self.running.len() as f64);
    }

    fn finish_drain_if_empty(&mut self) {
        if !self.accepting && self.running.is_empty() {
            for waiter in self.drained.drain(..) {
                let _ = waiter.send(());
            }
        }
    }
}

/// A stable spread of keys over arbiters (FNV-1a: the same key always lands on the
/// same thread within a process).
fn arbiter_index(key: &str, count: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % count as u64) as usize
}

impl<E: Entity> Actor for EntityHost<E> {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Context<Self>) {
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
    }
}

impl<E: Entity> Handler<EntityStopped> for EntityHost<E> {
    type Result = ();

    fn handle(&mut self, stopped: EntityStopped, context: &mut Context<Self>) {
        let current = self
            .running
            .get(&stopped.key)
            .map(|running| running.instance);
        if current != Some(stopped.instance) {
            // An older instance's late report: the entity already runs again.
            return;
        }
        self.running.remove(&stopped.key);
        self.record_live();
        let kind = <E::Kind as EntityKind>::NAME;
        let reason = match stopped.reason {
            StopReason::Passivated => {
                self.passivations += 1;
                metrics::counter!("souk_entity_passivations_total", "kind" => kind).increment(1);
                self.finish_drain_if_empty();
                return;
            }
            // Fencing is not a failure of this entity: the next message loads it again,
            // and the fence decides who owns it.
            StopReason::Fenced => {
                self.finish_drain_if_empty();
                return;
            }
            failure => failure.as_str(),
        };
        self.restarts += 1;
        self.last_failure = Some(FailureReport {
            key: stopped.key.clone(),
            reason: reason.to_owned(),
            at: chrono::DateTime::<chrono::Utc>::from(SystemTime::now()).to_rfc3339(),
        });
        metrics::counter!("souk_entity_restarts_total", "kind" => kind, "reason" => reason)
            .increment(1);
        if !self.accepting {
            self.finish_drain_if_empty();
            return;
        }
        let settings = self.settings.clone();
        let failures = self.failures.entry(stopped.key.clone()).or_default();
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
        tracing::warn!(kind, key = %stopped.key, reason, failures = failures.count,
            backoff_ms = delay.as_millis() as u64, "entity failed; restarting from the database");
        metrics::histogram!("souk_entity_restart_backoff_seconds", "kind" => kind)
            .record(delay.as_secs_f64());
        // Restart eagerly once the backoff has passed, so an entity's timers (reservation
        // expiry) run again even if nobody writes to it.
        let key = stopped.key;
        context.run_later(delay, move |host, context| {
            if let Some(failures) = host.failures.get_mut(&key) {
                failures.blocked_until = None;
            }
            if !host.accepting || host.running.contains_key(&key) {
                return;
            }
            // A shard that moved meanwhile is the new owner's to load.
            if let Ok(epoch) = host.epoch_of(&key) {
                host.start(&key, epoch, context);
            }
        });
    }
}

impl<E> Handler<Deliver<E::Kind>> for EntityHost<E>
where
    E: Entity + Handler<Request<E::Kind>>,
    E::Context: ToEnvelope<E, Request<E::Kind>>,
{
    type Result = Answer<E::Kind>;

    fn handle(&mut self, deliver: Deliver<E::Kind>, context: &mut Context<Self>) -> Self::Result {
        if self.awaits_stop_report(&deliver.key) {
            let host = context.address();
            return Box::pin(async move {
                host.send(Redeliver(deliver))
                    .await
                    .map_err(|_| HostError::ShuttingDown)?
            });
        }
        self.deliver(deliver, context)
    }
}

impl<E> Handler<Redeliver<E::Kind>> for EntityHost<E>
where
    E: Entity + Handler<Request<E::Kind>>,
    E::Context: ToEnvelope<E, Request<E::Kind>>,
{
    type Result = Answer<E::Kind>;

    fn handle(
        &mut self,
        redeliver: Redeliver<E::Kind>,
        context: &mut Context<Self>,
    ) -> Self::Result {
        self.deliver(redeliver.0, context)
    }
}

impl<E> EntityHost<E>
where
    E: Entity + Handler<Request<E::Kind>>,
    E::Context: ToEnvelope<E, Request<E::Kind>>,
{
    /// Hands the request to its entity's actor, starting one if it may run.
    fn deliver(
        &mut self,
        deliver: Deliver<E::Kind>,
        context: &mut Context<Self>,
    ) -> Answer<E::Kind> {
        let actor = self.actor_for(&deliver.key, context);
        Box::pin(async move {
            let actor = actor?;
            actor
                .send(Request(deliver.request))
                .await
                .map_err(|_| HostError::Stopped)?
        })
    }
}

impl<E: Entity> Handler<LiveEntities> for EntityHost<E> {
    type Result = usize;

    fn handle(&mut self, _: LiveEntities, _: &mut Context<Self>) -> usize {
        self.running
            .values()
            .filter(|running| running.address.connected())
            .count()
    }
}

impl<E: Entity> Handler<ActorOf<E>> for EntityHost<E> {
    type Result = Result<Addr<E>, HostError>;

    fn handle(&mut self, actor_of: ActorOf<E>, context: &mut Context<Self>) -> Self::Result {
        self.actor_for(&actor_of.key, context)
    }
}

impl<E: Entity> Handler<Describe> for EntityHost<E> {
    type Result = MessageResult<Describe>;

    fn handle(&mut self, _: Describe, _: &mut Context<Self>) -> Self::Result {
        let now = Instant::now();
        MessageResult(HostReport {
            kind: <E::Kind as EntityKind>::NAME.to_owned(),
            active_entities: self.running.len(),
            restarts: self.restarts,
            passivations: self.passivations,
            backing_off: self
                .failures
                .values()
                .filter(|failures| failures.blocked_until.is_some_and(|until| until > now))
                .count(),
            last_failure: self.last_failure.clone(),
            accepting: self.accepting,
        })
    }
}

impl<E: Entity> Handler<Drain> for EntityHost<E> {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, drain: Drain, context: &mut Context<Self>) -> Self::Result {
        self.accepting = false;
        for running in self.running.values() {
            running.address.do_send(Passivate);
        }
        let (done, finished) = tokio::sync::oneshot::channel();
        self.drained.push(done);
        self.finish_drain_if_empty();
        let host = context.address();
        Box::pin(async move {
            let _ = tokio::time::timeout(drain.timeout, finished).await;
            host.send(LiveEntities).await.unwrap_or(0)
        })
    }
}

impl<E: Entity> Handler<PassivateWhere> for EntityHost<E> {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, passivate: PassivateWhere, context: &mut Context<Self>) -> Self::Result {
        for (key, running) in &self.running {
            if (passivate.matches)(key) {
                running.address.do_send(Passivate);
            }
        }
        let host = context.address();
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + passivate.timeout;
            loop {
                let running = host
                    .send(CountWhere(passivate.matches.clone()))
                    .await
                    .unwrap_or(0);
                if running == 0 || tokio::time::Instant::now() >= deadline {
                    return running;
                }
                tokio::time::sleep(PASSIVATION_POLL).await;
            }
        })
    }
}

impl<E: Entity> Handler<CountWhere> for EntityHost<E> {
    type Result = usize;

    fn handle(&mut self, count: CountWhere, _: &mut Context<Self>) -> usize {
        self.running
            .iter()
            .filter(|(key, running)| running.address.connected() && (count.0)(key))
            .count()
    }
}
