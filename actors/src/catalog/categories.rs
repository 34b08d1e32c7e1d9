//! Categories: the tree, its create, update and delete, the subtree of a category,
//! and the form categories take in the read cache.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use souk_db::catalog::{self, CategoryRecord};
use souk_db::clock::now_micros;
use souk_db::DbError;

use crate::catalog::model::{parse_slug, parse_text, slugify};
use crate::catalog::service::CatalogService;
use crate::catalog::views::{CategoryChanges, CategoryInput, CategoryView};
use crate::error::{Error, ErrorCode, FieldErrors};
use crate::outbox::Topic;

fn slug_taken(error: DbError) -> Error {
    match error {
        DbError::UniqueViolation { .. } => Error::new(
            ErrorCode::SlugTaken,
            "another category already has that slug",
        ),
        other => other.into(),
    }
}

impl CatalogService {
    pub async fn categories(&self) -> Result<Vec<CategoryRecord>, Error> {
        self.cached("categories", || async {
            let records = catalog::list_categories(self.db.pool()).await?;
            Ok(records
                .into_iter()
                .map(CachedCategory::from)
                .collect::<Vec<_>>())
        })
        .await
        .map(|cached: Vec<CachedCategory>| cached.into_iter().map(CategoryRecord::from).collect())
    }

    pub async fn category_tree(&self) -> Result<Vec<CategoryView>, Error> {
        Ok(build_tree(&self.categories().await?))
    }

    #[tracing::instrument(name = "create_category", skip_all)]
    pub async fn create_category(&self, input: CategoryInput) -> Result<CategoryView, Error> {
        let mut check = FieldErrors::default();
        let name = check.check("name", parse_text(&input.name, 100, false));
        let slug = match &input.slug {
            Some(slug) => check.check("slug", parse_slug(slug)),
            None => name
                .as_deref()
                .map(slugify)
                .filter(|slug| !slug.is_empty())
                .or_else(|| {
                    check.push("slug", "cannot be derived from the name; give one");
                    None
                }),
        };
        let mut transaction = self.db.begin().await?;
        let categories = locked_tree(&mut transaction).await?;
        if let Some(parent) = &input.parent_id {
            if !categories.iter().any(|category| &category.id == parent) {
                check.push("parent_id", "no such category");
            } else if level_of(&categories, parent) >= MAX_LEVELS {
                check.push("parent_id", too_deep());
            }
        }
        check.finish()?;
        let (Some(name), Some(slug)) = (name, slug) else {
            return Err(Error::internal("validated fields missing"));
        };
        let now = now_micros();
        let record = CategoryRecord {
            id: souk_db::ids::new_id(),
            parent_id: input.parent_id,
            name,
            slug,
            created_at: now,
            updated_at: now,
        };
        let changed = changed_event(&record.id)?;
        catalog::insert_category(&mut *transaction, &record)
            .await
            .map_err(slug_taken)?;
        souk_db::outbox::append(&mut *transaction, &changed).await?;
        transaction.commit().await.map_err(DbError::from)?;
        self.invalidate().await;
        Ok(category_view(&record))
    }

    #[tracing::instrument(name = "update_category", skip(self, changes))]
    pub async fn update_category(
        &self,
        id: &str,
        changes: CategoryChanges,
    ) -> Result<CategoryView, Error> {
        // Checked against the tree as it is, one change at a time: two moves at once
        // cannot each pass the cycle check against the tree before the other.
        let mut transaction = self.db.begin().await?;
        let categories = locked_tree(&mut transaction).await?;
        let mut record = categories
            .iter()
            .find(|category| category.id == id)
            .cloned()
            .ok_or_else(|| Error::not_found("category"))?;
        let mut check = FieldErrors::default();
        if let Some(name) = &changes.name {
            if let Some(name) = check.check("name", parse_text(name, 100, false)) {
                record.name = name;
            }
        }
        if let Some(slug) = &changes.slug {
            if let Some(slug) = check.check("slug", parse_slug(slug)) {
                record.slug = slug;
            }
        }
        if let Some(parent) = changes.parent_id {
            if let Some(parent) = &parent {
                if !categories.iter().any(|category| &category.id == parent) {
                    check.push("parent_id", "no such category");
                } else if descendants(&categories, id).contains(parent.as_str()) {
                    return Err(Error::from_code(ErrorCode::CategoryCycle));
                } else if level_of(&categories, parent) + height_of(&categories, id) > MAX_LEVELS {
                    check.push("parent_id", too_deep());
                }
            }
            record.parent_id = parent;
        }
        check.finish()?;
        record.updated_at = now_micros();
        let moved = categories
            .iter()
            .any(|category| category.id == id && category.parent_id != record.parent_id);
        if !catalog::update_category(&mut *transaction, &record)
            .await
            .map_err(slug_taken)?
        {
            return Err(Error::not_found("category"));
        }
        // A move changes its products' paths; any change, the cached tree.
        let event = if moved {
            Topic::CategoryMoved.event(id, &serde_json::json!({ "category_id": id }))?
        } else {
            changed_event(id)?
        };
        souk_db::outbox::append(&mut *transaction, &event).await?;
        transaction.commit().await.map_err(DbError::from)?;
        self.invalidate().await;
        if moved {
            let refreshed = self
                .search
                .refresh_categories(&self.db, &[id.to_owned()])
                .await;
            if let Err(error) = refreshed.and(self.search.commit().await) {
                metrics::counter!("souk_search_feed_errors_total").increment(1);
                tracing::warn!(%error, "search index update after a category move failed");
            }
        }
        Ok(category_view(&record))
    }

    #[tracing::instrument(name = "delete_category", skip(self))]
    pub async fn delete_category(&self, id: &str) -> Result<(), Error> {
        let mut transaction = self.db.begin().await?;
        let categories = locked_tree(&mut transaction).await?;
        if !categories.iter().any(|category| category.id == id) {
            return Err(Error::not_found("category"));
        }
        if categories
            .iter()
            .any(|category| category.parent_id.as_deref() == Some(id))
        {
            return Err(Error::new(
                ErrorCode::CategoryNotEmpty,
                "the category has sub-categories; move or delete them first",
            ));
        }
        if catalog::count_products_in_category(&mut *transaction, id).await? > 0 {
            return Err(Error::new(
                ErrorCode::CategoryNotEmpty,
                "the category has products; move them first",
            ));
        }
        let changed = changed_event(id)?;
        catalog::delete_category(&mut *transaction, id).await?;
        souk_db::outbox::append(&mut *transaction, &changed).await?;
        transaction.commit().await.map_err(DbError::from)?;
        self.invalidate().await;
        Ok(())
    }
}

/// The category tree as it is, read after taking its lock in `transaction`.
async fn locked_tree(transaction: &mut souk_db::Transaction) -> Result<Vec<CategoryRecord>, Error> {
    catalog::lock_categories(&mut *transaction).await?;
    Ok(catalog::list_categories(&mut **transaction).await?)
}

/// `category.changed` for the category `id`: other nodes' caches of the tree forget it.
fn changed_event(id: &str) -> Result<souk_db::outbox::OutboxEvent, Error> {
    Topic::CategoryChanged.event(id, &serde_json::json!({ "category_id": id }))
}

/// How deep categories nest: a top-level category is level 1. The tree's JSON then
/// nests 64 deep and its protobuf 32, within what common parsers accept (serde_json
/// and prost stop at 128 and 100).
pub const MAX_LEVELS: usize = 32;

fn too_deep() -> String {
    format!("categories nest at most {MAX_LEVELS} levels deep")
}

/// The level of a category: 1 at the top, one more per ancestor.
fn level_of(categories: &[CategoryRecord], id: &str) -> usize {
    let parents: HashMap<&str, &str> = categories
        .iter()
        .filter_map(|category| Some((category.id.as_str(), category.parent_id.as_deref()?)))
        .collect();
    let mut level = 1;
    let mut current = id;
    // Bounded: a cycle, which updates refuse, cannot make it loop.
    while let Some(parent) = parents.get(current) {
        level += 1;
        current = parent;
        if level > categories.len() {
            break;
        }
    }
    level
}

/// The levels a category and the categories under it span: 1 for one without any.
fn height_of(categories: &[CategoryRecord], root: &str) -> usize {
    let mut height = 0;
    let mut level: Vec<&str> = vec![root];
    let mut seen: HashSet<&str> = HashSet::from([root]);
    while !level.is_empty() {
        height += 1;
        level = categories
            .iter()
            .filter(|category| {
                category
                    .parent_id
                    .as_deref()
                    .is_some_and(|parent| level.contains(&parent))
            })
            .map(|category| category.id.as_str())
            .filter(|id| seen.insert(id))
            .collect();
    }
    height
}

/// A category and every category under it.
pub(crate) fn descendants<'a>(categories: &'a [CategoryRecord], root: &'a str) -> HashSet<&'a str> {
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for category in categories {
        if let Some(parent) = &category.parent_id {
            children
                .entry(parent.as_str())
                .or_default()
                .push(category.id.as_str());
        }
    }
    let mut found = HashSet::from([root]);
    let mut pending = vec![root];
    while let Some(next) = pending.pop() {
        for child in children.get(next).into_iter().flatten() {
            if found.insert(child) {
                pending.push(child);
            }
        }
    }
    found
}

fn category_view(record: &CategoryRecord) -> CategoryView {
    CategoryView {
        id: record.id.clone(),
        parent_id: record.parent_id.clone(),
        name: record.name.clone(),
        slug: record.slug.clone(),
        children: Vec::new(),
    }
}

fn build_tree(categories: &[CategoryRecord]) -> Vec<CategoryView> {
    // `level` is the parent's; nothing is stored below `MAX_LEVELS`, and the bound keeps
    // the walk finite whatever the rows say.
    fn attach(parent: &str, categories: &[CategoryRecord], level: usize) -> Vec<CategoryView> {
        if level >= MAX_LEVELS {
            return Vec::new();
        }
        categories
            .iter()
            .filter(|category| category.parent_id.as_deref() == Some(parent))
            .map(|category| CategoryView {
                children: attach(&category.id, categories, level + 1),
                ..category_view(category)
            })
            .collect()
    }
    let known: HashSet<&str> = categories
        .iter()
        .map(|category| category.id.as_str())
        .collect();
    categories
        .iter()
        .filter(|category| {
            category
                .parent_id
                .as_deref()
                .is_none_or(|parent| !known.contains(parent))
        })
        .map(|category| CategoryView {
            children: attach(&category.id, categories, 1),
            ..category_view(category)
        })
        .collect()
}

/// Serializable stand-in for `CategoryRecord` in the cache.
#[derive(Serialize, Deserialize)]
struct CachedCategory {
    id: String,
    parent_id: Option<String>,
    name: String,
    slug: String,
    created_at: i64,
    updated_at: i64,
}

impl From<CategoryRecord> for CachedCategory {
    fn from(record: CategoryRecord) -> Self {
        Self {
            id: record.id,
            parent_id: record.parent_id,
            name: record.name,
            slug: record.slug,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

impl From<CachedCategory> for CategoryRecord {
    fn from(cached: CachedCategory) -> Self {
        Self {
            id: cached.id,
            parent_id: cached.parent_id,
            name: cached.name,
            slug: cached.slug,
            created_at: cached.created_at,
            updated_at: cached.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_cover_the_subtree_only() {
        let category = |id: &str, parent: Option<&str>| CategoryRecord {
            id: id.into(),
            parent_id: parent.map(Into::into),
            name: id.into(),
            slug: id.into(),
            created_at: 0,
            updated_at: 0,
        };
        let all = vec![
            category("a", None),
            category("b", Some("a")),
            category("c", Some("b")),
            category("d", None),
        ];
        let found = descendants(&all, "a");
        assert_eq!(found, HashSet::from(["a", "b", "c"]));
        let tree = build_tree(&all);
        assert_eq!(tree.len(), 2);
        assert_eq!(tree[0].children[0].children[0].id, "c");
    }
}
