//! A seeded random catalog and random searches over it, built to hit every rule of
//! the index: inflected words (stems), prefixes, typos, accents and capitals, stop
//! words, hyphenated tags, ties on every sort key, a category tree, several currencies,
//! every status and stock flag.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use souk_actors::catalog::index::{
    IndexedProduct, IndexedVariant, Price, SearchRequest, Sort, Status,
};
use uuid::Uuid;

/// Words of names and descriptions; several share a stem (`run`, `running`, `runs`),
/// a prefix (`light`, `lighting`, `lightweight`) or sit one typo apart (`boots`,
/// `boats`).
pub const WORDS: &[&str] = &[
    "shoe",
    "shoes",
    "running",
    "runner",
    "runs",
    "run",
    "jacket",
    "jackets",
    "headphones",
    "headphone",
    "speaker",
    "speakers",
    "kettle",
    "kettles",
    "lantern",
    "planter",
    "plant",
    "plants",
    "helmet",
    "bottle",
    "bottles",
    "laptop",
    "keyboard",
    "keyboards",
    "cable",
    "charger",
    "charging",
    "sweater",
    "sweaters",
    "shirt",
    "shirts",
    "dress",
    "dresses",
    "boots",
    "boats",
    "boot",
    "trail",
    "trails",
    "light",
    "lights",
    "lighting",
    "lightweight",
    "carbon",
    "copper",
    "cotton",
    "linen",
    "wool",
    "woolen",
    "wireless",
    "waterproof",
    "compact",
    "studio",
    "garden",
    "kitchen",
    "café",
    "crème",
    "cast",
    "iron",
    "steel",
    "bamboo",
    "travel",
    "outdoor",
    "indoor",
    "classic",
    "vintage",
    "premium",
];
pub const STOP_WORDS_USED: &[&str] = &["the", "for", "with", "and", "a", "of"];
pub const TAGS: &[&str] = &[
    "usb-c",
    "dishwasher-safe",
    "summer",
    "winter",
    "running",
    "eco",
    "gift",
    "sale",
    "bluetooth",
    "outdoor",
];
pub const ATTRIBUTES: &[(&str, &[&str])] = &[
    ("colour", &["black", "white", "red", "blue", "green"]),
    ("size", &["s", "m", "l", "xl"]),
    ("material", &["stainless steel", "wood", "ratio:1"]),
];
pub const CURRENCIES: &[&str] = &["EUR", "USD", "GBP"];

/// A category tree: (id, parent).
pub struct Categories(pub Vec<(String, Option<String>)>);

impl Categories {
    pub fn generate(rng: &mut StdRng) -> Categories {
        let mut tree = Vec::new();
        for _ in 0..3 {
            let root = uuid(rng);
            tree.push((root.clone(), None));
            for _ in 0..rng.gen_range(2..=3) {
                let child = uuid(rng);
                tree.push((child.clone(), Some(root.clone())));
                if rng.gen_bool(0.5) {
                    tree.push((uuid(rng), Some(child)));
                }
            }
        }
        Categories(tree)
    }

    /// Ancestors of a category, root first.
    pub fn ancestors(&self, id: &str) -> Vec<String> {
        let mut path = Vec::new();
        let mut current = self.parent(id);
        while let Some(parent) = current {
            path.push(parent.clone());
            current = self.parent(&parent);
        }
        path.reverse();
        path
    }

    fn parent(&self, id: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(candidate, _)| candidate == id)
            .and_then(|(_, parent)| parent.clone())
    }

    pub fn ids(&self) -> Vec<String> {
        self.0.iter().map(|(id, _)| id.clone()).collect()
    }
}

pub fn uuid(rng: &mut StdRng) -> String {
    Uuid::from_u128(rng.gen()).hyphenated().to_string()
}

fn word(rng: &mut StdRng) -> &'static str {
    WORDS.choose(rng).copied().unwrap_or("shoe")
}

fn capitalised(word: &str) -> String {
    let mut characters = word.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}

pub fn product(rng: &mut StdRng, position: usize, categories: &Categories) -> IndexedProduct {
    // Few distinct names, so name sorts tie often.
    let name_words = rng.gen_range(1..=3);
    let name = (0..name_words)
        .map(|_| {
            let word = word(rng);
            if rng.gen_bool(0.5) {
                capitalised(word)
            } else {
                word.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let description = (0..rng.gen_range(0..10))
        .map(|_| {
            if rng.gen_bool(0.2) {
                STOP_WORDS_USED.choose(rng).copied().unwrap_or("the")
            } else {
                word(rng)
            }
        })
        .collect::<Vec<_>>()
        .join(if rng.gen_bool(0.5) { " " } else { ", " });
    let tag_count = rng.gen_range(0..=3);
    let mut tags: Vec<String> = TAGS
        .choose_multiple(rng, tag_count)
        .map(|tag| (*tag).to_owned())
        .collect();
    tags.sort();
    let mut attributes = Vec::new();
    for (name, values) in ATTRIBUTES {
        if rng.gen_bool(0.6) {
            let value = values.choose(rng).copied().unwrap_or("x");
            attributes.push(((*name).to_owned(), value.to_owned()));
        }
    }
    let category_id = if rng.gen_bool(0.9) {
        categories.ids().choose(rng).cloned()
    } else {
        None
    };
    let mut currencies: Vec<&str> = CURRENCIES.to_vec();
    currencies.shuffle(rng);
    let prices = currencies
        .into_iter()
        .take(if rng.gen_bool(0.3) { 2 } else { 1 })
        .map(|currency| Price {
            currency: currency.to_owned(),
            // Whole hundreds: many ties.
            amount: rng.gen_range(0..200) * 100,
        })
        .collect();
    let status = match rng.gen_range(0..10) {
        0 => Status::Draft,
        1 => Status::Archived,
        _ => Status::Active,
    };
    // A quarter sell variants: sizes (also an attribute name, so the two meet in
    // filters and facets) and fits, each variant at its own price.
    let (options, variants) = if rng.gen_bool(0.25) {
        variants(rng, position)
    } else {
        (Vec::new(), Vec::new())
    };
    IndexedProduct {
        options,
        variants,
        id: uuid(rng),
        sku: format!("SKU-{position:06}"),
        name,
        description,
        tags,
        attributes,
        category_ancestors: category_id
            .as_deref()
            .map(|id| categories.ancestors(id))
            .unwrap_or_default(),
        category_id,
        prices,
        status,
        // Few distinct times: newest ties often.
        created_at: 1_700_000_000_000_000 + rng.gen_range(0..500) * 1_000_000,
        in_stock: rng.gen_bool(0.6),
        images: vec![format!("https://img.example/{position}.jpg")],
        updated_at: 1_700_000_000_000_000 + rng.gen_range(0..500) * 1_000_000,
    }
}

type Options = Vec<(String, Vec<String>)>;

fn variants(rng: &mut StdRng, position: usize) -> (Options, Vec<IndexedVariant>) {
    let size_count = rng.gen_range(1..=3);
    let sizes: Vec<String> = ["s", "m", "l", "xl"]
        .choose_multiple(rng, size_count)
        .map(|size| (*size).to_owned())
        .collect();
    let fits: Vec<String> = if rng.gen_bool(0.5) {
        vec!["slim".to_owned(), "regular".to_owned()]
    } else {
        Vec::new()
    };
    let mut variants = Vec::new();
    for size in &sizes {
        let fit_choices: Vec<Option<&String>> = if fits.is_empty() {
            vec![None]
        } else {
            fits.iter().map(Some).collect()
        };
        for fit in fit_choices {
            if !variants.is_empty() && rng.gen_bool(0.3) {
                continue;
            }
            let mut options = vec![("size".to_owned(), size.clone())];
            if let Some(fit) = fit {
                options.push(("fit".to_owned(), fit.clone()));
            }
            variants.push(IndexedVariant {
                sku: format!("SKU-{position:06}-{}", variants.len()),
                options,
                amount: rng.gen_range(0..200) * 100,
                images: Vec::new(),
            });
        }
    }
    let mut options = vec![("size".to_owned(), sizes)];
    if !fits.is_empty() {
        options.push(("fit".to_owned(), fits));
    }
    (options, variants)
}

pub fn catalog(rng: &mut StdRng, count: usize, categories: &Categories) -> Vec<IndexedProduct> {
    (0..count)
        .map(|position| product(rng, position, categories))
        .collect()
}

/// One word of a search text: exact, inflected, with a typo, a prefix, a stop word,
/// capitalised or accented, or matching nothing.
fn query_word(rng: &mut StdRng, last: bool) -> String {
    let base = word(rng);
    match rng.gen_range(0..10) {
        0 if last => {
            let letters: Vec<char> = base.chars().collect();
            letters[..rng.gen_range(1..=letters.len().min(5))]
                .iter()
                .collect()
        }
        1 => typo(rng, base),
        2 => STOP_WORDS_USED
            .choose(rng)
            .copied()
            .unwrap_or("the")
            .to_owned(),
        3 => base.to_uppercase(),
        4 => ["zqxv", "nothing", "cafe", "CREME", "runnings"]
            .choose(rng)
            .copied()
            .unwrap_or("zqxv")
            .to_owned(),
        5 => TAGS.choose(rng).copied().unwrap_or("eco").to_owned(),
        _ => base.to_owned(),
    }
}

/// The word with one edit: a letter changed, dropped, added, or two swapped.
fn typo(rng: &mut StdRng, word: &str) -> String {
    let mut letters: Vec<char> = word.chars().collect();
    let at = rng.gen_range(0..letters.len());
    match rng.gen_range(0..4) {
        0 => letters[at] = 'q',
        1 if letters.len() > 1 => {
            letters.remove(at);
        }
        2 => letters.insert(at, 'e'),
        _ if at + 1 < letters.len() => letters.swap(at, at + 1),
        _ => letters[at] = 'z',
    }
    letters.into_iter().collect()
}

pub fn request(rng: &mut StdRng, categories: &Categories) -> SearchRequest {
    let mut request = SearchRequest {
        limit: rng.gen_range(1..=40),
        ..SearchRequest::default()
    };
    if rng.gen_bool(0.7) {
        let count = rng.gen_range(1..=3);
        let words: Vec<String> = (0..count)
            .map(|position| query_word(rng, position + 1 == count))
            .collect();
        let separator = [" ", "  ", ", ", "-"].choose(rng).copied().unwrap_or(" ");
        request.text = Some(words.join(separator));
    }
    if rng.gen_bool(0.3) {
        request.category_id = if rng.gen_bool(0.9) {
            categories.ids().choose(rng).cloned()
        } else {
            Some(uuid(rng))
        };
    }
    if rng.gen_bool(0.25) {
        let low = rng.gen_range(0..150) * 100;
        request.price_min = rng.gen_bool(0.7).then_some(low);
        request.price_max = rng.gen_bool(0.7).then(|| low + rng.gen_range(0..100) * 100);
    }
    if rng.gen_bool(0.2) {
        request.currency = CURRENCIES
            .choose(rng)
            .map(|currency| (*currency).to_owned());
    }
    if rng.gen_bool(0.15) {
        let count = rng.gen_range(1..=2);
        request.tags = TAGS
            .choose_multiple(rng, count)
            .map(|tag| (*tag).to_owned())
            .collect();
    }
    if rng.gen_bool(0.2) {
        let count = rng.gen_range(1..=2);
        let names: Vec<&(&str, &[&str])> = ATTRIBUTES.choose_multiple(rng, count).collect();
        for (name, values) in names {
            let value = values.choose(rng).copied().unwrap_or("x");
            request
                .attributes
                .push(((*name).to_owned(), value.to_owned()));
        }
    }
    request.statuses = match rng.gen_range(0..4) {
        0 | 1 => vec![Status::Active],
        2 => Vec::new(),
        _ => Status::ALL
            .into_iter()
            .filter(|_| rng.gen_bool(0.5))
            .collect(),
    };
    request.in_stock = rng.gen_bool(0.2);
    let sorts: &[Sort] = if request.text.is_some() {
        &Sort::ALL
    } else {
        &Sort::ALL[1..]
    };
    request.sort = if rng.gen_bool(0.2) {
        None
    } else {
        sorts.choose(rng).copied()
    };
    request
}
