//! The address book repository on both engines: rows are reached only through their
//! owner, the cap holds under concurrent inserts, edits are conditional on the version
//! read, and an order's address snapshots round-trip through the multi-row insert.

use std::sync::Arc;

use souk_db::addresses::{self, AddressRecord, Inserted};
use souk_db::clock::now_micros;
use souk_db::ids;
use souk_db::orders::{self, HistoryRecord, NewOrder, OrderRecord};
use souk_db::outbox::OutboxEvent;
use souk_db::testing::{fresh, pending_order, TestBackend};
use souk_db::users::{self, UserRecord};
use souk_db::Db;

souk_db::on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    addresses_are_reached_only_through_their_owner,
    the_cap_holds_under_concurrent_inserts,
    edits_are_conditional_on_the_version,
    order_snapshots_round_trip,
);

async fn user(db: &Db) -> String {
    let now = now_micros();
    let id = ids::new_id();
    let record = UserRecord {
        id: id.clone(),
        email: format!("{id}@example.com"),
        name: "Ada".to_owned(),
        password_hash: "x".to_owned(),
        role: "customer".to_owned(),
        status: "active".to_owned(),
        email_verified_at: None,
        created_at: now,
        updated_at: now,
    };
    users::insert(db.pool(), &record).await.unwrap();
    id
}

fn address(user_id: &str, city: &str) -> AddressRecord {
    let now = now_micros();
    AddressRecord {
        id: ids::new_id(),
        user_id: user_id.to_owned(),
        name: "Ada Lovelace".to_owned(),
        line1: "1 Main Street".to_owned(),
        line2: None,
        city: city.to_owned(),
        region: Some("Région".to_owned()),
        postal_code: Some("10115".to_owned()),
        country: "DE".to_owned(),
        phone: None,
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

async fn insert(db: &Db, record: &AddressRecord, max: u32) -> Inserted {
    let mut connection = db.pool().acquire().await.unwrap();
    addresses::insert(&mut connection, record, max)
        .await
        .unwrap()
}

async fn addresses_are_reached_only_through_their_owner(backend: TestBackend) {
    let test = fresh(backend).await;
    let db = &test.db;
    let (ada, bob) = (user(db).await, user(db).await);
    let home = address(&ada, "Berlin");
    assert_eq!(insert(db, &home, 20).await, Inserted::Inserted);
    let found = addresses::find(db.pool(), &ada, &home.id).await.unwrap();
    assert_eq!(found.as_ref(), Some(&home));
    assert_eq!(
        addresses::find(db.pool(), &bob, &home.id).await.unwrap(),
        None
    );
    assert!(!addresses::delete(db.pool(), &bob, &home.id).await.unwrap());
    let mut stolen = home.clone();
    stolen.user_id = bob.clone();
    stolen.version = 2;
    assert!(!addresses::update(db.pool(), &stolen, 1).await.unwrap());
    assert!(addresses::list(db.pool(), &bob, None, 20)
        .await
        .unwrap()
        .is_empty());

    // Pages in creation order, each row once.
    for city in ["Bonn", "Köln"] {
        insert(db, &address(&ada, city), 20).await;
    }
    let first = addresses::list(db.pool(), &ada, None, 2).await.unwrap();
    assert_eq!(first.len(), 3, "limit + 1 rows");
    let rest = addresses::list(db.pool(), &ada, Some(&first[1].id), 2)
        .await
        .unwrap();
    let cities: Vec<&str> = first[..2]
        .iter()
        .chain(&rest)
        .map(|row| row.city.as_str())
        .collect();
    assert_eq!(cities, ["Berlin", "Bonn", "Köln"]);

    assert!(addresses::delete(db.pool(), &ada, &home.id).await.unwrap());
    assert!(!addresses::delete(db.pool(), &ada, &home.id).await.unwrap());
    assert_eq!(
        addresses::delete_for_user(db.pool(), &ada).await.unwrap(),
        2
    );
}

async fn the_cap_holds_under_concurrent_inserts(backend: TestBackend) {
    let test = fresh(backend).await;
    let db = Arc::new(test.db.clone());
    let ada = user(&db).await;
    let mut tasks = Vec::new();
    for index in 0..8 {
        let db = db.clone();
        let ada = ada.clone();
        tasks.push(tokio::spawn(async move {
            let record = address(&ada, &format!("City {index}"));
            insert(&db, &record, 5).await
        }));
    }
    let mut inserted = 0;
    for task in tasks {
        if task.await.unwrap() == Inserted::Inserted {
            inserted += 1;
        }
    }
    assert_eq!(inserted, 5);
    let rows = addresses::list(db.pool(), &ada, None, 100).await.unwrap();
    assert_eq!(rows.len(), 5);
}

async fn edits_are_conditional_on_the_version(backend: TestBackend) {
    let test = fresh(backend).await;
    let db = &test.db;
    let ada = user(db).await;
    let home = address(&ada, "Berlin");
    insert(db, &home, 20).await;
    let mut moved = home.clone();
    moved.city = "Hamburg".to_owned();
    moved.line2 = Some("Hinterhaus".to_owned());
    moved.version = 2;
    assert!(addresses::update(db.pool(), &moved, 1).await.unwrap());
    // A writer that read version 1 too loses.
    let mut stale = home.clone();
    stale.city = "München".to_owned();
    stale.version = 2;
    assert!(!addresses::update(db.pool(), &stale, 1).await.unwrap());
    let stored = addresses::find(db.pool(), &ada, &home.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, moved);
}

async fn order_snapshots_round_trip(backend: TestBackend) {
    let test = fresh(backend).await;
    let db = &test.db;
    let now = now_micros();
    let snapshot = |city: &str| {
        serde_json::json!({"name": "Ada", "line1": "1 Main St", "city": city, "country": "DE"})
            .to_string()
    };
    let mut placed = Vec::new();
    for (index, shipping) in [Some(snapshot("Berlin")), None].into_iter().enumerate() {
        let id = ids::new_id();
        placed.push(NewOrder {
            order: OrderRecord {
                request_hash: format!("h{index}"),
                billing_address: shipping.as_ref().map(|_| snapshot("Paris")),
                shipping_address: shipping,
                ..pending_order(&id, "u1", 100)
            },
            lines: vec![orders::LineRecord {
                order_id: id.clone(),
                line_no: 1,
                sku: "SKU-1".to_owned(),
                product_id: ids::new_id(),
                name: "Item".to_owned(),
                unit_amount: 100,
                quantity: 1,
            }],
            history: HistoryRecord {
                id: ids::new_id(),
                order_id: id.clone(),
                from_status: None,
                to_status: "pending_payment".to_owned(),
                actor: "user:u1".to_owned(),
                reason: "placed".to_owned(),
                created_at: now,
            },
            event: OutboxEvent {
                id: ids::new_id(),
                topic: "order.placed".to_owned(),
                aggregate_id: id.clone(),
                payload: "{}".to_owned(),
                created_at: now,
                published_at: None,
            },
            max_unpaid: None,
        });
    }
    let mut connection = db.pool().acquire().await.unwrap();
    orders::insert(&mut connection, &placed).await.unwrap();
    for new in &placed {
        let stored = orders::find(db.pool(), &new.order.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored, new.order);
    }
}
