//! The reference search: the contract evaluated the plain way, product by product,
//! over the same products the index holds. Text semantics, stated precisely:
//!
//! - a text is split at every character that is not alphanumeric; words are lower-cased
//!   and accents folded (only `é`, `è` occur in the generated data); words over 40 bytes
//!   are ignored; the stop words below are dropped unless every word is one; the first
//!   ten words count; a text with no word left matches nothing;
//! - a product's name, tags and description are split the same way;
//! - a word matches a field *exactly* (quality 4) when its English stem equals the stem
//!   of one of the field's words; as a *prefix* (quality 2) when it is the last word of
//!   the text, has at least two letters and begins one of the field's words; with a
//!   *typo* (quality 1) when it has at least five letters and one of the field's words
//!   is at most one edit away (change, insert, delete, or swap of neighbours);
//! - a product matches when every word matches at least one field; its score is the sum
//!   over words and fields of field weight (name 10, tags 4, description 1) × the best
//!   quality in that field.

use std::collections::{BTreeMap, HashMap};

use rust_stemmers::{Algorithm, Stemmer};
use souk_actors::catalog::index::{Facets, IndexedProduct, SearchRequest, Sort};

const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to", "with",
];

struct FieldWords {
    raw: Vec<String>,
    stems: Vec<String>,
    weight: u32,
}

pub struct Reference {
    products: Vec<IndexedProduct>,
    fields: HashMap<String, [FieldWords; 3]>,
    stemmer: Stemmer,
}

/// What the reference answers: every match in order, with total and facets.
pub struct Answer {
    pub ids: Vec<String>,
    pub facets: Facets,
}

pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| {
            word.to_lowercase()
                .chars()
                .map(|c| match c {
                    'é' | 'è' => 'e',
                    other => other,
                })
                .collect::<String>()
        })
        .filter(|word| word.len() <= 40)
        .collect()
}

/// At most one edit apart (optimal string alignment distance ≤ 1).
fn one_edit_apart(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a == b {
        return true;
    }
    let common_prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let (rest_a, rest_b) = (&a[common_prefix..], &b[common_prefix..]);
    match rest_a.len() as isize - rest_b.len() as isize {
        0 => {
            rest_a[1..] == rest_b[1..]
                || (rest_a.len() >= 2
                    && rest_a[0] == rest_b[1]
                    && rest_a[1] == rest_b[0]
                    && rest_a[2..] == rest_b[2..])
        }
        1 => rest_a[1..] == *rest_b,
        -1 => *rest_a == rest_b[1..],
        _ => false,
    }
}

struct Word {
    raw: String,
    stem: String,
    prefix: bool,
    fuzzy: bool,
}

impl Reference {
    pub fn new(products: &[IndexedProduct]) -> Reference {
        let mut reference = Reference {
            products: Vec::new(),
            fields: HashMap::new(),
            stemmer: Stemmer::create(Algorithm::English),
        };
        for product in products {
            reference.upsert(product.clone());
        }
        reference
    }

    pub fn upsert(&mut self, product: IndexedProduct) {
        let field = |text: &str, weight: u32| {
            let raw = words(text);
            FieldWords {
                stems: raw
                    .iter()
                    .map(|word| self.stemmer.stem(word).into_owned())
                    .collect(),
                raw,
                weight,
            }
        };
        let fields = [
            field(&product.name, 10),
            field(&product.tags.join(" "), 4),
            field(&product.description, 1),
        ];
        self.fields.insert(product.id.clone(), fields);
        self.products.retain(|existing| existing.id != product.id);
        self.products.push(product);
    }

    pub fn delete(&mut self, id: &str) {
        self.products.retain(|existing| existing.id != id);
        self.fields.remove(id);
    }

    pub fn products(&self) -> &[IndexedProduct] {
        &self.products
    }

    fn query_words(&self, text: &str) -> Vec<Word> {
        let all = words(text);
        let last = all.len().checked_sub(1);
        let only_stop_words = all.iter().all(|word| STOP_WORDS.contains(&word.as_str()));
        all.iter()
            .enumerate()
            .filter(|(_, word)| only_stop_words || !STOP_WORDS.contains(&word.as_str()))
            .take(10)
            .map(|(position, word)| Word {
                raw: word.clone(),
                stem: self.stemmer.stem(word).into_owned(),
                prefix: Some(position) == last && word.chars().count() >= 2,
                fuzzy: word.chars().count() >= 5,
            })
            .collect()
    }

    /// The relevance score, or `None` when some word matches no field.
    fn score(&self, product: &IndexedProduct, words: &[Word]) -> Option<u32> {
        let fields = &self.fields[&product.id];
        let mut total = 0;
        for word in words {
            let mut word_score = 0;
            for field in fields {
                let quality = if field.stems.contains(&word.stem) {
                    4
                } else if word.prefix && field.raw.iter().any(|raw| raw.starts_with(&word.raw)) {
                    2
                } else if word.fuzzy && field.raw.iter().any(|raw| one_edit_apart(raw, &word.raw)) {
                    1
                } else {
                    0
                };
                word_score += quality * field.weight;
            }
            if word_score == 0 {
                return None;
            }
            total += word_score;
        }
        Some(total)
    }

    /// Every amount the product sells at in `currency` (its own currency when `None`):
    /// its own price or each variant's in the first price's currency, the listed price
    /// in another.
    fn amounts(product: &IndexedProduct, currency: Option<&str>) -> Vec<i64> {
        let own = product.prices.first().map(|price| price.currency.as_str());
        match currency {
            None => product.selling_amounts(),
            Some(currency) if Some(currency) == own => product.selling_amounts(),
            Some(currency) => product
                .prices
                .iter()
                .filter(|price| price.currency == currency)
                .map(|price| price.amount)
                .collect(),
        }
    }

    /// The price sorted on: the lowest it sells at.
    fn price(product: &IndexedProduct, currency: Option<&str>) -> Option<i64> {
        Self::amounts(product, currency).into_iter().min()
    }

    fn passes_filters(product: &IndexedProduct, request: &SearchRequest) -> bool {
        if !request.statuses.is_empty() && !request.statuses.contains(&product.status) {
            return false;
        }
        if let Some(category) = &request.category_id {
            let in_tree = product.category_id.as_ref() == Some(category)
                || product.category_ancestors.contains(category);
            if !in_tree {
                return false;
            }
        }
        let currency = request.currency.as_deref();
        if currency.is_some() || request.price_min.is_some() || request.price_max.is_some() {
            let in_range = Self::amounts(product, currency).into_iter().any(|price| {
                request.price_min.is_none_or(|minimum| price >= minimum)
                    && request.price_max.is_none_or(|maximum| price <= maximum)
            });
            if !in_range {
                return false;
            }
        }
        let pairs = product.facet_pairs();
        request.tags.iter().all(|tag| product.tags.contains(tag))
            && request.attributes.iter().all(|pair| pairs.contains(pair))
            && (!request.in_stock || product.in_stock)
    }

    /// Every match of the request (its cursor and limit ignored), in order.
    pub fn search(&self, request: &SearchRequest) -> Answer {
        let text = request
            .text
            .as_deref()
            .filter(|text| !text.trim().is_empty());
        let words = text.map(|text| self.query_words(text)).unwrap_or_default();
        if text.is_some() && words.is_empty() {
            return Answer {
                ids: Vec::new(),
                facets: Facets::default(),
            };
        }
        let sort = request.sort.unwrap_or(if text.is_some() {
            Sort::Relevance
        } else {
            Sort::Newest
        });
        let mut matches: Vec<(&IndexedProduct, u32)> = self
            .products
            .iter()
            .filter(|product| Self::passes_filters(product, request))
            .filter_map(|product| Some((product, self.score(product, &words)?)))
            .collect();
        let currency = request.currency.as_deref();
        matches.sort_by(|(a, a_score), (b, b_score)| match sort {
            Sort::Relevance => b_score.cmp(a_score).then(a.id.cmp(&b.id)),
            Sort::Newest => b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)),
            Sort::PriceAsc => Self::price(a, currency)
                .cmp(&Self::price(b, currency))
                .then(a.id.cmp(&b.id)),
            Sort::PriceDesc => Self::price(b, currency)
                .cmp(&Self::price(a, currency))
                .then(b.id.cmp(&a.id)),
            Sort::Name => a
                .name
                .to_lowercase()
                .cmp(&b.name.to_lowercase())
                .then(a.id.cmp(&b.id)),
        });
        let mut categories: BTreeMap<Option<String>, u64> = BTreeMap::new();
        let mut attributes: BTreeMap<(String, String), u64> = BTreeMap::new();
        for (product, _) in &matches {
            *categories.entry(product.category_id.clone()).or_default() += 1;
            for pair in product.facet_pairs() {
                *attributes.entry(pair).or_default() += 1;
            }
        }
        let mut categories: Vec<(Option<String>, u64)> = categories.into_iter().collect();
        categories.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Answer {
            ids: matches
                .iter()
                .map(|(product, _)| product.id.clone())
                .collect(),
            facets: Facets {
                categories,
                attributes: attributes
                    .into_iter()
                    .map(|((name, value), count)| (name, value, count))
                    .collect(),
            },
        }
    }
}

#[test]
fn one_edit_apart_is_optimal_string_alignment_distance_one() {
    for (a, b) in [
        ("boots", "boots"),
        ("boots", "boats"),
        ("boots", "boot"),
        ("boot", "boots"),
        ("boots", "obots"),
        ("boots", "bosts"),
        ("boots", "bootz"),
    ] {
        assert!(one_edit_apart(a, b), "{a} {b}");
    }
    for (a, b) in [("boots", "obtos"), ("boots", "bo"), ("boots", "stoob")] {
        assert!(!one_edit_apart(a, b), "{a} {b}");
    }
}
