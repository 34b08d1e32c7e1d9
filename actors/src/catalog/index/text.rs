//! The text part of a search as one tantivy query: per segment, every way each word
//! can match each field (exact stem, prefix, typo) is read from tantivy's own term
//! queries, and the per-document word scores are added up in flat arrays. This gives
//! the scores the module documentation describes with one pass over the postings,
//! instead of a tree of unions walked document by document.

use tantivy::query::{
    EnableScoring, Explanation, FuzzyTermQuery, Query, Scorer, TermQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{
    DocId, DocSet, Score, SegmentReader, TantivyError, Term, COLLECT_BLOCK_BUFFER_LEN, TERMINATED,
};

use super::query::{QueryWord, EXACT_QUALITY, FUZZY_QUALITY, PREFIX_QUALITY};
use super::schema::TextField;

/// Every word must match one of the fields; the score sums, over words and fields,
/// the field's weight times the quality of the word's best match in it.
#[derive(Debug, Clone)]
pub struct TextQuery {
    words: Vec<QueryWord>,
    fields: Vec<TextField>,
}

impl TextQuery {
    pub fn new(words: Vec<QueryWord>, fields: Vec<TextField>) -> TextQuery {
        TextQuery { words, fields }
    }
}

/// One way a word may match a field, with the score it earns there.
struct Way {
    matcher: Matcher,
    score: u16,
}

enum Matcher {
    /// A tantivy weight (exact term, typo automaton).
    Weight(Box<dyn Weight>),
    /// Every word of `field` that begins with `prefix`, read from the term dictionary
    /// (cheaper than building an automaton).
    Prefix { field: Field, prefix: String },
}

impl Matcher {
    fn for_each(
        &self,
        reader: &SegmentReader,
        visit: &mut dyn FnMut(&[DocId]),
    ) -> tantivy::Result<()> {
        let (field, prefix) = match self {
            Matcher::Weight(weight) => return weight.for_each_no_score(reader, visit),
            Matcher::Prefix { field, prefix } => (*field, prefix),
        };
        let inverted = reader.inverted_index(field)?;
        let mut terms = inverted
            .terms()
            .range()
            .ge(prefix.as_bytes())
            .into_stream()?;
        let mut buffer = [0; COLLECT_BLOCK_BUFFER_LEN];
        while terms.advance() {
            if !terms.key().starts_with(prefix.as_bytes()) {
                break;
            }
            let mut postings =
                inverted.read_postings_from_terminfo(terms.value(), IndexRecordOption::Basic)?;
            loop {
                let filled = postings.fill_buffer(&mut buffer);
                visit(&buffer[..filled]);
                if filled < COLLECT_BLOCK_BUFFER_LEN {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// Per word, per field: its ways, best first.
struct TextWeight {
    words: Vec<Vec<Vec<Way>>>,
}

impl Query for TextQuery {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        // Scores come from the match qualities, never from term statistics.
        let plain = EnableScoring::disabled_from_schema(enable_scoring.schema());
        let mut words = Vec::with_capacity(self.words.len());
        for word in &self.words {
            let mut fields = Vec::with_capacity(self.fields.len());
            for field in &self.fields {
                let score = |quality: f32| (quality * field.weight) as u16;
                let mut ways = vec![Way {
                    matcher: Matcher::Weight(
                        TermQuery::new(
                            Term::from_field_text(field.stemmed, &word.stemmed),
                            IndexRecordOption::Basic,
                        )
                        .weight(plain)?,
                    ),
                    score: score(EXACT_QUALITY),
                }];
                if word.prefix {
                    ways.push(Way {
                        matcher: Matcher::Prefix {
                            field: field.raw,
                            prefix: word.raw.clone(),
                        },
                        score: score(PREFIX_QUALITY),
                    });
                }
                if word.fuzzy {
                    ways.push(Way {
                        matcher: Matcher::Weight(
                            FuzzyTermQuery::new(
                                Term::from_field_text(field.raw, &word.raw),
                                1,
                                true,
                            )
                            .weight(plain)?,
                        ),
                        score: score(FUZZY_QUALITY),
                    });
                }
                fields.push(ways);
            }
            words.push(fields);
        }
        Ok(Box::new(TextWeight { words }))
    }
}

/// Per-document arrays of one segment's text scoring, kept per thread between searches
/// so that each search does not map and fault in fresh pages.
#[derive(Default)]
struct Scratch {
    total: Vec<u16>,
    words_matched: Vec<u8>,
    word_score: Vec<u16>,
    /// Which (word, field) pass last scored a document: a field counts once per word.
    scored_in: Vec<u32>,
}

impl Scratch {
    fn reset(&mut self, documents: usize) {
        for (array, zero) in [(&mut self.total, 0u16), (&mut self.word_score, 0)] {
            array.clear();
            array.resize(documents, zero);
        }
        self.words_matched.clear();
        self.words_matched.resize(documents, 0);
        self.scored_in.clear();
        self.scored_in.resize(documents, 0);
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

impl TextWeight {
    /// The matches of a segment, in doc order, with their scores.
    fn score_segment(
        &self,
        reader: &SegmentReader,
        scratch: &mut Scratch,
    ) -> tantivy::Result<TextScorer> {
        scratch.reset(reader.max_doc() as usize);
        let Scratch {
            total,
            words_matched,
            word_score,
            scored_in,
        } = scratch;
        let mut pass = 0u32;
        let mut touched: Vec<DocId> = Vec::new();
        for fields in &self.words {
            touched.clear();
            for ways in fields {
                pass += 1;
                for way in ways {
                    way.matcher.for_each(reader, &mut |docs| {
                        for &doc in docs {
                            let at = doc as usize;
                            if scored_in[at] == pass {
                                continue;
                            }
                            scored_in[at] = pass;
                            if word_score[at] == 0 {
                                touched.push(doc);
                            }
                            word_score[at] += way.score;
                        }
                    })?;
                }
            }
            for &doc in &touched {
                let at = doc as usize;
                words_matched[at] += 1;
                total[at] += word_score[at];
                word_score[at] = 0;
            }
            if touched.is_empty() {
                break;
            }
        }
        let words = self.words.len() as u8;
        let mut docs = Vec::new();
        let mut scores = Vec::new();
        for (doc, matched) in words_matched.iter().enumerate() {
            if *matched == words {
                docs.push(doc as DocId);
                scores.push(Score::from(total[doc]));
            }
        }
        Ok(TextScorer {
            docs,
            scores,
            position: 0,
        })
    }
}

impl Weight for TextWeight {
    fn scorer(&self, reader: &SegmentReader, _boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let scorer = SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => self.score_segment(reader, &mut scratch),
            Err(_) => self.score_segment(reader, &mut Scratch::default()),
        })?;
        Ok(Box::new(scorer))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(TantivyError::InvalidArgument(format!(
                "document {doc} does not match the text"
            )));
        }
        Ok(Explanation::new("text match", scorer.score()))
    }
}

/// The matches of a segment, in doc order, with their scores.
struct TextScorer {
    docs: Vec<DocId>,
    scores: Vec<Score>,
    position: usize,
}

impl DocSet for TextScorer {
    fn advance(&mut self) -> DocId {
        self.position += 1;
        self.doc()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        // Seeks are mostly short hops: look a few documents ahead before bisecting.
        for _ in 0..8 {
            if self.doc() >= target {
                return self.doc();
            }
            self.position += 1;
        }
        let rest = &self.docs[self.position.min(self.docs.len())..];
        self.position += rest.partition_point(|doc| *doc < target);
        self.doc()
    }

    fn doc(&self) -> DocId {
        self.docs.get(self.position).copied().unwrap_or(TERMINATED)
    }

    fn size_hint(&self) -> u32 {
        self.docs.len() as u32
    }
}

impl Scorer for TextScorer {
    fn score(&mut self) -> Score {
        self.scores.get(self.position).copied().unwrap_or(0.0)
    }
}
