//! The first stage of a similar-photos search on the embedded index
//! ([`crate::similar`]): the documents whose sketches are nearest the asked-for one.
//!
//! A segment's sketches are read from their fast columns once and kept in memory
//! (128 bytes a document) while the segment lives; a search then scans them for the
//! documents its query matches.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::index::SegmentId;
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use super::fields::sketch_column;
use crate::similar::{sketch_dot, unpack, SKETCH, SKETCH_COLUMNS};

/// The sketches of the segments searched so far.
#[derive(Default)]
pub struct Sketches {
    segments: Mutex<HashMap<SegmentId, Arc<Vec<i8>>>>,
}

impl Sketches {
    /// A segment's sketches, document by document ([`SKETCH`] bytes each; zeros for
    /// a document without one).
    fn of(&self, reader: &SegmentReader) -> tantivy::Result<Arc<Vec<i8>>> {
        let id = reader.segment_id();
        if let Some(rows) = self.segments.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&id) {
            return Ok(Arc::clone(rows));
        }
        let columns = (0..SKETCH_COLUMNS)
            .map(|i| reader.fast_fields().i64(&sketch_column(i)))
            .collect::<tantivy::Result<Vec<_>>>()?;
        let docs = reader.max_doc() as usize;
        let mut rows = vec![0i8; docs * SKETCH];
        let mut words = [0i64; SKETCH_COLUMNS];
        for (doc, row) in rows.chunks_exact_mut(SKETCH).enumerate() {
            for (word, column) in words.iter_mut().zip(&columns) {
                *word = column.first(doc as DocId).unwrap_or(0);
            }
            unpack(&words, row);
        }
        let rows = Arc::new(rows);
        self.segments.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id, Arc::clone(&rows));
        Ok(rows)
    }

    /// Forgets the segments that are gone (merged or deleted).
    pub fn keep_only(&self, live: &[SegmentReader]) {
        let live: HashSet<SegmentId> = live.iter().map(SegmentReader::segment_id).collect();
        self.segments.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|id, _| live.contains(id));
    }
}

/// Collects the `want` documents whose sketches are nearest `query`'s.
pub struct Nearest {
    pub query: [i8; SKETCH],
    pub want: usize,
    pub sketches: Arc<Sketches>,
}

pub struct NearestSegment {
    segment: SegmentOrdinal,
    rows: Arc<Vec<i8>>,
    query: [i8; SKETCH],
    want: usize,
    /// The kept documents, the farthest on top.
    heap: BinaryHeap<Reverse<(i32, Reverse<DocId>)>>,
}

impl Collector for Nearest {
    type Fruit = Vec<(i32, DocAddress)>;
    type Child = NearestSegment;

    fn for_segment(&self, segment: SegmentOrdinal, reader: &SegmentReader) -> tantivy::Result<NearestSegment> {
        Ok(NearestSegment {
            segment,
            rows: self.sketches.of(reader)?,
            query: self.query,
            want: self.want,
            heap: BinaryHeap::with_capacity(self.want + 1),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Self::Fruit>) -> tantivy::Result<Self::Fruit> {
        let mut all: Vec<(i32, DocAddress)> = fruits.into_iter().flatten().collect();
        all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        all.truncate(self.want);
        Ok(all)
    }
}

impl SegmentCollector for NearestSegment {
    type Fruit = Vec<(i32, DocAddress)>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        let start = doc as usize * SKETCH;
        let Some(row) = self.rows.get(start..start + SKETCH) else { return };
        let entry = Reverse((sketch_dot(&self.query, row), Reverse(doc)));
        if self.heap.len() < self.want {
            self.heap.push(entry);
        } else if self.heap.peek().is_some_and(|farthest| entry < *farthest) {
            self.heap.pop();
            self.heap.push(entry);
        }
    }

    fn harvest(self) -> Self::Fruit {
        let segment = self.segment;
        self.heap.into_iter().map(|Reverse((dot, Reverse(doc)))| (dot, DocAddress::new(segment, doc))).collect()
    }
}
