use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(listing_pages_and_filters);

async fn listing_pages_and_filters(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let mut expected = HashSet::from([admin.email.clone()]);
    for index in 0..23 {
        let tag = if index % 2 == 0 { "even_x" } else { "oddxx" };
        let email = unique_email(tag);
        assert_eq!(
            app.register(&email, PASSWORD).await.status(),
            StatusCode::CREATED
        );
        expected.insert(email);
    }

    // Walk every page: each user exactly once, in creation order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/admin/users?limit=10&cursor={cursor}"),
            None => "/api/v1/admin/users?limit=10".to_owned(),
        };
        let response = app.get_as(&path, &admin.access_token).await;
        assert_eq!(response.status(), StatusCode::OK);
        let page: Value = response.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 10);
        seen.extend(items.iter().map(|user| {
            (
                user["id"].as_str().unwrap().to_owned(),
                user["email"].as_str().unwrap().to_owned(),
            )
        }));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), expected.len());
    assert_eq!(
        seen.iter()
            .map(|(_, email)| email.clone())
            .collect::<HashSet<_>>(),
        expected
    );
    let ids: Vec<&String> = seen.iter().map(|(id, _)| id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "pages come in creation (id) order");

    // `_` is matched literally: "even_x" hits twelve users, "odd_x" none.
    let even: Value = app
        .get_as(
            "/api/v1/admin/users?email=EVEN_X&limit=100",
            &admin.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(even["items"].as_array().unwrap().len(), 12);
    let literal: Value = app
        .get_as(
            "/api/v1/admin/users?email=odd_x&limit=100",
            &admin.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(literal["items"].as_array().unwrap().len(), 0);
    let percent: Value = app
        .get_as(
            "/api/v1/admin/users?email=%25&limit=100",
            &admin.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(percent["items"].as_array().unwrap().len(), 0);

    let admins: Value = app
        .get_as("/api/v1/admin/users?role=admin", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    let admins = admins["items"].as_array().unwrap();
    assert_eq!(admins.len(), 1);
    assert_eq!(admins[0]["email"], admin.email);
}

#[actix_web::test]
async fn bad_listing_parameters_are_client_errors() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    for (query, code) in [
        ("limit=100000", "invalid_query"),
        ("limit=0", "invalid_query"),
        ("limit=-1", "invalid_query"),
        ("limit=ten", "invalid_query"),
        ("role=superuser", "invalid_query"),
        ("sort=email", "invalid_query"),
        ("cursor=not-a-cursor", "invalid_cursor"),
        ("cursor=djE6JyBPUiAxPTEgLS0", "invalid_cursor"),
    ] {
        let response = app
            .get_as(&format!("/api/v1/admin/users?{query}"), &admin.access_token)
            .await;
        assert_problem(response, 400, code).await;
    }
}

#[actix_web::test]
async fn admin_paths_need_an_admin() {
    let app = spawn_app().await;
    let customer = app.customer("nosy").await;
    let victim = app.customer("victim").await;
    let paths = [
        ("GET", "/api/v1/admin/users".to_owned()),
        ("GET", format!("/api/v1/admin/users/{}", victim.id)),
        ("POST", format!("/api/v1/admin/users/{}/disable", victim.id)),
        ("POST", format!("/api/v1/admin/users/{}/enable", victim.id)),
    ];
    for (method, path) in &paths {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let anonymous = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_problem(anonymous, 401, "missing_token").await;
        let as_customer = app
            .client
            .request(method, app.url(path))
            .bearer_auth(&customer.access_token)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(as_customer, 403, "forbidden").await;
        assert!(
            !problem.to_string().contains(&victim.email),
            "no data leaks in the refusal"
        );
    }
    // The customer's refused disable did nothing.
    assert_eq!(
        app.get_as("/api/v1/users/me", &victim.access_token)
            .await
            .status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn admins_read_and_manage_single_users() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let user = app.customer("managed").await;

    let fetched = app
        .get_as(
            &format!("/api/v1/admin/users/{}", user.id),
            &admin.access_token,
        )
        .await;
    assert_eq!(fetched.status(), StatusCode::OK);
    let fetched: Value = fetched.json().await.unwrap();
    assert_eq!(fetched["email"], user.email);

    let unknown = souk_db::ids::new_id();
    for id in [unknown.as_str(), "not-an-id", "1", "%27%20OR%201%3D1"] {
        assert_problem(
            app.get_as(&format!("/api/v1/admin/users/{id}"), &admin.access_token)
                .await,
            404,
            "not_found",
        )
        .await;
        let disable = app
            .post_json_as(
                &format!("/api/v1/admin/users/{id}/disable"),
                &admin.access_token,
                &json!({}),
            )
            .await;
        assert_problem(disable, 404, "not_found").await;
    }

    let own = app
        .post_json_as(
            &format!("/api/v1/admin/users/{}/disable", admin.id),
            &admin.access_token,
            &json!({}),
        )
        .await;
    assert_problem(own, 409, "cannot_modify_self").await;

    let disabled = app
        .post_json_as(
            &format!("/api/v1/admin/users/{}/disable", user.id),
            &admin.access_token,
            &json!({}),
        )
        .await;
    let disabled: Value = disabled.json().await.unwrap();
    assert_eq!(disabled["status"], "disabled");
    let listed: Value = app
        .get_as(
            &format!("/api/v1/admin/users/{}", user.id),
            &admin.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["status"], "disabled");
}

/// The node's supervision tree: its domains, the entity hosts with their live entities,
/// and the supervised tasks; for admins only.
#[actix_web::test]
async fn the_system_tree_lists_domains_hosts_and_tasks() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("tree").await;
    let created = app
        .post_json_as(
            "/api/v1/admin/products",
            &admin.access_token,
            &json!({"sku": "TREE-1", "name": "Tree", "price": {"amount": 100, "currency": "EUR"}, "status": "active"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let adjusted = app
        .post_json_as(
            "/api/v1/admin/inventory/TREE-1/adjust",
            &admin.access_token,
            &json!({"delta": 3, "reason": "stock"}),
        )
        .await;
    assert_eq!(adjusted.status(), StatusCode::OK);

    let response = app
        .get_as("/api/v1/admin/system/tree", &admin.access_token)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let tree: Value = response.json().await.unwrap();
    assert_eq!(tree["kind"], "node");
    let domain = |name: &str| -> Value {
        tree["children"]
            .as_array()
            .unwrap()
            .iter()
            .find(|child| child["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no domain {name} in {tree}"))
    };
    for name in [
        "identity",
        "catalog",
        "inventory",
        "orders",
        "email",
        "outbox",
    ] {
        domain(name);
    }
    let skus = &domain("inventory")["children"][0];
    assert_eq!(skus["name"], "sku actors");
    assert_eq!(skus["kind"], "host");
    assert!(skus["active_entities"].as_u64().unwrap() >= 1, "{skus}");
    assert_eq!(skus["restarts"], 0);
    let order_children = domain("orders")["children"].clone();
    let names: Vec<&str> = order_children
        .as_array()
        .unwrap()
        .iter()
        .map(|child| child["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["order actors", "expiry-sweeper"]);
    assert_eq!(domain("outbox")["children"][0]["name"], "outbox-relay");
    assert_eq!(domain("outbox")["children"][0]["state"], "running");
    assert_eq!(
        domain("email")["children"].as_array().unwrap().len(),
        2,
        "two workers by default"
    );

    let customer = app
        .get_as("/api/v1/admin/system/tree", &shopper.access_token)
        .await;
    assert_problem(customer, 403, "forbidden").await;
    let anonymous = app.get("/api/v1/admin/system/tree").await;
    assert_problem(anonymous, 401, "missing_token").await;
}

/// A node that is not clustered says so, and owns everything; only admins may ask.
#[actix_web::test]
async fn the_cluster_view_of_a_single_node_is_admin_only() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("cluster").await;
    let response = app
        .get_as("/api/v1/admin/cluster", &admin.access_token)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["enabled"], false);
    assert_eq!(view["ready"], true);
    assert_eq!(view["members"], json!([]));
    assert_eq!(view["handoffs"], json!([]));
    assert!(!view["node_id"].as_str().unwrap().is_empty());
    let customer = app
        .get_as("/api/v1/admin/cluster", &shopper.access_token)
        .await;
    assert_problem(customer, 403, "forbidden").await;
    let anonymous = app.get("/api/v1/admin/cluster").await;
    assert_problem(anonymous, 401, "missing_token").await;
}
