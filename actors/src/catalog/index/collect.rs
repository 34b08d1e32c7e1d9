//! What a search gathers in one pass over its matches: the total, the facet counts
//! (per own category, per attribute value) and the page (see `page.rs`). Columns are
//! read a block of matches at a time where no score is needed.

use std::sync::Arc;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::Weight;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader, COLLECT_BLOCK_BUFFER_LEN};

use super::cursor::After;
use super::facets::{FacetTables, FacetTally, SegmentFacets};
use super::model::Facets;
use super::page::{self, Entry, Order, SegmentPage};

/// Everything a search returns, before ids are spelled out.
pub struct Gathered {
    pub total: u64,
    pub entries: Vec<Entry>,
    facets: FacetTally,
}

impl Gathered {
    /// Category and attribute counts; products without a category are what the
    /// category counts leave of the total.
    pub fn facets(&self) -> Facets {
        let mut categories: Vec<(Option<String>, u64)> = self
            .facets
            .categories
            .iter()
            .map(|(id, count)| (Some(id.clone()), *count))
            .collect();
        let categorised: u64 = self.facets.categories.values().sum();
        if self.total > categorised {
            categories.push((None, self.total - categorised));
        }
        categories.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut attributes: Vec<(String, String, u64)> = self
            .facets
            .attributes
            .iter()
            .filter_map(|(pair, count)| {
                let (name, value) = pair.split_once(':')?;
                Some((name.to_owned(), value.to_owned(), *count))
            })
            .collect();
        attributes.sort();
        Facets {
            categories,
            attributes,
        }
    }
}

pub struct SearchCollector {
    order: Order,
    after: Option<After>,
    keep: usize,
    tables: Arc<FacetTables>,
}

impl SearchCollector {
    /// Keeps the first `keep` matches after `after` in `order`.
    pub fn new(
        order: Order,
        after: Option<After>,
        keep: usize,
        tables: Arc<FacetTables>,
    ) -> SearchCollector {
        SearchCollector {
            order,
            after,
            keep,
            tables,
        }
    }
}

pub struct SegmentSearch {
    total: u64,
    facets: SegmentFacets,
    page: SegmentPage,
}

pub struct SegmentGathered {
    total: u64,
    facets: FacetTally,
    entries: Vec<Entry>,
}

impl Collector for SearchCollector {
    type Fruit = Gathered;
    type Child = SegmentSearch;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentSearch> {
        Ok(SegmentSearch {
            total: 0,
            facets: SegmentFacets::open(reader, &self.tables)?,
            page: SegmentPage::new(self.order, self.after.as_ref(), self.keep, segment, reader)?,
        })
    }

    fn requires_scoring(&self) -> bool {
        self.order.needs_score()
    }

    fn merge_fruits(&self, segments: Vec<SegmentGathered>) -> tantivy::Result<Gathered> {
        let mut gathered = Gathered {
            total: 0,
            entries: Vec::new(),
            facets: FacetTally::default(),
        };
        let mut pages = Vec::with_capacity(segments.len());
        for segment in segments {
            gathered.total += segment.total;
            gathered.facets.absorb(segment.facets);
            pages.push(segment.entries);
        }
        gathered.entries = page::merge(pages, self.keep);
        Ok(gathered)
    }

    /// As tantivy's own, except that deleted documents are filtered out of each block
    /// rather than sending every match through the one-by-one path.
    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentGathered> {
        let mut collector = self.for_segment(segment, reader)?;
        if self.requires_scoring() {
            let alive = reader.alive_bitset();
            weight.for_each(reader, &mut |doc, score| {
                if alive.is_none_or(|alive| alive.is_alive(doc)) {
                    collector.collect(doc, score);
                }
            })?;
            return Ok(collector.harvest());
        }
        match reader.alive_bitset() {
            None => weight.for_each_no_score(reader, &mut |docs| collector.collect_block(docs))?,
            Some(alive) => {
                let mut kept = Vec::with_capacity(COLLECT_BLOCK_BUFFER_LEN);
                weight.for_each_no_score(reader, &mut |docs| {
                    kept.clear();
                    kept.extend(docs.iter().copied().filter(|doc| alive.is_alive(*doc)));
                    collector.collect_block(&kept);
                })?
            }
        }
        Ok(collector.harvest())
    }
}

impl SegmentCollector for SegmentSearch {
    type Fruit = SegmentGathered;

    fn collect(&mut self, doc: DocId, score: Score) {
        self.total += 1;
        self.facets.collect(doc);
        self.page.collect(doc, score);
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        self.total += docs.len() as u64;
        self.facets.collect_block(docs);
        self.page.collect_block(docs);
    }

    fn harvest(self) -> SegmentGathered {
        SegmentGathered {
            total: self.total,
            facets: self.facets.harvest(),
            entries: self.page.harvest(),
        }
    }
}
