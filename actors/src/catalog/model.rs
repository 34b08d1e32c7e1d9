//! Validated catalog values: SKUs, slugs, tags, attributes, image URLs, statuses.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::catalog::index::Status as IndexedStatus;

/// Text as [`parse_text`] accepts it, as the API document's `pattern` (with the
/// field's `maxLength`): no control character but tab and newline. `REQUIRED_TEXT_PATTERN`
/// also asks for one character that is not white space.
pub const TEXT_PATTERN: &str = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$";
pub const REQUIRED_TEXT_PATTERN: &str =
    "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$";
/// An attribute's value as [`parse_attributes`] accepts it (1 to 100 characters): no
/// control character at all, one that is not white space.
pub const ATTRIBUTE_VALUE_PATTERN: &str =
    "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$";
/// The image URLs [`parse_images`] accepts (with `maxLength` 300): http(s), then the
/// characters a URL may hold (RFC 3986: letters, digits, `-._~`, the delimiters
/// `:/?#[]@!$&'()*+,;=` and `%` for escapes). None is escaped in JSON, so the stored
/// list of images never grows past its column.
pub const IMAGE_URL_PATTERN: &str = "^https?://[A-Za-z0-9._~:/?#\\[\\]@!$&'()*+,;=%-]+$";

/// Trimmed text of at most `max_chars` characters (empty only if `allow_empty`) without
/// control characters but tab and newline: names and descriptions.
pub fn parse_text(raw: &str, max_chars: usize, allow_empty: bool) -> Result<String, String> {
    let text = raw.trim();
    if !allow_empty && text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.chars().count() > max_chars {
        return Err(format!("must be at most {max_chars} characters"));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("must not contain control characters".into());
    }
    Ok(text.to_owned())
}

/// What [`parse_sku`] accepts, as the API document's `pattern` (input of either case).
pub const SKU_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$";
/// What [`parse_slug`] accepts, as the API document's `pattern`.
pub const SLUG_PATTERN: &str = "^[A-Za-z0-9-]{1,100}$";
/// The ASCII part of what [`parse_tags`] accepts per tag (it also takes Unicode letters
/// and digits), as the API document's `pattern`.
pub const TAG_PATTERN: &str = "^[A-Za-z0-9-]{1,50}$";
/// What [`parse_attributes`] accepts as an attribute's name, as the document's `pattern`.
pub const ATTRIBUTE_NAME_PATTERN: &str = "^[A-Za-z0-9_-]{1,50}$";

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
/// The longest image URL, in characters (all ASCII).
pub const MAX_IMAGE_URL_CHARS: usize = 300;
/// The width of the `images` columns (products and variants) that hold a JSON list of
/// at most [`MAX_IMAGES`] URLs.
pub const IMAGES_COLUMN_CHARS: usize = 4000;

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

/// A character a URL may hold as it is (RFC 3986): what [`IMAGE_URL_PATTERN`] lists.
fn is_url_character(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
}

/// Absolute http(s) URLs of at most 300 characters a URL may hold (no space, `"`, `\`,
/// `<`, `>`, `^`, `` ` ``, `{`, `|`, `}`, control or non-ASCII character), at most ten.
pub fn parse_images(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.len() > MAX_IMAGES {
        return Err(format!("at most {MAX_IMAGES} images"));
    }
    raw.iter()
        .map(|url| {
            let url = url.trim();
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"))
                .unwrap_or_default();
            if url.len() <= MAX_IMAGE_URL_CHARS
                && !rest.is_empty()
                && rest.chars().all(is_url_character)
            {
                Ok(url.to_owned())
            } else {
                Err(format!(
                    "{url:?} is not an http(s) URL of at most {MAX_IMAGE_URL_CHARS} characters \
                     (escape any other character with %)"
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

    /// What the API document allows, the validators accept.
    mod documented_patterns {
        use super::super::*;
        use proptest::prelude::*;

        fn unanchored(pattern: &'static str) -> &'static str {
            pattern.trim_start_matches('^').trim_end_matches('$')
        }

        proptest! {
            #[test]
            fn skus(raw in unanchored(SKU_PATTERN)) {
                prop_assert!(parse_sku(&raw).is_ok(), "{raw:?}");
            }

            #[test]
            fn slugs(raw in unanchored(SLUG_PATTERN)) {
                prop_assert!(parse_slug(&raw).is_ok(), "{raw:?}");
            }

            #[test]
            fn tags(raw in unanchored(TAG_PATTERN)) {
                prop_assert!(parse_tags(std::slice::from_ref(&raw)).is_ok(), "{raw:?}");
            }

            #[test]
            fn texts(raw in unanchored(TEXT_PATTERN)) {
                prop_assume!(raw.chars().count() <= 5000);
                prop_assert!(parse_text(&raw, 5000, true).is_ok(), "{raw:?}");
            }

            #[test]
            fn required_texts(raw in unanchored(REQUIRED_TEXT_PATTERN)) {
                prop_assume!(raw.chars().count() <= 200);
                prop_assert!(parse_text(&raw, 200, false).is_ok(), "{raw:?}");
            }

            #[test]
            fn attribute_values(raw in unanchored(ATTRIBUTE_VALUE_PATTERN)) {
                prop_assume!(raw.chars().count() <= 100);
                let name = "colour".to_owned();
                prop_assert!(parse_attributes([(&name, &raw)]).is_ok(), "{raw:?}");
            }

            #[test]
            fn image_urls(raw in unanchored(IMAGE_URL_PATTERN)) {
                prop_assume!(raw.len() <= 300);
                prop_assert!(parse_images(std::slice::from_ref(&raw)).is_ok(), "{raw:?}");
            }

            #[test]
            fn attribute_names(raw in unanchored(ATTRIBUTE_NAME_PATTERN)) {
                let value = "red".to_owned();
                prop_assert!(parse_attributes([(&raw, &value)]).is_ok(), "{raw:?}");
            }
        }
    }

    #[test]
    fn image_urls_hold_only_url_characters() {
        let accepted = parse_images(&["https://img.example.com/a%20b.jpg?w=1&h=2#x".into()]);
        assert!(accepted.is_ok());
        for bad in [
            "https://img.example.com/a\\b.jpg",
            "https://img.example.com/a\"b.jpg",
            "https://img.example.com/a b.jpg",
            "https://img.example.com/a{b}.jpg",
            "https://img.example.com/caf\u{e9}.jpg",
            "https://img.example.com/a\u{7}.jpg",
            "ftp://img.example.com/a.jpg",
            "https://",
        ] {
            assert!(parse_images(&[bad.to_owned()]).is_err(), "{bad:?}");
        }
    }

    /// The most images of the longest URLs, of the character JSON encodes longest that
    /// is still accepted, fit the `images` column once stored as a JSON list.
    #[test]
    fn the_longest_images_fit_their_column() {
        let widest = (0..=0x10_ffff_u32)
            .filter_map(char::from_u32)
            .filter(|&c| {
                let url = format!("https://{c}");
                parse_images(&[url]).is_ok()
            })
            .max_by_key(|c| {
                serde_json::to_string(&c.to_string())
                    .unwrap()
                    .chars()
                    .count()
            })
            .unwrap();
        let url = format!(
            "https://{}",
            widest
                .to_string()
                .repeat(MAX_IMAGE_URL_CHARS - "https://".len())
        );
        let images = parse_images(&vec![url; MAX_IMAGES]).unwrap();
        let stored = serde_json::to_string(&images).unwrap().chars().count();
        assert!(stored <= IMAGES_COLUMN_CHARS, "{stored} characters");
        let backslash = format!("https://{}", "\\".repeat(292));
        assert!(
            serde_json::to_string(&vec![backslash; MAX_IMAGES])
                .unwrap()
                .chars()
                .count()
                > IMAGES_COLUMN_CHARS,
            "the case refused would not fit"
        );
    }

    #[test]
    fn slugs_from_names() {
        assert_eq!(slugify("Men's Shoes & Boots"), "men-s-shoes-boots");
        assert_eq!(slugify("  Électronique "), "lectronique");
    }
}
