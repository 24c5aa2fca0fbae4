//! Shared collections (an organization's users and groups, a group's members, a user's
//! groups) as append-only logs over a plain key-value store.
//!
//! Each writer takes its own slot with the atomic `increment` and writes one event there,
//! so concurrent writers never overwrite each other. Readers fold the events after the
//! snapshot's watermark on top of the snapshot, which is split into chunks of at most
//! [`CHUNK`] entries so a page costs O(page). Every [`COMPACT_EVERY`] slots the writer of
//! that slot folds the tail into the chunks it touches and writes a new snapshot. Old
//! snapshots stay correct: what a snapshot makes obsolete (events it folded, chunks it
//! replaced) is deleted only [`ABANDON_MS`] after it was written, longer than any request
//! lives, so no reader or compaction still working from an older snapshot loses it.
//!
//! Where the host has no atomic increment (the edge), a counter is read and written
//! back, two writers can take one slot, and one event overwrites the other: the log
//! stays safe to read (it never shows what was not added, nor an id twice) but can
//! miss a change until repair (`crate::service`'s `_repair`) rebuilds it from the
//! resources' own keys.

mod overlay;
mod snapshot;

use crate::error::{Result, ScimError};
use crate::store::check_layout;
use crate::store::{decode_counter, Store};
use overlay::Overlay;
use serde::{Deserialize, Serialize};
use snapshot::{ChunkRef, Meta};
use std::collections::HashSet;

/// Most entries in one snapshot chunk.
pub const CHUNK: usize = 1000;
/// A compaction runs when a slot number is a multiple of this.
pub const COMPACT_EVERY: i64 = 32;
/// An allocated slot still empty this long after later slots were written belongs to a
/// writer that died; it is skipped.
pub const ABANDON_MS: i64 = 60_000;

/// One member of a collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The member's id.
    #[serde(rename = "i")]
    pub id: String,
    /// The slot of the event that added it.
    #[serde(rename = "s")]
    pub slot: i64,
    /// A display value recorded with it.
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "a")]
enum Event {
    #[serde(rename = "+")]
    Add {
        i: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        d: Option<String>,
        t: i64,
    },
    #[serde(rename = "-")]
    Remove {
        i: String,
        /// The slot of the add this removes; `None` removes the id whatever its slot.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<i64>,
        t: i64,
    },
}

impl Event {
    fn time(&self) -> i64 {
        match self {
            Event::Add { t, .. } | Event::Remove { t, .. } => *t,
        }
    }
}

/// What the owner of a collection says about an added entry seen in the tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The entry is real.
    Live,
    /// The entry lost a race or its resource is gone: drop it.
    Stale,
    /// Its resource is still being written: hide it and keep it in the tail.
    Pending,
}

/// A page of a collection.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Entries in the whole collection.
    pub total: usize,
    /// The requested entries, in slot order.
    pub entries: Vec<Entry>,
    /// The highest slot allocated when read (changes whenever the collection does).
    pub version: i64,
    /// When the collection last changed (ms), as far as the snapshot and tail show.
    pub changed: i64,
}

/// Judges an add seen in the tail, given the time it was written (ms).
pub type Verify<'v> = dyn Fn(&Entry, i64) -> Result<Verdict> + 'v;

/// A verifier for collections whose adds need no check.
pub fn always_live(_: &Entry, _: i64) -> Result<Verdict> {
    Ok(Verdict::Live)
}

/// A handle on one collection.
pub struct Collection<'s> {
    store: &'s dyn Store,
    base: String,
    records: Option<String>,
}

enum Tail {
    Event(Event),
    Missing,
}

struct State {
    meta: Meta,
    top: i64,
    tail: Vec<(i64, Tail)>,
}

fn decode<T: for<'de> Deserialize<'de>>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| ScimError::internal(format!("corrupt record {key}: {e}")))
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| ScimError::internal(format!("encode: {e}")))
}

/// A chunk that vanished under a reader (read from a snapshot that was replaced and is
/// more than a minute old).
struct Vanished;

impl<'s> Collection<'s> {
    /// The collection stored under `base`.
    pub fn new(store: &'s dyn Store, base: String) -> Self {
        Collection {
            store,
            base,
            records: None,
        }
    }

    /// Says that the verifier reads `{prefix}{id}` for each add in the tail, so those
    /// reads are batched with the snapshot's chunks.
    pub fn verified_from(mut self, prefix: String) -> Self {
        self.records = Some(prefix);
        self
    }

    /// The key of the slot counter, for callers that read it ahead (without atomics a
    /// slot is taken by reading it and writing it back).
    pub fn counter_key(&self) -> String {
        format!("{}/n", self.base)
    }
    fn event_key(&self, slot: i64) -> String {
        format!("{}/e/{slot}", self.base)
    }
    fn meta_key(&self) -> String {
        format!("{}/s", self.base)
    }

    /// Takes the next slot. Callers that must record the slot elsewhere before the event
    /// is written (a user document's listing slot) take it first.
    pub fn allocate(&self) -> Result<i64> {
        Ok(self.store.increment(&self.counter_key(), 1)?)
    }

    /// The highest slot allocated so far: it changes whenever the collection does.
    pub fn top(&self) -> Result<i64> {
        let key = self.counter_key();
        let bytes = self.store.get(&key)?;
        self.counter_value(&key, bytes)
    }

    /// The counter's value from its stored bytes; a host that encodes counters some other
    /// way is asked through `increment`.
    fn counter_value(&self, key: &str, bytes: Option<Vec<u8>>) -> Result<i64> {
        match bytes {
            None => Ok(0),
            Some(b) => match decode_counter(&b) {
                Some(n) => Ok(n),
                None => Ok(self.store.increment(key, 0)?),
            },
        }
    }

    /// The keys a read of this collection asks for first: the snapshot and the counter.
    fn head_keys(&self) -> [String; 2] {
        [self.meta_key(), self.counter_key()]
    }

    /// Writes an add event in a slot taken with [`Collection::allocate`].
    pub fn write_add(&self, slot: i64, id: &str, display: Option<&str>, now: i64) -> Result<()> {
        let (key, value) = self.add_event(slot, id, display, now)?;
        self.store.set(&key, &value)?;
        Ok(())
    }

    /// The key and value of an add event in `slot`, for callers that write it in one
    /// batch with their own keys.
    pub fn add_event(
        &self,
        slot: i64,
        id: &str,
        display: Option<&str>,
        now: i64,
    ) -> Result<(String, Vec<u8>)> {
        let ev = Event::Add {
            i: id.to_string(),
            d: display.map(str::to_string),
            t: now,
        };
        Ok((self.event_key(slot), encode(&ev)?))
    }

    /// The key and value of a remove event in `slot` (see [`Collection::remove`]).
    pub fn remove_event(
        &self,
        slot: i64,
        id: &str,
        at: Option<i64>,
        now: i64,
    ) -> Result<(String, Vec<u8>)> {
        let ev = Event::Remove {
            i: id.to_string(),
            at,
            t: now,
        };
        Ok((self.event_key(slot), encode(&ev)?))
    }

    /// The keys a read of the whole collection asks for first, and speculatively its
    /// first `events` slots: a small collection never compacted is read in one batch.
    pub fn read_ahead(&self, events: i64) -> Vec<String> {
        let mut keys: Vec<String> = self.head_keys().into();
        keys.extend((1..=events).map(|s| self.event_key(s)));
        keys
    }

    /// Appends an add event; returns its slot.
    pub fn add(&self, id: &str, display: Option<&str>, now: i64) -> Result<i64> {
        let slot = self.allocate()?;
        self.write_add(slot, id, display, now)?;
        Ok(slot)
    }

    /// Appends a remove event. `at` names the add it undoes; `None` removes the id.
    pub fn remove(&self, id: &str, at: Option<i64>, now: i64) -> Result<i64> {
        let slot = self.allocate()?;
        let (key, value) = self.remove_event(slot, id, at, now)?;
        self.store.set(&key, &value)?;
        Ok(slot)
    }

    /// Whether `slot` is due to compact the log.
    pub fn due(slot: i64) -> bool {
        slot % COMPACT_EVERY == 0
    }

    /// The snapshot's head and the tail after it: two round trips.
    fn state(&self) -> Result<State> {
        let head = self.head_keys();
        let mut got = self.store.get_many(&head)?.into_iter();
        let meta = self.decode_meta(got.next().flatten())?;
        let top = self.counter_value(&self.counter_key(), got.next().flatten())?;
        let keys: Vec<String> = (meta.w + 1..=top).map(|s| self.event_key(s)).collect();
        let values = if keys.is_empty() {
            Vec::new()
        } else {
            self.store.get_many(&keys)?
        };
        let mut tail = Vec::with_capacity(keys.len());
        for ((slot, key), value) in (meta.w + 1..=top).zip(&keys).zip(values) {
            tail.push(match value {
                Some(b) => (slot, Tail::Event(decode(key, &b)?)),
                None => (slot, Tail::Missing),
            });
        }
        Ok(State { meta, top, tail })
    }

    fn decode_meta(&self, bytes: Option<Vec<u8>>) -> Result<Meta> {
        let Some(b) = bytes else {
            return Ok(Meta::default());
        };
        let meta: Meta = decode(&self.meta_key(), &b)?;
        check_layout(&self.meta_key(), meta.v)?;
        Ok(meta)
    }

    fn chunk_key(&self, c: &ChunkRef) -> String {
        self.chunk_name(&c.k)
    }

    fn chunk_name(&self, k: &str) -> String {
        format!("{}/c/{k}", self.base)
    }

    fn load_chunk(&self, c: &ChunkRef) -> Result<std::result::Result<Vec<Entry>, Vanished>> {
        let key = self.chunk_key(c);
        Ok(match self.store.get(&key)? {
            Some(b) => Ok(decode(&key, &b)?),
            None => Err(Vanished),
        })
    }

    /// Asks the store to read ahead, in one batch (a request's cache does; a plain store
    /// reads nothing), the chunks a page of `[start, end)` touches and the records the
    /// verifier will read for the tail's adds.
    fn prefetch(&self, st: &State, counts: &[usize], start: usize, end: usize) {
        let mut keys = Vec::new();
        let mut pos = 0usize;
        for (c, n) in st.meta.chunks.iter().zip(counts) {
            if pos >= end {
                break;
            }
            if pos + n > start && *n > 0 {
                keys.push(self.chunk_key(c));
            }
            pos += n;
        }
        self.prefetch_with_records(st, keys)
    }

    /// Asks the store to read ahead, in one batch, the chunks a compaction may rewrite
    /// (the last, which takes the new adds, and those the tail removes from) and the
    /// verifier's records.
    fn prefetch_compaction(&self, st: &State) {
        let removes: Vec<Option<i64>> = st
            .tail
            .iter()
            .filter_map(|(_, t)| match t {
                Tail::Event(Event::Remove { at, .. }) => Some(*at),
                _ => None,
            })
            .collect();
        let last = st.meta.chunks.len().saturating_sub(1);
        let keys = st
            .meta
            .chunks
            .iter()
            .enumerate()
            .filter(|(i, c)| {
                *i == last
                    || removes
                        .iter()
                        .any(|at| at.is_none_or(|s| s >= c.lo && s <= c.hi))
            })
            .map(|(_, c)| self.chunk_key(c))
            .collect();
        self.prefetch_with_records(st, keys)
    }

    fn prefetch_with_records(&self, st: &State, mut keys: Vec<String>) {
        if let Some(prefix) = &self.records {
            for (_, t) in &st.tail {
                if let Tail::Event(Event::Add { i, .. }) = t {
                    keys.push(format!("{prefix}{i}"));
                }
            }
        }
        self.store.prefetch(&keys);
    }

    /// Reads entries `[start, start + count)` in slot order and the total.
    pub fn page(&self, start: usize, count: usize, now: i64, verify: &Verify<'_>) -> Result<Page> {
        for _ in 0..3 {
            let st = self.state()?;
            if let Ok(p) = self.page_of(&st, start, count, now, verify)? {
                return Ok(p);
            }
            // A compaction replaced the snapshot under this read: read it again.
            let mut stale: Vec<String> = self.head_keys().into();
            stale.extend(st.meta.chunks.iter().map(|c| self.chunk_key(c)));
            self.store.forget(&stale);
        }
        Err(ScimError::unavailable(format!(
            "{}: snapshot kept changing",
            self.base
        )))
    }

    /// Every entry.
    pub fn all(&self, now: i64, verify: &Verify<'_>) -> Result<Page> {
        self.page(0, usize::MAX, now, verify)
    }

    fn page_of(
        &self,
        st: &State,
        start: usize,
        count: usize,
        now: i64,
        verify: &Verify<'_>,
    ) -> Result<std::result::Result<Page, Vanished>> {
        // Which chunks a page touches depends on the tail's removals only, not on the
        // verdicts, so the chunks and the verifier's reads go in one batch.
        let unverified = Overlay::build(st, now, &always_live)?;
        let raw_counts = unverified.chunk_counts(&st.meta);
        self.prefetch(st, &raw_counts, start, start.saturating_add(count));
        let overlay = Overlay::build(st, now, verify)?;
        let chunk_counts = overlay.chunk_counts(&st.meta);
        let snap_total: usize = chunk_counts.iter().sum();
        let total = snap_total + overlay.adds.len();
        let end = start.saturating_add(count).min(total);
        let mut entries = Vec::new();
        let mut pos = 0usize;
        for (i, c) in st.meta.chunks.iter().enumerate() {
            let n = chunk_counts.get(i).copied().unwrap_or(0);
            if pos >= end {
                break;
            }
            if pos + n > start && n > 0 {
                let loaded = match self.load_chunk(c)? {
                    Ok(l) => l,
                    Err(v) => return Ok(Err(v)),
                };
                for e in loaded {
                    if overlay.is_removed(&e) {
                        continue;
                    }
                    if pos >= start && pos < end {
                        entries.push(overlay.with_display(e));
                    }
                    pos += 1;
                }
            } else {
                pos += n;
            }
        }
        for e in &overlay.adds {
            if pos >= end {
                break;
            }
            if pos >= start {
                entries.push(e.clone());
            }
            pos += 1;
        }
        // Removals by id alone are only used on collections read whole, where the
        // entries themselves are the count. A whole read also drops a second entry for
        // an id, which a lost remove leaves where the host has no atomics.
        let total = if start == 0 && count == usize::MAX {
            let mut seen = HashSet::new();
            entries.retain(|e| seen.insert(e.id.clone()));
            entries.len()
        } else {
            total
        };
        Ok(Ok(Page {
            total,
            entries,
            version: st.top,
            changed: st.meta.t.max(overlay.changed),
        }))
    }
}
