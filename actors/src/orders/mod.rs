//! Orders: the state machine (pure, property-tested), the order service (checkout,
//! payment, cancellation, fulfilment, expiry), the per-order actor that runs every
//! command of one order, one at a time, under the entity host, and the payload of
//! `order.placed`.

pub mod actor;
pub mod checkout;
mod delivery;
mod holds;
pub mod limits;
pub mod links;
pub mod logic;
pub mod payment_events;
pub mod payments;
pub mod placed;
pub mod returns;
pub mod service;
pub mod state;
pub mod views;
pub mod webhook_signature;
pub mod webhooks;

use std::sync::Arc;

use actix::prelude::*;

use crate::entity::{EntityHost, HostSettings, LocalRouter};

pub use actor::{Order, OrderCommand, OrderEntity, OrderRouter};
pub use limits::PurchaseLimits;
pub use links::OrderLinks;
pub use logic::OrderLogic;
pub use returns::{ReturnCommand, ReturnStatus};
pub use service::OrderService;
pub use views::{
    Caller, CreateOrderInput, OrderItemInput, OrderShippingMethod, OrderView, RefundView,
    ReturnView,
};
pub use webhooks::{PaymentEvent, PaymentWebhooks, WebhookReceipt};

pub use state::{
    transition, Event, Fulfilment, Initiator, OrderStatus, Payment, StockEffect, TransitionError,
};

/// Starts the host of this node's order actors and gives the router to it.
pub fn start_host(logic: OrderLogic, settings: HostSettings) -> LocalRouter<OrderEntity> {
    start_host_with_ownership(logic, settings, None)
}

/// The host of a clustered node: it runs the orders `ownership` says this node serves.
pub fn start_host_with_ownership(
    logic: OrderLogic,
    settings: HostSettings,
    ownership: Option<Arc<dyn crate::entity::Ownership>>,
) -> LocalRouter<OrderEntity> {
    let mut host = EntityHost::<OrderEntity>::new(logic, settings);
    if let Some(ownership) = ownership {
        host = host.with_ownership(ownership);
    }
    LocalRouter::new(host.start())
}

/// The order service of a node whose order actors are all local.
pub fn local_service(
    logic: OrderLogic,
    settings: HostSettings,
) -> (OrderService, LocalRouter<OrderEntity>) {
    let router = start_host(logic.clone(), settings);
    (OrderService::new(logic, Arc::new(router.clone())), router)
}
