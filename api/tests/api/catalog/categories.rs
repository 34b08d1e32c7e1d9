//! The category tree's refusals over HTTP (SQLite): no cycles, slugs unique in any case,
//! bad names, slugs and parents refused, no delete of a category that holds categories or
//! products (archived ones too); legal moves and renames go through.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{create, create_category, id_of, patch_product, product, set, transition, with};
use crate::helpers::*;

#[actix_web::test]
async fn categories_refuse_cycles_taken_slugs_and_non_empty_deletes() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = admin.access_token.as_str();
    let outdoor = create_category(&app, &admin, "Outdoor & Camping", None).await;
    assert_eq!(outdoor["slug"], "outdoor-camping");
    let tents = create_category(&app, &admin, "Tents", Some(outdoor["id"].as_str().unwrap())).await;
    let domes = create_category(
        &app,
        &admin,
        "Dome Tents",
        Some(tents["id"].as_str().unwrap()),
    )
    .await;
    let patch_category = |id: &Value, body: Value| {
        let request = app
            .client
            .patch(app.url(&format!(
                "/api/v1/admin/categories/{}",
                id.as_str().unwrap()
            )))
            .bearer_auth(token)
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    let delete_category = |id: &Value| {
        let request = app
            .client
            .delete(app.url(&format!(
                "/api/v1/admin/categories/{}",
                id.as_str().unwrap()
            )))
            .bearer_auth(token);
        async move { request.send().await.unwrap() }
    };

    // Cycles: under itself, its child, its grandchild.
    for parent in [&outdoor["id"], &tents["id"], &domes["id"]] {
        assert_problem(
            patch_category(&outdoor["id"], json!({"parent_id": parent})).await,
            409,
            "category_cycle",
        )
        .await;
    }
    assert_problem(
        patch_category(&tents["id"], json!({"parent_id": domes["id"]})).await,
        409,
        "category_cycle",
    )
    .await;
    let tree: Value = app.get("/api/v1/categories").await.json().await.unwrap();
    assert_eq!(tree["items"].as_array().unwrap().len(), 1, "{tree}");
    assert_eq!(tree["items"][0]["id"], outdoor["id"]);
    assert_eq!(tree["items"][0]["children"][0]["id"], tents["id"]);
    assert_eq!(
        tree["items"][0]["children"][0]["children"][0]["id"],
        domes["id"]
    );

    // Slugs are unique, whatever their case.
    for body in [
        json!({"name": "Outdoor & Camping"}),
        json!({"name": "Other", "slug": "outdoor-camping"}),
        json!({"name": "Other", "slug": "OUTDOOR-CAMPING"}),
    ] {
        assert_problem(
            app.post_json_as("/api/v1/admin/categories", token, &body)
                .await,
            409,
            "slug_taken",
        )
        .await;
    }
    assert_problem(
        patch_category(&tents["id"], json!({"slug": "outdoor-camping"})).await,
        409,
        "slug_taken",
    )
    .await;
    for (body, field) in [
        (json!({"name": "Bad", "slug": "no spaces"}), "slug"),
        (json!({"name": "!!!"}), "slug"),
        (json!({"name": ""}), "name"),
        (
            json!({"name": "Orphan", "parent_id": souk_db::ids::new_id()}),
            "parent_id",
        ),
    ] {
        let problem = assert_problem(
            app.post_json_as("/api/v1/admin/categories", token, &body)
                .await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    assert_problem(
        app.post_json_as(
            "/api/v1/admin/categories",
            token,
            &json!({"name": "X", "icon": "x"}),
        )
        .await,
        400,
        "invalid_body",
    )
    .await;

    // Not empty: a child, then a product.
    assert_problem(
        delete_category(&tents["id"]).await,
        409,
        "category_not_empty",
    )
    .await;
    let tent = create(
        &app,
        &admin,
        with(
            product("TENT-1", "Dome Tent", 20000),
            json!({"category_id": domes["id"]}),
        ),
    )
    .await;
    assert_problem(
        delete_category(&domes["id"]).await,
        409,
        "category_not_empty",
    )
    .await;
    // Archived products still count.
    transition(&app, &admin, &id_of(&tent), "archive").await;
    assert_problem(
        delete_category(&domes["id"]).await,
        409,
        "category_not_empty",
    )
    .await;
    let moved = patch_product(
        &app,
        &admin,
        &id_of(&tent),
        json!({"category_id": tents["id"]}),
    )
    .await;
    assert_eq!(moved.status(), StatusCode::OK);
    assert_eq!(
        delete_category(&domes["id"]).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(delete_category(&domes["id"]).await, 404, "not_found").await;
    assert_problem(
        delete_category(&tents["id"]).await,
        409,
        "category_not_empty",
    )
    .await;

    // A legal move: Tents becomes a root; renaming keeps the slug unless given.
    let moved = patch_category(
        &tents["id"],
        json!({"parent_id": null, "name": "All Tents"}),
    )
    .await;
    assert_eq!(moved.status(), StatusCode::OK);
    let moved: Value = moved.json().await.unwrap();
    assert_eq!(moved["parent_id"], Value::Null);
    assert_eq!(moved["slug"], "tents");
    let tree: Value = app.get("/api/v1/categories").await.json().await.unwrap();
    let roots: BTreeSet<String> = tree["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|root| root["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(roots, set(&["All Tents", "Outdoor & Camping"]));
    // Now Outdoor may go under Tents.
    let under = patch_category(&outdoor["id"], json!({"parent_id": tents["id"]})).await;
    assert_eq!(under.status(), StatusCode::OK);
}

/// Categories nest at most `MAX_LEVELS` deep: a category below that, created or moved
/// there, is refused; every level up to it shows in the tree.
#[actix_web::test]
async fn categories_nest_at_most_the_levels_the_tree_shows() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let max = souk_actors::catalog::MAX_CATEGORY_LEVELS;
    let mut parent: Option<String> = None;
    for level in 1..=max {
        let made =
            create_category(&app, &admin, &format!("Level {level}"), parent.as_deref()).await;
        parent = Some(made["id"].as_str().unwrap().to_owned());
    }
    let deepest = parent.unwrap();
    let below = app
        .post_json_as(
            "/api/v1/admin/categories",
            &admin.access_token,
            &json!({"name": "Too deep", "parent_id": deepest}),
        )
        .await;
    let refused = assert_problem(below, 422, "validation_failed").await;
    assert_eq!(refused["errors"][0]["field"], "parent_id", "{refused}");

    // A category with a child of its own moved under the level above the deepest would
    // put that child one level too deep.
    let pair = create_category(&app, &admin, "Pair", None).await;
    create_category(&app, &admin, "Pair child", pair["id"].as_str()).await;
    let (above_deepest,): (String,) =
        sqlx::query_as("SELECT parent_id FROM categories WHERE id = ?")
            .bind(&deepest)
            .fetch_one(app.database.db.pool())
            .await
            .unwrap();
    let moved = app
        .client
        .patch(app.url(&format!(
            "/api/v1/admin/categories/{}",
            pair["id"].as_str().unwrap()
        )))
        .bearer_auth(&admin.access_token)
        .json(&json!({"parent_id": above_deepest}))
        .send()
        .await
        .unwrap();
    assert_problem(moved, 422, "validation_failed").await;

    let tree: Value = app.get("/api/v1/categories").await.json().await.unwrap();
    let chain = tree["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|root| root["name"] == "Level 1")
        .unwrap();
    let mut levels = 1;
    let mut node = chain;
    while let Some(child) = node["children"]
        .as_array()
        .and_then(|children| children.first())
    {
        levels += 1;
        node = child;
    }
    assert_eq!(levels, max);
}

crate::on_both_backends!(two_categories_moved_under_each_other_at_once_do_not_form_a_cycle);

/// Two moves at once, each of a category under the other: one goes through and the
/// other is refused as a cycle, every time; the tree never loses them.
async fn two_categories_moved_under_each_other_at_once_do_not_form_a_cycle(
    backend: souk_db::testing::TestBackend,
) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let move_under = |id: String, parent: String| {
        let request = app
            .client
            .patch(app.url(&format!("/api/v1/admin/categories/{id}")))
            .bearer_auth(&admin.access_token)
            .json(&json!({"parent_id": parent}));
        async move { request.send().await.unwrap().status() }
    };
    for round in 0..15 {
        let x = id_of(&create_category(&app, &admin, &format!("X{round}"), None).await);
        let y = id_of(&create_category(&app, &admin, &format!("Y{round}"), None).await);
        let (first, second) = tokio::join!(
            move_under(x.clone(), y.clone()),
            move_under(y.clone(), x.clone())
        );
        let mut statuses = [first.as_u16(), second.as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "round {round}");
        let tree: Value = app.get("/api/v1/categories").await.json().await.unwrap();
        let roots: Vec<&str> = tree["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|root| root["name"].as_str().unwrap())
            .collect();
        let (x_name, y_name) = (format!("X{round}"), format!("Y{round}"));
        assert!(
            roots.contains(&x_name.as_str()) || roots.contains(&y_name.as_str()),
            "round {round}: the pair vanished from the tree: {roots:?}"
        );
    }
}
