//! The catalog search index against a plain reference evaluation of the search
//! contract (`reference.rs`) over generated catalogs and searches (`generate.rs`):
//! matches, order, total and facets; cursor paging under concurrent writes; freshness;
//! stock flags; persistence; the agreement check; bad input.

mod generate;
mod reference;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use souk_actors::catalog::index::{
    IndexError, IndexSettings, IndexedProduct, IndexedVariant, Price, ProductIndex, SearchRequest,
    Sort, Status, MAX_LIMIT,
};

use generate::Categories;
use reference::Reference;

fn index_of(products: &[IndexedProduct]) -> ProductIndex {
    let index = ProductIndex::in_ram(IndexSettings::default()).expect("index in memory");
    // Several batches and commits: several segments, as a live index has.
    for chunk in products.chunks(700) {
        index.upsert(chunk).expect("upsert");
        index.commit().expect("commit");
    }
    index
}

/// Every page of a search, following cursors.
fn walk(index: &ProductIndex, request: &SearchRequest) -> Vec<String> {
    let mut request = request.clone();
    let mut ids = Vec::new();
    for _ in 0..10_000 {
        let hits = index.search(&request).expect("search");
        ids.extend(hits.ids);
        match hits.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => return ids,
        }
    }
    panic!("paging did not end");
}

#[test]
fn the_index_answers_like_the_reference() {
    let mut rng = StdRng::seed_from_u64(15);
    let categories = Categories::generate(&mut rng);
    let products = generate::catalog(&mut rng, 3_000, &categories);
    let index = index_of(&products);
    let reference = Reference::new(&products);
    assert_eq!(index.count(), products.len() as u64);

    let mut with_text = 0;
    let mut nonempty = 0;
    for round in 0..400 {
        let request = generate::request(&mut rng, &categories);
        let expected = reference.search(&request);
        let hits = index.search(&request).expect("search");
        let context = format!("round {round}: {request:?}");
        assert_eq!(hits.total, expected.ids.len() as u64, "total, {context}");
        assert_eq!(hits.facets, expected.facets, "facets, {context}");
        let first_page: Vec<String> = expected.ids.iter().take(request.limit).cloned().collect();
        assert_eq!(hits.ids, first_page, "first page, {context}");
        let by_id: HashMap<&str, &IndexedProduct> = products
            .iter()
            .map(|product| (product.id.as_str(), product))
            .collect();
        let page_products: Vec<&IndexedProduct> =
            hits.ids.iter().map(|id| by_id[id.as_str()]).collect();
        assert_eq!(
            hits.products.iter().collect::<Vec<_>>(),
            page_products,
            "stored products of the page, {context}"
        );
        assert_eq!(
            hits.next_cursor.is_some(),
            expected.ids.len() > request.limit,
            "next cursor, {context}"
        );
        if round % 4 == 0 {
            let paged = SearchRequest {
                limit: rng.gen_range(1..=25),
                ..request.clone()
            };
            assert_eq!(walk(&index, &paged), expected.ids, "all pages, {context}");
        }
        with_text += usize::from(request.text.is_some());
        nonempty += usize::from(!expected.ids.is_empty());
    }
    // The generated searches must exercise both text and results, or they prove little.
    assert!(with_text > 200, "{with_text} searches with text");
    assert!(nonempty > 200, "{nonempty} searches with matches");
}

#[test]
fn text_rules_find_stems_prefixes_and_typos() {
    let mut rng = StdRng::seed_from_u64(3);
    let product = |name: &str, description: &str, tags: &[&str], rng: &mut StdRng| IndexedProduct {
        id: generate::uuid(rng),
        sku: format!("T-{name}"),
        name: name.to_owned(),
        description: description.to_owned(),
        tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
        attributes: Vec::new(),
        category_id: None,
        category_ancestors: Vec::new(),
        prices: vec![Price {
            currency: "EUR".into(),
            amount: 1999,
        }],
        status: Status::Active,
        created_at: 0,
        in_stock: true,
        images: Vec::new(),
        updated_at: 0,
        options: Vec::new(),
        variants: Vec::new(),
    };
    let shoes = product(
        "Trail Running Shoes",
        "light and fast",
        &["usb-c"],
        &mut rng,
    );
    let kettle = product("Crème Kettle", "for the kitchen", &[], &mut rng);
    let headphones = product("Wireless Headphones", "noise cancelling", &[], &mut rng);
    let index = index_of(&[shoes.clone(), kettle.clone(), headphones.clone()]);
    let found = |text: &str| {
        index
            .search(&SearchRequest {
                text: Some(text.to_owned()),
                limit: 10,
                ..SearchRequest::default()
            })
            .expect("search")
            .ids
    };
    assert_eq!(found("runs"), std::slice::from_ref(&shoes.id), "stem");
    assert_eq!(found("shoe"), std::slice::from_ref(&shoes.id), "stem");
    assert_eq!(
        found("trail sho"),
        std::slice::from_ref(&shoes.id),
        "last word as prefix"
    );
    assert!(
        found("sho trail").is_empty(),
        "only the last word is a prefix"
    );
    assert_eq!(
        found("headphnoes"),
        std::slice::from_ref(&headphones.id),
        "swapped letters"
    );
    assert_eq!(
        found("wirelss"),
        std::slice::from_ref(&headphones.id),
        "dropped letter"
    );
    assert!(found("kettel x").is_empty(), "every word must match");
    assert_eq!(
        found("creme"),
        std::slice::from_ref(&kettle.id),
        "accents folded"
    );
    assert_eq!(
        found("CRÈME kettle"),
        std::slice::from_ref(&kettle.id),
        "case and accents"
    );
    assert_eq!(
        found("kettle for the kitchen"),
        std::slice::from_ref(&kettle.id),
        "stop words"
    );
    assert_eq!(
        found("usb"),
        std::slice::from_ref(&shoes.id),
        "hyphenated tag words"
    );
    assert!(found("%*'\"").is_empty(), "symbols only");
    // Name beats description: `light` is in the shoes' description only.
    let both = product("Light", "", &[], &mut rng);
    index.upsert(std::slice::from_ref(&both)).expect("upsert");
    index.commit().expect("commit");
    assert_eq!(found("light"), [both.id.clone(), shoes.id.clone()]);
}

/// Pages walked while products are created, changed and deleted between them: every
/// product untouched by the writes comes exactly once and in order.
#[test]
fn cursors_survive_writes_between_pages() {
    let mut rng = StdRng::seed_from_u64(99);
    let categories = Categories::generate(&mut rng);
    let products = generate::catalog(&mut rng, 1_500, &categories);
    let searches = [
        (Some("shoe"), Sort::Relevance),
        (Some("light"), Sort::Relevance),
        (None, Sort::Newest),
        (None, Sort::PriceAsc),
        (None, Sort::PriceDesc),
        (None, Sort::Name),
        (Some("ru"), Sort::Name),
    ];
    for (text, sort) in searches {
        let index = index_of(&products);
        let mut reference = Reference::new(&products);
        let request = SearchRequest {
            text: text.map(str::to_owned),
            sort: Some(sort),
            limit: 37,
            ..SearchRequest::default()
        };
        let before = reference.search(&request).ids;
        let mut touched: HashSet<String> = HashSet::new();
        let mut seen: Vec<String> = Vec::new();
        let mut page = request.clone();
        let mut next_position = products.len();
        loop {
            let hits = index.search(&page).expect("search");
            seen.extend(hits.ids);
            let Some(cursor) = hits.next_cursor else {
                break;
            };
            page.cursor = Some(cursor);
            // Writes between pages: a new product, a changed one, a deleted one.
            let created = generate::product(&mut rng, next_position, &categories);
            next_position += 1;
            touched.insert(created.id.clone());
            let current = reference.products().to_vec();
            let mut changed = current[rng.gen_range(0..current.len())].clone();
            changed.name = format!("{} changed", changed.name);
            changed.prices[0].amount += 100;
            changed.created_at += 1;
            touched.insert(changed.id.clone());
            let deleted = current[rng.gen_range(0..current.len())].id.clone();
            touched.insert(deleted.clone());
            index
                .upsert(&[created.clone(), changed.clone()])
                .expect("upsert");
            index.delete(&[&deleted]).expect("delete");
            index.commit().expect("commit");
            reference.upsert(created);
            reference.upsert(changed);
            reference.delete(&deleted);
        }
        let untouched = |ids: &[String]| -> Vec<String> {
            ids.iter()
                .filter(|id| !touched.contains(*id))
                .cloned()
                .collect()
        };
        assert_eq!(
            untouched(&seen),
            untouched(&before),
            "{text:?} {sort:?}: untouched products once each, in order"
        );
        let mut counts: HashMap<&String, usize> = HashMap::new();
        for id in &seen {
            *counts.entry(id).or_default() += 1;
        }
        assert!(
            counts
                .iter()
                .all(|(id, count)| *count == 1 || touched.contains(*id)),
            "{text:?} {sort:?}: an untouched product came twice"
        );
        assert!(
            seen.len() > 500 || text.is_some(),
            "paged through {}",
            seen.len()
        );
    }
}

fn active_product(rng: &mut StdRng, name: &str) -> IndexedProduct {
    let categories = Categories(Vec::new());
    IndexedProduct {
        name: name.to_owned(),
        status: Status::Active,
        ..generate::product(rng, 0, &categories)
    }
}

fn found_ids(index: &ProductIndex, request: &SearchRequest) -> Vec<String> {
    index.search(request).expect("search").ids
}

/// Writes become searchable through the refresher alone, within the documented bound.
#[test]
fn writes_are_searchable_within_a_second() {
    let mut rng = StdRng::seed_from_u64(5);
    let index = ProductIndex::in_ram(IndexSettings::default()).expect("index");
    let product = active_product(&mut rng, "Quokka Lantern");
    let by_text = SearchRequest {
        text: Some("quokka".into()),
        statuses: vec![Status::Active],
        limit: 10,
        ..SearchRequest::default()
    };
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let started = Instant::now();
        while !done() {
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{what}: not searchable within a second"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        eprintln!("{what}: searchable after {:?}", started.elapsed());
    };
    index
        .upsert(std::slice::from_ref(&product))
        .expect("upsert");
    wait_for("create", &|| {
        found_ids(&index, &by_text) == std::slice::from_ref(&product.id)
    });

    let renamed = IndexedProduct {
        name: "Wombat Lantern".into(),
        ..product.clone()
    };
    index
        .upsert(std::slice::from_ref(&renamed))
        .expect("upsert");
    wait_for("update", &|| found_ids(&index, &by_text).is_empty());

    let archived = IndexedProduct {
        status: Status::Archived,
        ..renamed
    };
    index.upsert(&[archived]).expect("upsert");
    let wombat = SearchRequest {
        text: Some("wombat".into()),
        ..by_text.clone()
    };
    wait_for("archive", &|| found_ids(&index, &wombat).is_empty());

    index.delete(&[&product.id]).expect("delete");
    wait_for("delete", &|| index.count() == 0);
}

#[test]
fn stock_flags_follow_the_sku_even_before_a_commit() {
    let mut rng = StdRng::seed_from_u64(8);
    let index = ProductIndex::in_ram(IndexSettings::default()).expect("index");
    let product = IndexedProduct {
        in_stock: false,
        ..active_product(&mut rng, "Copper Kettle")
    };
    index
        .upsert(std::slice::from_ref(&product))
        .expect("upsert");
    index.commit().expect("commit");
    let in_stock = SearchRequest {
        in_stock: true,
        limit: 10,
        ..SearchRequest::default()
    };
    assert!(found_ids(&index, &in_stock).is_empty());
    assert!(index.set_in_stock(&product.sku, true).expect("stock"));
    index.commit().expect("commit");
    assert_eq!(
        found_ids(&index, &in_stock),
        std::slice::from_ref(&product.id)
    );

    // A pending change is not undone by a stock flip before the commit.
    let renamed = IndexedProduct {
        name: "Steel Kettle".into(),
        ..product.clone()
    };
    index
        .upsert(std::slice::from_ref(&renamed))
        .expect("upsert");
    assert!(index.set_in_stock(&product.sku, false).expect("stock"));
    index.commit().expect("commit");
    let stored = index.product(&product.id).expect("read").expect("present");
    assert_eq!(stored.name, "Steel Kettle");
    assert!(!stored.in_stock);
    // Nor does it bring back a deleted product.
    index.delete(&[&product.id]).expect("delete");
    assert!(!index.set_in_stock(&product.sku, true).expect("stock"));
    index.commit().expect("commit");
    assert_eq!(index.count(), 0);
    assert!(!index.set_in_stock("NO-SUCH-SKU", true).expect("stock"));

    // A product sold by variants keeps the flag its variants give it, whatever its own
    // SKU's stock does.
    let by_variants = IndexedProduct {
        in_stock: false,
        variants: vec![IndexedVariant {
            sku: format!("{}-L", product.sku),
            options: vec![("size".into(), "L".into())],
            amount: 1_000,
            images: Vec::new(),
        }],
        options: vec![("size".into(), vec!["L".into()])],
        ..product.clone()
    };
    index
        .upsert(std::slice::from_ref(&by_variants))
        .expect("upsert");
    index.commit().expect("commit");
    assert!(!index.set_in_stock(&product.sku, true).expect("stock"));
    index.commit().expect("commit");
    assert!(found_ids(&index, &in_stock).is_empty());
}

#[test]
fn an_index_on_disk_survives_a_reopen_and_the_check_sees_drift() {
    let mut rng = StdRng::seed_from_u64(21);
    let categories = Categories::generate(&mut rng);
    let products = generate::catalog(&mut rng, 400, &categories);
    let directory = std::env::temp_dir().join(format!("souk-index-{}", generate::uuid(&mut rng)));
    {
        let index = ProductIndex::open_in_dir(&directory, IndexSettings::default()).expect("open");
        index.upsert(&products).expect("upsert");
        index.commit().expect("commit");
        assert!(index.size_on_disk().expect("size") > 0);
    }
    let index = ProductIndex::open_in_dir(&directory, IndexSettings::default()).expect("reopen");
    assert_eq!(index.count(), products.len() as u64);
    let report = index.check(&products, 50).expect("check");
    assert!(report.agrees(), "{report:?}");
    assert_eq!(report.sampled, 50);

    let mut drifted = products.clone();
    drifted[0].name = "Something else".into();
    let report = index.check(&drifted, drifted.len()).expect("check");
    assert!(!report.agrees());
    assert_eq!(report.different, std::slice::from_ref(&drifted[0].id));

    index.delete(&[&products[1].id]).expect("delete");
    index.commit().expect("commit");
    let report = index.check(&products, products.len()).expect("check");
    assert_eq!(report.indexed, products.len() as u64 - 1);
    assert_eq!(report.missing, std::slice::from_ref(&products[1].id));
    drop(index);
    std::fs::remove_dir_all(&directory).expect("clean up");
}

#[test]
fn bad_input_is_a_clear_error() {
    let mut rng = StdRng::seed_from_u64(1);
    let index = ProductIndex::in_ram(IndexSettings::default()).expect("index");
    let good = active_product(&mut rng, "Good");
    index.upsert(std::slice::from_ref(&good)).expect("upsert");
    index.commit().expect("commit");

    let bad_id = IndexedProduct {
        id: "PRODUCT-1".into(),
        ..good.clone()
    };
    let bad_price = IndexedProduct {
        prices: vec![Price {
            currency: "EUR".into(),
            amount: -1,
        }],
        ..active_product(&mut rng, "Bad")
    };
    for bad in [bad_id, bad_price] {
        let error = index.upsert(&[bad]).expect_err("refused");
        assert!(
            matches!(error, IndexError::InvalidProduct { .. }),
            "{error}"
        );
    }

    let search = |request: SearchRequest| index.search(&request);
    let error = search(SearchRequest {
        sort: Some(Sort::Relevance),
        limit: 5,
        ..SearchRequest::default()
    })
    .expect_err("relevance without text");
    assert!(matches!(error, IndexError::InvalidQuery(_)), "{error}");
    let error = search(SearchRequest {
        limit: MAX_LIMIT + 1,
        ..SearchRequest::default()
    })
    .expect_err("limit");
    assert!(matches!(error, IndexError::InvalidQuery(_)), "{error}");
    let error = search(SearchRequest {
        currency: Some("euro".into()),
        limit: 5,
        ..SearchRequest::default()
    })
    .expect_err("currency");
    assert!(matches!(error, IndexError::InvalidQuery(_)), "{error}");
    for cursor in ["", "garbage", "eyJzIjoibmV3ZXN0In0"] {
        let error = search(SearchRequest {
            cursor: Some(cursor.into()),
            limit: 5,
            ..SearchRequest::default()
        })
        .expect_err("cursor");
        assert!(
            matches!(error, IndexError::InvalidCursor(_)),
            "{cursor}: {error}"
        );
    }
    let newest = search(SearchRequest {
        limit: 0,
        ..SearchRequest::default()
    })
    .expect("facets only");
    assert_eq!((newest.ids.len(), newest.total), (0, 1));
}
