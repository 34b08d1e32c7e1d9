//! The README's pictures of the console, taken by the same headless Chromium as the
//! browser test, of a small demo shop in the middle of a sale. Ignored by default (it
//! writes files); refresh them with
//! `cargo test -p souk-api --test api console::screenshots -- --ignored`.

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::json;

use super::{place_order, product, Browser};
use crate::helpers::*;

const SHOP: [(&str, &str, i64, i64); 12] = [
    ("HOME-001", "Brass desk lamp", 40, 5),
    ("HOME-002", "Wool rug, 160 × 230", 12, 3),
    ("HOME-003", "Espresso cups, set of 4", 300, 20),
    ("HOME-004", "Linen throw", 6, 8),
    ("HOME-005", "Ceramic vase", 0, 2),
    ("HOME-006", "Oak side table", 9, 2),
    ("HOME-007", "Beeswax candles, pack of 6", 120, 10),
    ("HOME-008", "Walnut cutting board", 25, 5),
    ("HOME-009", "Copper kettle", 3, 4),
    ("HOME-010", "Glass carafe", 60, 6),
    ("HOME-011", "Stoneware bowls, set of 2", 48, 6),
    ("HOME-012", "Cotton tote bag", 200, 0),
];

fn directory() -> PathBuf {
    std::env::var_os("SOUK_CONSOLE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/console"))
}

async fn shoot(browser: &Browser, name: &str) {
    // Past the highlight of the last live update.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let png = browser.client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name} is not a PNG");
    let path = directory().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    println!("wrote {}", path.display());
}

#[actix_web::test]
#[ignore = "writes docs/console/*.png; run it to refresh the README's screenshots"]
async fn screenshots_for_the_readme() {
    std::fs::create_dir_all(directory()).unwrap();
    let app = spawn_app().await;
    let admin = app.admin().await;
    for (sku, name, stock, threshold) in SHOP {
        product(&app, &admin, sku, name).await;
        let adjusted = app
            .post_json_as(
                &format!("/api/v1/admin/inventory/{sku}/adjust"),
                &admin.access_token,
                &json!({"delta": stock, "reason": "opening stock", "low_stock_threshold": threshold}),
            )
            .await;
        assert_eq!(adjusted.status(), StatusCode::OK);
    }
    let browser = Browser::start().await;
    browser.client.goto(&app.url("/admin/login")).await.unwrap();
    shoot(&browser, "login").await;
    browser.sign_in(&app, &admin.email, PASSWORD).await;
    browser.wait_text("h1", |text| text == "Stock").await;

    // A sale: shoppers reserve cups, lamps and a rug; some pay, one order ships.
    let mut paid = Vec::new();
    for index in 0..6 {
        let shopper = app.customer(&format!("shopper{index}")).await;
        for (sku, quantity) in [("HOME-003", 2), ("HOME-003", 1), ("HOME-001", 1)] {
            place_order(&app, &shopper, sku, quantity).await;
        }
        if index < 3 {
            let order = place_order(&app, &shopper, "HOME-002", 1).await;
            let response = app
                .post_json_as(
                    &format!("/api/v1/orders/{order}/pay"),
                    &shopper.access_token,
                    &json!({"payment_method": "test-card-ok"}),
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK);
            paid.push(order);
        }
    }
    let shipped = app
        .post_json_as(
            &format!("/api/v1/admin/orders/{}/ship", paid[0]),
            &admin.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(shipped.status(), StatusCode::OK);

    browser.client.goto(&app.url("/admin/stock")).await.unwrap();
    browser
        .wait_text("#hot-skus", |text| text.contains("HOME-003"))
        .await;
    browser
        .wait_text("#live-status", |text| text == "live")
        .await;
    shoot(&browser, "stock").await;

    browser
        .client
        .goto(&app.url("/admin/stock/HOME-003"))
        .await
        .unwrap();
    browser
        .wait_text("#live-status", |text| text == "live")
        .await;
    browser.click("#adjust input[value=set]").await;
    browser.fill("#adjust input[name=amount]", "10").await;
    browser
        .fill("#adjust input[name=reason]", "stock count")
        .await;
    browser.click("#adjust button[type=submit]").await;
    browser.wait_text(".problem", |text| !text.is_empty()).await;
    shoot(&browser, "sku").await;

    browser
        .client
        .goto(&app.url("/admin/orders"))
        .await
        .unwrap();
    shoot(&browser, "orders").await;
    browser
        .client
        .goto(&app.url(&format!("/admin/orders/{}", paid[1])))
        .await
        .unwrap();
    shoot(&browser, "order").await;
    browser
        .client
        .goto(&app.url("/admin/system"))
        .await
        .unwrap();
    shoot(&browser, "system").await;
    browser.stop().await;
}
