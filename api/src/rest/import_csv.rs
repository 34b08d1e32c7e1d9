//! The CSV form of a product import: one product per line, and optionally its
//! variants on the lines after it (a line with `variant_of` set), folded into that
//! product before validation.

use serde::Deserialize;

use crate::error::{Error, ErrorCode, FieldError};
use souk_actors::catalog::model::{parse_sku, ProductStatus};
use souk_actors::catalog::service::{MoneyInput, ProductInput};
use souk_actors::catalog::variants::{OptionInput, VariantInput};

/// Rows as the import takes them: the line (or JSON position) and the product or what
/// is wrong with it.
pub type ParsedRows = Vec<(usize, Result<ProductInput, Vec<FieldError>>)>;

/// One CSV line. `tags` and `images` separate their items with `|`; `attributes` and
/// `options` are `name=value` pairs separated by `|`; `category` is a category slug.
/// A line with `variant_of` (its product's SKU) is a variant of that product: its
/// `sku`, `options`, price and `images` are the variant's, its other columns unused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CsvRow {
    sku: String,
    name: String,
    #[serde(default)]
    description: String,
    price_amount: String,
    currency: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    attributes: String,
    #[serde(default)]
    images: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    variant_of: String,
    #[serde(default)]
    options: String,
}

/// `name=value|name=value` as a map; a pair without `=` is recorded under `field`.
fn name_values(
    field: &str,
    raw: &str,
    errors: &mut Vec<FieldError>,
) -> std::collections::BTreeMap<String, String> {
    let mut pairs = std::collections::BTreeMap::new();
    for pair in split_list(raw) {
        match pair.split_once('=') {
            Some((name, value)) => {
                pairs.insert(name.trim().to_owned(), value.trim().to_owned());
            }
            None => errors.push(FieldError::new(
                field,
                format!("{pair:?} is not name=value"),
            )),
        }
    }
    pairs
}

fn split_list(raw: &str) -> Vec<String> {
    raw.split('|')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

impl CsvRow {
    fn amount(&self, errors: &mut Vec<FieldError>) -> i64 {
        self.price_amount.trim().parse::<i64>().unwrap_or_else(|_| {
            errors.push(FieldError::new(
                "price_amount",
                "must be an integer amount in minor units",
            ));
            0
        })
    }

    /// A variant line as the variant it declares.
    fn into_variant(self) -> Result<VariantInput, Vec<FieldError>> {
        let mut errors = Vec::new();
        let amount = self.amount(&mut errors);
        let options = name_values("options", &self.options, &mut errors);
        if options.is_empty() {
            errors.push(FieldError::new(
                "options",
                "a variant needs name=value options",
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(VariantInput {
            sku: self.sku,
            options,
            price: Some(MoneyInput {
                amount,
                currency: self.currency,
            }),
            images: split_list(&self.images),
        })
    }

    fn into_input(self) -> Result<ProductInput, Vec<FieldError>> {
        let mut errors = Vec::new();
        let amount = self.amount(&mut errors);
        let attributes = name_values("attributes", &self.attributes, &mut errors);
        if !self.options.trim().is_empty() {
            errors.push(FieldError::new(
                "options",
                "options belong on the product's variant lines (with variant_of)",
            ));
        }
        let status = match self.status.trim() {
            "" => None,
            raw => match ProductStatus::parse(raw) {
                Some(status) => Some(status),
                None => {
                    errors.push(FieldError::new("status", format!("unknown status {raw:?}")));
                    None
                }
            },
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ProductInput {
            sku: self.sku,
            name: self.name,
            description: self.description,
            price: MoneyInput {
                amount,
                currency: self.currency,
            },
            category_id: None,
            category: Some(self.category).filter(|slug| !slug.trim().is_empty()),
            tags: split_list(&self.tags),
            attributes,
            images: split_list(&self.images),
            status,
            options: Vec::new(),
            variants: Vec::new(),
        })
    }
}

/// The rows of a CSV body with its header; a body without a readable header or the
/// required columns is refused whole.
pub fn parse_csv(body: &[u8]) -> Result<ParsedRows, Error> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::Headers)
        .from_reader(body);
    let headers = reader
        .headers()
        .map_err(|error| {
            Error::new(
                ErrorCode::InvalidBody,
                format!("cannot read the CSV header: {error}"),
            )
        })?
        .clone();
    for required in ["sku", "name", "price_amount", "currency"] {
        if !headers.iter().any(|header| header == required) {
            return Err(Error::new(
                ErrorCode::InvalidBody,
                format!("the CSV header lacks the {required} column"),
            ));
        }
    }
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        // The reader knows where each record (or its error) starts; a quoted field may
        // span lines, so counting records would drift.
        let line = match &record {
            Ok(record) => record.position().map(|position| position.line() as usize),
            Err(error) => error.position().map(|position| position.line() as usize),
        }
        .unwrap_or(index + 2);
        let parsed = record
            .map_err(|error| vec![FieldError::new("line", error.to_string())])
            .and_then(|record| {
                // A quoted field may break its lines as the file does: CRLF (RFC 4180)
                // is stored as a newline, like LF.
                let record: csv::StringRecord = record
                    .iter()
                    .map(|field| field.replace("\r\n", "\n"))
                    .collect();
                record
                    .deserialize::<CsvRow>(Some(&headers))
                    .map_err(|error| vec![FieldError::new("line", error.to_string())])
            });
        match parsed {
            Ok(row) if !row.variant_of.trim().is_empty() => {
                if let Err(errors) = add_variant(&mut rows, row) {
                    rows.push((line, Err(errors)));
                }
            }
            parsed => rows.push((line, parsed.and_then(CsvRow::into_input))),
        }
    }
    Ok(rows)
}

/// Adds a variant line to its product, a line above it; the product's options gain the
/// line's option names and values, in the order first seen. What is wrong with the
/// line is its own error (the product's other lines are still imported).
fn add_variant(rows: &mut ParsedRows, row: CsvRow) -> Result<(), Vec<FieldError>> {
    let parent_sku = parse_sku(&row.variant_of)
        .map_err(|message| vec![FieldError::new("variant_of", message)])?;
    let parent = rows.iter_mut().rev().find(|(_, parsed)| {
        matches!(parsed, Ok(input) if parse_sku(&input.sku).ok().as_deref() == Some(parent_sku.as_str()))
    });
    let Some((_, Ok(product))) = parent else {
        return Err(vec![FieldError::new(
            "variant_of",
            format!("no valid product line with SKU {parent_sku} above this line"),
        )]);
    };
    let variant = row.into_variant()?;
    for (name, value) in &variant.options {
        let key = name.trim().to_lowercase();
        let position = match product.options.iter().position(|option| option.name == key) {
            Some(position) => position,
            None => {
                product.options.push(OptionInput {
                    name: key,
                    values: Vec::new(),
                });
                product.options.len() - 1
            }
        };
        let values = &mut product.options[position].values;
        if !values.iter().any(|known| known == value) {
            values.push(value.clone());
        }
    }
    product.variants.push(variant);
    Ok(())
}
