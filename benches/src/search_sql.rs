//! The SQL baseline of the search benchmark: the search a team would usually write on
//! MariaDB — a `FULLTEXT` match on name and description, a relevance score from
//! `LIKE`s (name 10, tags 4, description 1 per word), filters as `EXISTS`, keyset
//! pages, and facets counted with `GROUP BY` over every match. Souk searched this way
//! until its embedded index replaced it; the bench keeps it to measure the index
//! against, in the same run, on the same catalog. The full-text key it needs is added
//! to the bench database only.

use sqlx::{Any, AnyConnection, QueryBuilder};

use souk_actors::catalog::index::{raw_words, Sort};
use souk_actors::catalog::service::SearchParams;
use souk_db::Db;

/// What the baseline answers: one page of ids, the total and the facet counts.
#[derive(Debug, Default)]
pub struct SqlPage {
    pub ids: Vec<String>,
    pub total: i64,
    pub categories: Vec<(Option<String>, i64)>,
    pub attributes: Vec<(String, String, i64)>,
}

/// Adds the full-text key the baseline matches with, once.
pub async fn prepare(db: &Db) -> anyhow::Result<()> {
    let (existing,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM information_schema.statistics \
         WHERE table_schema = DATABASE() AND table_name = 'products' AND index_name = 'bench_products_fts'",
    )
    .fetch_one(db.pool())
    .await?;
    if existing == 0 {
        eprintln!("adding the SQL baseline's FULLTEXT key to the bench database…");
        sqlx::query("ALTER TABLE products ADD FULLTEXT KEY bench_products_fts (name, description)")
            .execute(db.pool())
            .await?;
    }
    Ok(())
}

/// One search as shoppers make it (active products only).
pub async fn search(
    connection: &mut AnyConnection,
    params: &SearchParams,
) -> anyhow::Result<SqlPage> {
    let words: Vec<String> = params
        .q
        .as_deref()
        .map(raw_words)
        .unwrap_or_default()
        .into_iter()
        .take(10)
        .collect();
    let sort = params.sort.unwrap_or(if words.is_empty() {
        Sort::Newest
    } else {
        Sort::Relevance
    });
    let mut page = QueryBuilder::<Any>::new("SELECT p.id, ");
    push_score(&mut page, &words);
    page.push(" AS score FROM products p");
    push_filters(&mut page, params, &words);
    page.push(match sort {
        Sort::Relevance => " ORDER BY score DESC, p.id ASC",
        Sort::PriceAsc => " ORDER BY p.price_amount ASC, p.id ASC",
        Sort::PriceDesc => " ORDER BY p.price_amount DESC, p.id DESC",
        Sort::Newest => " ORDER BY p.id DESC",
        Sort::Name => " ORDER BY p.name ASC, p.id ASC",
    });
    page.push(" LIMIT ").push_bind(i64::from(params.limit) + 1);
    let ids = page
        .build_query_as::<(String, f64)>()
        .fetch_all(&mut *connection)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();

    let mut categories = QueryBuilder::<Any>::new("SELECT p.category_id, COUNT(*) FROM products p");
    push_filters(&mut categories, params, &words);
    categories.push(" GROUP BY p.category_id");
    let categories: Vec<(Option<String>, i64)> = categories
        .build_query_as()
        .fetch_all(&mut *connection)
        .await?;

    let mut attributes = QueryBuilder::<Any>::new(
        "SELECT fa.name, fa.value, COUNT(*) FROM product_attributes fa JOIN products p ON p.id = fa.product_id",
    );
    push_filters(&mut attributes, params, &words);
    attributes.push(" GROUP BY fa.name, fa.value ORDER BY fa.name, fa.value");
    let attributes = attributes
        .build_query_as()
        .fetch_all(&mut *connection)
        .await?;
    Ok(SqlPage {
        ids,
        total: categories.iter().map(|(_, count)| count).sum(),
        categories,
        attributes,
    })
}

fn push_score(builder: &mut QueryBuilder<'_, Any>, words: &[String]) {
    builder.push("CAST(0");
    for word in words {
        let pattern = format!("%{word}%");
        for (column, weight) in [("p.name", 10), ("p.description", 1)] {
            builder
                .push(format!(" + (CASE WHEN {column} LIKE "))
                .push_bind(pattern.clone())
                .push(format!(" THEN {weight} ELSE 0 END)"));
        }
        builder
            .push(" + (CASE WHEN EXISTS (SELECT 1 FROM product_tags t WHERE t.product_id = p.id AND t.tag = ")
            .push_bind(word.clone())
            .push(") THEN 4 ELSE 0 END)");
    }
    builder.push(" AS DOUBLE)");
}

fn push_filters(builder: &mut QueryBuilder<'_, Any>, params: &SearchParams, words: &[String]) {
    builder.push(" WHERE p.status = 'active'");
    if !words.is_empty() {
        builder
            .push(" AND MATCH (p.name, p.description) AGAINST (")
            .push_bind(words.join(" "))
            .push(" IN NATURAL LANGUAGE MODE)");
    }
    if let Some(category) = &params.category_id {
        // The seeded tree is two levels deep: a category or its children.
        builder
            .push(" AND (p.category_id = ")
            .push_bind(category.clone())
            .push(" OR p.category_id IN (SELECT c.id FROM categories c WHERE c.parent_id = ")
            .push_bind(category.clone())
            .push("))");
    }
    if let Some(minimum) = params.price_min {
        builder.push(" AND p.price_amount >= ").push_bind(minimum);
    }
    if let Some(maximum) = params.price_max {
        builder.push(" AND p.price_amount <= ").push_bind(maximum);
    }
    for (name, value) in &params.attributes {
        builder
            .push(" AND EXISTS (SELECT 1 FROM product_attributes a WHERE a.product_id = p.id AND a.name = ")
            .push_bind(name.clone())
            .push(" AND a.value = ")
            .push_bind(value.clone())
            .push(")");
    }
}
