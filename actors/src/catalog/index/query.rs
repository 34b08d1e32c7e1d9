//! Turns a [`SearchRequest`] into a tantivy query: the words of the text with their
//! match rules (scored by `text.rs`), and the filters (status, category subtree, price,
//! tags, attributes, stock), which score nothing.

use std::ops::Bound;

use tantivy::query::{
    AllQuery, BooleanQuery, ConstScoreQuery, EmptyQuery, Occur, Query, RangeQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Schema};
use tantivy::Term;

use super::model::{IndexError, Result, SearchRequest, Status};
use super::schema::{self, columns, Fields};
use super::text::TextQuery;

/// Words of a search beyond this many are ignored.
pub const MAX_QUERY_WORDS: usize = 10;
/// The last word also matches as a prefix once it has this many letters.
pub const MIN_PREFIX_CHARS: usize = 2;
/// Words of at least this many letters also match with one typo.
pub const MIN_FUZZY_CHARS: usize = 5;

/// Match qualities: how much of a field's weight a word earns there.
pub const EXACT_QUALITY: f32 = 4.0;
pub const PREFIX_QUALITY: f32 = 2.0;
pub const FUZZY_QUALITY: f32 = 1.0;

/// Words so common that requiring them would only lose matches; dropped from a search
/// unless it has no other word.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to", "with",
];

/// One word of a search and how it may match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryWord {
    /// Lower-cased, accents folded.
    pub raw: String,
    pub stemmed: String,
    /// The last word typed: also matches words it begins.
    pub prefix: bool,
    /// Long enough to also match a word one edit away.
    pub fuzzy: bool,
}

/// The words of a search text, with their match rules (see the module documentation).
pub fn query_words(text: &str) -> Vec<QueryWord> {
    let words = schema::raw_words(text);
    let last = words.len().checked_sub(1);
    let all_stop_words = words.iter().all(|word| STOP_WORDS.contains(&word.as_str()));
    words
        .into_iter()
        .enumerate()
        .filter(|(_, word)| all_stop_words || !STOP_WORDS.contains(&word.as_str()))
        .take(MAX_QUERY_WORDS)
        .map(|(position, raw)| {
            let letters = raw.chars().count();
            QueryWord {
                stemmed: schema::stem(&raw),
                prefix: Some(position) == last && letters >= MIN_PREFIX_CHARS,
                fuzzy: letters >= MIN_FUZZY_CHARS,
                raw,
            }
        })
        .collect()
}

fn filter(query: Box<dyn Query>) -> (Occur, Box<dyn Query>) {
    (Occur::Must, Box::new(ConstScoreQuery::new(query, 0.0)))
}

fn term(field: Field, text: &str) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::Basic,
    ))
}

fn u64_range(field: Field, low: u64, high: u64) -> Box<dyn Query> {
    if low > high {
        return Box::new(EmptyQuery);
    }
    Box::new(RangeQuery::new(
        Bound::Included(Term::from_field_u64(field, low)),
        Bound::Included(Term::from_field_u64(field, high)),
    ))
}

/// The price filter: on the price in `currency` when one is named (which also requires
/// one), else on the product's own price; a product with variants matches when one of
/// them does. `None` when nothing is filtered.
fn price_filter(request: &SearchRequest, schema: &Schema) -> Result<Option<Box<dyn Query>>> {
    let low = request.price_min.unwrap_or(0).max(0);
    let high = match request.price_max {
        Some(maximum) if maximum < 0 => return Ok(Some(Box::new(EmptyQuery))),
        Some(maximum) => maximum.min(schema::MAX_AMOUNT),
        None => schema::MAX_AMOUNT,
    };
    let column = |name: &str| {
        schema
            .get_field(name)
            .map_err(|_| IndexError::InvalidQuery(format!("no column {name}")))
    };
    if let Some(currency) = &request.currency {
        let (Some(low), Some(high)) = (
            schema::encode_price(currency, low.min(schema::MAX_AMOUNT)),
            schema::encode_price(currency, high),
        ) else {
            return Err(IndexError::InvalidQuery(format!(
                "currency {currency:?} is not a three-letter code"
            )));
        };
        return Ok(Some(u64_range(
            column(columns::PRICE_BY_CURRENCY)?,
            low,
            high,
        )));
    }
    if request.price_min.is_none() && request.price_max.is_none() {
        return Ok(None);
    }
    Ok(Some(u64_range(
        column(columns::PRICE_ANY)?,
        low as u64,
        high as u64,
    )))
}

/// The whole query: every word must match; filters narrow without scoring.
pub fn build(
    request: &SearchRequest,
    words: &[QueryWord],
    fields: &Fields,
    schema: &Schema,
) -> Result<Box<dyn Query>> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if !words.is_empty() {
        let text_fields = vec![fields.name, fields.tags_text, fields.description];
        clauses.push((
            Occur::Must,
            Box::new(TextQuery::new(words.to_vec(), text_fields)),
        ));
    }
    let statuses: Vec<Status> = Status::ALL
        .into_iter()
        .filter(|status| request.statuses.contains(status))
        .collect();
    // One term query per status rather than a term set: a term set reads every posting
    // of its terms up front, where a term query is only advanced as far as needed.
    match statuses.as_slice() {
        [] | [_, _, _] => {}
        [status] => clauses.push(filter(term(fields.status, status.as_str()))),
        several => clauses.push(filter(Box::new(BooleanQuery::new(
            several
                .iter()
                .map(|status| (Occur::Should, term(fields.status, status.as_str())))
                .collect(),
        )))),
    }
    if let Some(category_id) = &request.category_id {
        clauses.push(filter(term(fields.category_path, category_id)));
    }
    if let Some(price) = price_filter(request, schema)? {
        clauses.push(filter(price));
    }
    for tag in &request.tags {
        clauses.push(filter(term(fields.tag, tag)));
    }
    for (name, value) in &request.attributes {
        clauses.push(filter(term(
            fields.attribute,
            &schema::attribute_term(name, value),
        )));
    }
    if request.in_stock {
        clauses.push(filter(Box::new(TermQuery::new(
            Term::from_field_bool(fields.in_stock, true),
            IndexRecordOption::Basic,
        ))));
    }
    if clauses.is_empty() {
        return Ok(Box::new(AllQuery));
    }
    Ok(Box::new(BooleanQuery::new(clauses)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_their_rules() {
        let words = query_words("Running shoes for tr");
        let summary: Vec<(&str, &str, bool, bool)> = words
            .iter()
            .map(|word| {
                (
                    word.raw.as_str(),
                    word.stemmed.as_str(),
                    word.prefix,
                    word.fuzzy,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("running", "run", false, true),
                ("shoes", "shoe", false, true),
                ("tr", "tr", true, false),
            ]
        );
        assert_eq!(query_words("the")[0].raw, "the");
        assert!(!query_words("shoes x")[1].prefix, "one letter is no prefix");
        assert!(query_words("%_*'\"()").is_empty());
        assert_eq!(query_words(&"word ".repeat(20)).len(), MAX_QUERY_WORDS);
    }
}
