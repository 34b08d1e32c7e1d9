//! One actor per order, under the entity host: every command for an order (pay,
//! cancel, ship, deliver, expire, a return's step, a payment provider's event) goes to
//! that order's actor, which runs them one at a time, so two requests for one order
//! never race. The actor owns its loaded order while it is active: it loads the row on
//! its first command and keeps the state each command leaves; after a failed command
//! it drops it and loads again (the version fence on the row stays the guard across
//! nodes). Actors start on first use, stop when idle and restart after a failure like
//! every entity.

use std::time::Instant;

use actix::prelude::*;

use souk_db::orders::OrderRecord;

use super::logic::OrderLogic;
use super::returns::ReturnCommand;
use super::state::Event;
use super::views::{Caller, OrderView};
use super::webhooks::CheckedPaymentEvent;
use crate::entity::{
    Entity, EntityKind, EntityLink, EntityRouter, EntityStop, Passivate, Request, StopReason,
};
use crate::error::Error;

/// A command for one order.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
    /// Sent by the sweeper: finish the stock effect (and refund) the stored order still
    /// owes, read afresh; nothing when it owes none.
    Settle,
    /// An event of the payment provider, from its webhook.
    PaymentEvent(CheckedPaymentEvent),
    /// A step of one of the order's returns.
    Return(ReturnCommand),
}

/// The kind of the order entities: a command, answered with the order it left (none
/// for an expiry).
pub struct Order;

impl EntityKind for Order {
    const NAME: &'static str = "order";
    type Request = OrderCommand;
    type Reply = Option<OrderView>;
    type Error = Error;

    fn is_not_owner(error: &Error) -> bool {
        error.code() == crate::ErrorCode::StaleOwner
    }
}

/// The door to order actors, wherever they run.
pub type OrderRouter = std::sync::Arc<dyn EntityRouter<Order>>;

pub struct OrderEntity {
    order_id: String,
    link: EntityLink,
    logic: OrderLogic,
    /// The order as the last command left it; `None` until loaded, or after a failure.
    order: Option<OrderRecord>,
    last_activity: Instant,
    stop: EntityStop,
}

impl Entity for OrderEntity {
    type Kind = Order;
    type Deps = OrderLogic;

    fn for_key(order_id: String, logic: OrderLogic, link: EntityLink) -> Self {
        Self {
            order_id,
            link,
            logic,
            order: None,
            last_activity: Instant::now(),
            stop: EntityStop::default(),
        }
    }
}

impl OrderEntity {
    fn stop_with(&mut self, context: &mut Context<Self>, reason: StopReason) {
        self.stop.set(reason);
        context.stop();
    }
}

impl Actor for OrderEntity {
    type Context = Context<Self>;

    fn started(&mut self, context: &mut Context<Self>) {
        let idle_timeout = self.link.idle_timeout();
        let every = (idle_timeout / 2).max(std::time::Duration::from_millis(10));
        context.run_interval(every, move |entity, context| {
            if entity.last_activity.elapsed() >= idle_timeout {
                entity.stop_with(context, StopReason::Passivated);
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.stop.report_stopped(&self.link);
    }
}

impl Drop for OrderEntity {
    fn drop(&mut self) {
        self.stop.report_dropped(&self.link);
    }
}

impl Handler<Request<Order>> for OrderEntity {
    // Atomic: the actor takes no other command until this one is done.
    type Result = AtomicResponse<Self, Result<Option<OrderView>, Error>>;

    fn handle(&mut self, request: Request<Order>, _: &mut Context<Self>) -> Self::Result {
        self.last_activity = Instant::now();
        let (logic, id, owned) = (self.logic.clone(), self.order_id.clone(), self.order.take());
        let epoch = self.link.epoch();
        let work = async move {
            // A settlement acts on the stored order: a node that died between a
            // transition and its effect left the effect owed there.
            let order = match owned {
                Some(order) if !matches!(request.0, OrderCommand::Settle) => order,
                _ => logic.load_order(&id, epoch).await?,
            };
            match request.0 {
                OrderCommand::Pay { user_id, method } => logic
                    .pay(order, &user_id, &method)
                    .await
                    .map(|(order, view)| (order, Some(view))),
                OrderCommand::Cancel { caller, reason } => logic
                    .cancel(order, caller, &reason)
                    .await
                    .map(|(order, view)| (order, Some(view))),
                OrderCommand::Fulfil { admin_id, event } => logic
                    .fulfil(order, &admin_id, event)
                    .await
                    .map(|(order, view)| (order, Some(view))),
                OrderCommand::Expire => logic.expire(order).await.map(|order| (order, None)),
                OrderCommand::Settle => logic.settle_owed(order).await.map(|order| (order, None)),
                OrderCommand::Return(command) => {
                    let order = logic.on_return(order, command).await?;
                    let view = logic.view(order.clone()).await?;
                    Ok((order, Some(view)))
                }
                OrderCommand::PaymentEvent(event) => logic
                    .on_payment_event(order, &event)
                    .await
                    .map(|order| (order, None)),
            }
        };
        AtomicResponse::new(Box::pin(work.into_actor(self).map(
            |outcome, entity, context| match outcome {
                Ok((order, view)) => {
                    entity.order = Some(order);
                    Ok(view)
                }
                Err(error) => {
                    entity.order = None;
                    // A later owner claimed the order: this node does not serve it.
                    if Order::is_not_owner(&error) {
                        tracing::warn!(order_id = %entity.order_id, epoch = entity.link.epoch(),
                            "a later owner claimed this order; not serving it");
                        entity.stop_with(context, StopReason::Fenced);
                    }
                    Err(error)
                }
            },
        )))
    }
}

impl Handler<Passivate> for OrderEntity {
    type Result = ();

    /// A running command finishes first: the actor's responses are atomic.
    fn handle(&mut self, _: Passivate, context: &mut Context<Self>) {
        self.stop_with(context, StopReason::Passivated);
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

impl Handler<crate::inventory::ReservationExpired> for ExpiryListener {
    type Result = ();

    fn handle(&mut self, expired: crate::inventory::ReservationExpired, _: &mut Context<Self>) {
        let Some(router) = self.orders.get().cloned() else {
            return;
        };
        actix::spawn(async move {
            if let Err(error) = router
                .send(expired.order_id.clone(), OrderCommand::Expire)
                .await
            {
                tracing::warn!(order_id = %expired.order_id, %error, "cannot expire the order of an expired reservation");
            }
        });
    }
}
