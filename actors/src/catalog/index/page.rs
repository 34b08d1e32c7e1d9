//! One page of a search within a segment: every match gets a number that orders like
//! the sort (score, price, creation time, or the segment's ordinal of the lower-case
//! name) and an id for ties; the cursor becomes a bound in the same terms; the best
//! `limit + 1` are kept, then merged across segments by their real keys.

use std::cmp::Ordering;
use std::ops::Bound;

use tantivy::columnar::{Column, ColumnBlockAccessor, StrColumn};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use super::cursor::{After, AfterKey};
use super::model::Sort;
use super::schema::{self, columns};

/// Where a sort's key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeySource {
    Score,
    /// The product's own price.
    Price,
    /// The price in one currency: the encoded value within this range.
    PriceIn {
        low: u64,
        high: u64,
    },
    Created,
    Name,
}

/// A sort as the collector runs it.
#[derive(Debug, Clone, Copy)]
pub struct Order {
    source: KeySource,
    key_descending: bool,
    id_descending: bool,
}

impl Order {
    /// `currency`: the encoded range of the currency the search names, if any.
    pub fn new(sort: Sort, currency: Option<(u64, u64)>) -> Order {
        let price = match currency {
            Some((low, high)) => KeySource::PriceIn { low, high },
            None => KeySource::Price,
        };
        let (source, key_descending, id_descending) = match sort {
            Sort::Relevance => (KeySource::Score, true, false),
            Sort::Newest => (KeySource::Created, true, true),
            Sort::PriceAsc => (price, false, false),
            Sort::PriceDesc => (price, true, true),
            Sort::Name => (KeySource::Name, false, false),
        };
        Order {
            source,
            key_descending,
            id_descending,
        }
    }

    pub fn needs_score(&self) -> bool {
        self.source == KeySource::Score
    }

    fn key(&self, raw: u64) -> u64 {
        if self.key_descending {
            !raw
        } else {
            raw
        }
    }

    fn id(&self, raw: u128) -> u128 {
        if self.id_descending {
            !raw
        } else {
            raw
        }
    }
}

/// One product of a page.
#[derive(Debug, Clone)]
pub struct Entry {
    merge_key: MergeKey,
    /// Normalised: smaller comes first.
    ordered_id: u128,
    pub key: AfterKey,
    pub id: u128,
    /// Where the searcher holds the product's stored copy.
    pub address: DocAddress,
}

impl Entry {
    pub fn after(&self, sort: Sort) -> After {
        After {
            sort,
            key: self.key.clone(),
            id: self.id,
        }
    }

    fn cmp_order(&self, other: &Entry) -> Ordering {
        self.merge_key
            .cmp(&other.merge_key)
            .then(self.ordered_id.cmp(&other.ordered_id))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum MergeKey {
    Number(u64),
    Text(String),
}

/// The best `keep` entries of all segments.
pub fn merge(segments: Vec<Vec<Entry>>, keep: usize) -> Vec<Entry> {
    let mut entries: Vec<Entry> = segments.into_iter().flatten().collect();
    entries.sort_by(Entry::cmp_order);
    entries.truncate(keep);
    entries
}

enum KeyColumn {
    Score,
    Number(Column<u64>),
    Signed(Column<i64>),
    PriceIn {
        column: Column<u64>,
        low: u64,
        high: u64,
    },
    Name(StrColumn),
}

/// The page of one segment.
pub struct SegmentPage {
    segment: SegmentOrdinal,
    key_column: KeyColumn,
    ranker: Ranker,
    numbers: ColumnBlockAccessor<u64>,
    signed: ColumnBlockAccessor<i64>,
}

/// Ranks matches by (key, id) after the cursor's bound.
struct Ranker {
    order: Order,
    id_high: Column<u64>,
    id_low: Column<u64>,
    /// Normalised keyset bound: a match passes when its (key, id) is above it; `None`
    /// as id lets every match with that key pass.
    bound: Option<(u64, Option<u128>)>,
    top: TopK,
}

impl SegmentPage {
    pub fn new(
        order: Order,
        after: Option<&After>,
        keep: usize,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentPage> {
        let fast = reader.fast_fields();
        let key_column = match order.source {
            KeySource::Score => KeyColumn::Score,
            KeySource::Price => KeyColumn::Number(fast.u64(columns::PRICE)?),
            KeySource::PriceIn { low, high } => KeyColumn::PriceIn {
                column: fast.u64(columns::PRICE_BY_CURRENCY)?,
                low,
                high,
            },
            KeySource::Created => KeyColumn::Signed(fast.i64(columns::CREATED)?),
            KeySource::Name => KeyColumn::Name(
                fast.str(columns::NAME_SORT)?
                    .ok_or_else(|| tantivy::TantivyError::SchemaError("no name column".into()))?,
            ),
        };
        let bound = match after {
            None => None,
            Some(after) => Some(segment_bound(order, after, &key_column)?),
        };
        Ok(SegmentPage {
            segment,
            key_column,
            ranker: Ranker {
                order,
                id_high: fast.u64(columns::ID_HIGH)?,
                id_low: fast.u64(columns::ID_LOW)?,
                bound,
                top: TopK::new(keep),
            },
            numbers: ColumnBlockAccessor::default(),
            signed: ColumnBlockAccessor::default(),
        })
    }

    /// The raw (un-normalised) key of a match.
    fn raw_key(&self, doc: DocId, score: Score) -> u64 {
        match &self.key_column {
            KeyColumn::Score => u64::from(score.max(0.0).to_bits()),
            KeyColumn::Number(column) => column.first(doc).unwrap_or(u64::MAX),
            KeyColumn::Signed(column) => tantivy::i64_to_u64(column.first(doc).unwrap_or(0)),
            KeyColumn::PriceIn { column, low, high } => column
                .values_for_doc(doc)
                .find(|value| (*low..=*high).contains(value))
                .map_or(u64::MAX, schema::decode_amount),
            KeyColumn::Name(column) => column.ords().first(doc).unwrap_or(u64::MAX),
        }
    }

    pub fn collect(&mut self, doc: DocId, score: Score) {
        let key = self.raw_key(doc, score);
        self.ranker.offer(doc, key);
    }

    /// Matches without scores, their keys read a block at a time.
    pub fn collect_block(&mut self, docs: &[DocId]) {
        let numbers = match &self.key_column {
            KeyColumn::Number(column) => column,
            KeyColumn::Name(column) => column.ords(),
            KeyColumn::Signed(column) => {
                self.signed.fetch_block_with_missing(docs, column, 0);
                for (doc, created) in self.signed.iter_docid_vals(docs, column) {
                    self.ranker.offer(doc, tantivy::i64_to_u64(created));
                }
                return;
            }
            KeyColumn::Score | KeyColumn::PriceIn { .. } => {
                for doc in docs {
                    self.collect(*doc, 0.0);
                }
                return;
            }
        };
        self.numbers
            .fetch_block_with_missing(docs, numbers, u64::MAX);
        for (doc, key) in self.numbers.iter_docid_vals(docs, numbers) {
            self.ranker.offer(doc, key);
        }
    }

    pub fn harvest(self) -> Vec<Entry> {
        let order = self.ranker.order;
        let segment = self.segment;
        let best = self.ranker.top.into_sorted();
        best.into_iter()
            .map(|(key, ordered_id, doc)| {
                let id = order.id(ordered_id);
                let address = DocAddress::new(segment, doc);
                if let KeyColumn::Name(column) = &self.key_column {
                    let mut name = String::new();
                    // The ordinal came from this column: it is in its dictionary.
                    let _ = column.ord_to_str(key, &mut name);
                    return Entry {
                        merge_key: MergeKey::Text(name.clone()),
                        ordered_id,
                        key: AfterKey::Name(name),
                        id,
                        address,
                    };
                }
                Entry {
                    merge_key: MergeKey::Number(key),
                    ordered_id,
                    key: AfterKey::Number(order.key(key)),
                    id,
                    address,
                }
            })
            .collect()
    }
}

impl Ranker {
    fn id(&self, doc: DocId) -> u128 {
        let high = self.id_high.first(doc).unwrap_or(0);
        let low = self.id_low.first(doc).unwrap_or(0);
        (u128::from(high) << 64) | u128::from(low)
    }

    /// Offers a match with its raw key.
    fn offer(&mut self, doc: DocId, raw_key: u64) {
        let key = self.order.key(raw_key);
        if self.top.rejects_key(key) {
            return;
        }
        if let Some((bound_key, bound_id)) = self.bound {
            if key < bound_key {
                return;
            }
            if key == bound_key {
                let id = self.order.id(self.id(doc));
                if bound_id.is_none_or(|bound_id| id > bound_id) {
                    self.top.push(key, id, doc);
                }
                return;
            }
        }
        let id = self.order.id(self.id(doc));
        self.top.push(key, id, doc);
    }
}

/// The cursor in a segment's terms.
fn segment_bound(
    order: Order,
    after: &After,
    key_column: &KeyColumn,
) -> tantivy::Result<(u64, Option<u128>)> {
    let id = Some(order.id(after.id));
    match (&after.key, key_column) {
        (AfterKey::Name(name), KeyColumn::Name(column)) => {
            // Names beyond the cursor's start at the first ordinal above it; when the
            // name itself is in this segment, its products page on by id.
            let (lower, _) = column
                .dictionary()
                .term_bounds_to_ord(Bound::Excluded(name.as_bytes()), Bound::Unbounded)?;
            Ok(match lower {
                Bound::Excluded(ordinal) => (ordinal, id),
                Bound::Included(ordinal) => (ordinal, None),
                Bound::Unbounded => (0, None),
            })
        }
        (AfterKey::Number(number), _) => Ok((order.key(*number), id)),
        (AfterKey::Name(_), _) => Err(tantivy::TantivyError::InvalidArgument(
            "a name cursor for another sort".into(),
        )),
    }
}

/// The `keep` smallest (key, id) pairs seen (with their documents), with a threshold
/// that rejects most matches after the first few without sorting.
struct TopK {
    keep: usize,
    buffer: Vec<(u64, u128, DocId)>,
    threshold: Option<(u64, u128)>,
}

impl TopK {
    fn new(keep: usize) -> TopK {
        let keep = keep.max(1);
        TopK {
            keep,
            buffer: Vec::with_capacity(keep * 2),
            threshold: None,
        }
    }

    fn rejects_key(&self, key: u64) -> bool {
        self.threshold.is_some_and(|(threshold, _)| key > threshold)
    }

    fn push(&mut self, key: u64, id: u128, doc: DocId) {
        if self
            .threshold
            .is_some_and(|threshold| (key, id) > threshold)
        {
            return;
        }
        if self.buffer.len() == self.keep * 2 {
            let (_, nth, _) = self.buffer.select_nth_unstable(self.keep);
            self.threshold = Some((nth.0, nth.1));
            self.buffer.truncate(self.keep);
            if self
                .threshold
                .is_some_and(|threshold| (key, id) > threshold)
            {
                return;
            }
        }
        self.buffer.push((key, id, doc));
    }

    fn into_sorted(mut self) -> Vec<(u64, u128, DocId)> {
        self.buffer.sort_unstable();
        self.buffer.truncate(self.keep);
        self.buffer
    }
}
