//! The catalog's search index: an embedded tantivy index of every product, in a
//! directory or in memory, answering the whole search contract (text, filters, five
//! sorts, facets, cursor paging, total) without the database. The database stays the
//! source of truth; the catalog service feeds this index (`upsert`, `delete`,
//! `set_in_stock`) and rebuilds it from the database when needed.
//!
//! # Text matching and relevance
//!
//! The text is split into words at every character that is not a letter or digit,
//! lower-cased and folded to ASCII (`Crème` → `creme`); combining accents are dropped.
//! Words longer than 40 bytes are ignored; English stop words (`the`, `for`, `with`…)
//! are dropped unless the text has no other word; the first ten words count. A text
//! that leaves no word matches nothing.
//!
//! A product matches when **every** word matches one of its name, tags or description,
//! in any of these ways:
//! - *exact*: the word's English stem equals the stem of one of the field's words
//!   (`running` finds `runs` and `run`; `shoes` finds `shoe`);
//! - *prefix* (type-ahead), for the last word of the text only, once it has two
//!   letters: it begins one of the field's words (`head` finds `headphones`);
//! - *typo*, for words of five letters or more: one of the field's words is one edit
//!   away (a letter changed, added or removed, or two neighbours swapped:
//!   `headphnoes` finds `headphones`).
//!
//! The relevance score is a sum over the words and, per word, over the fields it
//! matches: the field's weight (name 10, tags 4, description 1) times the quality of
//! the best way it matches there (exact 4, prefix 2, typo 1). It depends on the product
//! and the words only — not on the rest of the catalog as BM25 would — so every node
//! ranks alike, whatever its segments, and a cursor stays valid while products change.
//! Equal scores are ordered by id.
//!
//! # Filters, sorts, facets
//!
//! Category filters include sub-categories (each product carries its ancestor path);
//! price filters and sorts use the price in the requested currency, or the product's
//! own (first) price when none is named; tags and attributes must all be present;
//! statuses are any of those asked. Sorts: `relevance` (needs text; the default with
//! text), `newest` (the default without), `price_asc`, `price_desc`, `name` (lower
//! case), ties broken by id (backwards for `newest` and `price_desc`). `total` and the
//! facets (per own category, per attribute value) count every match.
//!
//! # Freshness
//!
//! Writes are buffered and become searchable together at the next commit: `commit`
//! does it at once; otherwise the refresher commits every `refresh_interval` (default
//! 200 ms) while writes are pending. A write is searchable within `refresh_interval`
//! plus one commit (tens of milliseconds), well under the one-second bound the service
//! documents.
//!
//! # Stock
//!
//! `in_stock` is part of the indexed product; `set_in_stock(sku, bool)` flips it when
//! a SKU's availability crosses zero, with the same freshness. The exact `available`
//! count shown on products is still read live from the SKU actors' rows. An upsert
//! carries its own `in_stock`, so whoever builds the product reads the stock then.
//!
//! # Running searches
//!
//! A search is synchronous CPU work (about half a millisecond at 100 000 products).
//! Run searches on a pool bounded by the core count (a semaphore around
//! `spawn_blocking`, say): each searching thread keeps a few bytes per document of its
//! largest segment for text scoring, and more threads than cores only lengthen tails.
//! Per segment, what its facet keys hold is read once and kept while the segment is
//! searchable (`facets.rs`).

mod collect;
mod cursor;
mod facets;
mod model;
mod page;
mod query;
mod schema;
mod text;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::TermQuery;
use tantivy::schema::{IndexRecordOption, Schema, Value};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};

pub use model::{
    Facets, IndexError, IndexedProduct, IndexedVariant, Price, Result, SearchHits, SearchRequest,
    Sort, Status, MAX_LIMIT,
};
pub use query::{query_words, QueryWord};
pub use schema::{raw_words, stem, MAX_AMOUNT, MAX_WORD_BYTES};

use schema::Fields;

#[derive(Debug, Clone)]
pub struct IndexSettings {
    /// How often pending writes are committed (made searchable).
    pub refresh_interval: Duration,
    /// Indexing threads; each gets an equal share of the memory budget.
    pub writer_threads: usize,
    /// Memory buffered before the writer flushes a segment (at least 15 MB a thread).
    pub writer_memory_bytes: usize,
}

impl Default for IndexSettings {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_millis(200),
            writer_threads: 1,
            writer_memory_bytes: 64 << 20,
        }
    }
}

/// The product index. Share it behind an `Arc`; every method takes `&self`. Every
/// method blocks (searches on CPU, writes on the writer lock and commits on disk):
/// async callers run them on a blocking thread (see "Running searches" above).
pub struct ProductIndex {
    shared: Arc<Shared>,
    refresher: Option<JoinHandle<()>>,
}

struct Shared {
    schema: Schema,
    fields: Fields,
    reader: IndexReader,
    facet_tables: Arc<facets::FacetTables>,
    writer: Mutex<Writer>,
    /// Wakes the refresher early when the index closes.
    closing: Condvar,
}

struct Writer {
    tantivy: IndexWriter,
    /// Products written since the last commit (`None`: deleted), by id: what the
    /// searcher does not show yet.
    pending: HashMap<String, Option<IndexedProduct>>,
    closed: bool,
}

/// How far the index agrees with the products it should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// Products in the index.
    pub indexed: u64,
    /// Products given.
    pub expected: u64,
    /// Products compared one by one.
    pub sampled: usize,
    /// Sampled products absent from the index.
    pub missing: Vec<String>,
    /// Sampled products indexed with other content.
    pub different: Vec<String>,
}

impl CheckReport {
    pub fn agrees(&self) -> bool {
        self.indexed == self.expected && self.missing.is_empty() && self.different.is_empty()
    }
}

impl ProductIndex {
    /// An index in memory, empty.
    pub fn in_ram(settings: IndexSettings) -> Result<ProductIndex> {
        let (schema, fields) = schema::build();
        Self::start(
            Index::create_in_ram(schema.clone()),
            schema,
            fields,
            settings,
        )
    }

    /// Opens the index kept in `directory` (which it owns), or creates it there. An
    /// index written with another schema (an older Souk) is replaced by an empty one:
    /// the caller rebuilds it from the database.
    pub fn open_in_dir(directory: &Path, settings: IndexSettings) -> Result<ProductIndex> {
        std::fs::create_dir_all(directory)?;
        let (schema, fields) = schema::build();
        let open = |directory: &Path| {
            MmapDirectory::open(directory)
                .map_err(|error| IndexError::Io(std::io::Error::other(error.to_string())))
        };
        let index = match Index::open_or_create(open(directory)?, schema.clone()) {
            Ok(index) => index,
            Err(tantivy::TantivyError::SchemaError(reason)) => {
                tracing::warn!(
                    directory = %directory.display(),
                    reason = %reason,
                    "search index has another schema; starting an empty one"
                );
                Index::create(
                    open(directory)?,
                    schema.clone(),
                    tantivy::IndexSettings::default(),
                )?
            }
            Err(error) => return Err(error.into()),
        };
        Self::start(index, schema, fields, settings)
    }

    fn start(
        index: Index,
        schema: Schema,
        fields: Fields,
        settings: IndexSettings,
    ) -> Result<ProductIndex> {
        schema::register_analyzers(&index);
        let threads = settings.writer_threads.max(1);
        let tantivy = index.writer_with_num_threads(
            threads,
            settings.writer_memory_bytes.max(threads * (15 << 20)),
        )?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let shared = Arc::new(Shared {
            schema,
            fields,
            reader,
            facet_tables: Arc::default(),
            writer: Mutex::new(Writer {
                tantivy,
                pending: HashMap::new(),
                closed: false,
            }),
            closing: Condvar::new(),
        });
        let refresher = {
            let shared = Arc::clone(&shared);
            let interval = settings.refresh_interval.max(Duration::from_millis(1));
            std::thread::Builder::new()
                .name("search-refresh".into())
                .spawn(move || shared.refresh_until_closed(interval))?
        };
        Ok(ProductIndex {
            shared,
            refresher: Some(refresher),
        })
    }

    /// Adds products, or replaces those with the same id. All or nothing: a product the
    /// index cannot hold fails the call before anything is written.
    pub fn upsert(&self, products: &[IndexedProduct]) -> Result<()> {
        for product in products {
            schema::validate(product)?;
        }
        let mut writer = self.shared.writer()?;
        for product in products {
            self.shared.write(&mut writer, product)?;
        }
        Ok(())
    }

    /// Removes products by id; unknown ids are ignored.
    pub fn delete(&self, ids: &[&str]) -> Result<()> {
        let mut writer = self.shared.writer()?;
        for id in ids {
            writer
                .tantivy
                .delete_term(Term::from_field_text(self.shared.fields.id, id));
            writer.pending.insert((*id).to_owned(), None);
        }
        Ok(())
    }

    /// Marks the product with this SKU in or out of stock (the inventory calls it when
    /// availability crosses zero). `false` when no product sells under the SKU: none has
    /// it, or its product sells by variants, whose stock alone sets the flag (a variant's
    /// change re-reads the product whole).
    pub fn set_in_stock(&self, sku: &str, in_stock: bool) -> Result<bool> {
        let mut writer = self.shared.writer()?;
        let pending = writer
            .pending
            .values()
            .flatten()
            .find(|product| product.sku == sku)
            .cloned();
        let current = match pending {
            Some(product) => Some(product),
            None => self
                .shared
                .find_committed(&self.shared.reader.searcher(), self.shared.fields.sku, sku)?
                .filter(|product| !matches!(writer.pending.get(&product.id), Some(None))),
        };
        let Some(mut product) = current else {
            return Ok(false);
        };
        if !product.variants.is_empty() {
            return Ok(false);
        }
        if product.in_stock != in_stock {
            product.in_stock = in_stock;
            self.shared.write(&mut writer, &product)?;
        }
        Ok(true)
    }

    /// Makes every write so far searchable, now.
    pub fn commit(&self) -> Result<()> {
        let mut writer = self.shared.writer()?;
        self.shared.commit(&mut writer)
    }

    /// Products searchable now.
    pub fn count(&self) -> u64 {
        self.shared.reader.searcher().num_docs()
    }

    /// The searchable version of a product.
    pub fn product(&self, id: &str) -> Result<Option<IndexedProduct>> {
        self.shared
            .find_committed(&self.shared.reader.searcher(), self.shared.fields.id, id)
    }

    /// One page of a search, with its total and facets.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchHits> {
        self.shared.search(request)
    }

    /// Compares the searchable index with `products` (all the catalog has): the
    /// counts, and up to `sample` of them (spread evenly) field by field.
    pub fn check(&self, products: &[IndexedProduct], sample: usize) -> Result<CheckReport> {
        let searcher = self.shared.reader.searcher();
        let step = if sample == 0 {
            usize::MAX
        } else {
            products.len().div_ceil(sample).max(1)
        };
        let mut report = CheckReport {
            indexed: searcher.num_docs(),
            expected: products.len() as u64,
            sampled: 0,
            missing: Vec::new(),
            different: Vec::new(),
        };
        for product in products.iter().step_by(step).take(sample) {
            report.sampled += 1;
            match self
                .shared
                .find_committed(&searcher, self.shared.fields.id, &product.id)?
            {
                None => report.missing.push(product.id.clone()),
                Some(indexed) if &indexed != product => report.different.push(product.id.clone()),
                Some(_) => {}
            }
        }
        Ok(report)
    }

    /// Size of the committed index files, in bytes.
    pub fn size_on_disk(&self) -> Result<u64> {
        let searcher = self.shared.reader.searcher();
        Ok(searcher.space_usage()?.total().get_bytes())
    }
}

impl Drop for ProductIndex {
    /// Commits what is pending and stops the refresher.
    fn drop(&mut self) {
        if let Ok(mut writer) = self.shared.writer.lock() {
            if let Err(error) = self.shared.commit(&mut writer) {
                tracing::error!(error = %error, "search index commit on close failed");
            }
            writer.closed = true;
        }
        self.shared.closing.notify_all();
        if let Some(refresher) = self.refresher.take() {
            let _ = refresher.join();
        }
    }
}

impl Shared {
    fn writer(&self) -> Result<MutexGuard<'_, Writer>> {
        self.writer.lock().map_err(|_| {
            IndexError::Io(std::io::Error::other(
                "a writer of the search index panicked",
            ))
        })
    }

    fn write(&self, writer: &mut Writer, product: &IndexedProduct) -> Result<()> {
        writer
            .tantivy
            .delete_term(Term::from_field_text(self.fields.id, &product.id));
        writer
            .tantivy
            .add_document(schema::document(&self.fields, &self.schema, product))?;
        writer
            .pending
            .insert(product.id.clone(), Some(product.clone()));
        Ok(())
    }

    fn commit(&self, writer: &mut Writer) -> Result<()> {
        if writer.pending.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        writer.tantivy.commit()?;
        self.reader.reload()?;
        self.facet_tables.keep_only(&self.reader.searcher());
        tracing::debug!(
            products = writer.pending.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "search index committed"
        );
        writer.pending.clear();
        Ok(())
    }

    fn refresh_until_closed(&self, interval: Duration) {
        let Ok(mut writer) = self.writer.lock() else {
            return;
        };
        loop {
            writer = match self.closing.wait_timeout(writer, interval) {
                Ok((writer, _)) => writer,
                Err(_) => return,
            };
            if writer.closed {
                return;
            }
            if let Err(error) = self.commit(&mut writer) {
                tracing::error!(error = %error, "search index commit failed");
            }
        }
    }

    /// The stored product whose `field` (id or SKU) is `value`.
    fn find_committed(
        &self,
        searcher: &Searcher,
        field: tantivy::schema::Field,
        value: &str,
    ) -> Result<Option<IndexedProduct>> {
        let query = TermQuery::new(
            Term::from_field_text(field, value),
            IndexRecordOption::Basic,
        );
        let hits = searcher.search(&query, &TopDocs::with_limit(1))?;
        let Some((_, address)) = hits.first() else {
            return Ok(None);
        };
        self.stored(&searcher.doc(*address)?).map(Some)
    }

    /// The product a document stores.
    fn stored(&self, document: &TantivyDocument) -> Result<IndexedProduct> {
        let bytes = document
            .get_first(self.fields.stored)
            .and_then(|value| value.as_bytes())
            .unwrap_or_default();
        serde_json::from_slice(bytes)
            .map_err(|error| IndexError::Io(std::io::Error::other(error.to_string())))
    }

    fn search(&self, request: &SearchRequest) -> Result<SearchHits> {
        if request.limit > MAX_LIMIT {
            return Err(IndexError::InvalidQuery(format!(
                "limit must be at most {MAX_LIMIT}"
            )));
        }
        let words = request
            .text
            .as_deref()
            .map(query::query_words)
            .unwrap_or_default();
        let has_text = request
            .text
            .as_deref()
            .is_some_and(|text| !text.trim().is_empty());
        let sort = match request.sort {
            Some(Sort::Relevance) if !has_text => {
                return Err(IndexError::InvalidQuery(
                    "sort=relevance needs a search text".into(),
                ));
            }
            Some(sort) => sort,
            None if has_text => Sort::Relevance,
            None => Sort::Newest,
        };
        let after = request
            .cursor
            .as_deref()
            .map(|raw| cursor::decode(raw, sort))
            .transpose()?;
        // Text made only of symbols or dropped words matches nothing.
        if has_text && words.is_empty() {
            return Ok(SearchHits {
                ids: Vec::new(),
                products: Vec::new(),
                total: 0,
                facets: Facets::default(),
                next_cursor: None,
                sort,
            });
        }
        let query = query::build(request, &words, &self.fields, &self.schema)?;
        let currency = match &request.currency {
            Some(currency) => Some(schema::currency_range(currency).ok_or_else(|| {
                IndexError::InvalidQuery(format!(
                    "currency {currency:?} is not a three-letter code"
                ))
            })?),
            None => None,
        };
        let collector = collect::SearchCollector::new(
            page::Order::new(sort, currency),
            after,
            request.limit + 1,
            Arc::clone(&self.facet_tables),
        );
        let searcher = self.reader.searcher();
        let gathered = searcher.search(&query, &collector)?;
        let facets = gathered.facets();
        let mut entries = gathered.entries;
        let has_more = entries.len() > request.limit;
        entries.truncate(request.limit);
        let next_cursor = match (has_more, entries.last()) {
            (true, Some(last)) => Some(cursor::encode(&last.after(sort))),
            _ => None,
        };
        let ids: Vec<String> = entries
            .iter()
            .map(|entry| schema::id_from_value(entry.id))
            .collect();
        // Read straight from where the collector found them: no lookup by id.
        let products = entries
            .iter()
            .map(|entry| self.stored(&searcher.doc(entry.address)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(SearchHits {
            ids,
            products,
            total: gathered.total,
            facets,
            next_cursor,
            sort,
        })
    }
}
