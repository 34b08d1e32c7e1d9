//! The catalog repository: categories, products with their tags and attributes, and
//! the search query with filters, sorting, keyset pagination and facets.
//!
//! Search SQL is assembled once for both engines; only the full-text fragment differs
//! (SQLite FTS5 `MATCH` + `bm25`, MySQL `MATCH … AGAINST`), in [`TextMatch`].

use std::collections::HashMap;

use sqlx::{Any, AnyConnection, Executor, FromRow, QueryBuilder};

use crate::clock::Micros;
use crate::{Backend, DbError};

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct CategoryRecord {
    pub id: String,
    pub parent_id: Option<String>,
    pub name: String,
    pub slug: String,
    pub created_at: Micros,
    pub updated_at: Micros,
}

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct ProductRecord {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price_amount: i64,
    pub currency: String,
    pub category_id: Option<String>,
    pub tags_text: String,
    /// JSON array of URLs.
    pub images: String,
    pub status: String,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// A product with the rows of its side tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRow {
    pub product: ProductRecord,
    pub tags: Vec<String>,
    /// Sorted by name.
    pub attributes: Vec<(String, String)>,
}

const PRODUCT_COLUMNS: &str =
    "p.id, p.sku, p.name, p.description, p.price_amount, p.currency, p.category_id, \
     p.tags_text, p.images, p.status, p.created_at, p.updated_at";

// ---------------------------------------------------------------- categories

pub async fn insert_category<'e, E>(executor: E, category: &CategoryRecord) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query(
        "INSERT INTO categories (id, parent_id, name, slug, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&category.id)
    .bind(&category.parent_id)
    .bind(&category.name)
    .bind(&category.slug)
    .bind(category.created_at)
    .bind(category.updated_at)
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn update_category<'e, E>(executor: E, category: &CategoryRecord) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query(
        "UPDATE categories SET parent_id = ?, name = ?, slug = ?, updated_at = ? WHERE id = ?",
    )
    .bind(&category.parent_id)
    .bind(&category.name)
    .bind(&category.slug)
    .bind(category.updated_at)
    .bind(&category.id)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn delete_category<'e, E>(executor: E, id: &str) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query("DELETE FROM categories WHERE id = ?")
        .bind(id)
        .execute(executor)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Every category; there are few, and callers build the tree in memory.
pub async fn list_categories<'e, E>(executor: E) -> Result<Vec<CategoryRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, CategoryRecord>(
        "SELECT id, parent_id, name, slug, created_at, updated_at FROM categories ORDER BY name, id",
    )
    .fetch_all(executor)
    .await?)
}

/// Products (of any status) in a category, for refusing to delete a non-empty one.
pub async fn count_products_in_category<'e, E>(
    executor: E,
    category_id: &str,
) -> Result<i64, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM products WHERE category_id = ?")
        .bind(category_id)
        .fetch_one(executor)
        .await?;
    Ok(count)
}

// ---------------------------------------------------------------- products

/// Inserts a product and its tags and attributes.
pub async fn insert_product(
    connection: &mut AnyConnection,
    row: &ProductRow,
) -> Result<(), DbError> {
    let product = &row.product;
    sqlx::query(
        "INSERT INTO products (id, sku, name, description, price_amount, currency, category_id, tags_text, images, \
         status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&product.id)
    .bind(&product.sku)
    .bind(&product.name)
    .bind(&product.description)
    .bind(product.price_amount)
    .bind(&product.currency)
    .bind(&product.category_id)
    .bind(&product.tags_text)
    .bind(&product.images)
    .bind(&product.status)
    .bind(product.created_at)
    .bind(product.updated_at)
    .execute(&mut *connection)
    .await?;
    insert_side_rows(connection, row).await
}

/// Rewrites a product and replaces its tags and attributes. `false` if it is gone.
pub async fn update_product(
    connection: &mut AnyConnection,
    row: &ProductRow,
) -> Result<bool, DbError> {
    let product = &row.product;
    let result = sqlx::query(
        "UPDATE products SET name = ?, description = ?, price_amount = ?, currency = ?, category_id = ?, \
         tags_text = ?, images = ?, status = ?, updated_at = ? WHERE id = ?",
    )
    .bind(&product.name)
    .bind(&product.description)
    .bind(product.price_amount)
    .bind(&product.currency)
    .bind(&product.category_id)
    .bind(&product.tags_text)
    .bind(&product.images)
    .bind(&product.status)
    .bind(product.updated_at)
    .bind(&product.id)
    .execute(&mut *connection)
    .await?;
    if result.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM product_tags WHERE product_id = ?")
        .bind(&product.id)
        .execute(&mut *connection)
        .await?;
    sqlx::query("DELETE FROM product_attributes WHERE product_id = ?")
        .bind(&product.id)
        .execute(&mut *connection)
        .await?;
    insert_side_rows(connection, row).await?;
    Ok(true)
}

async fn insert_side_rows(connection: &mut AnyConnection, row: &ProductRow) -> Result<(), DbError> {
    if !row.tags.is_empty() {
        let mut builder = QueryBuilder::<Any>::new("INSERT INTO product_tags (product_id, tag) ");
        builder.push_values(&row.tags, |mut values, tag| {
            values
                .push_bind(row.product.id.clone())
                .push_bind(tag.clone());
        });
        builder.build().execute(&mut *connection).await?;
    }
    if !row.attributes.is_empty() {
        let mut builder = QueryBuilder::<Any>::new(
            "INSERT INTO product_attributes (product_id, name, value, status, category_id) ",
        );
        builder.push_values(&row.attributes, |mut values, (name, value)| {
            values
                .push_bind(row.product.id.clone())
                .push_bind(name.clone())
                .push_bind(value.clone())
                .push_bind(row.product.status.clone())
                .push_bind(row.product.category_id.clone());
        });
        builder.build().execute(&mut *connection).await?;
    }
    Ok(())
}

pub async fn find_product(
    connection: &mut AnyConnection,
    id: &str,
) -> Result<Option<ProductRow>, DbError> {
    find_product_where(connection, "p.id = ?", id).await
}

pub async fn find_product_by_sku(
    connection: &mut AnyConnection,
    sku: &str,
) -> Result<Option<ProductRow>, DbError> {
    find_product_where(connection, "p.sku = ?", sku).await
}

async fn find_product_where(
    connection: &mut AnyConnection,
    condition: &str,
    value: &str,
) -> Result<Option<ProductRow>, DbError> {
    let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE {condition}");
    let Some(product) = sqlx::query_as::<_, ProductRecord>(&sql)
        .bind(value)
        .fetch_optional(&mut *connection)
        .await?
    else {
        return Ok(None);
    };
    Ok(with_side_rows(connection, vec![product]).await?.pop())
}

/// Attaches tags and attributes to products, in two queries whatever their number.
pub async fn with_side_rows(
    connection: &mut AnyConnection,
    products: Vec<ProductRecord>,
) -> Result<Vec<ProductRow>, DbError> {
    if products.is_empty() {
        return Ok(Vec::new());
    }
    let mut tags: HashMap<String, Vec<String>> = HashMap::new();
    let mut builder =
        QueryBuilder::<Any>::new("SELECT product_id, tag FROM product_tags WHERE product_id IN (");
    push_id_list(&mut builder, &products);
    builder.push(") ORDER BY product_id, tag");
    for (product_id, tag) in builder
        .build_query_as::<(String, String)>()
        .fetch_all(&mut *connection)
        .await?
    {
        tags.entry(product_id).or_default().push(tag);
    }
    let mut attributes: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let mut builder = QueryBuilder::<Any>::new(
        "SELECT product_id, name, value FROM product_attributes WHERE product_id IN (",
    );
    push_id_list(&mut builder, &products);
    builder.push(") ORDER BY product_id, name");
    for (product_id, name, value) in builder
        .build_query_as::<(String, String, String)>()
        .fetch_all(&mut *connection)
        .await?
    {
        attributes
            .entry(product_id)
            .or_default()
            .push((name, value));
    }
    Ok(products
        .into_iter()
        .map(|product| ProductRow {
            tags: tags.remove(&product.id).unwrap_or_default(),
            attributes: attributes.remove(&product.id).unwrap_or_default(),
            product,
        })
        .collect())
}

fn push_id_list(builder: &mut QueryBuilder<'_, Any>, products: &[ProductRecord]) {
    let mut separated = builder.separated(", ");
    for product in products {
        separated.push_bind(product.id.clone());
    }
}

// ---------------------------------------------------------------- search

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Relevance,
    PriceAsc,
    PriceDesc,
    Newest,
    Name,
}

/// Where the previous page ended, in the terms of its sort.
#[derive(Debug, Clone, PartialEq)]
pub enum After {
    /// Relevance scores depend only on the product's own text, so (score, id) is a
    /// stable keyset like the others.
    Score(f64, String),
    Price(i64, String),
    Id(String),
    Name(String, String),
}

#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// Words to match, already stripped of every character but letters and digits.
    pub words: Vec<String>,
    pub statuses: Vec<String>,
    /// Already expanded to include sub-categories.
    pub category_ids: Option<Vec<String>>,
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub currency: Option<String>,
    /// Every tag must be present.
    pub tags: Vec<String>,
    /// Every (name, value) must be present.
    pub attributes: Vec<(String, String)>,
    /// Only products with available stock.
    pub in_stock: bool,
    pub sort: Option<SortKey>,
    pub after: Option<After>,
    pub limit: u32,
}

#[derive(Debug, Clone, FromRow)]
pub struct ScoredProduct {
    #[sqlx(flatten)]
    pub product: ProductRecord,
    pub score: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facets {
    pub categories: Vec<(Option<String>, i64)>,
    pub attributes: Vec<(String, String, i64)>,
}

/// The engine's full-text fragments.
struct TextMatch;

impl TextMatch {
    /// Joins needed before `WHERE` for the text match.
    fn join(backend: Backend, query: &SearchQuery) -> &'static str {
        match (backend, query.words.is_empty()) {
            (Backend::Sqlite, false) => " JOIN products_fts ON products_fts.rowid = p.rowid",
            _ => "",
        }
    }

    /// The match expression as the engine wants it: FTS5 gets each word quoted (so no
    /// word is ever an operator), OR-ed; MySQL's natural-language mode has no operators.
    fn expression(backend: Backend, words: &[String]) -> String {
        match backend {
            Backend::Sqlite => words
                .iter()
                .map(|word| format!("\"{word}\""))
                .collect::<Vec<_>>()
                .join(" OR "),
            Backend::MySql => words.join(" "),
        }
    }

    fn push_condition(builder: &mut QueryBuilder<'_, Any>, backend: Backend, words: &[String]) {
        let expression = Self::expression(backend, words);
        match backend {
            Backend::Sqlite => {
                builder
                    .push(" AND products_fts MATCH ")
                    .push_bind(expression);
            }
            Backend::MySql => {
                builder
                    .push(" AND MATCH (p.name, p.description, p.tags_text) AGAINST (")
                    .push_bind(expression)
                    .push(" IN NATURAL LANGUAGE MODE)");
            }
        }
    }

    /// Higher is better: per search word, 10 if the name contains it, 4 if a tag does, 1
    /// if the description does. Unlike the engines' own scores (bm25, MySQL's relevance)
    /// it depends only on the product, not on the rest of the catalog, so it ranks the
    /// same on both engines and never moves while a shopper pages through results.
    fn push_score(builder: &mut QueryBuilder<'_, Any>, words: &[String]) {
        if words.is_empty() {
            builder.push("CAST(0 AS DOUBLE) AS score");
            return;
        }
        builder.push("CAST(0");
        for word in words {
            let pattern = format!("%{}%", crate::users::escape_like(word));
            for (column, weight) in [("p.name", 10), ("p.tags_text", 4), ("p.description", 1)] {
                builder
                    .push(format!(" + (CASE WHEN LOWER({column}) LIKE "))
                    .push_bind(pattern.clone())
                    .push(format!(" ESCAPE '!' THEN {weight} ELSE 0 END)"));
            }
        }
        builder.push(" AS DOUBLE) AS score");
    }
}

/// `status IN (…)` and `category_id IN (…)` on the table aliased `alias`: products, or
/// the copies of both beside the attributes.
fn push_status_and_category(builder: &mut QueryBuilder<'_, Any>, alias: &str, query: &SearchQuery) {
    if !query.statuses.is_empty() {
        builder.push(format!(" AND {alias}.status IN ("));
        let mut separated = builder.separated(", ");
        for status in &query.statuses {
            separated.push_bind(status.clone());
        }
        builder.push(")");
    }
    if let Some(category_ids) = &query.category_ids {
        if category_ids.is_empty() {
            builder.push(" AND 1 = 0");
        } else {
            builder.push(format!(" AND {alias}.category_id IN ("));
            let mut separated = builder.separated(", ");
            for id in category_ids {
                separated.push_bind(id.clone());
            }
            builder.push(")");
        }
    }
}

fn push_filters(builder: &mut QueryBuilder<'_, Any>, backend: Backend, query: &SearchQuery) {
    builder.push(" WHERE 1 = 1");
    if !query.words.is_empty() {
        TextMatch::push_condition(builder, backend, &query.words);
    }
    push_status_and_category(builder, "p", query);
    if let Some(minimum) = query.price_min {
        builder.push(" AND p.price_amount >= ").push_bind(minimum);
    }
    if let Some(maximum) = query.price_max {
        builder.push(" AND p.price_amount <= ").push_bind(maximum);
    }
    if let Some(currency) = &query.currency {
        builder
            .push(" AND p.currency = ")
            .push_bind(currency.clone());
    }
    for tag in &query.tags {
        builder
            .push(
                " AND EXISTS (SELECT 1 FROM product_tags t WHERE t.product_id = p.id AND t.tag = ",
            )
            .push_bind(tag.clone())
            .push(")");
    }
    if query.in_stock {
        builder.push(" AND EXISTS (SELECT 1 FROM inventory_items i WHERE i.sku = p.sku AND i.on_hand - i.reserved > 0)");
    }
    for (name, value) in &query.attributes {
        builder
            .push(" AND EXISTS (SELECT 1 FROM product_attributes a WHERE a.product_id = p.id AND a.name = ")
            .push_bind(name.clone())
            .push(" AND a.value = ")
            .push_bind(value.clone())
            .push(")");
    }
}

fn push_keyset(builder: &mut QueryBuilder<'_, Any>, after: &After, sort: SortKey) {
    match (sort, after) {
        (SortKey::PriceAsc, After::Price(price, id)) => {
            builder
                .push(" AND (p.price_amount > ")
                .push_bind(*price)
                .push(" OR (p.price_amount = ")
                .push_bind(*price)
                .push(" AND p.id > ")
                .push_bind(id.clone())
                .push("))");
        }
        (SortKey::PriceDesc, After::Price(price, id)) => {
            builder
                .push(" AND (p.price_amount < ")
                .push_bind(*price)
                .push(" OR (p.price_amount = ")
                .push_bind(*price)
                .push(" AND p.id < ")
                .push_bind(id.clone())
                .push("))");
        }
        (SortKey::Newest, After::Id(id)) => {
            builder.push(" AND p.id < ").push_bind(id.clone());
        }
        (SortKey::Name, After::Name(name, id)) => {
            builder
                .push(" AND (p.name > ")
                .push_bind(name.clone())
                .push(" OR (p.name = ")
                .push_bind(name.clone())
                .push(" AND p.id > ")
                .push_bind(id.clone())
                .push("))");
        }
        // Relevance pages in `search`; a cursor of another sort was refused by the
        // caller.
        _ => {}
    }
}

fn order_by(sort: SortKey) -> &'static str {
    match sort {
        SortKey::Relevance => " ORDER BY p.id ASC",
        SortKey::PriceAsc => " ORDER BY p.price_amount ASC, p.id ASC",
        SortKey::PriceDesc => " ORDER BY p.price_amount DESC, p.id DESC",
        SortKey::Newest => " ORDER BY p.id DESC",
        SortKey::Name => " ORDER BY p.name ASC, p.id ASC",
    }
}

/// One page of matching products, `limit + 1` rows at most so the caller can tell
/// whether another page follows.
#[tracing::instrument(name = "products_search", skip_all, fields(backend = backend.name()))]
pub async fn search(
    connection: &mut AnyConnection,
    backend: Backend,
    query: &SearchQuery,
) -> Result<Vec<ScoredProduct>, DbError> {
    let sort = query.sort.unwrap_or(SortKey::Newest);
    let ranked = sort == SortKey::Relevance;
    let mut builder = QueryBuilder::<Any>::new(if ranked { "SELECT * FROM (" } else { "" });
    builder.push(format!("SELECT {PRODUCT_COLUMNS}, "));
    TextMatch::push_score(&mut builder, &query.words);
    builder.push(" FROM products p");
    builder.push(TextMatch::join(backend, query));
    push_filters(&mut builder, backend, query);
    if ranked {
        // The score is an expression: rank in a subquery, then page on its output.
        builder.push(") ranked WHERE 1 = 1");
        if let Some(After::Score(score, id)) = &query.after {
            builder
                .push(" AND (ranked.score < ")
                .push_bind(*score)
                .push(" OR (ranked.score = ")
                .push_bind(*score)
                .push(" AND ranked.id > ")
                .push_bind(id.clone())
                .push("))");
        }
        builder.push(" ORDER BY ranked.score DESC, ranked.id ASC");
    } else {
        if let Some(after) = &query.after {
            push_keyset(&mut builder, after, sort);
        }
        builder.push(order_by(sort));
    }
    builder
        .push(" LIMIT ")
        .push_bind(i64::from(query.limit) + 1);
    Ok(builder
        .build_query_as::<ScoredProduct>()
        .fetch_all(connection)
        .await?)
}

/// Counts per category and per attribute value over every match (not one page).
#[tracing::instrument(name = "products_facets", skip_all, fields(backend = backend.name()))]
pub async fn facets(
    connection: &mut AnyConnection,
    backend: Backend,
    query: &SearchQuery,
) -> Result<Facets, DbError> {
    let mut builder = QueryBuilder::<Any>::new("SELECT p.category_id, COUNT(*) FROM products p");
    builder.push(TextMatch::join(backend, query));
    push_filters(&mut builder, backend, query);
    builder.push(" GROUP BY p.category_id");
    let categories = builder
        .build_query_as::<(Option<String>, i64)>()
        .fetch_all(&mut *connection)
        .await?;

    let attributes = if is_browse(query) {
        browse_attribute_facets(connection, query).await?
    } else {
        let mut builder = QueryBuilder::<Any>::new(
            "SELECT fa.name, fa.value, COUNT(*) FROM product_attributes fa JOIN products p ON p.id = fa.product_id",
        );
        builder.push(TextMatch::join(backend, query));
        push_filters(&mut builder, backend, query);
        builder.push(" GROUP BY fa.name, fa.value ORDER BY fa.name, fa.value");
        builder
            .build_query_as::<(String, String, i64)>()
            .fetch_all(&mut *connection)
            .await?
    };
    Ok(Facets {
        categories,
        attributes,
    })
}

/// Products whose SKU starts with `prefix` (`souk seed` continues numbering from it).
pub async fn count_products_with_sku_prefix<'e, E>(
    executor: E,
    prefix: &str,
) -> Result<i64, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let pattern = format!("{}%", crate::users::escape_like(prefix));
    let (count,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM products WHERE sku LIKE ? ESCAPE '!'")
            .bind(pattern)
            .fetch_one(executor)
            .await?;
    Ok(count)
}

/// A browse filters by status and category only: its attribute facet can be counted
/// from `product_attributes` alone, through an index, without joining `products`.
fn is_browse(query: &SearchQuery) -> bool {
    query.words.is_empty()
        && query.price_min.is_none()
        && query.price_max.is_none()
        && query.currency.is_none()
        && query.tags.is_empty()
        && query.attributes.is_empty()
        && !query.in_stock
}

async fn browse_attribute_facets(
    connection: &mut AnyConnection,
    query: &SearchQuery,
) -> Result<Vec<(String, String, i64)>, DbError> {
    let mut builder = QueryBuilder::<Any>::new(
        "SELECT fa.name, fa.value, COUNT(*) FROM product_attributes fa WHERE 1 = 1",
    );
    push_status_and_category(&mut builder, "fa", query);
    builder.push(" GROUP BY fa.name, fa.value ORDER BY fa.name, fa.value");
    Ok(builder
        .build_query_as::<(String, String, i64)>()
        .fetch_all(&mut *connection)
        .await?)
}
