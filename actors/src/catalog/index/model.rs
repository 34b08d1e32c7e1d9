//! What goes into the product index and what comes out of it: the indexed product, the
//! search request (mirroring `GET /api/v1/products`), the hits, the errors. Independent
//! of the catalog service's types; the service maps its own onto these.

use serde::{Deserialize, Serialize};

/// A product as the index sees it. The database stays the source of truth: the service
/// builds one of these from a product row (and its stock) and upserts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedProduct {
    /// A canonical lowercase hyphenated UUID (every Souk id is one); ties in every sort
    /// are broken by it.
    pub id: String,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    /// (name, value); names contain no `:`.
    pub attributes: Vec<(String, String)>,
    pub category_id: Option<String>,
    /// The category's ancestors, root first (without the category itself): a search in
    /// any of them finds the product. A category that moves must have its products
    /// upserted again.
    pub category_ancestors: Vec<String>,
    /// At most one price per currency. The first is the product's own price: it is the
    /// one sorted on when a search names no currency. A product with variants is
    /// filtered on every variant's price and sorted on its lowest.
    pub prices: Vec<Price>,
    /// The options its variants choose from, each with its values in display order.
    #[serde(default)]
    pub options: Vec<(String, Vec<String>)>,
    /// Each sold by its own SKU, priced in the currency of the first price. Their
    /// option values are filtered and counted as attributes are.
    #[serde(default)]
    pub variants: Vec<IndexedVariant>,
    pub status: Status,
    /// Microseconds since the Unix epoch (UTC); `newest` sorts on it.
    pub created_at: i64,
    /// Whether stock is available now; see `ProductIndex::set_in_stock`.
    pub in_stock: bool,
    /// Image URLs: stored with the product, not searched.
    #[serde(default)]
    pub images: Vec<String>,
    /// Microseconds since the Unix epoch (UTC): stored, not searched.
    #[serde(default)]
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedVariant {
    pub sku: String,
    /// (option name, value), by option name.
    pub options: Vec<(String, String)>,
    /// Minor units, in the product's currency.
    pub amount: i64,
    #[serde(default)]
    pub images: Vec<String>,
}

impl IndexedProduct {
    /// The prices it sells at in the currency of its first price: its own, or every
    /// variant's. Empty only for a product without prices (which validation refuses).
    pub fn selling_amounts(&self) -> Vec<i64> {
        if self.variants.is_empty() {
            return self
                .prices
                .first()
                .map(|price| price.amount)
                .into_iter()
                .collect();
        }
        self.variants.iter().map(|variant| variant.amount).collect()
    }

    /// Its attributes and its variants' option values as (name, value) pairs, sorted,
    /// each once: what attribute filters and facets see.
    pub fn facet_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = self.attributes.clone();
        for variant in &self.variants {
            pairs.extend(variant.options.iter().cloned());
        }
        pairs.sort();
        pairs.dedup();
        pairs
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    /// ISO 4217 code, three upper-case letters.
    pub currency: String,
    /// Integer minor units, never negative.
    pub amount: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Draft,
    Active,
    Archived,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Draft, Status::Active, Status::Archived];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Active => "active",
            Status::Archived => "archived",
        }
    }
}

/// The five orders of the search contract. Ties are broken by id: ascending, except
/// for `price_desc` and `newest`, which run entirely backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Best text match first (see the module documentation for the score); needs text.
    Relevance,
    /// Most recent `created_at` first.
    Newest,
    PriceAsc,
    PriceDesc,
    /// By name, compared in lower case.
    Name,
}

impl Sort {
    pub const ALL: [Sort; 5] = [
        Sort::Relevance,
        Sort::Newest,
        Sort::PriceAsc,
        Sort::PriceDesc,
        Sort::Name,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Relevance => "relevance",
            Sort::Newest => "newest",
            Sort::PriceAsc => "price_asc",
            Sort::PriceDesc => "price_desc",
            Sort::Name => "name",
        }
    }

    pub fn parse(raw: &str) -> Option<Sort> {
        Sort::ALL.into_iter().find(|sort| sort.as_str() == raw)
    }
}

/// Largest page a search returns.
pub const MAX_LIMIT: usize = 1_000;

/// One search, as `GET /api/v1/products` asks it. Every filter narrows; `None` or empty
/// means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchRequest {
    /// Free text over name, description and tags.
    pub text: Option<String>,
    /// A category id; includes its sub-categories.
    pub category_id: Option<String>,
    /// Minor units, inclusive, on the price in `currency` (or the product's own price).
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    /// Only products with a price in this currency; price filters and sorts use it.
    pub currency: Option<String>,
    /// Every tag must be present.
    pub tags: Vec<String>,
    /// Every (name, value) must be present.
    pub attributes: Vec<(String, String)>,
    /// Any of these statuses; empty means any status. The service passes `[Active]` for
    /// shoppers.
    pub statuses: Vec<Status>,
    pub in_stock: bool,
    /// Default: `relevance` with text, `newest` without.
    pub sort: Option<Sort>,
    /// Products per page, at most [`MAX_LIMIT`]; 0 returns only `total` and `facets`.
    pub limit: usize,
    /// `next_cursor` of the previous page of the same search.
    pub cursor: Option<String>,
}

/// One page of a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHits {
    /// Product ids in order.
    pub ids: Vec<String>,
    /// The products of `ids`, in the same order, as the same searcher holds them.
    pub products: Vec<IndexedProduct>,
    /// Every product matching the text and filters, not only this page.
    pub total: u64,
    pub facets: Facets,
    /// Present when more matches follow.
    pub next_cursor: Option<String>,
    /// The order used (the default resolved).
    pub sort: Sort,
}

/// Counts over every match (not one page).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facets {
    /// Per product category (`None`: products without one); most first, then by id.
    pub categories: Vec<(Option<String>, u64)>,
    /// (attribute name, value, count), by name then value.
    pub attributes: Vec<(String, String, u64)>,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("invalid product {id:?}: {reason}")]
    InvalidProduct { id: String, reason: String },
    #[error("invalid search: {0}")]
    InvalidQuery(String),
    #[error("the cursor is invalid: {0}")]
    InvalidCursor(String),
    #[error("search index failure: {0}")]
    Engine(#[from] tantivy::TantivyError),
    #[error("search index storage failure: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = IndexError> = std::result::Result<T, E>;
