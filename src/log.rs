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

use crate::error::{Result, ScimError};
use crate::service::layout::{check_layout, first_layout, LAYOUT_VERSION};
use crate::store::{decode_counter, Store};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Most entries in one snapshot chunk.
pub const CHUNK: usize = 1000;
/// A compaction runs when a slot number is a multiple of this.
pub const COMPACT_EVERY: i64 = 32;
/// Most obsolete keys one compaction deletes: twice what a compaction folds, so the
/// deletions keep up and a backlog drains.
const DELETE_PER_COMPACTION: usize = 2 * COMPACT_EVERY as usize;
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

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ChunkRef {
    k: String,
    lo: i64,
    hi: i64,
    n: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    /// Every slot up to here is folded into the chunks.
    w: i64,
    /// Written by earlier builds: events up to here may be deleted at once.
    #[serde(default, skip_serializing_if = "is_zero")]
    pw: i64,
    /// Events up to here are deleted.
    del: i64,
    chunks: Vec<ChunkRef>,
    /// Written by earlier builds: chunks deleted at the next compaction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    garbage: Vec<String>,
    /// Snapshots written in the last [`ABANDON_MS`], oldest first: what they made
    /// obsolete is deleted only after that long (see [`Recent`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    recent: Vec<Recent>,
    /// When the collection last changed (ms).
    t: i64,
    /// The storage layout it was written under.
    #[serde(default = "first_layout")]
    v: u32,
}

/// A snapshot that superseded older ones. Requests that started before it may still
/// read the older snapshots (and the events and chunks they name), or be about to
/// write one back from a compaction in progress; no request lives for [`ABANDON_MS`],
/// so after that the events up to `w` and the chunks in `r` are deleted.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Recent {
    w: i64,
    t: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    r: Vec<String>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl Meta {
    /// The successor's retention: this snapshot's recent list with `made` appended,
    /// less what is old enough to delete, which is returned as keys.
    fn retire(&self, made: Recent, now: i64, log: &Log<'_>) -> (Vec<Recent>, i64, Vec<String>) {
        let mut chunks: Vec<String> = self.garbage.clone();
        let mut del_to = self.pw.max(self.del);
        let mut young: Vec<Recent> = Vec::new();
        let mut ripe_t = None;
        for r in self.recent.iter().cloned().chain(std::iter::once(made)) {
            if now.saturating_sub(r.t) >= ABANDON_MS {
                del_to = del_to.max(r.w);
                chunks.extend(r.r);
                ripe_t = Some(r.t);
                continue;
            }
            // Snapshots of one second share an entry, dated by the latest: deletion
            // waits at most a second longer, and the list stays a minute's seconds long.
            match young.last_mut() {
                Some(last) if last.t / 1000 == r.t / 1000 => {
                    last.w = last.w.max(r.w);
                    last.t = last.t.max(r.t);
                    last.r.extend(r.r);
                }
                _ => young.push(r),
            }
        }
        // A bounded share per compaction, the oldest first, so a backlog (a burst of
        // writes a minute ago) is paid off in steps rather than by one request.
        let take = chunks.len().min(DELETE_PER_COMPACTION);
        let rest = chunks.split_off(take);
        let budget = (DELETE_PER_COMPACTION - take) as i64;
        let del = del_to.min(self.del.saturating_add(budget));
        // What is left stays due, for the next compaction.
        if let Some(t) = ripe_t.filter(|_| !rest.is_empty() || del < del_to) {
            young.insert(
                0,
                Recent {
                    w: del_to,
                    t,
                    r: rest,
                },
            );
        }
        let mut keys: Vec<String> = chunks.iter().map(|k| log.chunk_name(k)).collect();
        keys.extend((self.del + 1..=del).map(|slot| log.event_key(slot)));
        (young, del, keys)
    }
}

impl Default for Meta {
    fn default() -> Self {
        Meta {
            w: 0,
            pw: 0,
            del: 0,
            chunks: Vec::new(),
            garbage: Vec::new(),
            recent: Vec::new(),
            t: 0,
            v: LAYOUT_VERSION,
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
pub struct Log<'s> {
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

/// A chunk that vanished under a reader (a compaction two generations on deleted it).
struct Vanished;

impl<'s> Log<'s> {
    /// The collection stored under `base`.
    pub fn new(store: &'s dyn Store, base: String) -> Self {
        Log {
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

    fn counter(&self) -> String {
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
        Ok(self.store.increment(&self.counter(), 1)?)
    }

    /// The highest slot allocated so far: it changes whenever the collection does.
    pub fn top(&self) -> Result<i64> {
        let key = self.counter();
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

    /// The keys a read of this collection asks for first, for callers that batch them
    /// with their own reads.
    pub fn head_keys(&self) -> [String; 2] {
        [self.meta_key(), self.counter()]
    }

    /// Writes an add event in a slot taken with [`Log::allocate`].
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

    /// The key and value of a remove event in `slot` (see [`Log::remove`]).
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
        let top = self.counter_value(&self.counter(), got.next().flatten())?;
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

    /// Replaces the snapshot with `entries`, the collection's truth read after its top
    /// slot was `top` (see [`Log::top`]). Events up to `top` are superseded; later ones
    /// still apply. Refused (false) when a compaction has meanwhile passed `top`.
    pub fn rebuild(&self, top: i64, mut entries: Vec<Entry>, now: i64) -> Result<bool> {
        self.store.forget(&[self.meta_key()]);
        let old = self.decode_meta(self.store.get(&self.meta_key())?)?;
        if top < old.w {
            return Ok(false);
        }
        entries.sort_by(|a, b| (a.slot, &a.id).cmp(&(b.slot, &b.id)));
        let mut written = Vec::new();
        let mut chunks = Vec::new();
        for (n, part) in entries.chunks(CHUNK).enumerate() {
            let k = format!("r{top}.{n}");
            written.push((self.chunk_name(&k), encode(&part)?));
            chunks.push(ChunkRef {
                k,
                lo: part.first().map_or(0, |e| e.slot),
                hi: part.last().map_or(0, |e| e.slot),
                n: part.len(),
            });
        }
        let made = Recent {
            w: top,
            t: now,
            r: old.chunks.iter().map(|c| c.k.clone()).collect(),
        };
        let (recent, del, obsolete) = old.retire(made, now, self);
        let meta = Meta {
            w: top,
            pw: 0,
            del,
            chunks,
            garbage: Vec::new(),
            recent,
            t: now,
            v: LAYOUT_VERSION,
        };
        self.store.set_many(&written)?;
        self.store.set(&self.meta_key(), &encode(&meta)?)?;
        if !obsolete.is_empty() {
            self.store.delete_many(&obsolete)?;
        }
        Ok(true)
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

    /// Reads, in one batch, the chunks a page of `[start, end)` touches and the records
    /// the verifier will read for the tail's adds.
    fn prefetch(&self, st: &State, counts: &[usize], start: usize, end: usize) -> Result<()> {
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

    /// Reads, in one batch, the chunks a compaction may rewrite (the last, which takes
    /// the new adds, and those the tail removes from) and the verifier's records.
    fn prefetch_compaction(&self, st: &State) -> Result<()> {
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

    fn prefetch_with_records(&self, st: &State, mut keys: Vec<String>) -> Result<()> {
        if let Some(prefix) = &self.records {
            for (_, t) in &st.tail {
                if let Tail::Event(Event::Add { i, .. }) = t {
                    keys.push(format!("{prefix}{i}"));
                }
            }
        }
        if keys.len() > 1 {
            self.store.get_many(&keys)?;
        }
        Ok(())
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
        self.prefetch(st, &raw_counts, start, start.saturating_add(count))?;
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

    /// Folds the tail into the snapshot if it has grown. Safe to run concurrently with
    /// readers, writers and other compactions.
    pub fn compact(&self, now: i64, verify: &Verify<'_>) -> Result<()> {
        let st = self.state()?;
        self.prefetch_compaction(&st)?;
        let overlay = Overlay::build(&st, now, verify)?;
        if overlay.watermark <= st.meta.w {
            return Ok(());
        }
        let mut chunks = st.meta.chunks.clone();
        let mut replaced = Vec::new();
        let mut touched: BTreeMap<usize, Vec<Entry>> = BTreeMap::new();
        let removal_chunks: HashSet<usize> = overlay.removal_chunks(&st.meta);
        let last = chunks.len().checked_sub(1);
        for i in removal_chunks
            .iter()
            .copied()
            .chain(last.filter(|_| !overlay.folded_adds.is_empty()))
        {
            if touched.contains_key(&i) {
                continue;
            }
            let Some(c) = chunks.get(i) else { continue };
            let Ok(loaded) = self.load_chunk(c)? else {
                return Ok(());
            };
            let kept: Vec<Entry> = loaded
                .into_iter()
                .filter(|e| !overlay.is_folded_removed(e))
                .map(|e| overlay.with_display(e))
                .collect();
            touched.insert(i, kept);
        }
        let mut appended = overlay.folded_adds.clone();
        let tail_chunk = match last {
            Some(i) if !appended.is_empty() => {
                let mut base = touched.remove(&i).unwrap_or_default();
                base.append(&mut appended);
                Some((i, base))
            }
            _ => {
                if appended.is_empty() {
                    None
                } else {
                    Some((chunks.len(), std::mem::take(&mut appended)))
                }
            }
        };
        let gen = overlay.watermark;
        let mut next_name = 0usize;
        let mut written: Vec<(String, Vec<u8>)> = Vec::new();
        let mut write = |entries: &[Entry]| -> Result<ChunkRef> {
            // Named by both watermarks: compactions from different snapshots never
            // overwrite one another's chunks.
            let k = format!("{}-{gen}.{next_name}", st.meta.w);
            next_name += 1;
            written.push((self.chunk_name(&k), encode(&entries)?));
            Ok(ChunkRef {
                k,
                lo: entries.first().map_or(0, |e| e.slot),
                hi: entries.last().map_or(0, |e| e.slot),
                n: entries.len(),
            })
        };
        let mut new_chunks: Vec<Option<Vec<ChunkRef>>> = vec![None; chunks.len()];
        for (i, entries) in touched {
            let refs = if entries.is_empty() {
                Vec::new()
            } else {
                vec![write(&entries)?]
            };
            if let (Some(slot), Some(old)) = (new_chunks.get_mut(i), chunks.get(i)) {
                replaced.push(old.k.clone());
                *slot = Some(refs);
            }
        }
        if let Some((i, entries)) = tail_chunk {
            let mut refs = Vec::new();
            for part in entries.chunks(CHUNK) {
                refs.push(write(part)?);
            }
            match (new_chunks.get_mut(i), chunks.get(i)) {
                (Some(slot), Some(old)) => {
                    replaced.push(old.k.clone());
                    *slot = Some(refs);
                }
                _ => {
                    chunks.push(ChunkRef::default());
                    new_chunks.push(Some(refs));
                }
            }
        }
        let mut merged = Vec::with_capacity(chunks.len());
        for (old, new) in chunks.into_iter().zip(new_chunks) {
            match new {
                Some(refs) => merged.extend(refs),
                None => merged.push(old),
            }
        }
        let made = Recent {
            w: overlay.watermark,
            t: now,
            r: replaced,
        };
        let (recent, del, obsolete) = st.meta.retire(made, now, self);
        let meta = Meta {
            w: overlay.watermark,
            pw: 0,
            del,
            chunks: merged,
            garbage: Vec::new(),
            recent,
            t: st.meta.t.max(overlay.changed),
            v: LAYOUT_VERSION,
        };
        // Chunks before the snapshot that names them; what it makes obsolete only
        // after it, and only once no request can still be using it.
        self.store.set_many(&written)?;
        self.store.set(&self.meta_key(), &encode(&meta)?)?;
        if !obsolete.is_empty() {
            self.store.delete_many(&obsolete)?;
        }
        Ok(())
    }
}

/// The tail folded into what it changes about the snapshot.
struct Overlay {
    /// Live adds not yet in the snapshot, in slot order.
    adds: Vec<Entry>,
    /// Removals of snapshot entries: by (id, slot) and by id alone.
    removed_at: HashSet<(String, i64)>,
    removed_any: HashSet<String>,
    /// Display updates for ids already present.
    displays: HashMap<String, String>,
    /// The highest slot up to which the tail is settled (no pending or missing slot).
    watermark: i64,
    /// Adds and removals up to the watermark, for compaction.
    folded_adds: Vec<Entry>,
    folded_removed_at: HashSet<(String, i64)>,
    folded_removed_any: HashSet<String>,
    changed: i64,
}

impl Overlay {
    fn build(st: &State, now: i64, verify: &Verify<'_>) -> Result<Self> {
        let mut ov = Overlay {
            adds: Vec::new(),
            removed_at: HashSet::new(),
            removed_any: HashSet::new(),
            displays: HashMap::new(),
            watermark: st.meta.w,
            folded_adds: Vec::new(),
            folded_removed_at: HashSet::new(),
            folded_removed_any: HashSet::new(),
            changed: 0,
        };
        // A later slot written long ago proves an empty slot before it was taken long ago
        // (slots are handed out in order), so its writer is gone.
        let mut oldest_after: Vec<i64> = vec![i64::MAX; st.tail.len()];
        let mut oldest = i64::MAX;
        for (idx, (_, t)) in st.tail.iter().enumerate().rev() {
            if let Some(slot) = oldest_after.get_mut(idx) {
                *slot = oldest;
            }
            if let Tail::Event(e) = t {
                oldest = oldest.min(e.time());
            }
        }
        let mut settled = true;
        for (idx, (slot, t)) in st.tail.iter().enumerate() {
            let slot = *slot;
            match t {
                Tail::Missing => {
                    let later = oldest_after.get(idx).copied().unwrap_or(i64::MAX);
                    if later == i64::MAX || now.saturating_sub(later) < ABANDON_MS {
                        settled = false;
                    }
                }
                Tail::Event(Event::Add { i, d, t }) => {
                    ov.changed = ov.changed.max(*t);
                    let entry = Entry {
                        id: i.clone(),
                        slot,
                        display: d.clone(),
                    };
                    match verify(&entry, *t)? {
                        Verdict::Pending => settled = false,
                        Verdict::Stale => {}
                        Verdict::Live => {
                            if ov.adds.iter().any(|a| a.id == *i) {
                                if let Some(d) = d {
                                    ov.displays.insert(i.clone(), d.clone());
                                }
                            } else {
                                ov.adds.push(entry.clone());
                                if settled {
                                    ov.folded_adds.push(entry);
                                }
                            }
                        }
                    }
                }
                Tail::Event(Event::Remove { i, at, t }) => {
                    ov.changed = ov.changed.max(*t);
                    let before = ov.adds.len();
                    ov.adds
                        .retain(|a| !(a.id == *i && at.is_none_or(|s| s == a.slot)));
                    if ov.adds.len() != before {
                        // A remove that stays in the tail (past a pending slot) still
                        // applies after compaction: the add it undoes is folded.
                        if settled {
                            ov.folded_adds
                                .retain(|a| !(a.id == *i && at.is_none_or(|s| s == a.slot)));
                        }
                    } else {
                        match at {
                            Some(s) => {
                                ov.removed_at.insert((i.clone(), *s));
                                if settled {
                                    ov.folded_removed_at.insert((i.clone(), *s));
                                }
                            }
                            None => {
                                ov.removed_any.insert(i.clone());
                                if settled {
                                    ov.folded_removed_any.insert(i.clone());
                                }
                            }
                        }
                    }
                }
            }
            if settled {
                ov.watermark = slot;
            }
        }
        Ok(ov)
    }

    fn is_removed(&self, e: &Entry) -> bool {
        self.removed_any.contains(&e.id) || self.removed_at.contains(&(e.id.clone(), e.slot))
    }

    fn is_folded_removed(&self, e: &Entry) -> bool {
        self.folded_removed_any.contains(&e.id)
            || self.folded_removed_at.contains(&(e.id.clone(), e.slot))
    }

    fn with_display(&self, mut e: Entry) -> Entry {
        if let Some(d) = self.displays.get(&e.id) {
            e.display = Some(d.clone());
        }
        e
    }

    /// How many snapshot entries of chunk `i` the tail removes. Removals by slot are
    /// placed by the chunk's slot range; removals by id alone (member sets, which are
    /// always read whole) are counted where the id is found when the chunk is read, so
    /// here they count against no chunk and the total is corrected by the full read.
    fn removed_in(&self, i: usize, meta: &Meta) -> usize {
        let Some(c) = meta.chunks.get(i) else {
            return 0;
        };
        self.removed_at
            .iter()
            .filter(|(_, s)| *s >= c.lo && *s <= c.hi)
            .count()
    }

    /// Each chunk's entries once the tail's removals are taken out.
    fn chunk_counts(&self, meta: &Meta) -> Vec<usize> {
        (0..meta.chunks.len())
            .map(|i| {
                let n = meta.chunks.get(i).map_or(0, |c| c.n);
                n.saturating_sub(self.removed_in(i, meta))
            })
            .collect()
    }

    fn removal_chunks(&self, meta: &Meta) -> HashSet<usize> {
        let mut out = HashSet::new();
        for (i, c) in meta.chunks.iter().enumerate() {
            if !self.folded_removed_any.is_empty()
                || self
                    .folded_removed_at
                    .iter()
                    .any(|(_, s)| *s >= c.lo && *s <= c.hi)
            {
                out.insert(i);
            }
        }
        out
    }
}
