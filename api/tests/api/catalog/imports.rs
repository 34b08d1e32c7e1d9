//! Product imports over HTTP: CSV and JSON imports are idempotent by SKU and report each
//! bad row by its line or position, and re-importing accented tags changes nothing (both
//! engines); an import must be JSON or CSV, and a row the CSV reader rejects is reported
//! with its line in the file (SQLite).

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use super::{
    by_sku, counts, create_category, import, import_report, matching, ok_json, set, CSV_HEADER,
};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    csv_and_json_imports_are_idempotent_by_sku,
    reimport_of_accented_tags_is_unchanged,
);

fn error_lines(report: &Value) -> Vec<u64> {
    report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["line"].as_u64().unwrap())
        .collect()
}

/// The imported products as an admin reads them, by SKU.
async fn imported(app: &TestApp, admin: &Session) -> BTreeMap<&'static str, Value> {
    let mut products = BTreeMap::new();
    for sku in ["IMP-1", "IMP-4", "IMP-7", "JS-1", "JS-5"] {
        let response = by_sku(app, Some(&admin.access_token), sku).await;
        if response.status() == StatusCode::OK {
            products.insert(sku, response.json::<Value>().await.unwrap());
        }
    }
    products
}

async fn csv_and_json_imports_are_idempotent_by_sku(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let garden = create_category(&app, &admin, "Garden Tools", None).await;
    assert_eq!(garden["slug"], "garden-tools");

    let csv_rows = [
        "IMP-1,Rake Deluxe,A wide rake,1500,EUR,garden-tools,garden|tools,material=steel|length=150cm,https://img.example.com/rake.jpg,active",
        "IMP-2,Bad Price,,abc,EUR,,,,,",
        "IMP-3,Shovel,,2500,XYZ,,,,,",
        "IMP-4,Hoe,\"Two\nlines\",900,eur,garden-tools,,,,draft",
        "IMP-5,Trowel,,-5,EUR,,,,,",
        "IMP-6,Pruner,,1200,EUR,no-such-slug,,,,",
        "imp-1,Duplicate Rake,,100,EUR,,,,,",
        "IMP-7,Gloves,,800,EUR,,,color=green,,active",
        "IMP-8,Bad Attribute,,800,EUR,,,colour,,",
    ];
    let csv = format!("{CSV_HEADER}\n{}\n", csv_rows.join("\n"));
    let report = import_report(&app, &admin, "text/csv", &csv).await;
    assert_eq!(counts(&report), (3, 0, 0, 6), "{report}");
    // IMP-4's description spans lines 5 and 6, so the rows after it are a line later.
    assert_eq!(error_lines(&report), [3, 4, 7, 8, 9, 11], "{report}");
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors[1]["sku"], "IMP-3");
    assert!(errors[1]["errors"].to_string().contains("price.currency"));
    assert!(errors[3]["errors"].to_string().contains("category"));
    assert!(errors[4]["errors"].to_string().contains("earlier"));

    let rake = ok_json(by_sku(&app, None, "IMP-1").await).await;
    assert_eq!(rake["name"], "Rake Deluxe");
    assert_eq!(rake["category_id"], garden["id"]);
    assert_eq!(rake["tags"], json!(["garden", "tools"]));
    assert_eq!(
        rake["attributes"],
        json!({"length": "150cm", "material": "steel"})
    );
    assert_eq!(rake["images"], json!(["https://img.example.com/rake.jpg"]));
    assert_eq!(rake["price"], json!({"amount": 1500, "currency": "EUR"}));
    assert_problem(by_sku(&app, None, "IMP-4").await, 404, "not_found").await;
    let hoe = ok_json(by_sku(&app, Some(&admin.access_token), "IMP-4").await).await;
    assert_eq!(hoe["status"], "draft");
    assert_eq!(hoe["description"], "Two\nlines");
    assert_eq!(hoe["price"]["currency"], "EUR");
    for missing in ["IMP-2", "IMP-3", "IMP-5", "IMP-6", "IMP-8"] {
        assert_problem(
            by_sku(&app, Some(&admin.access_token), missing).await,
            404,
            "not_found",
        )
        .await;
    }

    // The same import again changes nothing and says so.
    let snapshot = |app| imported(app, &admin);
    let before = snapshot(&app).await;
    let again = import_report(&app, &admin, "text/csv", &csv).await;
    assert_eq!(counts(&again), (0, 0, 3, 6), "{again}");
    assert_eq!(error_lines(&again), error_lines(&report));
    assert_eq!(snapshot(&app).await, before, "a re-import changes nothing");

    // One changed row is updated; the others stay unchanged.
    let changed = csv.replace(
        "Rake Deluxe,A wide rake,1500",
        "Rake Deluxe,A wide rake,1600",
    );
    let update = import_report(&app, &admin, "text/csv", &changed).await;
    assert_eq!(counts(&update), (0, 1, 2, 6), "{update}");
    let rake_after = ok_json(by_sku(&app, None, "IMP-1").await).await;
    assert_eq!(rake_after["price"]["amount"], 1600);
    assert_eq!(rake_after["id"], rake["id"], "updated in place, by SKU");
    assert_eq!(rake_after["created_at"], rake["created_at"]);
    let search_rake = matching(&app, None, &[("q", "rake")]).await;
    assert_eq!(search_rake, set(&["IMP-1"]));

    // JSON: positions are 1-based; bad rows are reported, good rows kept.
    let rows = json!([
        {"sku": "JS-1", "name": "Watering Can", "description": "Ten litres.",
         "price": {"amount": 1999, "currency": "EUR"}, "category": "garden-tools",
         "tags": ["water", "Garden"], "attributes": {"volume": "10l"}, "status": "active"},
        {"sku": "JS-2", "name": "", "price": {"amount": 100, "currency": "EUR"}},
        {"sku": "JS-3", "name": "Hose", "price": {"amount": 100}},
        {"sku": "JS-4", "name": "Sprinkler", "price": {"amount": 100, "currency": "EUR"}, "colour": "red"},
        {"sku": "js-5", "name": "Flower Pot", "price": {"amount": 500, "currency": "eur"}, "status": "active"},
        {"sku": "JS-6", "name": "Seed Tray", "price": {"amount": 1_000_000_000_001_i64, "currency": "EUR"}},
    ]);
    let json_body = rows.to_string();
    let report = import_report(&app, &admin, "application/json", &json_body).await;
    assert_eq!(counts(&report), (2, 0, 0, 4), "{report}");
    assert_eq!(error_lines(&report), [2, 3, 4, 6], "{report}");
    assert_eq!(report["errors"][0]["sku"], "JS-2");
    assert!(report["errors"][0]["errors"].to_string().contains("name"));
    assert!(report["errors"][2]["errors"].to_string().contains("colour"));
    let can = ok_json(by_sku(&app, None, "JS-1").await).await;
    assert_eq!(can["category_id"], garden["id"]);
    assert_eq!(can["tags"], json!(["garden", "water"]));
    let pot = ok_json(by_sku(&app, None, "JS-5").await).await;
    assert_eq!(pot["sku"], "JS-5");
    assert_eq!(pot["price"], json!({"amount": 500, "currency": "EUR"}));

    let before = snapshot(&app).await;
    let again = import_report(&app, &admin, "application/json; charset=utf-8", &json_body).await;
    assert_eq!(counts(&again), (0, 0, 2, 4), "{again}");
    assert_eq!(snapshot(&app).await, before, "a re-import changes nothing");

    let changed = json_body.replace("Flower Pot", "Flower Pot XL");
    let update = import_report(&app, &admin, "application/json", &changed).await;
    assert_eq!(counts(&update), (0, 1, 1, 4), "{update}");
    assert_eq!(
        ok_json(by_sku(&app, None, "JS-5").await).await["name"],
        "Flower Pot XL"
    );
    assert_eq!(
        ok_json(by_sku(&app, None, "JS-1").await).await,
        before["JS-1"]
    );
    // The category facet knows the imported products.
    let in_garden = matching(&app, None, &[("category", garden["id"].as_str().unwrap())]).await;
    assert_eq!(in_garden, set(&["IMP-1", "JS-1"]));
}

/// Tags may hold any letter and attribute names `_` and digits. Re-importing a product
/// whose tags or attribute names sort differently under the database's collation than
/// in byte order must still be "unchanged" (and change nothing).
async fn reimport_of_accented_tags_is_unchanged(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let rows = [
        (
            "accented tags",
            json!({"sku": "FR-1", "name": "Chapeau de paille", "price": {"amount": 2500, "currency": "EUR"},
                   "tags": ["été", "plage"], "status": "active"}),
        ),
        (
            "attribute names with _ and digits",
            json!({"sku": "FR-2", "name": "Parasol", "price": {"amount": 4500, "currency": "EUR"},
                   "tags": ["sun"], "attributes": {"size_eu": "40", "size2": "L"}, "status": "active"}),
        ),
        (
            "plain",
            json!({"sku": "FR-3", "name": "Towel", "price": {"amount": 1500, "currency": "EUR"},
                   "tags": ["beach", "cotton"], "attributes": {"color": "blue"}, "status": "active"}),
        ),
    ];
    let mut problems = Vec::new();
    for (label, row) in rows {
        let body = json!([row]).to_string();
        let first = import_report(&app, &admin, "application/json", &body).await;
        assert_eq!(counts(&first), (1, 0, 0, 0), "{label}: {first}");
        let sku = row["sku"].as_str().unwrap();
        let stored = ok_json(by_sku(&app, None, sku).await).await;
        let again = import_report(&app, &admin, "application/json", &body).await;
        if counts(&again) != (0, 0, 1, 0) {
            problems.push(format!("{label}: re-import reported {again}"));
        }
        let after = ok_json(by_sku(&app, None, sku).await).await;
        if after != stored {
            problems.push(format!("{label}: re-import changed {stored} to {after}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(
        matching(&app, None, &[("tag", "été")]).await,
        set(&["FR-1"])
    );
}

#[actix_web::test]
async fn imports_need_json_or_csv() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let csv = format!("{CSV_HEADER}\nCT-1,Thing,,100,EUR,,,,,active\n");
    for content_type in [
        "text/plain",
        "application/xml",
        "multipart/form-data",
        "text/html",
    ] {
        assert_problem(
            import(&app, &admin, content_type, &csv).await,
            415,
            "unsupported_media_type",
        )
        .await;
    }
    let no_type = app
        .client
        .post(app.url("/api/v1/admin/products/import"))
        .bearer_auth(&admin.access_token)
        .body(csv.clone())
        .send()
        .await
        .unwrap();
    assert_problem(no_type, 415, "unsupported_media_type").await;
    assert_problem(
        import(
            &app,
            &admin,
            "text/csv",
            "sku,name,currency\nA-1,Thing,EUR\n",
        )
        .await,
        400,
        "invalid_body",
    )
    .await;
    assert_problem(
        import(&app, &admin, "application/json", "{\"sku\": \"A-1\"}").await,
        400,
        "invalid_body",
    )
    .await;
    assert_problem(
        import(&app, &admin, "application/json", "[{\"sku\": ").await,
        400,
        "malformed_json",
    )
    .await;
    assert!(matching(&app, Some(&admin.access_token), &[])
        .await
        .is_empty());
    // The right type, with parameters and in any case, is accepted.
    let report = import_report(&app, &admin, "Text/CSV; charset=utf-8", &csv).await;
    assert_eq!(counts(&report), (1, 0, 0, 0), "{report}");
}

/// A row the CSV reader itself rejects (wrong number of fields) is reported with its
/// line in the file, like every other bad row, even after a quoted multi-line field.
#[actix_web::test]
async fn csv_errors_name_the_line_of_the_file() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let csv = "sku,name,description,price_amount,currency\n\
               ML-1,Kettle,\"Two\nlines\",1000,EUR\n\
               ML-2,Broken,row,with,too,many,fields\n\
               ML-3,Priced,,abc,EUR\n\
               ML-4,Fine,,100,EUR\n";
    let report = import_report(&app, &admin, "text/csv", csv).await;
    assert_eq!(counts(&report), (2, 0, 0, 2), "{report}");
    assert_eq!(error_lines(&report), [4, 5], "{report}");
}

/// A file written with CRLF line ends may break a quoted field's lines with CRLF too
/// (RFC 4180): the field is stored with a newline, not refused as holding a control
/// character.
#[actix_web::test]
async fn a_crlf_file_may_break_a_quoted_field_across_lines() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let csv = "sku,name,description,price_amount,currency\r\n\
               CRLF-1,Kettle,\"line one\r\nline two\",1000,EUR\r\n";
    let report = import_report(&app, &admin, "text/csv", csv).await;
    assert_eq!(counts(&report), (1, 0, 0, 0), "{report}");
    let product: Value = by_sku(&app, Some(&admin.access_token), "CRLF-1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(product["description"], "line one\nline two");
}
