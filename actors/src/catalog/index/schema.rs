//! The index's schema and text analysis: which fields a product becomes (searchable
//! text, filter terms, sort columns, facets, the stored product), the two analyzers
//! shared by indexing and queries, and the checks a product passes before it is indexed.

use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED, STRING,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    TextAnalyzer, TokenStream,
};
use tantivy::{Index, TantivyDocument};
use uuid::Uuid;

use super::model::{IndexError, IndexedProduct, Result};

/// Words longer than this (in bytes, after lower-casing and folding) are not indexed,
/// and query words as long are ignored.
pub const MAX_WORD_BYTES: usize = 40;

/// Lower-cased, accents folded to ASCII (`é` → `e`), not stemmed: prefix and typo
/// matching run on these.
pub const RAW_ANALYZER: &str = "souk_raw";
/// As [`RAW_ANALYZER`], then the English (Porter 2) stemmer: `running` → `run`.
pub const STEM_ANALYZER: &str = "souk_stem";

/// Largest amount a price may have: it shares a 64-bit value with its currency.
pub const MAX_AMOUNT: i64 = (1 << AMOUNT_BITS) - 1;
const AMOUNT_BITS: u32 = 40;

/// The searchable text fields, each indexed twice (stemmed and raw), with the weight a
/// word matched in it adds to the relevance score.
#[derive(Debug, Clone, Copy)]
pub struct TextField {
    pub stemmed: Field,
    pub raw: Field,
    pub weight: f32,
}

/// Field handles of the schema.
#[derive(Debug, Clone)]
pub struct Fields {
    pub id: Field,
    pub sku: Field,
    pub name: TextField,
    pub tags_text: TextField,
    pub description: TextField,
    pub tag: Field,
    pub category_path: Field,
    pub status: Field,
    pub in_stock: Field,
    /// `name:value`, filtered and counted.
    pub attribute: Field,
    pub stored: Field,
}

/// Fast-field (column) names, read by the page collector.
pub mod columns {
    pub const ID_HIGH: &str = "id_high";
    pub const ID_LOW: &str = "id_low";
    /// The product's lowest price (its own, or its cheapest variant's): sorted on.
    pub const PRICE: &str = "price";
    /// Every price it sells at (its own, or each variant's): filtered on.
    pub const PRICE_ANY: &str = "price_any";
    pub const PRICE_BY_CURRENCY: &str = "price_by_currency";
    pub const CREATED: &str = "created";
    pub const NAME_SORT: &str = "name_sort";
    /// The product's own category and attributes as one value (see [`facet_key`]).
    pub const FACET_KEY: &str = "facet_key";
}

/// Separates the category from the attributes in a facet key, and attributes from each
/// other; neither can occur in ids or attributes (control characters are refused).
pub const FACET_KEY_CATEGORY_END: char = '\u{1e}';
pub const FACET_KEY_SEPARATOR: char = '\u{1f}';

/// Relevance weights of the text fields: a word found in the name counts most.
pub const NAME_WEIGHT: f32 = 10.0;
pub const TAGS_WEIGHT: f32 = 4.0;
pub const DESCRIPTION_WEIGHT: f32 = 1.0;

pub fn build() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = |analyzer: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(analyzer)
                .set_index_option(IndexRecordOption::Basic)
                .set_fieldnorms(false),
        )
    };
    let mut text_field = |name: &str, weight: f32| TextField {
        stemmed: builder.add_text_field(&format!("{name}_stemmed"), text(STEM_ANALYZER)),
        raw: builder.add_text_field(&format!("{name}_raw"), text(RAW_ANALYZER)),
        weight,
    };
    let name = text_field("name", NAME_WEIGHT);
    let tags_text = text_field("tags", TAGS_WEIGHT);
    let description = text_field("description", DESCRIPTION_WEIGHT);
    let fields = Fields {
        id: builder.add_text_field("id", STRING),
        sku: builder.add_text_field("sku", STRING),
        name,
        tags_text,
        description,
        tag: builder.add_text_field("tag", STRING),
        category_path: builder.add_text_field("category_path", STRING),
        status: builder.add_text_field("status", STRING),
        in_stock: builder.add_bool_field("in_stock", INDEXED),
        attribute: builder.add_text_field("attribute", STRING),
        stored: builder.add_bytes_field("product", STORED),
    };
    builder.add_u64_field(columns::ID_HIGH, FAST);
    builder.add_u64_field(columns::ID_LOW, FAST);
    builder.add_u64_field(columns::PRICE, FAST);
    builder.add_u64_field(columns::PRICE_ANY, FAST);
    builder.add_u64_field(columns::PRICE_BY_CURRENCY, FAST);
    builder.add_i64_field(columns::CREATED, FAST);
    for column in [columns::NAME_SORT, columns::FACET_KEY] {
        builder.add_text_field(column, TextOptions::default().set_fast(Some("raw")));
    }
    (builder.build(), fields)
}

fn analyzer(stemmed: bool) -> TextAnalyzer {
    let builder = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(RemoveLongFilter::limit(MAX_WORD_BYTES + 1));
    if stemmed {
        builder.filter(Stemmer::new(Language::English)).build()
    } else {
        builder.build()
    }
}

pub fn register_analyzers(index: &Index) {
    index.tokenizers().register(RAW_ANALYZER, analyzer(false));
    index.tokenizers().register(STEM_ANALYZER, analyzer(true));
}

/// Text as both analyzers see it: combining accents (U+0300–U+036F) are dropped first,
/// so `e` + `◌́` is one letter as `é` is, rather than a word break.
pub fn normalise(text: &str) -> String {
    text.chars()
        .filter(|c| !('\u{0300}'..='\u{036f}').contains(c))
        .collect()
}

/// The raw words of `text`: what the raw analyzer indexes.
pub fn raw_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut analyzer = analyzer(false);
    let text = normalise(text);
    let mut stream = analyzer.token_stream(&text);
    while stream.advance() {
        words.push(stream.token().text.clone());
    }
    words
}

/// The stemmed form of one raw word.
pub fn stem(word: &str) -> String {
    let mut analyzer = analyzer(true);
    let mut stream = analyzer.token_stream(word);
    let mut stemmed = word.to_owned();
    if stream.advance() {
        stemmed.clone_from(&stream.token().text);
    }
    stemmed
}

/// A price as one sortable, range-searchable value: currency letters above the amount.
pub fn encode_price(currency: &str, amount: i64) -> Option<u64> {
    let code = currency_code(currency)?;
    let amount = u64::try_from(amount)
        .ok()
        .filter(|amount| *amount <= MAX_AMOUNT as u64)?;
    Some((code << AMOUNT_BITS) | amount)
}

/// The smallest and largest encoded prices of a currency.
pub fn currency_range(currency: &str) -> Option<(u64, u64)> {
    Some((
        encode_price(currency, 0)?,
        encode_price(currency, MAX_AMOUNT)?,
    ))
}

pub fn decode_amount(encoded: u64) -> u64 {
    encoded & (MAX_AMOUNT as u64)
}

fn currency_code(currency: &str) -> Option<u64> {
    let bytes = currency.as_bytes();
    if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
        return None;
    }
    Some(
        bytes
            .iter()
            .fold(0, |code, letter| (code << 5) | u64::from(letter - b'A' + 1)),
    )
}

/// The id as the (high, low) halves that order like the id's text.
pub fn id_halves(id: &str) -> Option<(u64, u64)> {
    let uuid = Uuid::parse_str(id).ok()?;
    if uuid.hyphenated().to_string() != id {
        return None;
    }
    let value = uuid.as_u128();
    Some(((value >> 64) as u64, value as u64))
}

pub fn id_from_value(value: u128) -> String {
    Uuid::from_u128(value).hyphenated().to_string()
}

/// Refuses what the index could not represent faithfully.
pub fn validate(product: &IndexedProduct) -> Result<()> {
    let invalid = |reason: String| IndexError::InvalidProduct {
        id: product.id.clone(),
        reason,
    };
    if id_halves(&product.id).is_none() {
        return Err(invalid("the id is not a canonical lowercase uuid".into()));
    }
    if product.sku.is_empty() {
        return Err(invalid("the sku is empty".into()));
    }
    if product.name.trim().is_empty() {
        return Err(invalid("the name is empty".into()));
    }
    if product.prices.is_empty() {
        return Err(invalid("a product needs a price".into()));
    }
    for (position, price) in product.prices.iter().enumerate() {
        if encode_price(&price.currency, price.amount).is_none() {
            return Err(invalid(format!(
                "price {} {} is not 0..={MAX_AMOUNT} in a three-letter currency",
                price.amount, price.currency
            )));
        }
        if product.prices[..position]
            .iter()
            .any(|earlier| earlier.currency == price.currency)
        {
            return Err(invalid(format!("two prices in {}", price.currency)));
        }
    }
    for variant in &product.variants {
        if variant.sku.is_empty() || !(0..=MAX_AMOUNT).contains(&variant.amount) {
            return Err(invalid(format!(
                "variant {:?} needs a SKU and a price of 0..={MAX_AMOUNT}",
                variant.sku
            )));
        }
    }
    for (name, value) in &product.facet_pairs() {
        if name.is_empty() || name.contains(':') || has_control(name) || has_control(value) {
            return Err(invalid(format!(
                "attribute {name:?} needs a name without ':' and no control characters"
            )));
        }
    }
    if product.tags.iter().any(|tag| has_control(tag)) {
        return Err(invalid("a tag has control characters".into()));
    }
    let category_ids = product
        .category_id
        .iter()
        .chain(&product.category_ancestors);
    if category_ids
        .into_iter()
        .any(|id| id.is_empty() || has_control(id))
    {
        return Err(invalid(
            "a category id is empty or has control characters".into(),
        ));
    }
    Ok(())
}

fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// What facets count of a product, in one column value: `category␞name:value␟…`.
/// Counting these values once per product and splitting each distinct one afterwards
/// is much cheaper than counting every attribute of every match: products repeat the
/// same combinations.
pub fn facet_key(product: &IndexedProduct) -> String {
    let mut key = product.category_id.clone().unwrap_or_default();
    key.push(FACET_KEY_CATEGORY_END);
    for (position, (name, value)) in product.facet_pairs().iter().enumerate() {
        if position > 0 {
            key.push(FACET_KEY_SEPARATOR);
        }
        key.push_str(&attribute_term(name, value));
    }
    key
}

/// An attribute as one term: names never contain `:`.
pub fn attribute_term(name: &str, value: &str) -> String {
    format!("{name}:{value}")
}

/// The document of a validated product.
pub fn document(fields: &Fields, schema: &Schema, product: &IndexedProduct) -> TantivyDocument {
    let column = |name: &str| schema.get_field(name).expect("the schema has every column");
    let mut document = TantivyDocument::new();
    document.add_text(fields.id, &product.id);
    document.add_text(fields.sku, &product.sku);
    let (high, low) = id_halves(&product.id).unwrap_or_default();
    document.add_u64(column(columns::ID_HIGH), high);
    document.add_u64(column(columns::ID_LOW), low);

    for (field, text) in [
        (fields.name, normalise(&product.name)),
        (fields.description, normalise(&product.description)),
    ] {
        document.add_text(field.stemmed, &text);
        document.add_text(field.raw, &text);
    }
    for tag in &product.tags {
        let text = normalise(tag);
        document.add_text(fields.tags_text.stemmed, &text);
        document.add_text(fields.tags_text.raw, &text);
        document.add_text(fields.tag, tag);
    }

    for ancestor in &product.category_ancestors {
        document.add_text(fields.category_path, ancestor);
    }
    if let Some(category_id) = &product.category_id {
        document.add_text(fields.category_path, category_id);
    }
    document.add_text(column(columns::FACET_KEY), facet_key(product));
    for (name, value) in &product.facet_pairs() {
        document.add_text(fields.attribute, attribute_term(name, value));
    }
    document.add_text(fields.status, product.status.as_str());
    document.add_bool(fields.in_stock, product.in_stock);

    let mut selling = product.selling_amounts();
    selling.sort_unstable();
    selling.dedup();
    if let Some(lowest) = selling.first() {
        document.add_u64(column(columns::PRICE), (*lowest).max(0) as u64);
    }
    for amount in &selling {
        document.add_u64(column(columns::PRICE_ANY), (*amount).max(0) as u64);
    }
    // The lowest first: a sort in a currency reads the first value in its range.
    let own_currency = product.prices.first().map(|price| price.currency.as_str());
    for amount in &selling {
        if let Some(encoded) = own_currency.and_then(|currency| encode_price(currency, *amount)) {
            document.add_u64(column(columns::PRICE_BY_CURRENCY), encoded);
        }
    }
    for price in product.prices.iter().skip(1) {
        if let Some(encoded) = encode_price(&price.currency, price.amount) {
            document.add_u64(column(columns::PRICE_BY_CURRENCY), encoded);
        }
    }
    document.add_i64(column(columns::CREATED), product.created_at);
    document.add_text(column(columns::NAME_SORT), name_sort_key(&product.name));
    document.add_bytes(
        fields.stored,
        &serde_json::to_vec(product).unwrap_or_default(),
    );
    document
}

/// Names sort by their lower-case form.
pub fn name_sort_key(name: &str) -> String {
    name.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_order_by_currency_then_amount() {
        let eur_high = encode_price("EUR", MAX_AMOUNT).unwrap();
        let gbp_zero = encode_price("GBP", 0).unwrap();
        assert!(eur_high < gbp_zero);
        assert_eq!(decode_amount(encode_price("USD", 1999).unwrap()), 1999);
        for bad in [("EU", 1), ("eur", 1), ("EUR", -1), ("EUR", MAX_AMOUNT + 1)] {
            assert_eq!(encode_price(bad.0, bad.1), None, "{bad:?}");
        }
    }

    #[test]
    fn ids_round_trip_and_order_like_their_text() {
        let low = "01890a5d-ac96-774b-bcce-b302099a8057";
        let high = "01890a5d-ac96-774b-bcce-b302099a8058";
        let (low_high, low_low) = id_halves(low).unwrap();
        let (high_high, high_low) = id_halves(high).unwrap();
        assert!((low_high, low_low) < (high_high, high_low));
        assert_eq!(
            id_from_value((u128::from(low_high) << 64) | u128::from(low_low)),
            low
        );
        assert_eq!(id_halves("01890A5D-AC96-774B-BCCE-B302099A8057"), None);
        assert_eq!(id_halves("not an id"), None);
    }

    #[test]
    fn analysis_folds_lowercases_and_stems() {
        assert_eq!(
            raw_words("Café-Crème RUNNING e\u{301}te"),
            ["cafe", "creme", "running", "ete"]
        );
        assert_eq!(stem("running"), "run");
        assert_eq!(stem("shoes"), "shoe");
        assert_eq!(
            raw_words(&"x".repeat(MAX_WORD_BYTES + 1)),
            Vec::<String>::new()
        );
    }
}
