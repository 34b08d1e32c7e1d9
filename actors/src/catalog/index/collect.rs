//! What a search gathers in one pass over its matches: the page (the first products
//! after the cursor in the sort's order, ties broken by id) and the facet counts.
//!
//! Sorting reads columns (fast fields): per segment every match gets a number that
//! orders like the sort (name sorts use the segment's ordinal of the lower-case name),
//! and the best `limit + 1` of each segment are merged by their real keys.

use std::cmp::Ordering;
use std::ops::Bound;

use tantivy::collector::{Collector, FacetCollector, FacetCounts, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::schema::Facet;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use super::cursor::{After, AfterKey};
use super::model::{Facets, Sort};
use super::schema::{self, columns, ATTRIBUTE_FACET, CATEGORY_FACET};

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

/// Collects the first `keep` matches after `after`.
pub struct PageCollector {
    order: Order,
    after: Option<After>,
    keep: usize,
}

impl PageCollector {
    pub fn new(order: Order, after: Option<After>, keep: usize) -> PageCollector {
        PageCollector {
            order,
            after,
            keep: keep.max(1),
        }
    }
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

pub struct PageSegmentCollector {
    order: Order,
    id_high: Column<u64>,
    id_low: Column<u64>,
    key_column: KeyColumn,
    /// Normalised keyset bound: a match passes when its (key, id) is above it; `None`
    /// as id lets every match with that key pass.
    bound: Option<(u64, Option<u128>)>,
    top: TopK,
}

impl Collector for PageCollector {
    type Fruit = Vec<Entry>;
    type Child = PageSegmentCollector;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<PageSegmentCollector> {
        let fast = reader.fast_fields();
        let key_column = match self.order.source {
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
        let bound = match &self.after {
            None => None,
            Some(after) => Some(self.segment_bound(after, &key_column)?),
        };
        Ok(PageSegmentCollector {
            order: self.order,
            id_high: fast.u64(columns::ID_HIGH)?,
            id_low: fast.u64(columns::ID_LOW)?,
            key_column,
            bound,
            top: TopK::new(self.keep),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.order.source == KeySource::Score
    }

    fn merge_fruits(&self, segments: Vec<Vec<Entry>>) -> tantivy::Result<Vec<Entry>> {
        let mut entries: Vec<Entry> = segments.into_iter().flatten().collect();
        entries.sort_by(Entry::cmp_order);
        entries.truncate(self.keep);
        Ok(entries)
    }
}

impl PageCollector {
    /// The cursor in this segment's terms.
    fn segment_bound(
        &self,
        after: &After,
        key_column: &KeyColumn,
    ) -> tantivy::Result<(u64, Option<u128>)> {
        let id = Some(self.order.id(after.id));
        match (&after.key, key_column) {
            (AfterKey::Name(name), KeyColumn::Name(column)) => {
                // Names beyond the cursor's start at the first ordinal above it; when
                // the name itself is in this segment, its products page on by id.
                let (lower, _) = column
                    .dictionary()
                    .term_bounds_to_ord(Bound::Excluded(name.as_bytes()), Bound::Unbounded)?;
                Ok(match lower {
                    Bound::Excluded(ordinal) => (ordinal, id),
                    Bound::Included(ordinal) => (ordinal, None),
                    Bound::Unbounded => (0, None),
                })
            }
            (AfterKey::Number(number), _) => Ok((self.order.key(*number), id)),
            (AfterKey::Name(_), _) => Err(tantivy::TantivyError::InvalidArgument(
                "a name cursor for another sort".into(),
            )),
        }
    }
}

impl PageSegmentCollector {
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

    fn id(&self, doc: DocId) -> u128 {
        let high = self.id_high.first(doc).unwrap_or(0);
        let low = self.id_low.first(doc).unwrap_or(0);
        (u128::from(high) << 64) | u128::from(low)
    }

    fn entry(&self, key: u64, ordered_id: u128) -> Entry {
        let id = self.order.id(ordered_id);
        if let KeyColumn::Name(column) = &self.key_column {
            let mut name = String::new();
            // The ordinal came from this column: it is in its dictionary.
            let _ = column.ord_to_str(key, &mut name);
            return Entry {
                merge_key: MergeKey::Text(name.clone()),
                ordered_id,
                key: AfterKey::Name(name),
                id,
            };
        }
        Entry {
            merge_key: MergeKey::Number(key),
            ordered_id,
            key: AfterKey::Number(self.order.key(key)),
            id,
        }
    }
}

impl SegmentCollector for PageSegmentCollector {
    type Fruit = Vec<Entry>;

    fn collect(&mut self, doc: DocId, score: Score) {
        let key = self.order.key(self.raw_key(doc, score));
        if self.top.rejects_key(key) {
            return;
        }
        if let Some((bound_key, _)) = self.bound {
            if key < bound_key {
                return;
            }
        }
        let id = self.order.id(self.id(doc));
        if let Some((bound_key, Some(bound_id))) = self.bound {
            if key == bound_key && id <= bound_id {
                return;
            }
        }
        self.top.push(key, id);
    }

    fn harvest(mut self) -> Vec<Entry> {
        let best = std::mem::replace(&mut self.top, TopK::new(0)).into_sorted();
        best.into_iter()
            .map(|(key, id)| self.entry(key, id))
            .collect()
    }
}

/// The `keep` smallest (key, id) pairs seen, with a threshold that rejects most
/// matches after the first few thousand without sorting.
struct TopK {
    keep: usize,
    buffer: Vec<(u64, u128)>,
    threshold: Option<(u64, u128)>,
}

impl TopK {
    fn new(keep: usize) -> TopK {
        TopK {
            keep,
            buffer: Vec::with_capacity(keep * 2),
            threshold: None,
        }
    }

    fn rejects_key(&self, key: u64) -> bool {
        self.threshold.is_some_and(|(threshold, _)| key > threshold)
    }

    fn push(&mut self, key: u64, id: u128) {
        if self
            .threshold
            .is_some_and(|threshold| (key, id) > threshold)
        {
            return;
        }
        if self.buffer.len() == self.keep * 2 {
            let (_, nth, _) = self.buffer.select_nth_unstable(self.keep);
            self.threshold = Some(*nth);
            self.buffer.truncate(self.keep);
            if self
                .threshold
                .is_some_and(|threshold| (key, id) > threshold)
            {
                return;
            }
        }
        self.buffer.push((key, id));
    }

    fn into_sorted(mut self) -> Vec<(u64, u128)> {
        self.buffer.sort_unstable();
        self.buffer.truncate(self.keep);
        self.buffer
    }
}

/// The facet collector: the children of `/category` and `/attribute`.
pub fn facet_collector() -> FacetCollector {
    let mut collector = FacetCollector::for_field(columns::FACETS);
    collector.add_facet(Facet::from_path([CATEGORY_FACET]));
    collector.add_facet(Facet::from_path([ATTRIBUTE_FACET]));
    collector
}

/// Category and attribute counts; products without a category are what the category
/// counts leave of `total`.
pub fn facets(counts: &FacetCounts, total: u64) -> Facets {
    let leaf = |facet: &Facet| facet.to_path().last().map(|step| (*step).to_owned());
    let mut categories: Vec<(Option<String>, u64)> = counts
        .get(Facet::from_path([CATEGORY_FACET]))
        .filter_map(|(facet, count)| Some((Some(leaf(facet)?), count)))
        .collect();
    let categorised: u64 = categories.iter().map(|(_, count)| count).sum();
    if total > categorised {
        categories.push((None, total - categorised));
    }
    categories.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut attributes: Vec<(String, String, u64)> = counts
        .get(Facet::from_path([ATTRIBUTE_FACET]))
        .filter_map(|(facet, count)| {
            let pair = leaf(facet)?;
            let (name, value) = pair.split_once(':')?;
            Some((name.to_owned(), value.to_owned(), count))
        })
        .collect();
    attributes.sort();
    Facets {
        categories,
        attributes,
    }
}
