//! The tail of a log folded into what it changes about the snapshot: the adds it
//! brings, the removals, and how far it is settled.

use super::snapshot::Meta;
use super::{Entry, Event, State, Tail, Verdict, Verify, ABANDON_MS};
use crate::error::Result;
use std::collections::{HashMap, HashSet};

/// The tail folded into what it changes about the snapshot.
pub(super) struct Overlay {
    /// Live adds not yet in the snapshot, in slot order.
    pub(super) adds: Vec<Entry>,
    /// Removals of snapshot entries: by (id, slot) and by id alone.
    pub(super) removed_at: HashSet<(String, i64)>,
    pub(super) removed_any: HashSet<String>,
    /// Display updates for ids already present.
    pub(super) displays: HashMap<String, String>,
    /// The highest slot up to which the tail is settled (no pending or missing slot).
    pub(super) watermark: i64,
    /// Adds and removals up to the watermark, for compaction.
    pub(super) folded_adds: Vec<Entry>,
    pub(super) folded_removed_at: HashSet<(String, i64)>,
    pub(super) folded_removed_any: HashSet<String>,
    pub(super) changed: i64,
}

impl Overlay {
    pub(super) fn build(st: &State, now: i64, verify: &Verify<'_>) -> Result<Self> {
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

    pub(super) fn is_removed(&self, e: &Entry) -> bool {
        self.removed_any.contains(&e.id) || self.removed_at.contains(&(e.id.clone(), e.slot))
    }

    pub(super) fn is_folded_removed(&self, e: &Entry) -> bool {
        self.folded_removed_any.contains(&e.id)
            || self.folded_removed_at.contains(&(e.id.clone(), e.slot))
    }

    pub(super) fn with_display(&self, mut e: Entry) -> Entry {
        if let Some(d) = self.displays.get(&e.id) {
            e.display = Some(d.clone());
        }
        e
    }

    /// How many snapshot entries of chunk `i` the tail removes. Removals by slot are
    /// placed by the chunk's slot range; removals by id alone (member sets, which are
    /// always read whole) are counted where the id is found when the chunk is read, so
    /// here they count against no chunk and the total is corrected by the full read.
    pub(super) fn removed_in(&self, i: usize, meta: &Meta) -> usize {
        let Some(c) = meta.chunks.get(i) else {
            return 0;
        };
        self.removed_at
            .iter()
            .filter(|(_, s)| *s >= c.lo && *s <= c.hi)
            .count()
    }

    /// Each chunk's entries once the tail's removals are taken out.
    pub(super) fn chunk_counts(&self, meta: &Meta) -> Vec<usize> {
        (0..meta.chunks.len())
            .map(|i| {
                let n = meta.chunks.get(i).map_or(0, |c| c.n);
                n.saturating_sub(self.removed_in(i, meta))
            })
            .collect()
    }

    pub(super) fn removal_chunks(&self, meta: &Meta) -> HashSet<usize> {
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
