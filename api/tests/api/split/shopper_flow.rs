//! One shopper flow (an admin stocks a product; a shopper registers, verifies by the
//! mailed link, searches, orders, pays, fills and clears a cart, prices a variant) on
//! six processes and on one all-in-one process: both observe the same outcome, mails
//! included.

use serde_json::{json, Value};

use super::{six_processes, Deployment, Gateway, Shopper};
use crate::email::{token_in, SmtpSink};
use crate::helpers::*;

/// The shopper flow; returns what a shopper and an admin can observe of it, without
/// ids and times (which differ between runs by design).
async fn shopper_flow(gateway: &Gateway, admin_email: &str, sink: &SmtpSink) -> Value {
    use reqwest::Method;
    let shopper = Shopper::new();
    let admin = shopper.login(gateway, admin_email).await;
    // The inventory's look-up of a SKU no product has yet (which its catalog cache
    // keeps) must not outlive the product's creation by more than its event's way.
    let read_stock = || {
        shopper.send(
            gateway,
            Method::GET,
            "/api/v1/admin/inventory/SPLIT-1",
            Some(&admin),
            None,
            None,
        )
    };
    let (status, unknown) = read_stock().await;
    assert_eq!(status, 404, "{unknown}");
    let (status, product) = shopper
        .send(
            gateway,
            Method::POST,
            "/api/v1/admin/products",
            Some(&admin),
            Some(
                json!({"sku": "SPLIT-1", "name": "Split kettle", "description": "boils apart",
                "price": {"amount": 3450, "currency": "EUR"}, "status": "active"}),
            ),
            None,
        )
        .await;
    assert_eq!(status, 201, "{product}");
    // Well within the catalog cache's TTL (60 s): the inventory's cache forgets the SKU
    // when the product's event arrives.
    within(
        std::time::Duration::from_secs(3),
        "the new product's SKU known to the inventory",
        || async { read_stock().await.0 == 200 },
    )
    .await;
    let (status, stock) = shopper
        .send(
            gateway,
            Method::POST,
            "/api/v1/admin/inventory/SPLIT-1/adjust",
            Some(&admin),
            Some(json!({"delta": 10, "reason": "first delivery"})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{stock}");

    let email = unique_email("split-shopper");
    let (status, registered) = shopper
        .send(
            gateway,
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({"email": email, "password": PASSWORD, "name": "Sam Split"})),
            None,
        )
        .await;
    assert_eq!(status, 201, "{registered}");
    // The welcome mail comes from the email service, told by the auth service over NATS.
    let welcome = sink.wait_for(&email, 1).await;
    let link = "http://shop.test/account/verify-email?token=";
    let verification = token_in(welcome[0]["text"].as_str().unwrap(), link);
    let (status, verified) = shopper
        .send(
            gateway,
            Method::GET,
            &format!("/api/v1/auth/verify-email?token={verification}"),
            None,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{verified}");
    let token = shopper.login(gateway, &email).await;
    let (status, me) = shopper
        .send(
            gateway,
            Method::GET,
            "/api/v1/users/me",
            Some(&token),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{me}");

    let (status, found) = shopper
        .send(
            gateway,
            Method::GET,
            "/api/v1/products?q=kettle",
            None,
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["items"][0]["sku"], "SPLIT-1", "{found}");

    let (status, placed) = shopper
        .send(
            gateway,
            Method::POST,
            "/api/v1/orders",
            Some(&token),
            Some(json!({"items": [{"sku": "SPLIT-1", "quantity": 3}]})),
            Some("split-flow-1"),
        )
        .await;
    assert_eq!(status, 201, "{placed}");
    let order_id = placed["id"].as_str().unwrap().to_owned();
    let (status, paid) = shopper
        .send(
            gateway,
            Method::POST,
            &format!("/api/v1/orders/{order_id}/pay"),
            Some(&token),
            Some(json!({"payment_method": "card"})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{paid}");
    // The cart is the order service's: its lines are priced by the product service
    // and checked against the inventory service's actors, over gRPC.
    let (status, cart) = shopper
        .send(
            gateway,
            Method::PUT,
            "/api/v1/cart/items/SPLIT-1",
            Some(&token),
            Some(json!({"quantity": 2})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{cart}");
    let (cleared, _) = shopper
        .send(
            gateway,
            Method::DELETE,
            "/api/v1/cart",
            Some(&token),
            None,
            None,
        )
        .await;
    // A variant is priced as itself across services too: the order service asks the
    // product service for the product of the variant's SKU and prices the variant.
    let (status, tee) = shopper
        .send(
            gateway,
            Method::POST,
            "/api/v1/admin/products",
            Some(&admin),
            Some(json!({"sku": "SPLIT-TEE", "name": "Split tee",
                "price": {"amount": 1500, "currency": "EUR"}, "status": "active",
                "options": [{"name": "size", "values": ["S", "M"]}],
                "variants": [{"sku": "SPLIT-TEE-S", "options": {"size": "S"}},
                    {"sku": "SPLIT-TEE-M", "options": {"size": "M"},
                     "price": {"amount": 1700, "currency": "EUR"}}]})),
            None,
        )
        .await;
    assert_eq!(status, 201, "{tee}");
    let (status, stocked) = shopper
        .send(
            gateway,
            Method::POST,
            "/api/v1/admin/inventory/SPLIT-TEE-M/adjust",
            Some(&admin),
            Some(json!({"delta": 4, "reason": "first delivery"})),
            None,
        )
        .await;
    assert_eq!(status, 200, "{stocked}");
    let (_, variant_cart) = shopper
        .send(
            gateway,
            Method::PUT,
            "/api/v1/cart/items/SPLIT-TEE-M",
            Some(&token),
            Some(json!({"quantity": 1})),
            None,
        )
        .await;
    let (family_status, family) = shopper
        .send(
            gateway,
            Method::PUT,
            "/api/v1/cart/items/SPLIT-TEE",
            Some(&token),
            Some(json!({"quantity": 1})),
            None,
        )
        .await;
    let (_, stock) = read_stock().await;
    let (_, product) = shopper
        .send(
            gateway,
            Method::GET,
            "/api/v1/products/sku/SPLIT-1",
            None,
            None,
            None,
        )
        .await;
    let (_, orders) = shopper
        .send(
            gateway,
            Method::GET,
            "/api/v1/orders",
            Some(&token),
            None,
            None,
        )
        .await;
    // Welcome, order confirmation and payment received.
    let mails = sink.wait_for(&email, 3).await;
    let mut subjects: Vec<String> = mails
        .iter()
        .map(|mail| {
            mail["subject"]
                .as_str()
                .unwrap()
                .replace(&order_id, "<order>")
        })
        .collect();
    subjects.sort();
    let confirmation = mails
        .iter()
        .find(|mail| mail["text"].as_str().unwrap().contains("Split kettle"))
        .expect("the order confirmation lists the line");
    json!({
        "me": {"name": me["name"], "role": me["role"], "email_verified": me["email_verified"]},
        "mail_subjects": subjects,
        "confirmation_line": confirmation["text"].as_str().unwrap()
            .contains("- 3 x Split kettle (SPLIT-1) at EUR 34.50 = EUR 103.50"),
        "placed": {"status": placed["status"], "total": placed["total"],
            "lines": placed["items"].as_array().unwrap().iter().map(|line| json!({
                "sku": line["sku"], "name": line["name"], "quantity": line["quantity"],
                "unit_price": line["unit_price"], "line_total": line["line_total"],
            })).collect::<Vec<_>>()},
        "paid": {"status": paid["status"], "payment_status": paid["payment_status"]},
        "stock": {"on_hand": stock["on_hand"], "reserved": stock["reserved"], "available": stock["available"]},
        "product_available": product["available"],
        "cart_line": {"unit_price": cart["items"][0]["unit_price"],
            "available": cart["items"][0]["available"], "status": cart["items"][0]["status"]},
        "cart_cleared": cleared,
        "variant_line": {"name": variant_cart["items"][0]["name"],
            "unit_price": variant_cart["items"][0]["unit_price"],
            "available": variant_cart["items"][0]["available"]},
        "family_refused": [family_status, family["errors"][0]["field"]],
        "orders_listed": orders["items"].as_array().map(Vec::len),
    })
}

#[test]
fn six_processes_give_the_same_outcome_as_one() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (split_database, single_database) = runtime.block_on(async {
        (
            souk_db::testing::fresh_mysql().await,
            souk_db::testing::fresh_mysql().await,
        )
    });

    let split_sink = SmtpSink::start();
    let split = Deployment::new(&split_database, &split_sink);
    split.create_admin("boss@split.example");
    let (nodes, gateway, _) = six_processes(&split);
    let split_outcome = runtime.block_on(shopper_flow(&gateway, "boss@split.example", &split_sink));
    drop(nodes);

    let single_sink = SmtpSink::start();
    let single = Deployment::new(&single_database, &single_sink);
    single.create_admin("boss@single.example");
    let node = single.start("all", 0, &[]);
    let single_outcome = runtime.block_on(shopper_flow(
        &Gateway::one(&node.http),
        "boss@single.example",
        &single_sink,
    ));
    drop(node);

    assert_eq!(
        split_outcome["stock"],
        json!({"on_hand": 7, "reserved": 0, "available": 7})
    );
    assert_eq!(split_outcome["paid"]["status"], "paid");
    assert_eq!(split_outcome["me"]["email_verified"], true);
    assert_eq!(split_outcome["confirmation_line"], true);
    assert_eq!(split_outcome["mail_subjects"].as_array().unwrap().len(), 3);
    assert_eq!(
        split_outcome["variant_line"],
        json!({"name": "Split tee (M)", "unit_price": {"amount": 1700, "currency": "EUR"}, "available": 4})
    );
    assert_eq!(split_outcome["family_refused"], json!([422, "sku"]));
    assert_eq!(split_outcome, single_outcome);
}
