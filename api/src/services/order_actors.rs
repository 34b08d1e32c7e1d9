//! One actor per order: every command for an order (pay, cancel, ship, deliver,
//! expire) goes to that order's actor, which runs them one at a time, so two requests
//! for one order never race in the service (the version fence on the row stays as the
//! guard across nodes). Actors start on first use and stop when idle.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use souk_actors::orders::Event;

use crate::error::{Error, ErrorCode};
use crate::services::orders::{Caller, OrderService, OrderView};

/// A command for one order.
#[derive(Debug, Clone)]
pub enum OrderCommand {
    Pay {
        user_id: String,
        method: String,
    },
    Cancel {
        caller: Caller,
        reason: String,
    },
    Fulfil {
        admin_id: String,
        event: Event,
    },
    /// Sent by the inventory when the order's reservation ran out, and by the sweeper.
    Expire,
}

#[derive(Message)]
#[rtype(result = "Result<Option<OrderView>, Error>")]
struct Run(OrderCommand);

#[derive(Message)]
#[rtype(result = "Result<Option<OrderView>, Error>")]
pub struct RouteOrder {
    pub order_id: String,
    pub command: OrderCommand,
}

#[derive(Message)]
#[rtype(result = "()")]
struct EntityStopped {
    order_id: String,
}

struct OrderEntity {
    order_id: String,
    service: OrderService,
    supervisor: Addr<OrderSupervisor>,
    idle_timeout: Duration,
    last_activity: Instant,
}

impl Actor for OrderEntity {
    type Context = Context<Self>;

    fn started(&mut self, context: &mut Context<Self>) {
        let every = (self.idle_timeout / 2).max(Duration::from_millis(10));
        context.run_interval(every, |entity, context| {
            if entity.last_activity.elapsed() >= entity.idle_timeout {
                context.stop();
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.supervisor.do_send(EntityStopped {
            order_id: self.order_id.clone(),
        });
    }
}

impl Handler<Run> for OrderEntity {
    // Atomic: the actor takes no other command until this one is done.
    type Result = AtomicResponse<Self, Result<Option<OrderView>, Error>>;

    fn handle(&mut self, Run(command): Run, _: &mut Context<Self>) -> Self::Result {
        self.last_activity = Instant::now();
        let (service, id) = (self.service.clone(), self.order_id.clone());
        let work = async move {
            match command {
                OrderCommand::Pay { user_id, method } => {
                    service.pay(&user_id, &id, &method).await.map(Some)
                }
                OrderCommand::Cancel { caller, reason } => {
                    service.cancel(caller, &id, &reason).await.map(Some)
                }
                OrderCommand::Fulfil { admin_id, event } => {
                    service.fulfil(&admin_id, &id, event).await.map(Some)
                }
                OrderCommand::Expire => service.expire(&id).await.map(|()| None),
            }
        };
        AtomicResponse::new(Box::pin(work.into_actor(self)))
    }
}

/// Starts, finds and forgets order actors.
pub struct OrderSupervisor {
    service: OrderService,
    idle_timeout: Duration,
    entities: HashMap<String, Addr<OrderEntity>>,
}

impl OrderSupervisor {
    pub fn new(service: OrderService, idle_timeout: Duration) -> Self {
        Self {
            service,
            idle_timeout,
            entities: HashMap::new(),
        }
    }
}

impl Actor for OrderSupervisor {
    type Context = Context<Self>;
}

impl Handler<RouteOrder> for OrderSupervisor {
    type Result = ResponseFuture<Result<Option<OrderView>, Error>>;

    fn handle(&mut self, route: RouteOrder, context: &mut Context<Self>) -> Self::Result {
        let entity = match self
            .entities
            .get(&route.order_id)
            .filter(|entity| entity.connected())
        {
            Some(entity) => entity.clone(),
            None => {
                let entity = OrderEntity {
                    order_id: route.order_id.clone(),
                    service: self.service.clone(),
                    supervisor: context.address(),
                    idle_timeout: self.idle_timeout,
                    last_activity: Instant::now(),
                }
                .start();
                self.entities.insert(route.order_id.clone(), entity.clone());
                metrics::gauge!("souk_order_actors_live").set(self.entities.len() as f64);
                entity
            }
        };
        Box::pin(async move {
            entity.send(Run(route.command)).await.map_err(|_| {
                Error::new(
                    ErrorCode::ServiceUnavailable,
                    "the order's actor stopped; retry",
                )
            })?
        })
    }
}

impl Handler<EntityStopped> for OrderSupervisor {
    type Result = ();

    fn handle(&mut self, stopped: EntityStopped, _: &mut Context<Self>) {
        if self
            .entities
            .get(&stopped.order_id)
            .is_some_and(|entity| !entity.connected())
        {
            self.entities.remove(&stopped.order_id);
        }
        metrics::gauge!("souk_order_actors_live").set(self.entities.len() as f64);
    }
}

/// The router callers use for order commands; it resolves locally today.
#[derive(Clone)]
pub struct OrderRouter {
    supervisor: Addr<OrderSupervisor>,
}

impl OrderRouter {
    pub fn new(supervisor: Addr<OrderSupervisor>) -> Self {
        Self { supervisor }
    }

    pub async fn send(
        &self,
        order_id: &str,
        command: OrderCommand,
    ) -> Result<Option<OrderView>, Error> {
        self.supervisor
            .send(RouteOrder {
                order_id: order_id.to_owned(),
                command,
            })
            .await
            .map_err(|_| {
                Error::new(
                    ErrorCode::ServiceUnavailable,
                    "the order supervisor is not running",
                )
            })?
    }

    /// A command that returns the order, as pay, cancel and fulfil do.
    pub async fn send_for_view(
        &self,
        order_id: &str,
        command: OrderCommand,
    ) -> Result<OrderView, Error> {
        self.send(order_id, command)
            .await?
            .ok_or_else(|| Error::internal("an order command returned no order"))
    }
}

/// Tells the order when the inventory expired its reservation (DESIGN: "its order is
/// told"); the order expires once its own deadline has passed.
pub struct ExpiryListener {
    pub orders: std::sync::Arc<std::sync::OnceLock<OrderRouter>>,
}

impl Actor for ExpiryListener {
    type Context = Context<Self>;
}

impl Handler<souk_actors::inventory::actor::ReservationExpired> for ExpiryListener {
    type Result = ();

    fn handle(
        &mut self,
        expired: souk_actors::inventory::actor::ReservationExpired,
        _: &mut Context<Self>,
    ) {
        let Some(router) = self.orders.get().cloned() else {
            return;
        };
        actix::spawn(async move {
            if let Err(error) = router.send(&expired.order_id, OrderCommand::Expire).await {
                tracing::warn!(order_id = %expired.order_id, %error, "cannot expire the order of an expired reservation");
            }
        });
    }
}
