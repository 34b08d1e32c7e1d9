//! Product variants over REST and gRPC: each variant sold by its own SKU (stock,
//! checkout, cart), the product's own SKU refused once it has variants, validation,
//! search by a variant's price and option values, and imports of variants (JSON, CSV).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use crate::helpers::*;
use crate::on_both_backends;
use crate::orders::{order, stock};

on_both_backends!(
    variants_are_sold_by_their_own_skus,
    racing_writes_never_share_a_sku
);

/// A T-shirt in three sizes of one colour, each its own SKU; L at a higher price and
/// with its own image.
fn tee(sku: &str) -> Value {
    json!({
        "sku": sku,
        "name": "Tee",
        "price": {"amount": 1500, "currency": "EUR"},
        "status": "active",
        "images": ["https://img.example.com/tee.jpg"],
        "options": [
            {"name": "Size", "values": ["S", "M", "L"]},
            {"name": "colour", "values": ["Red"]},
        ],
        "variants": [
            {"sku": format!("{sku}-s"), "options": {"size": "S", "colour": "Red"}},
            {"sku": format!("{sku}-m"), "options": {"size": "M", "colour": "Red"},
             "price": {"amount": 1700, "currency": "EUR"}},
            {"sku": format!("{sku}-l"), "options": {"size": "L", "colour": "Red"},
             "price": {"amount": 1900, "currency": "EUR"},
             "images": ["https://img.example.com/tee-l.jpg"]},
        ],
    })
}

async fn create(app: &TestApp, admin: &Session, body: &Value) -> reqwest::Response {
    app.post_json_as("/api/v1/admin/products", &admin.access_token, body)
        .await
}

async fn created(app: &TestApp, admin: &Session, body: &Value) -> Value {
    let response = create(app, admin, body).await;
    let status = response.status();
    let product: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{product}");
    product
}

async fn adjust(app: &TestApp, admin: &Session, sku: &str, delta: i64) -> reqwest::Response {
    app.post_json_as(
        &format!("/api/v1/admin/inventory/{sku}/adjust"),
        &admin.access_token,
        &json!({"delta": delta, "reason": "delivery"}),
    )
    .await
}

async fn patch(app: &TestApp, admin: &Session, id: &str, body: &Value) -> reqwest::Response {
    app.client
        .request(
            Method::PATCH,
            app.url(&format!("/api/v1/admin/products/{id}")),
        )
        .bearer_auth(&admin.access_token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn search(app: &TestApp, query: &[(&str, &str)]) -> Value {
    let response = app
        .client
        .get(app.url("/api/v1/products"))
        .query(query)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn skus(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["sku"].as_str().unwrap().to_owned())
        .collect()
}

async fn variants_are_sold_by_their_own_skus(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let product = created(&app, &admin, &tee("TEE")).await;
    assert_eq!(
        product["options"],
        json!([{"name": "size", "values": ["S", "M", "L"]}, {"name": "colour", "values": ["Red"]}])
    );
    assert_eq!(product["variants"][0]["sku"], "TEE-S");
    assert_eq!(
        product["variants"][0]["price"],
        json!({"amount": 1500, "currency": "EUR"}),
        "a variant without a price has the product's"
    );
    assert_eq!(
        product["variants"][2]["images"],
        json!(["https://img.example.com/tee-l.jpg"])
    );
    assert_eq!(
        product["price_range"],
        json!({"min": {"amount": 1500, "currency": "EUR"}, "max": {"amount": 1900, "currency": "EUR"}})
    );

    // Each variant has its own stock, kept by its own SKU actor.
    assert_eq!(
        adjust(&app, &admin, "TEE-M", 5).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        adjust(&app, &admin, "TEE-L", 2).await.status(),
        StatusCode::OK
    );
    let by_variant: Value = app
        .get("/api/v1/products/sku/tee-m")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        by_variant["id"], product["id"],
        "a variant's SKU finds its product"
    );
    let availability: Vec<i64> = by_variant["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|variant| variant["available"].as_i64().unwrap())
        .collect();
    assert_eq!(availability, [0, 5, 2]);
    assert_eq!(by_variant["available"], 7, "the product's is the sum");

    // A checkout names the variant; the order line carries its price and options.
    let shopper = app.customer("variants").await;
    let placed = order(
        &app,
        &shopper,
        json!([{"sku": "TEE-M", "quantity": 2}]),
        None,
    )
    .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let placed: Value = placed.json().await.unwrap();
    assert_eq!(placed["items"][0]["sku"], "TEE-M");
    assert_eq!(placed["items"][0]["name"], "Tee (M / Red)");
    assert_eq!(placed["items"][0]["unit_price"]["amount"], 1700);
    assert_eq!(stock(&app, &admin, "TEE-M").await, (5, 2));
    assert_eq!(stock(&app, &admin, "TEE-L").await, (2, 0));

    // The product's own SKU names the product: it is not sold by itself.
    let family = order(&app, &shopper, json!([{"sku": "TEE", "quantity": 1}]), None).await;
    let problem = assert_problem(family, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "items[0].sku");
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("TEE-S, TEE-M, TEE-L"), "{message}");
    let sold_out = order(
        &app,
        &shopper,
        json!([{"sku": "TEE-S", "quantity": 1}]),
        None,
    )
    .await;
    assert_problem(sold_out, 409, "insufficient_stock").await;

    // The cart prices a variant line as the variant and refuses the product's SKU.
    let cart = app
        .client
        .put(app.url("/api/v1/cart/items/TEE-L"))
        .bearer_auth(&shopper.access_token)
        .json(&json!({"quantity": 1}))
        .send()
        .await
        .unwrap();
    let status = cart.status();
    let cart: Value = cart.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{cart}");
    assert_eq!(cart["items"][0]["name"], "Tee (L / Red)");
    assert_eq!(cart["items"][0]["unit_price"]["amount"], 1900);
    assert_eq!(cart["items"][0]["available"], 2);
    let family = app
        .client
        .put(app.url("/api/v1/cart/items/TEE"))
        .bearer_auth(&shopper.access_token)
        .json(&json!({"quantity": 1}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(family, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "sku");

    // A PATCH that leaves variants out keeps them; one that replaces them drops the
    // left-out variant from sale, while its stock and orders stay under its SKU.
    let id = product["id"].as_str().unwrap();
    let renamed: Value = patch(&app, &admin, id, &json!({"name": "Basic tee"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(renamed["variants"].as_array().unwrap().len(), 3);
    let replaced = patch(
        &app,
        &admin,
        id,
        &json!({
            "options": [{"name": "size", "values": ["M", "L"]}],
            "variants": [
                {"sku": "TEE-M", "options": {"size": "M"}, "price": {"amount": 1800, "currency": "EUR"}},
                {"sku": "TEE-L", "options": {"size": "L"}},
            ],
        }),
    )
    .await;
    assert_eq!(replaced.status(), StatusCode::OK);
    let replaced: Value = replaced.json().await.unwrap();
    assert_eq!(
        replaced["price_range"]["min"]["amount"], 1500,
        "TEE-L now has the product's price"
    );
    assert_eq!(replaced["price_range"]["max"]["amount"], 1800);
    let gone = order(
        &app,
        &shopper,
        json!([{"sku": "TEE-S", "quantity": 1}]),
        None,
    )
    .await;
    assert_problem(gone, 422, "validation_failed").await;
    assert_eq!(
        stock(&app, &admin, "TEE-M").await,
        (5, 2),
        "the order's reservation stays"
    );
    let repriced = order(
        &app,
        &shopper,
        json!([{"sku": "TEE-M", "quantity": 1}]),
        None,
    )
    .await;
    let repriced: Value = repriced.json().await.unwrap();
    assert_eq!(repriced["items"][0]["name"], "Basic tee (M)");
    assert_eq!(repriced["items"][0]["unit_price"]["amount"], 1800);
}

#[actix_web::test]
async fn variant_input_is_validated() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    created(&app, &admin, &tee("SHIRT")).await;
    let plain = json!({"sku": "MUG", "name": "Mug", "price": {"amount": 900, "currency": "EUR"}});
    created(&app, &admin, &plain).await;

    let with = |extra: Value| {
        let mut body =
            json!({"sku": "NEW", "name": "New", "price": {"amount": 100, "currency": "EUR"}});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let size = json!([{"name": "size", "values": ["S", "M"]}]);
    let cases: Vec<(Value, &str)> = vec![
        (
            with(json!({"variants": [{"sku": "NEW-S", "options": {"size": "S"}}]})),
            "variants",
        ),
        (with(json!({"options": size})), "variants"),
        (
            with(
                json!({"options": size, "variants": [{"sku": "NEW-X", "options": {"size": "XL"}}]}),
            ),
            "variants[0].options",
        ),
        (
            with(json!({"options": size, "variants": [{"sku": "NEW-S", "options": {}}]})),
            "variants[0].options",
        ),
        (
            with(json!({"options": size, "variants": [
                {"sku": "NEW-S", "options": {"size": "S"}},
                {"sku": "new-s", "options": {"size": "M"}},
            ]})),
            "variants[1].sku",
        ),
        (
            with(json!({"options": size, "variants": [
                {"sku": "NEW-S", "options": {"size": "S"}},
                {"sku": "NEW-T", "options": {"size": "S"}},
            ]})),
            "variants[1].options",
        ),
        (
            with(json!({"options": size, "variants": [
                {"sku": "NEW-S", "options": {"size": "S"}, "price": {"amount": 100, "currency": "USD"}},
            ]})),
            "variants[0].price.currency",
        ),
        (
            with(json!({"options": size, "variants": [
                {"sku": "NEW-S", "options": {"size": "S"}, "price": {"amount": -1, "currency": "EUR"}},
            ]})),
            "variants[0].price.amount",
        ),
        (
            with(json!({"options": size, "variants": [{"sku": "NEW", "options": {"size": "S"}}]})),
            "variants[0].sku",
        ),
        (
            with(json!({"options": [
                {"name": "a", "values": ["1"]}, {"name": "b", "values": ["1"]},
                {"name": "c", "values": ["1"]}, {"name": "d", "values": ["1"]},
            ], "variants": [{"sku": "NEW-1", "options": {"a": "1", "b": "1", "c": "1", "d": "1"}}]})),
            "options",
        ),
        (
            with(
                json!({"options": [{"name": "size", "values": []}], "variants": [{"sku": "NEW-S", "options": {"size": "S"}}]}),
            ),
            "options[0].values",
        ),
        (
            with(
                json!({"options": [{"name": "si ze", "values": ["S"]}], "variants": [{"sku": "NEW-S", "options": {"si ze": "S"}}]}),
            ),
            "options[0].name",
        ),
    ];
    for (body, field) in cases {
        let problem =
            assert_problem(create(&app, &admin, &body).await, 422, "validation_failed").await;
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|error| error["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{body}: {problem}");
    }

    // Wrong shapes are 400, not 422 or 500.
    for body in [
        with(json!({"options": "size"})),
        with(
            json!({"options": size, "variants": [{"sku": "NEW-S", "options": {"size": "S"}, "stock": 3}]}),
        ),
        with(json!({"options": size, "variants": [{"sku": "NEW-S", "options": ["S"]}]})),
    ] {
        assert_problem(create(&app, &admin, &body).await, 400, "invalid_body").await;
    }

    // A SKU names one thing: a variant may not take a product's SKU or another
    // product's variant's, nor a product a variant's.
    let taken_by_product =
        with(json!({"options": size, "variants": [{"sku": "MUG", "options": {"size": "S"}}]}));
    let problem = assert_problem(
        create(&app, &admin, &taken_by_product).await,
        409,
        "sku_taken",
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("MUG"),
        "{problem}"
    );
    let taken_by_variant =
        with(json!({"options": size, "variants": [{"sku": "SHIRT-M", "options": {"size": "S"}}]}));
    assert_problem(
        create(&app, &admin, &taken_by_variant).await,
        409,
        "sku_taken",
    )
    .await;
    let product_on_variant =
        json!({"sku": "SHIRT-L", "name": "Clash", "price": {"amount": 1, "currency": "EUR"}});
    assert_problem(
        create(&app, &admin, &product_on_variant).await,
        409,
        "sku_taken",
    )
    .await;
    let stored = app
        .get_as("/api/v1/products/sku/NEW", &admin.access_token)
        .await;
    assert_eq!(
        stored.status(),
        StatusCode::NOT_FOUND,
        "no refused product was stored"
    );

    // Stock is kept for a variant's SKU, and for nothing the catalog does not sell.
    assert_eq!(
        adjust(&app, &admin, "SHIRT-S", 1).await.status(),
        StatusCode::OK
    );
    assert_problem(adjust(&app, &admin, "SHIRT-XL", 1).await, 404, "not_found").await;
}

#[actix_web::test]
async fn search_finds_products_by_their_variants() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    created(&app, &admin, &tee("TEE")).await;
    let plain = json!({"sku": "MUG", "name": "Mug", "price": {"amount": 1800, "currency": "EUR"}, "status": "active",
                       "attributes": {"size": "M"}});
    created(&app, &admin, &plain).await;

    // A price filter matches a product when one of its variants is in range; price
    // sorts use the lowest price.
    assert_eq!(skus(&search(&app, &[("price_min", "1850")]).await), ["TEE"]);
    assert_eq!(skus(&search(&app, &[("price_max", "1600")]).await), ["TEE"]);
    assert_eq!(
        skus(&search(&app, &[("price_min", "1750"), ("price_max", "1850")]).await),
        ["MUG"],
        "no variant of TEE is priced between 1750 and 1850"
    );
    assert_eq!(
        skus(&search(&app, &[("sort", "price_asc")]).await),
        ["TEE", "MUG"]
    );
    assert_eq!(
        skus(
            &search(
                &app,
                &[
                    ("sort", "price_asc"),
                    ("currency", "EUR"),
                    ("price_min", "1600")
                ]
            )
            .await
        ),
        ["TEE", "MUG"]
    );
    let item = &search(&app, &[("q", "tee")]).await["items"][0];
    assert_eq!(item["price_range"]["max"]["amount"], 1900);
    assert_eq!(
        item["variants"][1]["options"],
        json!({"size": "M", "colour": "Red"})
    );

    // Option values filter and count as attributes do, merged with them.
    assert_eq!(skus(&search(&app, &[("attr", "size:L")]).await), ["TEE"]);
    assert_eq!(
        skus(&search(&app, &[("attr", "colour:Red")]).await),
        ["TEE"]
    );
    let page = search(&app, &[("attr", "size:M"), ("sort", "name")]).await;
    assert_eq!(skus(&page), ["MUG", "TEE"]);
    let facets = search(&app, &[]).await["facets"]["attributes"].clone();
    let sizes = facets
        .as_array()
        .unwrap()
        .iter()
        .find(|facet| facet["name"] == "size")
        .unwrap()["values"]
        .clone();
    assert_eq!(
        sizes,
        json!([{"value": "L", "count": 1}, {"value": "M", "count": 2}, {"value": "S", "count": 1}])
    );

    // A product is in stock when one of its variants is.
    assert!(skus(&search(&app, &[("in_stock", "true")]).await).is_empty());
    assert_eq!(
        adjust(&app, &admin, "TEE-L", 1).await.status(),
        StatusCode::OK
    );
    within(
        std::time::Duration::from_secs(10),
        "a variant's stock reaches search",
        || async { skus(&search(&app, &[("in_stock", "true")]).await) == ["TEE"] },
    )
    .await;
}

async fn import(app: &TestApp, admin: &Session, content_type: &str, body: &str) -> Value {
    let response = app
        .client
        .post(app.url("/api/v1/admin/products/import"))
        .bearer_auth(&admin.access_token)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[actix_web::test]
async fn imports_carry_variants() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let csv = "sku,name,price_amount,currency,status,variant_of,options,images\n\
               HOODIE,Hoodie,4000,EUR,active,,,\n\
               HOODIE-S-GREY,,4000,EUR,,HOODIE,size=S|colour=Grey,\n\
               HOODIE-M-GREY,,4200,EUR,,hoodie,size=M|colour=Grey,https://img.example.com/m.jpg\n\
               HOODIE-M-BLUE,,4200,EUR,,HOODIE,size=M|colour=Blue,\n\
               ORPHAN-S,,100,EUR,,NOPE,size=S,\n\
               HOODIE-L,,100,EUR,,HOODIE,size,\n\
               CAP,Cap,1500,EUR,active,,size=M,\n";
    let report = import(&app, &admin, "text/csv", csv).await;
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(report["failed"], 3, "{report}");
    let lines: Vec<(i64, String)> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| {
            (
                error["line"].as_i64().unwrap(),
                error["errors"][0]["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (6, "variant_of".to_owned()),
            (7, "options".to_owned()),
            (8, "options".to_owned())
        ]
    );
    let hoodie: Value = app
        .get("/api/v1/products/sku/HOODIE-M-BLUE")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        hoodie["options"],
        json!([{"name": "colour", "values": ["Grey", "Blue"]}, {"name": "size", "values": ["S", "M"]}]),
        "options come from the variant lines, values in the order first seen"
    );
    let variants: Vec<&str> = hoodie["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|variant| variant["sku"].as_str().unwrap())
        .collect();
    assert_eq!(
        variants,
        ["HOODIE-S-GREY", "HOODIE-M-GREY", "HOODIE-M-BLUE"]
    );
    assert_eq!(
        hoodie["variants"][1]["images"],
        json!(["https://img.example.com/m.jpg"])
    );
    assert_eq!(hoodie["price_range"]["max"]["amount"], 4200);

    // The same file again changes nothing; JSON imports carry variants as create does.
    let again = import(&app, &admin, "text/csv", csv).await;
    assert_eq!(
        (again["created"].as_i64(), again["unchanged"].as_i64()),
        (Some(0), Some(1)),
        "{again}"
    );
    let json_rows = json!([tee("POLO"), with_sku(tee("POLO"), "POLO-2")]).to_string();
    let report = import(&app, &admin, "application/json", &json_rows).await;
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(
        report["failed"], 1,
        "POLO-2 reuses POLO's variant SKUs: {report}"
    );
    let polo: Value = app
        .get("/api/v1/products/sku/POLO-L")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(polo["sku"], "POLO");

    // A row named by a variant's SKU is a new product whose SKU is taken, never an
    // update of the variant's product.
    let row =
        json!([{"sku": "POLO-L", "name": "Impostor", "price": {"amount": 1, "currency": "EUR"}}]);
    let report = import(&app, &admin, "application/json", &row.to_string()).await;
    assert_eq!(report["failed"], 1, "{report}");
    let polo_after: Value = app
        .get("/api/v1/products/sku/POLO-L")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(polo_after, polo, "the product of POLO-L is untouched");
}

fn with_sku(mut product: Value, sku: &str) -> Value {
    product["sku"] = json!(sku);
    product
}

#[actix_web::test]
async fn grpc_creates_and_reads_variants() {
    use souk_proto::v1 as pb;
    use souk_proto::v1::product_service_client::ProductServiceClient;

    let app = spawn_app().await;
    let admin = app.admin().await;
    let mut client = ProductServiceClient::new(crate::grpc_edges::channel(&app).await);
    let money = |amount| {
        Some(pb::Money {
            amount,
            currency: "EUR".into(),
        })
    };
    let request = pb::CreateProductRequest {
        sku: "SOCK".into(),
        name: "Sock".into(),
        price: money(500),
        status: "active".into(),
        options: vec![pb::ProductOption {
            name: "size".into(),
            values: vec!["39-42".into(), "43-46".into()],
        }],
        variants: vec![
            pb::ProductVariantInput {
                sku: "SOCK-39".into(),
                options: [("size".to_owned(), "39-42".to_owned())].into(),
                ..Default::default()
            },
            pb::ProductVariantInput {
                sku: "SOCK-43".into(),
                options: [("size".to_owned(), "43-46".to_owned())].into(),
                price: money(600),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let created = client
        .create_product(authorized(request.clone(), &admin.access_token))
        .await
        .expect("create")
        .into_inner();
    assert_eq!(created.variants.len(), 2);
    let range = created.price_range.clone().unwrap();
    assert_eq!(
        (range.min.unwrap().amount, range.max.unwrap().amount),
        (500, 600)
    );

    let read = client
        .get_product_by_sku(pb::GetProductBySkuRequest {
            sku: "sock-43".into(),
        })
        .await
        .expect("read by a variant's SKU")
        .into_inner();
    assert_eq!(read.id, created.id);
    assert_eq!(read.variants[1].options["size"], "43-46");
    assert_eq!(read.variants[1].price.clone().unwrap().amount, 600);

    let mut bad = request;
    bad.sku = "SOCK-2".into();
    bad.variants[0].options = [("colour".to_owned(), "red".to_owned())].into();
    let status = client
        .create_product(authorized(bad, &admin.access_token))
        .await
        .expect_err("an unknown option");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}

/// A product and another product's variant created at the same moment with one SKU:
/// exactly one of them is stored, every time.
async fn racing_writes_never_share_a_sku(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    for round in 0..8 {
        let sku = format!("RACE-{round}");
        let product =
            json!({"sku": sku, "name": "Plain", "price": {"amount": 100, "currency": "EUR"}});
        let with_variant = json!({
            "sku": format!("FAMILY-{round}"), "name": "Family",
            "price": {"amount": 100, "currency": "EUR"},
            "options": [{"name": "size", "values": ["S"]}],
            "variants": [{"sku": sku, "options": {"size": "S"}}],
        });
        let (first, second) = tokio::join!(
            create(&app, &admin, &product),
            create(&app, &admin, &with_variant)
        );
        let mut statuses = [first.status().as_u16(), second.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "round {round}");
    }
}
