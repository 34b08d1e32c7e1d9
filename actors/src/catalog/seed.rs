//! `souk seed --products N`: a realistic demo catalog — a category tree, products with
//! names, descriptions, tags, attributes and prices drawn from per-category pools — for
//! trying Souk out and for benchmarks. Deterministic (fixed random seed), and
//! resumable: it numbers SKUs `SEED-000001…` and only adds the numbers no product or
//! variant names yet.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use souk_db::catalog::{self, CategoryRecord, ProductRecord, ProductRow};
use souk_db::clock::now_micros;
use souk_db::{Db, DbError};

use crate::catalog::service::announce_products;
use crate::catalog::CatalogService;
use crate::outbox::Topic;

pub const SKU_PREFIX: &str = "SEED-";
const BATCH: usize = 500;

/// The SKU of the seed's product number `position` (from 1).
pub fn seed_sku(position: usize) -> String {
    format!("{SKU_PREFIX}{position:06}")
}

struct Kind {
    parent: &'static str,
    slug: &'static str,
    name: &'static str,
    nouns: &'static [&'static str],
    adjectives: &'static [&'static str],
    tags: &'static [&'static str],
    /// (attribute, values)
    attributes: &'static [(&'static str, &'static [&'static str])],
    /// Typical price range in whole units.
    price: (u32, u32),
}

const ROOTS: &[(&str, &str)] = &[
    ("electronics", "Electronics"),
    ("clothing", "Clothing"),
    ("home", "Home & Garden"),
    ("sports", "Sports & Outdoors"),
];

const COLOURS: &[&str] = &[
    "black", "white", "red", "blue", "green", "grey", "navy", "beige", "yellow", "pink",
];
const BRANDS: &[&str] = &[
    "Northwind",
    "Acme",
    "Lumen",
    "Kestrel",
    "Orbit",
    "Juniper",
    "Vela",
    "Harbor",
    "Solstice",
    "Tamarind",
];

const KINDS: &[Kind] = &[
    Kind {
        parent: "electronics",
        slug: "audio",
        name: "Audio",
        nouns: &[
            "Headphones",
            "Earbuds",
            "Speaker",
            "Soundbar",
            "Turntable",
            "Microphone",
        ],
        adjectives: &[
            "Wireless",
            "Noise-cancelling",
            "Portable",
            "Studio",
            "Waterproof",
            "Compact",
        ],
        tags: &[
            "bluetooth",
            "wireless",
            "hifi",
            "portable",
            "bass",
            "travel",
        ],
        attributes: &[
            ("colour", COLOURS),
            ("brand", BRANDS),
            ("connectivity", &["bluetooth", "wired", "wifi"]),
        ],
        price: (19, 499),
    },
    Kind {
        parent: "electronics",
        slug: "phones",
        name: "Phones",
        nouns: &[
            "Smartphone",
            "Phone Case",
            "Charger",
            "Screen Protector",
            "Power Bank",
        ],
        adjectives: &["Fast", "Slim", "Rugged", "Magnetic", "Premium", "Recycled"],
        tags: &["android", "usb-c", "fast-charge", "5g", "rugged"],
        attributes: &[
            ("colour", COLOURS),
            ("brand", BRANDS),
            ("storage", &["64gb", "128gb", "256gb", "512gb"]),
        ],
        price: (9, 1299),
    },
    Kind {
        parent: "electronics",
        slug: "computers",
        name: "Computers",
        nouns: &[
            "Laptop",
            "Keyboard",
            "Mouse",
            "Monitor",
            "Webcam",
            "Docking Station",
        ],
        adjectives: &[
            "Ergonomic",
            "Mechanical",
            "Ultralight",
            "Gaming",
            "Curved",
            "Silent",
        ],
        tags: &["office", "gaming", "usb-c", "ergonomic", "4k"],
        attributes: &[
            ("colour", COLOURS),
            ("brand", BRANDS),
            ("layout", &["us", "uk", "de", "fr"]),
        ],
        price: (15, 2499),
    },
    Kind {
        parent: "clothing",
        slug: "mens",
        name: "Men",
        nouns: &["Shirt", "Jacket", "Jeans", "Sweater", "Trainers", "Boots"],
        adjectives: &[
            "Organic Cotton",
            "Slim Fit",
            "Linen",
            "Merino",
            "Waterproof",
            "Vintage",
        ],
        tags: &[
            "cotton",
            "summer",
            "winter",
            "casual",
            "formal",
            "sustainable",
        ],
        attributes: &[
            ("colour", COLOURS),
            ("size", &["xs", "s", "m", "l", "xl", "xxl"]),
            ("material", &["cotton", "wool", "linen", "polyester"]),
        ],
        price: (12, 349),
    },
    Kind {
        parent: "clothing",
        slug: "womens",
        name: "Women",
        nouns: &["Dress", "Blouse", "Skirt", "Cardigan", "Sneakers", "Coat"],
        adjectives: &[
            "Floral",
            "Wrap",
            "Pleated",
            "Cashmere",
            "Oversized",
            "Tailored",
        ],
        tags: &[
            "cotton",
            "summer",
            "winter",
            "casual",
            "party",
            "sustainable",
        ],
        attributes: &[
            ("colour", COLOURS),
            ("size", &["xs", "s", "m", "l", "xl"]),
            ("material", &["cotton", "silk", "wool", "viscose"]),
        ],
        price: (15, 399),
    },
    Kind {
        parent: "home",
        slug: "kitchen",
        name: "Kitchen",
        nouns: &[
            "Chef's Knife",
            "Frying Pan",
            "Espresso Maker",
            "Kettle",
            "Cutting Board",
            "Blender",
        ],
        adjectives: &[
            "Cast Iron",
            "Stainless",
            "Ceramic",
            "Bamboo",
            "Non-stick",
            "Copper",
        ],
        tags: &[
            "cooking",
            "baking",
            "coffee",
            "dishwasher-safe",
            "induction",
        ],
        attributes: &[
            ("colour", COLOURS),
            ("brand", BRANDS),
            ("material", &["steel", "iron", "ceramic", "wood"]),
        ],
        price: (8, 699),
    },
    Kind {
        parent: "home",
        slug: "garden",
        name: "Garden",
        nouns: &[
            "Planter",
            "Hose",
            "Pruning Shears",
            "Lounger",
            "Lantern",
            "Bird Feeder",
        ],
        adjectives: &[
            "Weatherproof",
            "Solar",
            "Folding",
            "Terracotta",
            "Teak",
            "Lightweight",
        ],
        tags: &["outdoor", "summer", "solar", "plants", "patio"],
        attributes: &[
            ("colour", COLOURS),
            ("material", &["teak", "steel", "clay", "plastic"]),
        ],
        price: (6, 899),
    },
    Kind {
        parent: "sports",
        slug: "running",
        name: "Running",
        nouns: &[
            "Running Shoe",
            "Running Vest",
            "Water Bottle",
            "Headlamp",
            "Socks",
        ],
        adjectives: &[
            "Trail",
            "Lightweight",
            "Cushioned",
            "Reflective",
            "Breathable",
            "Racing",
        ],
        tags: &["running", "trail", "marathon", "night", "breathable"],
        attributes: &[
            ("colour", COLOURS),
            ("size", &["38", "39", "40", "41", "42", "43", "44", "45"]),
            ("brand", BRANDS),
        ],
        price: (9, 249),
    },
    Kind {
        parent: "sports",
        slug: "cycling",
        name: "Cycling",
        nouns: &["Helmet", "Bike Light", "Saddle", "Jersey", "Pump", "Lock"],
        adjectives: &[
            "Aero",
            "Carbon",
            "Rechargeable",
            "Padded",
            "Folding",
            "Heavy-duty",
        ],
        tags: &["road", "mtb", "commute", "safety", "carbon"],
        attributes: &[
            ("colour", COLOURS),
            ("brand", BRANDS),
            ("size", &["s", "m", "l"]),
        ],
        price: (7, 1499),
    },
];

/// Ensures the category tree exists; returns the leaf categories in `KINDS` order.
async fn ensure_categories(
    catalog: &CatalogService,
    db: &Db,
) -> Result<Vec<String>, crate::error::Error> {
    let mut existing = catalog.categories().await?;
    let now = now_micros();
    let mut created_any = false;
    let ensure =
        |slug: &str, name: &str, parent: Option<String>, existing: &mut Vec<CategoryRecord>| {
            if let Some(found) = existing.iter().find(|category| category.slug == slug) {
                return (found.id.clone(), None);
            }
            let record = CategoryRecord {
                id: souk_db::ids::new_id(),
                parent_id: parent,
                name: name.to_owned(),
                slug: slug.to_owned(),
                created_at: now,
                updated_at: now,
            };
            existing.push(record.clone());
            (record.id.clone(), Some(record))
        };
    let mut to_insert = Vec::new();
    for (slug, name) in ROOTS {
        let (_, record) = ensure(slug, name, None, &mut existing);
        to_insert.extend(record);
    }
    let mut leaves = Vec::new();
    for kind in KINDS {
        let parent = existing
            .iter()
            .find(|category| category.slug == kind.parent)
            .map(|category| category.id.clone());
        let (id, record) = ensure(kind.slug, kind.name, parent, &mut existing);
        to_insert.extend(record);
        leaves.push(id);
    }
    for record in &to_insert {
        // With its `category.changed`, so running nodes' caches of the tree forget it.
        let changed = Topic::CategoryChanged
            .event(&record.id, &serde_json::json!({ "category_id": record.id }))?;
        let mut transaction = db.begin().await?;
        catalog::insert_category(&mut *transaction, record).await?;
        souk_db::outbox::append(&mut *transaction, &changed).await?;
        transaction.commit().await.map_err(DbError::from)?;
        created_any = true;
    }
    if created_any {
        catalog.cache().invalidate("catalog").await;
    }
    Ok(leaves)
}

fn product(rng: &mut StdRng, index: usize, kind: &Kind, category_id: &str, now: i64) -> ProductRow {
    let adjective = kind.adjectives.choose(rng).copied().unwrap_or_default();
    let noun = kind.nouns.choose(rng).copied().unwrap_or_default();
    let brand = BRANDS.choose(rng).copied().unwrap_or_default();
    let mut attributes: Vec<(String, String)> = kind
        .attributes
        .iter()
        .map(|(name, values)| {
            (
                (*name).to_owned(),
                values.choose(rng).copied().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    if !attributes.iter().any(|(name, _)| name == "brand") {
        attributes.push(("brand".to_owned(), brand.to_owned()));
    }
    attributes.sort();
    let colour = attributes
        .iter()
        .find(|(name, _)| name == "colour")
        .map(|(_, value)| value.clone())
        .unwrap_or_default();
    let tag_count = rng.gen_range(1..=3);
    let mut tags: Vec<String> = kind
        .tags
        .choose_multiple(rng, tag_count)
        .map(|tag| (*tag).to_owned())
        .collect();
    tags.sort();
    // Log-uniform over the kind's range, ending in .99 like shop prices do.
    let (low, high) = (f64::from(kind.price.0), f64::from(kind.price.1));
    let whole = (low.ln() + rng.gen::<f64>() * (high.ln() - low.ln()))
        .exp()
        .floor() as i64;
    let currency = match rng.gen_range(0..20) {
        0 | 1 => "USD",
        2 => "GBP",
        _ => "EUR",
    };
    let status = match rng.gen_range(0..100) {
        0..=3 => "draft",
        4 => "archived",
        _ => "active",
    };
    let name = format!("{brand} {adjective} {noun}");
    let description = format!(
        "The {brand} {adjective} {noun} in {colour}: {} Made for everyday use and backed by a two-year warranty.",
        match rng.gen_range(0..4) {
            0 => "built to last, easy to care for.",
            1 => "a customer favourite for its comfort and finish.",
            2 => "thoughtfully designed with recycled materials.",
            _ => "light, durable and ready for anything.",
        }
    );
    let created_at = now - (index as i64 % 86_400) * 1_000_000;
    ProductRow {
        product: ProductRecord {
            id: souk_db::ids::new_id(),
            sku: seed_sku(index),
            name,
            description,
            price_amount: whole * 100 + 99,
            currency: currency.to_owned(),
            category_id: Some(category_id.to_owned()),
            images: format!("[\"https://img.example.com/seed/{index}.jpg\"]"),
            status: status.to_owned(),
            created_at,
            updated_at: created_at,
        },
        tags,
        attributes,
        options: Vec::new(),
        variants: Vec::new(),
    }
}

/// Adds a product for every SKU `SEED-000001` to `SEED-{target}` that the catalog does
/// not name yet (a product's own SKU or a variant's, seeded or made by an admin).
/// Returns how many it added.
pub async fn seed(
    catalog: &CatalogService,
    db: &Db,
    target: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<usize, crate::error::Error> {
    let leaves = ensure_categories(catalog, db).await?;
    let taken: HashSet<String> = catalog::skus_with_prefix(db.pool(), SKU_PREFIX)
        .await?
        .into_iter()
        .collect();
    let missing: Vec<usize> = (1..=target)
        .filter(|position| !taken.contains(&seed_sku(*position)))
        .collect();
    if missing.is_empty() {
        return Ok(0);
    }
    let present = target - missing.len();
    let now = now_micros();
    let mut added = 0;
    for positions in missing.chunks(BATCH) {
        let mut transaction = db.begin().await?;
        let mut ids = Vec::with_capacity(positions.len());
        for &position in positions {
            // One generator per product: the catalog is the same whatever the batching.
            let mut rng = StdRng::seed_from_u64(position as u64);
            let kind_index = rng.gen_range(0..KINDS.len());
            let row = product(
                &mut rng,
                position,
                &KINDS[kind_index],
                &leaves[kind_index],
                now,
            );
            catalog::insert_product(&mut transaction, &row).await?;
            ids.push(row.product.id);
        }
        announce_products(&mut transaction, &ids).await?;
        transaction.commit().await.map_err(DbError::from)?;
        added += positions.len();
        progress(present + added, target);
    }
    catalog.cache().invalidate("catalog").await;
    Ok(added)
}
