//! Validated catalog values: SKUs, slugs, tags, attributes, image URLs, statuses.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::catalog::index::Status as IndexedStatus;

/// Upper case letters, digits, `-`, `_`, `.`; 2..=64 characters; starts with a letter
/// or digit. Lower case input is upper-cased, so `abc-1` and `ABC-1` are one SKU.
pub fn parse_sku(raw: &str) -> Result<String, String> {
    let sku = raw.trim().to_ascii_uppercase();
    if !(2..=64).contains(&sku.len()) {
        return Err("must be 2 to 64 characters".into());
    }
    if !sku.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("must start with a letter or digit".into());
    }
    if !sku
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err("may contain only letters, digits, '-', '_' and '.'".into());
    }
    Ok(sku)
}

/// Lower case letters, digits and `-`, 1..=100 characters.
pub fn parse_slug(raw: &str) -> Result<String, String> {
    let slug = raw.trim().to_ascii_lowercase();
    if slug.is_empty() || slug.len() > 100 {
        return Err("must be 1 to 100 characters".into());
    }
    if !slug.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err("may contain only letters, digits and '-'".into());
    }
    Ok(slug)
}

/// A slug made from a name: `Men's Shoes` → `men-s-shoes`.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for character in name.to_lowercase().chars() {
        if character.is_ascii_alphanumeric() {
            slug.push(character);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').chars().take(100).collect()
}

pub const MAX_TAGS: usize = 20;
pub const MAX_ATTRIBUTES: usize = 30;
pub const MAX_IMAGES: usize = 10;

/// Tags: lower case letters, digits and `-`, 1..=50 characters each; duplicates dropped.
pub fn parse_tags(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.len() > MAX_TAGS {
        return Err(format!("at most {MAX_TAGS} tags"));
    }
    let mut tags = Vec::with_capacity(raw.len());
    for tag in raw {
        let tag = tag.trim().to_lowercase();
        if tag.is_empty() || tag.chars().count() > 50 {
            return Err("each tag must be 1 to 50 characters".into());
        }
        if !tag.chars().all(|c| c.is_alphanumeric() || c == '-') {
            return Err(format!(
                "tag {tag:?} may contain only letters, digits and '-'"
            ));
        }
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags.sort();
    Ok(tags)
}

/// Attribute names: lower case letters, digits, `_` and `-`, 1..=50; values: 1..=100
/// characters without control characters.
pub fn parse_attributes<'a>(
    raw: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<Vec<(String, String)>, String> {
    let mut attributes = Vec::new();
    for (name, value) in raw {
        let name = name.trim().to_lowercase();
        let value = value.trim().to_owned();
        if name.is_empty()
            || name.len() > 50
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "attribute name {name:?} must be 1 to 50 letters, digits, '_' or '-'"
            ));
        }
        if value.is_empty() || value.chars().count() > 100 || value.chars().any(char::is_control) {
            return Err(format!(
                "attribute {name:?} must have a value of 1 to 100 characters"
            ));
        }
        attributes.push((name, value));
    }
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(format!("at most {MAX_ATTRIBUTES} attributes"));
    }
    attributes.sort();
    attributes.dedup_by(|a, b| a.0 == b.0);
    Ok(attributes)
}

/// Absolute http(s) URLs, at most 300 characters, at most ten.
pub fn parse_images(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.len() > MAX_IMAGES {
        return Err(format!("at most {MAX_IMAGES} images"));
    }
    raw.iter()
        .map(|url| {
            let url = url.trim();
            let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
            let plain = url.len() <= 300
                && !url
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '"');
            if scheme_ok && plain && url.split("://").nth(1).is_some_and(|rest| !rest.is_empty()) {
                Ok(url.to_owned())
            } else {
                Err(format!(
                    "{url:?} is not an http(s) URL of at most 300 characters"
                ))
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProductStatus {
    Draft,
    Active,
    Archived,
}

impl ProductStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProductStatus::Draft => "draft",
            ProductStatus::Active => "active",
            ProductStatus::Archived => "archived",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "draft" => Some(ProductStatus::Draft),
            "active" => Some(ProductStatus::Active),
            "archived" => Some(ProductStatus::Archived),
            _ => None,
        }
    }

    /// The same status in the search index's terms.
    pub fn indexed(self) -> IndexedStatus {
        match self {
            ProductStatus::Draft => IndexedStatus::Draft,
            ProductStatus::Active => IndexedStatus::Active,
            ProductStatus::Archived => IndexedStatus::Archived,
        }
    }

    pub fn from_indexed(status: IndexedStatus) -> Self {
        match status {
            IndexedStatus::Draft => ProductStatus::Draft,
            IndexedStatus::Active => ProductStatus::Active,
            IndexedStatus::Archived => ProductStatus::Archived,
        }
    }
}

/// Largest price accepted, in minor units: far above any real price, far below overflow
/// when multiplied by order quantities.
pub const MAX_PRICE_AMOUNT: i64 = 1_000_000_000_000;

pub fn parse_amount(amount: i64) -> Result<i64, String> {
    if amount < 0 {
        return Err("must not be negative".into());
    }
    if amount > MAX_PRICE_AMOUNT {
        return Err(format!("must be at most {MAX_PRICE_AMOUNT}"));
    }
    Ok(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus() {
        assert_eq!(parse_sku(" abc-1.x ").unwrap(), "ABC-1.X");
        for bad in ["", "a", "-AB", "A B", "A%B", "A'B", &"A".repeat(65)] {
            assert!(parse_sku(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs_from_names() {
        assert_eq!(slugify("Men's Shoes & Boots"), "men-s-shoes-boots");
        assert_eq!(slugify("  Électronique "), "lectronique");
    }
}
