//! A node's own caches on the checkout path — live sessions and product snapshots —
//! against changes made on another `souk` process over the same MariaDB and NATS: the
//! node that makes a change applies it at once, the other within the documented bound.

use std::time::Duration;

use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};

use crate::email::SmtpSink;
use crate::helpers::*;
use crate::split::Deployment;

/// What the README documents for a change made on another node to reach a node's
/// caches with the default `outbox.poll_ms` of 500 ms; the deployment here polls every
/// 50 ms, so this leaves the same margin.
const EVENT_BOUND: Duration = Duration::from_secs(1);

struct Caller {
    client: Client,
}

impl Caller {
    async fn send(
        &self,
        method: reqwest::Method,
        url: String,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.client.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    async fn post(&self, node: &str, path: &str, token: Option<&str>, body: Value) -> Response {
        let url = format!("{node}{path}");
        self.send(reqwest::Method::POST, url, token, Some(body))
            .await
    }

    async fn me(&self, node: &str, token: &str) -> StatusCode {
        let url = format!("{node}/api/v1/users/me");
        self.send(reqwest::Method::GET, url, Some(token), None)
            .await
            .status()
    }

    /// Signs in; returns (access token, refresh token).
    async fn login(&self, node: &str, email: &str) -> (String, String) {
        let body = json!({"email": email, "password": PASSWORD});
        let tokens: Value = self
            .post(node, "/api/v1/auth/login", None, body)
            .await
            .json()
            .await
            .unwrap();
        let text = |key: &str| tokens[key].as_str().unwrap().to_owned();
        (text("access_token"), text("refresh_token"))
    }

    /// The names of the top-level categories `node` serves.
    async fn category_names(&self, node: &str) -> Vec<String> {
        let url = format!("{node}/api/v1/categories");
        let tree: Value = self
            .send(reqwest::Method::GET, url, None, None)
            .await
            .json()
            .await
            .unwrap();
        tree["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|category| category["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Places a one-unit order of `sku`; returns its total.
    async fn order_total(&self, node: &str, token: &str, sku: &str) -> i64 {
        let body = json!({"items": [{"sku": sku, "quantity": 1}]});
        let placed = self.post(node, "/api/v1/orders", Some(token), body).await;
        assert_eq!(placed.status(), StatusCode::CREATED);
        let order: Value = placed.json().await.unwrap();
        order["total"]["amount"].as_i64().unwrap()
    }
}

#[test]
fn changes_on_one_node_reach_the_other_nodes_caches_within_the_bound() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = runtime.block_on(souk_db::testing::fresh_mysql());
    let sink = SmtpSink::start();
    let deployment = Deployment::new(&database, &sink);
    deployment.create_admin("boss@caches.example");
    // The shopper below places an order per poll: no caps on unpaid orders.
    let uncapped = [
        ("SOUK_ORDERS_MAX_UNPAID_ORDERS".to_owned(), "0".to_owned()),
        ("SOUK_ORDERS_MAX_UNITS_PER_SKU".to_owned(), "0".to_owned()),
    ];
    let writer = deployment.start("all", 0, &uncapped);
    let reader = deployment.start("all", 0, &uncapped);
    let (writer, reader) = (writer.http.as_str(), reader.http.as_str());
    runtime.block_on(async {
        let caller = Caller {
            client: Client::new(),
        };
        for node in [writer, reader] {
            within(Duration::from_secs(20), "node ready", || async {
                let url = format!("{node}/readyz");
                caller
                    .client
                    .get(url)
                    .send()
                    .await
                    .is_ok_and(|response| response.status() == StatusCode::OK)
            })
            .await;
        }
        let (admin, _) = caller.login(writer, "boss@caches.example").await;
        let email = "kim@caches.example";
        let registered = caller
            .post(
                writer,
                "/api/v1/auth/register",
                None,
                json!({"email": email, "password": PASSWORD, "name": "Kim Cache"}),
            )
            .await;
        assert_eq!(registered.status(), StatusCode::CREATED);
        let user_id = registered.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (first, first_refresh) = caller.login(writer, email).await;
        let (second, _) = caller.login(writer, email).await;
        // Both nodes now hold both sessions.
        for node in [writer, reader] {
            for token in [&first, &second] {
                assert_eq!(caller.me(node, token).await, StatusCode::OK);
            }
        }

        // A logout on the writer: refused there at once, on the reader within the
        // bound; the account's other session goes on.
        let logout = json!({"refresh_token": first_refresh});
        let ended = caller
            .post(writer, "/api/v1/auth/logout", None, logout)
            .await;
        assert_eq!(ended.status(), StatusCode::NO_CONTENT);
        assert_eq!(caller.me(writer, &first).await, StatusCode::UNAUTHORIZED);
        let lag = within(EVENT_BOUND, "logout seen by the other node", || async {
            caller.me(reader, &first).await == StatusCode::UNAUTHORIZED
        })
        .await;
        eprintln!("logout: refused on the other node after {lag:?}");
        assert_eq!(caller.me(reader, &second).await, StatusCode::OK);

        // A disabled account: the same.
        let disable = format!("/api/v1/admin/users/{user_id}/disable");
        let disabled = caller.post(writer, &disable, Some(&admin), json!({})).await;
        assert_eq!(disabled.status(), StatusCode::OK);
        assert_eq!(caller.me(writer, &second).await, StatusCode::FORBIDDEN);
        let lag = within(EVENT_BOUND, "disabling seen by the other node", || async {
            caller.me(reader, &second).await == StatusCode::FORBIDDEN
        })
        .await;
        eprintln!("disabled: refused on the other node after {lag:?}");

        // A price change on the writer: the reader's checkouts, which priced from
        // their snapshot, pay the new price within the bound.
        let product = json!({
            "sku": "CACHE-1",
            "name": "Snapshot Kettle",
            "price": {"amount": 1500, "currency": "EUR"},
            "status": "active",
        });
        let created = caller
            .post(writer, "/api/v1/admin/products", Some(&admin), product)
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let product_id = created.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let stock = json!({"delta": 1000, "reason": "count"});
        let adjust = "/api/v1/admin/inventory/CACHE-1/adjust";
        let stocked = caller.post(writer, adjust, Some(&admin), stock).await;
        assert_eq!(stocked.status(), StatusCode::OK);
        let register =
            json!({"email": "lee@caches.example", "password": PASSWORD, "name": "Lee Cache"});
        let signed_up = caller
            .post(reader, "/api/v1/auth/register", None, register)
            .await;
        assert_eq!(signed_up.status(), StatusCode::CREATED);
        let (shopper, _) = caller.login(reader, "lee@caches.example").await;
        for node in [writer, reader] {
            assert_eq!(caller.order_total(node, &shopper, "CACHE-1").await, 1500);
        }
        let repriced = caller
            .client
            .patch(format!("{writer}/api/v1/admin/products/{product_id}"))
            .bearer_auth(&admin)
            .json(&json!({"price": {"amount": 2500, "currency": "EUR"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(repriced.status(), StatusCode::OK);
        assert_eq!(caller.order_total(writer, &shopper, "CACHE-1").await, 2500);
        let lag = within(EVENT_BOUND, "new price on the other node", || async {
            caller.order_total(reader, &shopper, "CACHE-1").await == 2500
        })
        .await;
        eprintln!("repriced: charged on the other node after {lag:?}");

        // A category created, then renamed, on the writer: the reader's cached tree
        // shows each change within the bound.
        assert!(
            caller.category_names(reader).await.is_empty(),
            "the reader caches an empty tree"
        );
        let created = caller
            .post(
                writer,
                "/api/v1/admin/categories",
                Some(&admin),
                json!({"name": "Lamps"}),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let category_id = created.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let lag = within(EVENT_BOUND, "new category on the other node", || async {
            caller.category_names(reader).await == ["Lamps"]
        })
        .await;
        eprintln!("category created: in the other node's tree after {lag:?}");
        let renamed = caller
            .client
            .patch(format!("{writer}/api/v1/admin/categories/{category_id}"))
            .bearer_auth(&admin)
            .json(&json!({"name": "Lights"}))
            .send()
            .await
            .unwrap();
        assert_eq!(renamed.status(), StatusCode::OK);
        let lag = within(
            EVENT_BOUND,
            "renamed category on the other node",
            || async { caller.category_names(reader).await == ["Lights"] },
        )
        .await;
        eprintln!("category renamed: in the other node's tree after {lag:?}");
    });
}
