//! Who sees and may change what in the catalog: drafts and archived products are hidden
//! from shoppers by id, by SKU and in searches (both engines); unknown and malformed ids
//! are not found; and every admin path refuses anonymous callers, customers and bad
//! tokens, changing nothing (SQLite).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use super::{
    by_id, by_sku, create, create_category, id_of, matching, ok_json, patch_product, product,
    search_response, seed, send, set, transition, CSV_HEADER,
};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(statuses_hide_drafts_and_archives_from_shoppers);

async fn statuses_hide_drafts_and_archives_from_shoppers(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let seeded = seed(&app, &admin).await;
    let customer = app.customer("shopper").await;
    let shoppers = [None, Some(customer.access_token.as_str())];

    for token in shoppers {
        // Non-active statuses are for admins only.
        for status in ["draft", "archived", "active,draft", "draft,archived"] {
            assert_problem(
                search_response(&app, token, &[("status", status)]).await,
                403,
                "forbidden",
            )
            .await;
        }
        // Hidden by id and by SKU.
        for sku in ["JACKET", "BOOT"] {
            assert_problem(by_id(&app, token, &seeded.ids[sku]).await, 404, "not_found").await;
            assert_problem(by_sku(&app, token, sku).await, 404, "not_found").await;
            assert_problem(
                by_sku(&app, token, &sku.to_lowercase()).await,
                404,
                "not_found",
            )
            .await;
        }
        // Active products by id and by SKU in any case.
        let shirt = ok_json(by_id(&app, token, &seeded.ids["SHIRT"]).await).await;
        assert_eq!(shirt["sku"], "SHIRT");
        assert_eq!(shirt["status"], "active");
        assert_eq!(shirt["category_id"], seeded.apparel.as_str());
        assert_eq!(shirt["tags"], json!(["linen", "summer"]));
        assert_eq!(shirt["attributes"], json!({"color": "white", "size": "m"}));
        assert_eq!(shirt["price"], json!({"amount": 3000, "currency": "EUR"}));
        let by_lower_sku = ok_json(by_sku(&app, token, "shirt").await).await;
        assert_eq!(by_lower_sku, shirt);
    }

    // Admins read every status.
    for sku in ["JACKET", "BOOT"] {
        let found = ok_json(by_id(&app, Some(&admin.access_token), &seeded.ids[sku]).await).await;
        assert_eq!(found["sku"], sku);
        let found = ok_json(by_sku(&app, Some(&admin.access_token), sku).await).await;
        assert_eq!(found["sku"], sku);
    }

    // Restoring makes a draft: still hidden. Activating shows it again, everywhere.
    let boot = &seeded.ids["BOOT"];
    let restored = transition(&app, &admin, boot, "restore").await;
    assert_eq!(restored["status"], "draft");
    assert_problem(by_id(&app, None, boot).await, 404, "not_found").await;
    assert!(!matching(&app, None, &[]).await.contains("BOOT"));
    let activated = patch_product(&app, &admin, boot, json!({"status": "active"})).await;
    assert_eq!(activated.status(), StatusCode::OK);
    assert_eq!(
        ok_json(by_id(&app, None, boot).await).await["status"],
        "active"
    );
    assert_eq!(
        ok_json(by_sku(&app, None, "BOOT").await).await["id"],
        boot.as_str()
    );
    assert!(matching(&app, None, &[]).await.contains("BOOT"));
    assert!(matching(&app, None, &[("category", seeded.shoes.as_str())])
        .await
        .contains("BOOT"));

    // Archiving an active product hides it at once.
    let shirt = &seeded.ids["SHIRT"];
    transition(&app, &admin, shirt, "archive").await;
    assert_problem(by_id(&app, None, shirt).await, 404, "not_found").await;
    assert_problem(by_sku(&app, None, "SHIRT").await, 404, "not_found").await;
    assert!(!matching(&app, None, &[]).await.contains("SHIRT"));
    assert!(!matching(&app, None, &[("q", "linen")])
        .await
        .contains("SHIRT"));
    assert_eq!(
        matching(&app, Some(&admin.access_token), &[("status", "archived")]).await,
        set(&["SHIRT"])
    );
}

#[actix_web::test]
async fn unknown_and_malformed_ids_are_not_found() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = admin.access_token.as_str();
    let real = create(&app, &admin, product("REAL-1", "Real Thing", 100)).await;
    let unknown = souk_db::ids::new_id();
    let upper = id_of(&real).to_uppercase();
    for id in [
        unknown.as_str(),
        "not-an-id",
        "1",
        "%27%20OR%201%3D1",
        upper.as_str(),
        "00000000-0000-0000-0000-000000000000",
    ] {
        for token in [None, Some(token)] {
            assert_problem(by_id(&app, token, id).await, 404, "not_found").await;
        }
        assert_problem(
            patch_product(&app, &admin, id, json!({"name": "Nope"})).await,
            404,
            "not_found",
        )
        .await;
        for action in ["archive", "restore"] {
            let response = app
                .post_json_as(
                    &format!("/api/v1/admin/products/{id}/{action}"),
                    token,
                    &json!({}),
                )
                .await;
            assert_problem(response, 404, "not_found").await;
        }
        assert_problem(
            send(
                &app,
                Method::PATCH,
                &format!("/api/v1/admin/categories/{id}"),
                Some(token),
                Some(&json!({"name": "Nope"})),
            )
            .await,
            404,
            "not_found",
        )
        .await;
        assert_problem(
            send(
                &app,
                Method::DELETE,
                &format!("/api/v1/admin/categories/{id}"),
                Some(token),
                None,
            )
            .await,
            404,
            "not_found",
        )
        .await;
    }
    for sku in [
        "NOPE-1",
        "x",
        "%25",
        "A%20B",
        "%27%20OR%20%271%27%3D%271",
        "-AB",
    ] {
        assert_problem(by_sku(&app, Some(token), sku).await, 404, "not_found").await;
    }
    // The real one is untouched.
    assert_eq!(
        ok_json(by_id(&app, Some(token), &id_of(&real)).await).await,
        real
    );
}

#[actix_web::test]
async fn admin_catalog_paths_need_an_admin() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer("nosy").await;
    let product_id = id_of(&create(&app, &admin, product("MINE-1", "Mine", 100)).await);
    let category_id = id_of(&create_category(&app, &admin, "Guarded", None).await);
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/api/v1/admin/products".to_owned(),
            Some(product("THEIRS-1", "Theirs", 1)),
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/products/{product_id}"),
            Some(json!({"name": "Hijacked"})),
        ),
        (
            Method::POST,
            format!("/api/v1/admin/products/{product_id}/archive"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/api/v1/admin/products/{product_id}/restore"),
            Some(json!({})),
        ),
        (
            Method::POST,
            "/api/v1/admin/products/import".to_owned(),
            Some(json!([product("THEIRS-2", "Theirs", 1)])),
        ),
        (
            Method::POST,
            "/api/v1/admin/categories".to_owned(),
            Some(json!({"name": "Theirs"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/categories/{category_id}"),
            Some(json!({"name": "Hijacked"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/categories/{category_id}"),
            None,
        ),
    ];
    for (method, path, body) in &calls {
        let anonymous = send(&app, method.clone(), path, None, body.as_ref()).await;
        assert_problem(anonymous, 401, "missing_token").await;
        let as_customer = send(
            &app,
            method.clone(),
            path,
            Some(&customer.access_token),
            body.as_ref(),
        )
        .await;
        assert_problem(as_customer, 403, "forbidden").await;
        let bad_token = send(&app, method.clone(), path, Some("garbage"), body.as_ref()).await;
        assert_problem(bad_token, 401, "invalid_token").await;
    }
    // CSV imports are refused before their body is read.
    let csv = app
        .client
        .post(app.url("/api/v1/admin/products/import"))
        .bearer_auth(&customer.access_token)
        .header("content-type", "text/csv")
        .body(format!("{CSV_HEADER}\nTHEIRS-3,Theirs,,1,EUR,,,,,active\n"))
        .send()
        .await
        .unwrap();
    assert_problem(csv, 403, "forbidden").await;

    // Nothing changed.
    let mine = ok_json(by_id(&app, None, &product_id).await).await;
    assert_eq!(mine["name"], "Mine");
    assert_eq!(mine["status"], "active");
    assert_eq!(
        matching(&app, Some(&admin.access_token), &[]).await,
        set(&["MINE-1"])
    );
    let tree: Value = app.get("/api/v1/categories").await.json().await.unwrap();
    assert_eq!(tree["items"].as_array().unwrap().len(), 1);
    assert_eq!(tree["items"][0]["name"], "Guarded");
}
