//! The shipping and tax repository on both engines: methods inserted once per code,
//! edited only as of the version read, deleted once; tax rates inserted or updated by
//! one put.

use souk_db::shipping::{self, ShippingMethodRecord, TaxRateRecord};
use souk_db::testing::{fresh, TestBackend};
use souk_db::DbError;

souk_db::on_both_backends!(
    #[tokio::test]
    methods_and_rates
);

fn method(code: &str, countries: &str) -> ShippingMethodRecord {
    ShippingMethodRecord {
        code: code.to_owned(),
        name: "Standard post".to_owned(),
        countries: countries.to_owned(),
        rate_amount: 490,
        currency: "EUR".to_owned(),
        free_above_amount: Some(5000),
        active: 1,
        created_at: 1,
        updated_at: 1,
    }
}

async fn methods_and_rates(backend: TestBackend) {
    let database = fresh(backend).await;
    let pool = database.db.pool();

    let standard = method("standard", "AT DE");
    shipping::insert_method(pool, &standard).await.unwrap();
    shipping::insert_method(pool, &method("world", ""))
        .await
        .unwrap();
    assert!(matches!(
        shipping::insert_method(pool, &standard).await,
        Err(DbError::UniqueViolation { .. })
    ));
    let found = shipping::find_method(pool, "standard")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, standard);
    assert!(found.serves("DE") && !found.serves("FR") && !found.serves("D"));
    assert!(method("world", "").serves("FR"));
    let codes: Vec<String> = shipping::list_methods(pool)
        .await
        .unwrap()
        .into_iter()
        .map(|method| method.code)
        .collect();
    assert_eq!(codes, ["standard", "world"]);

    // An edit applies only as of the version read.
    let mut edited = standard.clone();
    edited.free_above_amount = None;
    edited.updated_at = 2;
    assert!(shipping::update_method(pool, &edited, 1).await.unwrap());
    assert!(!shipping::update_method(pool, &edited, 1).await.unwrap());
    assert_eq!(
        shipping::find_method(pool, "standard").await.unwrap(),
        Some(edited)
    );
    assert!(shipping::delete_method(pool, "standard").await.unwrap());
    assert!(!shipping::delete_method(pool, "standard").await.unwrap());
    assert_eq!(shipping::find_method(pool, "standard").await.unwrap(), None);

    // A put inserts, then updates.
    let mut rate = TaxRateRecord {
        country: "DE".to_owned(),
        rate_bps: 1900,
        updated_at: 1,
    };
    assert!(shipping::put_tax_rate(pool, &rate).await.unwrap());
    rate.rate_bps = 700;
    rate.updated_at = 2;
    assert!(!shipping::put_tax_rate(pool, &rate).await.unwrap());
    assert_eq!(
        shipping::find_tax_rate(pool, "DE").await.unwrap(),
        Some(rate.clone())
    );
    assert_eq!(shipping::list_tax_rates(pool).await.unwrap(), vec![rate]);
    assert!(shipping::delete_tax_rate(pool, "DE").await.unwrap());
    assert!(!shipping::delete_tax_rate(pool, "DE").await.unwrap());
    assert_eq!(shipping::find_tax_rate(pool, "DE").await.unwrap(), None);
}
