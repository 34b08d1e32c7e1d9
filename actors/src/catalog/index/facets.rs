//! Facet counting. Each product has one facet key (its category and attributes in one
//! column value, see `schema::facet_key`); a search counts its matches per key ordinal,
//! then adds each key's count to the category and attribute values the key holds.
//! Which values a key holds is read once per segment (segments never change) into a
//! [`FacetTable`] and kept while the segment is searchable: index data, not results.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tantivy::columnar::{ColumnBlockAccessor, StrColumn};
use tantivy::index::SegmentId;
use tantivy::{DocId, Searcher, SegmentReader};

use super::schema::{self, columns};

/// What the facet keys of one segment hold, by key ordinal.
pub struct FacetTable {
    categories: Vec<String>,
    attributes: Vec<String>,
    /// Per key ordinal: index into `categories`, or `NONE`.
    key_category: Vec<u32>,
    /// Per key ordinal: its attributes are `key_attributes[starts[k]..starts[k + 1]]`.
    starts: Vec<u32>,
    key_attributes: Vec<u32>,
}

const NONE: u32 = u32::MAX;

fn intern(values: &mut Vec<String>, positions: &mut HashMap<String, u32>, value: &str) -> u32 {
    if let Some(position) = positions.get(value) {
        return *position;
    }
    let position = values.len() as u32;
    values.push(value.to_owned());
    positions.insert(value.to_owned(), position);
    position
}

impl FacetTable {
    fn read(column: &StrColumn) -> std::io::Result<FacetTable> {
        let mut table = FacetTable {
            categories: Vec::new(),
            attributes: Vec::new(),
            key_category: Vec::with_capacity(column.num_terms()),
            starts: vec![0],
            key_attributes: Vec::new(),
        };
        let (mut category_positions, mut attribute_positions) = (HashMap::new(), HashMap::new());
        let mut keys = column.dictionary().stream()?;
        while keys.advance() {
            let key = String::from_utf8_lossy(keys.key());
            let (category, attributes) = key
                .split_once(schema::FACET_KEY_CATEGORY_END)
                .unwrap_or(("", &key));
            table.key_category.push(if category.is_empty() {
                NONE
            } else {
                intern(&mut table.categories, &mut category_positions, category)
            });
            for pair in attributes.split(schema::FACET_KEY_SEPARATOR) {
                if !pair.is_empty() {
                    let position = intern(&mut table.attributes, &mut attribute_positions, pair);
                    table.key_attributes.push(position);
                }
            }
            table.starts.push(table.key_attributes.len() as u32);
        }
        Ok(table)
    }
}

/// The facet tables of the searchable segments.
#[derive(Default)]
pub struct FacetTables {
    tables: Mutex<HashMap<SegmentId, Arc<FacetTable>>>,
}

impl FacetTables {
    fn of(&self, segment: &SegmentReader, column: &StrColumn) -> tantivy::Result<Arc<FacetTable>> {
        let id = segment.segment_id();
        if let Some(table) = self.lock().get(&id) {
            return Ok(Arc::clone(table));
        }
        // Built outside the lock; two searches may both build it, one wins.
        let table = Arc::new(FacetTable::read(column)?);
        self.lock().insert(id, Arc::clone(&table));
        Ok(table)
    }

    /// Forgets the tables of segments `searcher` no longer has (merged away).
    pub fn keep_only(&self, searcher: &Searcher) {
        let live: HashSet<SegmentId> = searcher
            .segment_readers()
            .iter()
            .map(SegmentReader::segment_id)
            .collect();
        self.lock().retain(|id, _| live.contains(id));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SegmentId, Arc<FacetTable>>> {
        // The map holds no invariant a panicking holder could break.
        self.tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Counts one segment's matches per facet key.
pub struct SegmentFacets {
    column: Option<(StrColumn, Arc<FacetTable>)>,
    counts: Vec<u64>,
    accessor: ColumnBlockAccessor<u64>,
}

/// Counts per category id and per `name:value`.
#[derive(Default)]
pub struct FacetTally {
    pub categories: HashMap<String, u64>,
    pub attributes: HashMap<String, u64>,
}

impl FacetTally {
    pub fn absorb(&mut self, other: FacetTally) {
        for (into, from) in [
            (&mut self.categories, other.categories),
            (&mut self.attributes, other.attributes),
        ] {
            for (value, count) in from {
                *into.entry(value).or_default() += count;
            }
        }
    }
}

impl SegmentFacets {
    pub fn open(reader: &SegmentReader, tables: &FacetTables) -> tantivy::Result<SegmentFacets> {
        let column = match reader.fast_fields().str(columns::FACET_KEY)? {
            Some(column) => {
                let table = tables.of(reader, &column)?;
                Some((column, table))
            }
            None => None,
        };
        let keys = column.as_ref().map_or(0, |(column, _)| column.num_terms());
        Ok(SegmentFacets {
            column,
            counts: vec![0; keys],
            accessor: ColumnBlockAccessor::default(),
        })
    }

    pub fn collect(&mut self, doc: DocId) {
        let ordinal = self
            .column
            .as_ref()
            .and_then(|(column, _)| column.ords().first(doc));
        if let Some(ordinal) = ordinal {
            self.counts[ordinal as usize] += 1;
        }
    }

    pub fn collect_block(&mut self, docs: &[DocId]) {
        if let Some((column, _)) = &self.column {
            self.accessor.fetch_block(docs, column.ords());
            for ordinal in self.accessor.iter_vals() {
                self.counts[ordinal as usize] += 1;
            }
        }
    }

    pub fn harvest(self) -> FacetTally {
        let mut tally = FacetTally::default();
        let Some((_, table)) = self.column else {
            return tally;
        };
        let mut categories = vec![0u64; table.categories.len()];
        let mut attributes = vec![0u64; table.attributes.len()];
        for (key, count) in self.counts.into_iter().enumerate() {
            if count == 0 {
                continue;
            }
            if let Some(category) = categories.get_mut(table.key_category[key] as usize) {
                *category += count;
            }
            let (start, end) = (table.starts[key] as usize, table.starts[key + 1] as usize);
            for attribute in &table.key_attributes[start..end] {
                attributes[*attribute as usize] += count;
            }
        }
        for (counts, names, into) in [
            (categories, &table.categories, &mut tally.categories),
            (attributes, &table.attributes, &mut tally.attributes),
        ] {
            for (position, count) in counts.into_iter().enumerate() {
                if count > 0 {
                    into.insert(names[position].clone(), count);
                }
            }
        }
        tally
    }
}
