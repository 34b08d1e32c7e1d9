//! What the catalog shows and takes: product, category, facet and search-page views
//! with their conversions, and the inputs of products, categories, searches and imports.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use souk_db::catalog::ProductRow;
use souk_db::clock::to_datetime;
use utoipa::ToSchema;

use crate::catalog::index::{Facets as IndexFacets, IndexedProduct, Sort};
use crate::catalog::model::ProductStatus;
use crate::catalog::variants::{
    self, OptionInput, PriceRange, ProductOption, VariantInput, VariantView,
};
use crate::error::FieldError;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Money {
    /// Integer minor units (cents for EUR, yen for JPY).
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ProductView {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price: Money,
    pub category_id: Option<String>,
    pub tags: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    pub images: Vec<String>,
    /// The options its variants choose from, in display order; empty when the product
    /// is sold by its own SKU.
    pub options: Vec<ProductOption>,
    /// Each sold by its own SKU; empty when the product is sold by its own SKU.
    pub variants: Vec<VariantView>,
    /// Its own price, or the lowest and highest of its variants'.
    pub price_range: PriceRange,
    pub status: ProductStatus,
    /// Units that can be ordered now (`on_hand - reserved`; 0 when never stocked):
    /// of its own SKU, or summed over its variants. Read fresh on every request, never
    /// from the cache.
    #[serde(default)]
    pub available: i64,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

impl From<ProductRow> for ProductView {
    fn from(row: ProductRow) -> Self {
        let product = row.product;
        let variants = variants::variant_views(&row.options, &row.variants, &product.currency);
        let price = Money {
            amount: product.price_amount,
            currency: product.currency,
        };
        Self {
            images: serde_json::from_str(&product.images).unwrap_or_default(),
            options: variants::option_views(&row.options),
            price_range: variants::price_range(&price, &variants),
            variants,
            status: ProductStatus::parse(&product.status).unwrap_or(ProductStatus::Draft),
            available: 0,
            created_at: to_datetime(product.created_at).to_rfc3339(),
            updated_at: to_datetime(product.updated_at).to_rfc3339(),
            price,
            id: product.id,
            sku: product.sku,
            name: product.name,
            description: product.description,
            category_id: product.category_id,
            tags: row.tags,
            attributes: row.attributes.into_iter().collect(),
        }
    }
}

impl From<IndexedProduct> for ProductView {
    fn from(product: IndexedProduct) -> Self {
        let price = product.prices.into_iter().next().map_or(
            Money {
                amount: 0,
                currency: String::new(),
            },
            |price| Money {
                amount: price.amount,
                currency: price.currency,
            },
        );
        let variants: Vec<VariantView> = product
            .variants
            .into_iter()
            .map(|variant| VariantView {
                sku: variant.sku,
                options: variant.options.into_iter().collect(),
                price: Money {
                    amount: variant.amount,
                    currency: price.currency.clone(),
                },
                images: variant.images,
                available: 0,
            })
            .collect();
        Self {
            options: product
                .options
                .into_iter()
                .map(|(name, values)| ProductOption { name, values })
                .collect(),
            price_range: variants::price_range(&price, &variants),
            variants,
            id: product.id,
            sku: product.sku,
            name: product.name,
            description: product.description,
            price,
            category_id: product.category_id,
            tags: product.tags,
            attributes: product.attributes.into_iter().collect(),
            images: product.images,
            status: ProductStatus::from_indexed(product.status),
            available: 0,
            created_at: to_datetime(product.created_at).to_rfc3339(),
            updated_at: to_datetime(product.updated_at).to_rfc3339(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct CategoryView {
    pub id: String,
    pub parent_id: Option<String>,
    pub name: String,
    pub slug: String,
    #[schema(no_recursion)]
    pub children: Vec<CategoryView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct CategoryCount {
    pub category_id: Option<String>,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct ValueCount {
    pub value: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct AttributeFacet {
    pub name: String,
    pub values: Vec<ValueCount>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Facets {
    pub categories: Vec<CategoryCount>,
    pub attributes: Vec<AttributeFacet>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct SearchPage {
    pub items: Vec<ProductView>,
    pub next_cursor: Option<String>,
    /// Every product matching the query and filters (not only this page).
    pub total: i64,
    /// Counts over every match.
    pub facets: Facets,
}

/// A product as an admin submits it, before validation: the JSON body of create, a
/// row of a JSON import, or a parsed CSV line.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    /// Letters, digits, `-`, `_`, `.`; 2 to 64 characters; upper-cased.
    #[schema(min_length = 2, max_length = 64)]
    pub sku: String,
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
    pub price: MoneyInput,
    /// Category id (create) — imports name the category by `category` slug instead.
    #[serde(default)]
    pub category_id: Option<String>,
    /// Category slug; only in imports.
    #[serde(default)]
    #[schema(ignore)]
    pub category: Option<String>,
    /// At most 20: letters, digits and `-`, 1 to 50 characters each.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub tags: Vec<String>,
    /// At most 30: names of 1 to 50 letters, digits, `_` or `-`; values of 1 to 100
    /// characters.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// At most 10 http(s) URLs of at most 300 characters.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub images: Vec<String>,
    /// Default `draft`.
    #[serde(default)]
    pub status: Option<ProductStatus>,
    /// At most 3; given exactly when `variants` are.
    #[serde(default)]
    #[schema(max_items = 3)]
    pub options: Vec<OptionInput>,
    /// At most 100, each its own SKU with one value of every option.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub variants: Vec<VariantInput>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyInput {
    /// Integer minor units, 0 to 10^12.
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub amount: i64,
    /// ISO 4217 code.
    #[schema(min_length = 3, max_length = 3)]
    pub currency: String,
}

/// Fields a PATCH may change; `None` leaves a field alone. The SKU never changes: stock
/// and order lines refer to it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductChanges {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    pub price: Option<MoneyInput>,
    /// `null` removes the product from its category.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub category_id: Option<Option<String>>,
    #[schema(max_items = 20)]
    pub tags: Option<Vec<String>>,
    pub attributes: Option<BTreeMap<String, String>>,
    #[schema(max_items = 10)]
    pub images: Option<Vec<String>>,
    pub status: Option<ProductStatus>,
    /// Replaces the options; send `variants` with them.
    #[schema(max_items = 3)]
    pub options: Option<Vec<OptionInput>>,
    /// Replaces the variants. A variant left out is no longer sold; its stock and
    /// orders stay under its SKU.
    #[schema(max_items = 100)]
    pub variants: Option<Vec<VariantInput>>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryInput {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Letters, digits and `-`, 1 to 100; derived from the name when absent.
    #[schema(min_length = 1, max_length = 100)]
    pub slug: Option<String>,
    pub parent_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryChanges {
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    #[schema(min_length = 1, max_length = 100)]
    pub slug: Option<String>,
    /// `null` makes it a root category.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub parent_id: Option<Option<String>>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub(crate) fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// What the shopper (or admin) asked for; parsed from the query string by the route.
#[derive(Debug, Clone, Default)]
pub struct SearchParams {
    pub q: Option<String>,
    pub category_id: Option<String>,
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub currency: Option<String>,
    pub tags: Vec<String>,
    pub attributes: Vec<(String, String)>,
    /// Only admins may ask for anything but `active`.
    pub statuses: Option<Vec<ProductStatus>>,
    /// Only products with available stock.
    pub in_stock: bool,
    pub sort: Option<Sort>,
    pub cursor: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportError {
    /// 1-based: the CSV line (the header is line 1) or the JSON array position.
    pub line: usize,
    pub sku: Option<String>,
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub errors: Vec<ImportError>,
}

pub(super) fn facets_view(facets: IndexFacets) -> Facets {
    let mut attributes: Vec<AttributeFacet> = Vec::new();
    for (name, value, count) in facets.attributes {
        let count = count as i64;
        match attributes.last_mut() {
            Some(last) if last.name == name => last.values.push(ValueCount { value, count }),
            _ => attributes.push(AttributeFacet {
                name,
                values: vec![ValueCount { value, count }],
            }),
        }
    }
    let categories = facets
        .categories
        .into_iter()
        .map(|(category_id, count)| CategoryCount {
            category_id,
            count: count as i64,
        })
        .collect();
    Facets {
        categories,
        attributes,
    }
}
