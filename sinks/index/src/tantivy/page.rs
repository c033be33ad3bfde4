//! One page of hits in a total order: score (highest first), then key, then bucket,
//! starting after a [`Cursor`]. The same order as OpenSearch's
//! `sort: [_score, key, bucket]` with `search_after`, so both backends page alike.
//! Sorted by name every score is 0; sorted by date, `last_modified` (0 where a
//! document has none) comes between the score and the key.
//!
//! Per segment, the cursor's key and bucket are turned into positions in the
//! segment's sorted term dictionaries once; each document is then compared by its
//! score and term ordinals (integers), and only the best `want` per segment are
//! turned back into strings.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader, TantivyError};

use crate::index::{Cursor, Sort};

/// Collects the first `want` hits after `after`.
pub struct Page {
    pub after: Option<Cursor>,
    pub want: usize,
    pub sort: Sort,
}

/// A collected hit with its sort values.
#[derive(Debug, Clone)]
pub struct Ranked {
    pub score: Score,
    /// `last_modified` when sorted by date.
    pub modified: Option<i64>,
    pub key: String,
    pub bucket: String,
    pub address: DocAddress,
    /// The date as it sorts: see [`date_order`].
    date: i64,
}

impl Ranked {
    pub fn cursor(&self) -> Cursor {
        Cursor { score: self.score, modified: self.modified, key: self.key.clone(), bucket: self.bucket.clone() }
    }
}

/// A `last_modified` as it sorts ascending: newest first sorts its negation; other
/// orders do not look at the date (0).
fn date_order(sort: Sort, modified: i64) -> i64 {
    match sort {
        Sort::Newest | Sort::Taken => modified.checked_neg().unwrap_or(i64::MAX),
        Sort::Oldest => modified,
        Sort::Relevance | Sort::Name => 0,
    }
}

/// Where a string falls in a segment's dictionary: the ordinal of the first term at
/// or after it, and whether that term is the string itself.
#[derive(Debug, Clone, Copy)]
struct Position {
    ord: u64,
    exact: bool,
}

impl Position {
    fn of(column: &StrColumn, text: &str) -> tantivy::Result<Self> {
        let mut stream = column.dictionary().range().ge(text.as_bytes()).into_stream()?;
        if !stream.advance() {
            return Ok(Self { ord: u64::MAX, exact: false });
        }
        Ok(Self { ord: stream.term_ord(), exact: stream.key() == text.as_bytes() })
    }

    /// How a term with ordinal `ord` compares with the string this position is of.
    fn compare(self, ord: u64) -> Ordering {
        match ord.cmp(&self.ord) {
            Ordering::Equal if !self.exact => Ordering::Greater,
            other => other,
        }
    }
}

struct SegmentCursor {
    score: Score,
    date: i64,
    key: Position,
    bucket: Position,
}

/// A hit within one segment: ordinals stand in for the strings.
#[derive(Debug, Clone, Copy)]
struct Entry {
    score: Score,
    date: i64,
    key: u64,
    bucket: u64,
    doc: DocId,
}

impl Entry {
    /// Result order: earlier is `Less`.
    fn order(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.date.cmp(&other.date))
            .then(self.key.cmp(&other.key))
            .then(self.bucket.cmp(&other.bucket))
    }
}

// The heap keeps the worst kept entry on top.
impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.order(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.order(other)
    }
}

pub struct PageSegment {
    segment: SegmentOrdinal,
    key: StrColumn,
    bucket: StrColumn,
    /// `last_modified`, when sorted by date.
    modified: Option<Column<i64>>,
    sort: Sort,
    after: Option<SegmentCursor>,
    want: usize,
    heap: BinaryHeap<Entry>,
}

fn column(reader: &SegmentReader, name: &str) -> tantivy::Result<StrColumn> {
    reader.fast_fields().str(name)?.ok_or_else(|| {
        TantivyError::SchemaError(format!("the index has no fast field {name}; it was made by an older bucketlens"))
    })
}

fn first_ord(column: &StrColumn, doc: DocId) -> u64 {
    column.term_ords(doc).next().unwrap_or(0)
}

impl Collector for Page {
    type Fruit = Vec<Ranked>;
    type Child = PageSegment;

    fn for_segment(&self, segment: SegmentOrdinal, reader: &SegmentReader) -> tantivy::Result<PageSegment> {
        let key = column(reader, "key")?;
        let bucket = column(reader, "bucket")?;
        let modified = match self.sort {
            Sort::Newest | Sort::Oldest => Some(reader.fast_fields().i64("last_modified")?),
            Sort::Taken => Some(reader.fast_fields().i64("taken")?),
            Sort::Relevance | Sort::Name => None,
        };
        let after = match &self.after {
            Some(c) => Some(SegmentCursor {
                score: c.score,
                date: date_order(self.sort, c.modified.unwrap_or(0)),
                key: Position::of(&key, &c.key)?,
                bucket: Position::of(&bucket, &c.bucket)?,
            }),
            None => None,
        };
        Ok(PageSegment {
            segment,
            key,
            bucket,
            modified,
            sort: self.sort,
            after,
            want: self.want,
            heap: BinaryHeap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.sort == Sort::Relevance
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Ranked>>) -> tantivy::Result<Vec<Ranked>> {
        let mut all: Vec<Ranked> = fruits.into_iter().flatten().collect();
        all.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.date.cmp(&b.date))
                .then_with(|| a.key.cmp(&b.key))
                .then_with(|| a.bucket.cmp(&b.bucket))
        });
        all.truncate(self.want);
        Ok(all)
    }
}

impl PageSegment {
    fn is_after_cursor(&self, entry: &Entry) -> bool {
        let Some(c) = &self.after else { return true };
        match c.score.total_cmp(&entry.score).then(entry.date.cmp(&c.date)) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => match c.key.compare(entry.key) {
                Ordering::Greater => true,
                Ordering::Less => false,
                Ordering::Equal => c.bucket.compare(entry.bucket) == Ordering::Greater,
            },
        }
    }
}

impl SegmentCollector for PageSegment {
    type Fruit = Vec<Ranked>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if self.want == 0 {
            return;
        }
        // Sorted by name or date, the score plays no part.
        let score = if self.sort == Sort::Relevance { score } else { 0.0 };
        let modified = self.modified.as_ref().and_then(|c| c.first(doc)).unwrap_or(0);
        let entry = Entry {
            score,
            date: date_order(self.sort, modified),
            key: first_ord(&self.key, doc),
            bucket: first_ord(&self.bucket, doc),
            doc,
        };
        if !self.is_after_cursor(&entry) {
            return;
        }
        if self.heap.len() < self.want {
            self.heap.push(entry);
        } else if self.heap.peek().is_some_and(|worst| entry < *worst) {
            self.heap.pop();
            self.heap.push(entry);
        }
    }

    fn harvest(self) -> Vec<Ranked> {
        let mut out = Vec::with_capacity(self.heap.len());
        for entry in self.heap.into_vec() {
            let (mut key, mut bucket) = (String::new(), String::new());
            // A term ordinal read from the column is always in its dictionary.
            let _ = self.key.ord_to_str(entry.key, &mut key);
            let _ = self.bucket.ord_to_str(entry.bucket, &mut bucket);
            let modified = self.modified.as_ref().map(|c| c.first(entry.doc).unwrap_or(0));
            out.push(Ranked {
                score: entry.score,
                modified,
                key,
                bucket,
                address: DocAddress::new(self.segment, entry.doc),
                date: entry.date,
            });
        }
        out
    }
}
