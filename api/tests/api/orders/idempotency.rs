//! `Idempotency-Key` on checkout: retries, concurrent ones included, answer one order
//! and hold one reservation, keys belong to their user, another body under a used key is
//! refused and holds nothing, a retry of an order already paid answers that order and
//! releases what it reserved (both engines), and two requests sharing one order keep
//! every line of it reserved when one of them fails and releases what it reserved.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_actors::entity::EntityRouter;
use souk_actors::inventory::{
    Command, InventoryError, Placement, Sku, SkuReply, SkuRequest, SkuRouter, StockError,
};
use souk_actors::orders::service::OrderService;
use souk_actors::orders::views::CreateOrderInput;
use souk_db::testing::TestBackend;

use super::{act, order, pay, place, product, stock};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(a_retry_of_a_paid_order_answers_it_and_holds_nothing);

/// Another body under a used key is refused, and the SKU of its one line is left as
/// `stock_after` (on hand, reserved) says.
async fn key_reused_holds_nothing(
    app: &TestApp,
    admin: &Session,
    user: &Session,
    items: Value,
    key: &str,
    stock_after: (i64, i64),
) {
    let sku = items[0]["sku"].as_str().unwrap().to_owned();
    let refused = order(app, user, items, Some(key)).await;
    assert_problem(refused, 422, "idempotency_key_reused").await;
    assert_eq!(
        stock(app, admin, &sku).await,
        stock_after,
        "the refused request holds nothing"
    );
}

#[actix_web::test]
async fn idempotency_keys_make_retries_safe() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("retry").await;
    product(&app, &admin, "KEYED", 100, 10).await;
    let items = json!([{"sku": "KEYED", "quantity": 2}]);

    // Five concurrent retries of one request: one order, one reservation.
    let attempts = futures_util::future::join_all(
        (0..5).map(|_| order(&app, &shopper, items.clone(), Some("checkout-1"))),
    )
    .await;
    let mut ids = Vec::new();
    for response in attempts {
        assert!(
            response.status() == StatusCode::CREATED || response.status() == StatusCode::OK,
            "{}",
            response.status()
        );
        let body: Value = response.json().await.unwrap();
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry got the same order");
    assert_eq!(stock(&app, &admin, "KEYED").await, (10, 2));

    let replay = order(&app, &shopper, items.clone(), Some("checkout-1")).await;
    assert_eq!(replay.status(), StatusCode::OK);
    let different = json!([{"sku": "KEYED", "quantity": 3}]);
    key_reused_holds_nothing(&app, &admin, &shopper, different, "checkout-1", (10, 2)).await;
    // Keys belong to their user.
    let other = app.customer("other").await;
    assert_eq!(
        order(&app, &other, items, Some("checkout-1"))
            .await
            .status(),
        StatusCode::CREATED
    );
}

/// A checkout reads nothing by its key before reserving: a retry of an order already
/// paid reserves anew, finds the order when its insert is refused (or when the stock
/// has sold out since), answers that order and releases what it reserved.
async fn a_retry_of_a_paid_order_answers_it_and_holds_nothing(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let shopper = app.customer("paid-retry").await;
    product(&app, &admin, "PAID-1", 100, 4).await;
    let items = json!([{"sku": "PAID-1", "quantity": 2}]);
    let placed = order(&app, &shopper, items.clone(), Some("paid-key")).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let placed: Value = placed.json().await.unwrap();
    let id = placed["id"].as_str().unwrap().to_owned();
    let paid = pay(&app, &shopper, &id).await;
    assert_eq!(paid.status(), StatusCode::OK);
    assert_eq!(stock(&app, &admin, "PAID-1").await, (2, 0));

    // Stock enough for the retry's own reservation: it is made, then released.
    let retried = order(&app, &shopper, items.clone(), Some("paid-key")).await;
    assert_eq!(retried.status(), StatusCode::OK);
    let retried: Value = retried.json().await.unwrap();
    assert_eq!(
        (retried["id"].as_str(), retried["status"].as_str()),
        (Some(id.as_str()), Some("paid"))
    );
    assert_eq!(
        stock(&app, &admin, "PAID-1").await,
        (2, 0),
        "the retry holds nothing"
    );
    let different = json!([{"sku": "PAID-1", "quantity": 1}]);
    key_reused_holds_nothing(&app, &admin, &shopper, different, "paid-key", (2, 0)).await;

    // Sold out since: the retry's reservation fails, and it still answers the order.
    let other = app.customer("last-unit").await;
    place(&app, &other, json!([{"sku": "PAID-1", "quantity": 2}])).await;
    let sold_out = order(&app, &shopper, items, Some("paid-key")).await;
    assert_eq!(sold_out.status(), StatusCode::OK);
    let sold_out: Value = sold_out.json().await.unwrap();
    assert_eq!(sold_out["id"].as_str(), Some(id.as_str()));
    assert_eq!(stock(&app, &admin, "PAID-1").await, (2, 2));
    assert_eq!(
        app.events("order.placed", &id).await.len(),
        1,
        "one order, placed once"
    );
}

/// The two lines every shared-order test checks out, two units of `first` and one of
/// `last`, as the service takes them.
fn two_lines(first: &str, last: &str) -> CreateOrderInput {
    serde_json::from_value(json!({"items": [
        {"sku": first, "quantity": 2},
        {"sku": last, "quantity": 1},
    ]}))
    .unwrap()
}

/// A node with the two SKUs of a shared order in stock (5 units each), its admin and
/// a shopper.
async fn two_skus_in_stock(shopper: &str, skus: [&str; 2]) -> (TestApp, Session, Session) {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer(shopper).await;
    for sku in skus {
        product(&app, &admin, sku, 100, 5).await;
    }
    (app, admin, shopper)
}

/// The node's order service, its checkouts reaching the SKU actors through `router`.
fn checkouts_through(app: &TestApp, router: impl EntityRouter<Sku> + 'static) -> OrderService {
    let inventory = app.state.inventory.with_router(Arc::new(router));
    app.state.orders.with_inventory(inventory)
}

/// The order's two SKUs hold exactly its lines (on hand 5 each), and cancelling it gives
/// both back: the reservations are the order's.
async fn both_lines_held_by(
    app: &TestApp,
    admin: &Session,
    user: &Session,
    id: &str,
    skus: [&str; 2],
) {
    assert_eq!(stock(app, admin, skus[0]).await, (5, 2), "{} held", skus[0]);
    assert_eq!(stock(app, admin, skus[1]).await, (5, 1), "{} held", skus[1]);
    let cancelled = act(
        app,
        &user.access_token,
        &format!("/api/v1/orders/{id}/cancel"),
        json!({}),
    )
    .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    for sku in skus {
        assert_eq!(stock(app, admin, sku).await, (5, 0), "{sku} given back");
    }
}

/// The SKU router of a request that shares its order with another request with the same
/// key, which acts around it once each: it reserves `first` for the order just before
/// this request does (so this one finds it reserved), and, failing, releases it just
/// before this request reserves `last`.
struct ReleasedBehind {
    inner: SkuRouter,
    first: &'static str,
    last: &'static str,
    reserved_first: AtomicBool,
    released_first: AtomicBool,
}

impl EntityRouter<Sku> for ReleasedBehind {
    fn send(
        &self,
        sku: String,
        request: SkuRequest,
    ) -> BoxFuture<'static, Result<SkuReply, InventoryError>> {
        let inner = self.inner.clone();
        let mut before = None;
        if let SkuRequest::Execute(Command::Reserve {
            order_id,
            quantity,
            ttl_ms,
            actor,
            holder,
            ..
        }) = &request
        {
            if sku == self.first && !self.reserved_first.swap(true, Ordering::SeqCst) {
                let reserve = Command::Reserve {
                    order_id: order_id.clone(),
                    quantity: *quantity,
                    ttl_ms: *ttl_ms,
                    actor: actor.clone(),
                    holder: holder.clone(),
                    place: Placement::default(),
                };
                before = Some((self.first, reserve));
            }
            if sku == self.last && !self.released_first.swap(true, Ordering::SeqCst) {
                let release = Command::Release {
                    order_id: order_id.clone(),
                    actor: actor.clone(),
                    reason: "the other request failed".to_owned(),
                };
                before = Some((self.first, release));
            }
        }
        async move {
            if let Some((sku, command)) = before {
                inner
                    .send(sku.to_owned(), SkuRequest::Execute(command))
                    .await?;
            }
            inner.send(sku, request).await
        }
        .boxed()
    }

    fn serves_here(&self, sku: &str) -> bool {
        self.inner.serves_here(sku)
    }
}

/// Two requests with one key share one order: the request that places it found one
/// line reserved by the other, which then failed and released it before the order was
/// stored. The placing request holds that line again.
#[actix_web::test]
async fn the_request_placing_a_shared_order_holds_again_a_line_the_other_released() {
    let skus = ["SHARED-A", "SHARED-B"];
    let (app, admin, shopper) = two_skus_in_stock("shared-placer", skus).await;
    let interleaved = ReleasedBehind {
        inner: app.state.inventory.router().clone(),
        first: skus[0],
        last: skus[1],
        reserved_first: AtomicBool::new(false),
        released_first: AtomicBool::new(false),
    };
    let placer = checkouts_through(&app, interleaved);

    let (placed, created) = placer
        .create(
            &shopper.id,
            two_lines(skus[0], skus[1]),
            Some("shared-1".to_owned()),
        )
        .await
        .unwrap();
    assert!(created);
    both_lines_held_by(&app, &admin, &shopper, &placed.id, skus).await;
}

/// The SKU router of a request whose last line, `last`, fails (sold out, say), while
/// the other request with the same key, `other`, places the order just then: it finds
/// this request's reservations made and the stock of `last` back.
struct PlacedMeanwhile {
    inner: SkuRouter,
    last: &'static str,
    other: OrderService,
    user_id: String,
    input: CreateOrderInput,
    key: String,
    placed: AtomicBool,
}

impl EntityRouter<Sku> for PlacedMeanwhile {
    fn send(
        &self,
        sku: String,
        request: SkuRequest,
    ) -> BoxFuture<'static, Result<SkuReply, InventoryError>> {
        let reserves_last =
            sku == self.last && matches!(request, SkuRequest::Execute(Command::Reserve { .. }));
        if !reserves_last {
            return self.inner.send(sku, request);
        }
        let place_other = !self.placed.swap(true, Ordering::SeqCst);
        let other = self.other.clone();
        let (user_id, input, key) = (self.user_id.clone(), self.input.clone(), self.key.clone());
        async move {
            if place_other {
                let (_, created) = other.create(&user_id, input, Some(key)).await.unwrap();
                assert!(created, "the other request placed the order");
            }
            Err(InventoryError::Stock(StockError::Insufficient {
                available: 0,
            }))
        }
        .boxed()
    }

    fn serves_here(&self, sku: &str) -> bool {
        self.inner.serves_here(sku)
    }
}

/// Two requests with one key share one order: one reserves a line, fails on the next
/// and releases what it reserved, while the other, counting on that reservation, has
/// placed the order. The failing request holds the line again and answers the order.
#[actix_web::test]
async fn a_failing_request_holds_again_what_it_released_of_the_shared_order_placed_meanwhile() {
    let skus = ["MEANWHILE-A", "MEANWHILE-B"];
    let (app, admin, shopper) = two_skus_in_stock("shared-failer", skus).await;
    let key = "shared-2".to_owned();
    let meanwhile = PlacedMeanwhile {
        inner: app.state.inventory.router().clone(),
        last: skus[1],
        other: app.state.orders.clone(),
        user_id: shopper.id.clone(),
        input: two_lines(skus[0], skus[1]),
        key: key.clone(),
        placed: AtomicBool::new(false),
    };
    let failing = checkouts_through(&app, meanwhile);

    let (answered, created) = failing
        .create(&shopper.id, two_lines(skus[0], skus[1]), Some(key))
        .await
        .unwrap();
    assert!(!created, "the other request placed it");
    both_lines_held_by(&app, &admin, &shopper, &answered.id, skus).await;
}
