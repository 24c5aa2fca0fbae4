//! The snapshot: its record (watermark, chunks, retention of what it made obsolete),
//! and the two ways a new one is written, compaction and rebuild.

use super::overlay::Overlay;
use super::{encode, Collection, Entry, Verify, ABANDON_MS, CHUNK, COMPACT_EVERY};
use crate::error::Result;
use crate::store::{first_layout, LAYOUT_VERSION};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// Most obsolete keys one compaction deletes: twice what a compaction folds, so the
/// deletions keep up and a backlog drains.
const DELETE_PER_COMPACTION: usize = 2 * COMPACT_EVERY as usize;

/// One chunk of a snapshot: its name, the slots of its first and last entries, and how
/// many entries it holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct ChunkRef {
    pub(super) k: String,
    pub(super) lo: i64,
    pub(super) hi: i64,
    pub(super) n: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Meta {
    /// Every slot up to here is folded into the chunks.
    pub(super) w: i64,
    /// Written by earlier builds: events up to here may be deleted at once.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(super) pw: i64,
    /// Events up to here are deleted.
    pub(super) del: i64,
    pub(super) chunks: Vec<ChunkRef>,
    /// Written by earlier builds: chunks deleted at the next compaction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) garbage: Vec<String>,
    /// Snapshots written in the last [`ABANDON_MS`], oldest first: what they made
    /// obsolete is deleted only after that long (see [`Recent`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) recent: Vec<Recent>,
    /// When the collection last changed (ms).
    pub(super) t: i64,
    /// The storage layout it was written under.
    #[serde(default = "first_layout")]
    pub(super) v: u32,
}

/// A snapshot that superseded older ones. Requests that started before it may still
/// read the older snapshots (and the events and chunks they name), or be about to
/// write one back from a compaction in progress; no request lives for [`ABANDON_MS`],
/// so after that the events up to `w` and the chunks in `r` are deleted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Recent {
    pub(super) w: i64,
    pub(super) t: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) r: Vec<String>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl Meta {
    /// The successor's retention: this snapshot's recent list with `made` appended,
    /// less what is old enough to delete, which is returned as keys.
    pub(super) fn retire(
        &self,
        made: Recent,
        now: i64,
        log: &Collection<'_>,
    ) -> (Vec<Recent>, i64, Vec<String>) {
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

impl Collection<'_> {
    /// Replaces the snapshot with `entries`, the collection's truth read after its top
    /// slot was `top` (see [`Collection::top`]). Events up to `top` are superseded; later ones
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
            chunks.push(self.chunk(format!("r{top}.{n}"), part, &mut written)?);
        }
        let made = Recent {
            w: top,
            t: now,
            r: old.chunks.iter().map(|c| c.k.clone()).collect(),
        };
        self.publish(&old, made, chunks, &written, now)?;
        Ok(true)
    }

    /// A new chunk holding `entries`, queued in `written`.
    fn chunk(
        &self,
        k: String,
        entries: &[Entry],
        written: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<ChunkRef> {
        written.push((self.chunk_name(&k), encode(&entries)?));
        Ok(ChunkRef {
            k,
            lo: entries.first().map_or(0, |e| e.slot),
            hi: entries.last().map_or(0, |e| e.slot),
            n: entries.len(),
        })
    }

    /// Writes the snapshot that succeeds `old` (`made` says its watermark, when, and the
    /// chunks it replaces): its new chunks first, then the record that names them, then
    /// what is now old enough to delete (see [`Meta::retire`]).
    fn publish(
        &self,
        old: &Meta,
        made: Recent,
        chunks: Vec<ChunkRef>,
        written: &[(String, Vec<u8>)],
        changed: i64,
    ) -> Result<()> {
        let (w, now) = (made.w, made.t);
        let (recent, del, obsolete) = old.retire(made, now, self);
        let meta = Meta {
            w,
            pw: 0,
            del,
            chunks,
            garbage: Vec::new(),
            recent,
            t: changed,
            v: LAYOUT_VERSION,
        };
        self.store.set_many(written)?;
        self.store.set(&self.meta_key(), &encode(&meta)?)?;
        if !obsolete.is_empty() {
            self.store.delete_many(&obsolete)?;
        }
        Ok(())
    }

    /// Folds the tail into the snapshot if it has grown. Safe to run concurrently with
    /// readers, writers and other compactions.
    pub fn compact(&self, now: i64, verify: &Verify<'_>) -> Result<()> {
        let st = self.state()?;
        self.prefetch_compaction(&st);
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
            self.chunk(k, entries, &mut written)
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
        let changed = st.meta.t.max(overlay.changed);
        self.publish(&st.meta, made, merged, &written, changed)
    }
}
