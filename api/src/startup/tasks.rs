//! The node root's supervised tasks: email workers (on its background thread), the
//! outbox relay, the session cache's feed, the search index, the sweep of lapsed
//! reservations and the order expiry sweeper.

use std::sync::Arc;

use actix_web::web;
use souk_actors::email::processor::Processor;
use souk_actors::email::transport::Transport;
use souk_actors::email::worker;
use souk_actors::outbox::relay::{Publisher, Relay};

use super::secrets::jwt_secret;
use crate::state::AppState;
use crate::topology::Service;

/// On the in-process bus, what the previous process on this database published but no
/// worker finished died with it: it is published again before the relay starts (a mail
/// already sent is not repeated).
pub(super) async fn reopen_unhandled_events(state: &web::Data<AppState>) -> anyhow::Result<()> {
    if !state.config.outbox.relay || !matches!(state.email.publisher(), Publisher::Local(_)) {
        return Ok(());
    }
    let reopened = souk_db::outbox::reopen_unhandled(state.db.pool()).await?;
    if reopened > 0 {
        tracing::info!(
            events = reopened,
            "publishing again the events the last process did not finish"
        );
    }
    Ok(())
}

/// The node root's tasks: the outbox relay (when enabled), the email worker pool
/// (consuming what the relay publishes: JetStream's shared durable consumer, or the
/// in-process bus), the session cache's feed, the search index's build and feed, and
/// the order expiry sweeper.
pub(super) fn start_tasks(state: &web::Data<AppState>) -> anyhow::Result<()> {
    let config = &state.config;
    let root = &state.root;
    let publisher = state.email.publisher().clone();
    // Mail goes out where the email service runs; every node relays its own outbox (the
    // events of split services meet on NATS, which config requires for a split node).
    if state.services.contains(Service::Email) {
        let settings =
            config.email_settings(souk_actors::orders::OrderLinks::new(&jwt_secret(config)?));
        let transport = Transport::from_settings(&settings)?;
        tracing::info!(transport = %transport.describe(), workers = config.email.workers, in_flight = config.email.in_flight, "email workers starting");
        let processor = Arc::new(Processor::new(state.db.clone(), transport, &settings)?);
        worker::spawn_pool(
            root,
            config.email.workers,
            config.email.in_flight,
            processor,
            publisher.clone(),
        );
    }
    if config.outbox.relay {
        let relay = Arc::new(Relay::new(state.db.clone(), publisher.clone()));
        let poll = std::time::Duration::from_millis(config.outbox.poll_ms);
        root.spawn_task("outbox", "outbox-relay", move |stopping| {
            let relay = relay.clone();
            async move { relay.run(poll, stopping).await }
        });
    }
    // Every node authenticates, so every node's cache of live sessions forgets what the
    // access events of every node revoke.
    let access = state.auth.access().clone();
    let access_publisher = publisher.clone();
    root.spawn_task("identity", "access-cache", move |stopping| {
        access.clone().follow(access_publisher.clone(), stopping)
    });
    // The search index is built where the catalog is served, then follows the catalog
    // events of every node; elsewhere the catalog's caches follow those that change
    // catalog rows (an inventory process reads the catalog for the SKUs it stocks).
    let catalog = state.catalog.clone();
    let catalog_publisher = publisher.clone();
    if state.services.contains(Service::Product) {
        root.spawn_task("catalog", "search-index", move |stopping| {
            souk_actors::catalog::feeds::build_and_follow(
                catalog.clone(),
                catalog_publisher.clone(),
                stopping,
            )
        });
    } else {
        root.spawn_task("catalog", "catalog-caches", move |stopping| {
            souk_actors::catalog::feeds::follow_for_caches(
                catalog.clone(),
                catalog_publisher.clone(),
                stopping,
            )
        });
    }
    if state.services.contains(Service::Inventory) {
        let inventory = state.inventory.clone();
        root.spawn_task("inventory", "lapsed-reservations", move |stopping| {
            sweep_lapsed_reservations(inventory.clone(), stopping)
        });
    }
    if state.services.contains(Service::Order) {
        let orders = state.orders.clone();
        root.spawn_task("orders", "expiry-sweeper", move |stopping| {
            sweep_orders(orders.clone(), stopping)
        });
    }
    Ok(())
}

/// Runs `pass` every `period` until the node stops.
async fn every<F, Fut>(
    period: std::time::Duration,
    mut stopping: tokio::sync::watch::Receiver<bool>,
    mut pass: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ticker = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopping.wait_for(|stopped| *stopped) => return Ok(()),
        }
        pass().await;
    }
}

/// Every ten seconds until the node stops: releases the reservations past their time
/// that SKUs not loaded still hold.
async fn sweep_lapsed_reservations(
    inventory: souk_actors::inventory::InventoryService,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    every(std::time::Duration::from_secs(10), stopping, || async {
        if let Err(error) = inventory.release_lapsed().await {
            tracing::warn!(%error, "lapsed reservation sweep failed");
        }
    })
    .await
}

/// Once a second until the node stops: expires unpaid orders past their deadline
/// (through their actors), finishes stock effects that a crash left undone, and asks
/// again for the refunds owed on captures no order could keep.
async fn sweep_orders(
    orders: souk_actors::orders::OrderService,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    every(std::time::Duration::from_secs(1), stopping, || async {
        if let Err(error) = orders.expire_due().await {
            tracing::warn!(%error, "order expiry sweep failed");
        }
        if let Err(error) = orders.settle_unsettled().await {
            tracing::warn!(%error, "order settlement sweep failed");
        }
        if let Err(error) = orders.refund_unkept_captures().await {
            tracing::warn!(%error, "owed refund sweep failed");
        }
    })
    .await
}
