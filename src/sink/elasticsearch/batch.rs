//! A batch: one bulk request body plus what delivery needs to know about it.

use std::time::Instant;

use super::encode::Item;
use crate::delivery::FileKey;

#[derive(Debug, Default)]
pub struct Batch {
    /// Sealing order; delivery acknowledges by it.
    pub seq: u64,
    /// NDJSON: action and document lines of every item.
    pub body: Vec<u8>,
    pub items: Vec<Item>,
    /// Each touched file's boundary at sealing time (see `delivery`).
    pub ranges: Vec<(FileKey, u64)>,
    /// When the first item went in; the batch timeout counts from here.
    pub opened: Option<Instant>,
}

impl Batch {
    /// An empty batch whose body will not reallocate below `body_bytes`.
    pub fn with_capacity(body_bytes: usize) -> Batch {
        Batch {
            body: Vec::with_capacity(body_bytes),
            ..Batch::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.ranges.is_empty()
    }

    /// The bytes of item `i` (action and document).
    pub fn item_bytes(&self, i: usize) -> &[u8] {
        let it = self.items[i];
        &self.body[it.start as usize..it.end as usize]
    }

    /// The document line of item `i`.
    pub fn item_doc(&self, i: usize) -> &[u8] {
        let it = self.items[i];
        &self.body[it.doc as usize..it.end as usize]
    }
}
