//! Variants that arrive other than by a REST create: CSV imports (variant lines, their
//! options and refusals, a re-import changing nothing), JSON imports (variants as in a
//! create, a variant's SKU never updating its product), and gRPC's CreateProduct and
//! reads by a variant's SKU.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::tee;
use crate::helpers::*;

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
