//! Model-based tests of the shared-collection logs (`src/log.rs`). Writers run on their
//! own threads over a store wrapper that lets one store call through at a time, in the
//! order a generated schedule gives, so every interleaving is reproducible from the case.
//! What the log shows is compared with a model of what each writer did.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{RngSeed, TestCaseError};
use scim_edge::cache::Cached;
use scim_edge::collection::{always_live, Collection, Entry, Page, ABANDON_MS, COMPACT_EVERY};
use scim_edge::store::{decode_counter, MemStore, Store, StoreError};
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;

/// Every event is written at the same time, so no empty slot ever counts as abandoned.
const NOW: i64 = 1_000_000;
const BASE: &str = "org/L/gm/g";

// ---------------------------------------------------------------------------------------
// The baton: one store call at a time, in schedule order.

struct Turns {
    /// Participant indices; each store call consumes one entry.
    schedule: Vec<usize>,
    pos: usize,
    done: Vec<bool>,
    step: u64,
}

impl Turns {
    /// Who may make the next store call. Entries naming a finished participant are
    /// skipped (it will never call again); past the end, the lowest unfinished one runs.
    /// A participant that is between calls keeps the turn until it calls or finishes, so
    /// the order never depends on thread timing.
    fn holder(&mut self) -> Option<usize> {
        while let Some(&p) = self.schedule.get(self.pos) {
            if !self.done.get(p).copied().unwrap_or(true) {
                return Some(p);
            }
            self.pos += 1;
        }
        self.done.iter().position(|d| !d)
    }
}

struct Baton {
    turns: Mutex<Turns>,
    cv: Condvar,
}

impl Baton {
    fn new(schedule: Vec<usize>, participants: usize) -> Self {
        Baton {
            turns: Mutex::new(Turns {
                schedule,
                pos: 0,
                done: vec![false; participants],
                step: 0,
            }),
            cv: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Turns> {
        // A panicking participant must not wedge the others.
        self.turns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` as `me`'s next store call when its turn comes; returns the call's step.
    fn turn<T>(&self, me: usize, f: impl FnOnce() -> T) -> (u64, T) {
        let mut t = self.lock();
        while t.holder() != Some(me) {
            t = self.cv.wait(t).unwrap_or_else(|e| e.into_inner());
        }
        let out = f();
        t.step += 1;
        let step = t.step;
        if t.pos < t.schedule.len() {
            t.pos += 1;
        }
        drop(t);
        self.cv.notify_all();
        (step, out)
    }

    fn finish(&self, me: usize) {
        if let Some(d) = self.lock().done.get_mut(me) {
            *d = true;
        }
        self.cv.notify_all();
    }
}

/// Marks a participant finished however its thread ends.
struct Finish<'a>(&'a Baton, usize);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.finish(self.1);
    }
}

// ---------------------------------------------------------------------------------------
// The store wrapper.

/// One participant's view of the shared store: its calls wait for the baton (when there
/// is one), and with `atomic: false` an increment is a read then a write of the counter,
/// two scheduled steps, as on a host without an atomic increment.
struct Sched<'a> {
    inner: &'a MemStore,
    baton: Option<&'a Baton>,
    me: usize,
    atomic: bool,
    /// First and last step of the calls since the last `mark`.
    span: Cell<Option<(u64, u64)>>,
}

impl<'a> Sched<'a> {
    fn new(inner: &'a MemStore, baton: Option<&'a Baton>, me: usize, atomic: bool) -> Self {
        Sched {
            inner,
            baton,
            me,
            atomic,
            span: Cell::new(None),
        }
    }

    fn call<T>(&self, f: impl FnOnce() -> T) -> T {
        let Some(baton) = self.baton else {
            return f();
        };
        let (step, out) = baton.turn(self.me, f);
        let first = self.span.get().map_or(step, |(first, _)| first);
        self.span.set(Some((first, step)));
        out
    }

    fn mark(&self) {
        self.span.set(None);
    }

    /// The steps of the calls since `mark` (`(0, 0)` if none were made).
    fn span(&self) -> (u64, u64) {
        self.span.get().unwrap_or((0, 0))
    }

    fn read_counter(&self, key: &str) -> Result<i64, StoreError> {
        match self.call(|| self.inner.get(key))? {
            None => Ok(0),
            Some(b) => {
                decode_counter(&b).ok_or_else(|| StoreError(format!("{key} is not a counter")))
            }
        }
    }
}

impl Store for Sched<'_> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.call(|| self.inner.get(key))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.call(|| self.inner.set(key, value))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.call(|| self.inner.delete(key))
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.call(|| self.inner.exists(key))
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        if self.atomic {
            return self.call(|| self.inner.increment(key, delta));
        }
        // Written back as decimal text, as a host keeping counters as plain values would.
        let v = self.read_counter(key)? + delta;
        if delta != 0 {
            self.call(|| self.inner.set(key, v.to_string().as_bytes()))?;
        }
        Ok(v)
    }

    fn atomic(&self) -> bool {
        self.atomic
    }
}

// ---------------------------------------------------------------------------------------
// Cases.

/// One writer's step.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// Adds the writer's id number `id` if its model lacks it, else removes it by the
    /// add's slot (`by_slot`) or by id alone. Ids are per writer, so each is touched by one
    /// thread and the model's order for it is the writer's order.
    Touch {
        id: u8,
        by_slot: bool,
        display: bool,
    },
    /// An explicit compaction, besides the one every due slot's writer runs.
    Compact,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    All,
    Page { start: usize, count: usize },
}

/// How a case's removes name what they undo. A page's total and positions ignore
/// removals by id alone of snapshot entries, by design: such removals are for member
/// sets, always read whole, while paged listings remove by slot. So pages are checked
/// against `all` only in `BySlot` cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Removes {
    BySlot,
    ById,
    /// Each remove as its op says.
    Mixed,
}

#[derive(Debug, Clone)]
struct Case {
    removes: Removes,
    /// Each operation goes through its own request-scoped `Cached`, as the router does
    /// (which then emulates the increment itself where the store has no atomics).
    cached: bool,
    writers: Vec<Vec<Op>>,
    readers: Vec<Vec<Read>>,
    /// (participant, how many store calls in a row); writers come first, then readers.
    runs: Vec<(usize, usize)>,
    /// Pages read at the end, (start, count).
    pages: Vec<(usize, usize)>,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..3, any::<bool>(), any::<bool>()).prop_map(|(id, by_slot, display)| Op::Touch {
            id,
            by_slot,
            display
        }),
        1 => Just(Op::Compact),
    ]
}

fn read() -> impl Strategy<Value = Read> {
    prop_oneof![
        Just(Read::All),
        (0usize..30, 0usize..12).prop_map(|(start, count)| Read::Page { start, count }),
    ]
}

fn case(writers: std::ops::RangeInclusive<usize>, ops: usize) -> impl Strategy<Value = Case> {
    let removes = prop_oneof![
        2 => Just(Removes::BySlot),
        1 => Just(Removes::ById),
        1 => Just(Removes::Mixed),
    ];
    (writers, 1usize..=2, removes, any::<bool>()).prop_flat_map(move |(w, r, removes, cached)| {
        (
            Just((removes, cached)),
            vec(vec(op(), 1..=ops), w),
            vec(vec(read(), 1..=3), r),
            vec((0..w + r, 1usize..=12), 0..=150),
            vec((0usize..45, 0usize..15), 1..=4),
        )
            .prop_map(|((removes, cached), writers, readers, runs, pages)| Case {
                removes,
                cached,
                writers,
                readers,
                runs,
                pages,
            })
    })
}

fn config(cases: u32) -> ProptestConfig {
    let d = ProptestConfig::default();
    ProptestConfig {
        // PROPTEST_CASES still asks for a longer run.
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            d.cases
        } else {
            cases
        },
        // Shrinking reruns threaded cases; bounded so a failure still reports quickly.
        max_shrink_iters: 4000,
        failure_persistence: None,
        // Reproducible runs unless PROPTEST_RNG_SEED picks another seed.
        rng_seed: match d.rng_seed {
            RngSeed::Random => RngSeed::Fixed(0x5c1e_d6e0),
            s => s,
        },
        ..d
    }
}

// ---------------------------------------------------------------------------------------
// Running a case.

#[derive(Debug, Clone)]
enum Act {
    Add {
        display: Option<String>,
    },
    /// Removes the add at slot `of`.
    Remove {
        of: i64,
    },
}

/// A completed write: its event's slot and the steps of its allocate .. event write.
#[derive(Debug, Clone)]
struct Done {
    id: String,
    slot: i64,
    act: Act,
    span: (u64, u64),
}

#[derive(Debug)]
struct Seen {
    what: Read,
    span: (u64, u64),
    page: Result<Page, String>,
}

struct Outcome {
    /// Per writer, in its order.
    history: Vec<Vec<Done>>,
    seen: Vec<Seen>,
}

/// The store one operation (one request) sees.
fn view<'a>(st: &'a Sched<'a>, cache: &'a Cached<'a>, cached: bool) -> Collection<'a> {
    let store: &dyn Store = if cached { cache } else { st };
    Collection::new(store, BASE.to_string())
}

fn writer(st: &Sched<'_>, me: usize, ops: &[Op], case: &Case) -> Result<Vec<Done>, String> {
    let mut mine: HashMap<u8, i64> = HashMap::new();
    let mut done = Vec::new();
    for (n, op) in ops.iter().enumerate() {
        let cache = Cached::new(st);
        let log = view(st, &cache, case.cached);
        let (id, by_slot, display) = match *op {
            Op::Compact => {
                log.compact(NOW, &always_live)
                    .map_err(|e| format!("writer {me} compact: {e:?}"))?;
                continue;
            }
            Op::Touch {
                id,
                by_slot,
                display,
            } => (id, by_slot, display),
        };
        let name = format!("w{me}.{id}");
        st.mark();
        let (slot, act) = match mine.remove(&id) {
            None => {
                let d = display.then(|| format!("{name}#{n}"));
                let slot = log
                    .add(&name, d.as_deref(), NOW)
                    .map_err(|e| format!("writer {me} add: {e:?}"))?;
                mine.insert(id, slot);
                (slot, Act::Add { display: d })
            }
            Some(of) => {
                let by_slot = match case.removes {
                    Removes::BySlot => true,
                    Removes::ById => false,
                    Removes::Mixed => by_slot,
                };
                let slot = log
                    .remove(&name, by_slot.then_some(of), NOW)
                    .map_err(|e| format!("writer {me} remove: {e:?}"))?;
                (slot, Act::Remove { of })
            }
        };
        done.push(Done {
            id: name,
            slot,
            act,
            span: st.span(),
        });
        // What the service does after each write.
        if Collection::due(slot) {
            log.compact(NOW, &always_live)
                .map_err(|e| format!("writer {me} compact at {slot}: {e:?}"))?;
        }
    }
    Ok(done)
}

fn reader(st: &Sched<'_>, reads: &[Read], cached: bool) -> Vec<Seen> {
    reads
        .iter()
        .map(|&what| {
            let cache = Cached::new(st);
            let log = view(st, &cache, cached);
            st.mark();
            let page = match what {
                Read::All => log.all(NOW, &always_live),
                Read::Page { start, count } => log.page(start, count, NOW, &always_live),
            };
            Seen {
                what,
                span: st.span(),
                page: page.map_err(|e| format!("{e:?}")),
            }
        })
        .collect()
}

fn run(case: &Case, store: &MemStore, atomic: bool) -> Result<Outcome, String> {
    let schedule: Vec<usize> = case
        .runs
        .iter()
        .flat_map(|&(p, n)| std::iter::repeat_n(p, n))
        .collect();
    let w = case.writers.len();
    let baton = Baton::new(schedule, w + case.readers.len());
    thread::scope(|s| {
        let baton = &baton;
        let writers: Vec<_> = case
            .writers
            .iter()
            .enumerate()
            .map(|(me, ops)| {
                s.spawn(move || {
                    let _f = Finish(baton, me);
                    let st = Sched::new(store, Some(baton), me, atomic);
                    writer(&st, me, ops, case)
                })
            })
            .collect();
        let readers: Vec<_> = case
            .readers
            .iter()
            .enumerate()
            .map(|(r, reads)| {
                s.spawn(move || {
                    let _f = Finish(baton, w + r);
                    reader(
                        &Sched::new(store, Some(baton), w + r, atomic),
                        reads,
                        case.cached,
                    )
                })
            })
            .collect();
        let mut history = Vec::new();
        for h in writers {
            history.push(h.join().map_err(|_| "writer panicked".to_string())??);
        }
        let mut seen = Vec::new();
        for h in readers {
            seen.extend(h.join().map_err(|_| "reader panicked".to_string())?);
        }
        Ok(Outcome { history, seen })
    })
}

// ---------------------------------------------------------------------------------------
// The model and the checks.

/// The collection the writers' completed operations make, in slot order.
fn model(history: &[Vec<Done>]) -> Vec<Entry> {
    let mut live: BTreeMap<i64, Entry> = BTreeMap::new();
    for d in history.iter().flatten() {
        match &d.act {
            Act::Add { display } => {
                live.insert(
                    d.slot,
                    Entry {
                        id: d.id.clone(),
                        slot: d.slot,
                        display: display.clone(),
                    },
                );
            }
            Act::Remove { of } => {
                live.remove(of);
            }
        }
    }
    live.into_values().collect()
}

/// Safety of one page under any store: each entry was written by an add that had
/// started before the read ended (same id, slot and display), no id twice, slot order.
fn check_safe(s: &Seen, p: &Page, history: &[Vec<Done>]) -> Result<(), TestCaseError> {
    let mut ids = HashSet::new();
    for e in &p.entries {
        let added = history.iter().flatten().any(|d| {
            d.id == e.id
                && d.slot == e.slot
                && d.span.0 < s.span.1
                && matches!(&d.act, Act::Add { display } if *display == e.display)
        });
        prop_assert!(added, "{:?} shows {e:?}, never added: {p:?}", s.what);
        prop_assert!(
            ids.insert(&e.id),
            "{:?} shows {} twice: {p:?}",
            s.what,
            e.id
        );
    }
    prop_assert!(
        p.entries.windows(2).all(|w| w[0].slot < w[1].slot),
        "{:?} not in slot order: {p:?}",
        s.what
    );
    Ok(())
}

/// What a read made while writers ran may show with an atomic store: no entry whose
/// remove completed before the read started; and, for a whole read, each id in a state
/// its writer had between the read's start and end.
fn check_consistent(s: &Seen, p: &Page, history: &[Vec<Done>]) -> Result<(), TestCaseError> {
    for d in history.iter().flatten() {
        if let Act::Remove { of } = d.act {
            if d.span.1 < s.span.0 {
                prop_assert!(
                    !p.entries.iter().any(|e| e.id == d.id && e.slot == of),
                    "{:?} (steps {:?}) shows {}@{of}, removed at steps {:?}: {p:?}",
                    s.what,
                    s.span,
                    d.id,
                    d.span
                );
            }
        }
    }
    if s.what != Read::All {
        return Ok(());
    }
    let mut per_id: BTreeMap<&str, Vec<&Done>> = BTreeMap::new();
    for d in history.iter().flatten() {
        per_id.entry(&d.id).or_default().push(d);
    }
    for (id, ops) in per_id {
        // One writer per id: its operations are sequential, their spans increasing.
        let mut states = vec![None];
        for d in &ops {
            states.push(match &d.act {
                Act::Add { display } => Some((d.slot, display.clone())),
                Act::Remove { .. } => None,
            });
        }
        let finished = ops.iter().take_while(|d| d.span.1 < s.span.0).count();
        let started = ops.iter().take_while(|d| d.span.0 < s.span.1).count();
        let seen = p
            .entries
            .iter()
            .find(|e| e.id == id)
            .map(|e| (e.slot, e.display.clone()));
        let allowed = states.get(finished..=started).unwrap_or_default();
        prop_assert!(
            allowed.contains(&seen),
            "whole read at steps {:?} shows {id} as {seen:?}; allowed {allowed:?} of its \
             states {states:?} (operations {ops:?}): {p:?}",
            s.span
        );
    }
    Ok(())
}

/// After the writers finish, with an atomic store: `all` is the model, its total and
/// version agree, and (for collections that remove by slot) every page is its slice with
/// the same total; again after each of two compactions.
fn check_final(
    log: &Collection<'_>,
    want: &[Entry],
    slots: i64,
    case: &Case,
) -> Result<(), TestCaseError> {
    let n = want.len();
    let mut pages = Vec::new();
    if case.removes == Removes::BySlot {
        pages.extend(&case.pages);
        pages.extend([(0, 0), (0, n), (n, 3), (n.saturating_sub(1), 1)]);
    }
    for round in ["as left", "after a compaction", "after two compactions"] {
        let all = log
            .all(NOW, &always_live)
            .map_err(|e| TestCaseError::fail(format!("{round}: all: {e:?}")))?;
        prop_assert_eq!(&all.entries, &want.to_vec(), "{}: all()", round);
        prop_assert_eq!(all.total, n, "{}: all().total", round);
        prop_assert_eq!(all.version, slots, "{}: version", round);
        for &(start, count) in &pages {
            let p = log
                .page(start, count, NOW, &always_live)
                .map_err(|e| TestCaseError::fail(format!("{round}: page: {e:?}")))?;
            let slice = want
                .get(start.min(n)..start.saturating_add(count).min(n))
                .unwrap_or_default();
            prop_assert_eq!(
                &p.entries,
                &slice.to_vec(),
                "{}: page({}, {}) vs all() {:?}",
                round,
                start,
                count,
                want
            );
            prop_assert_eq!(
                p.total,
                n,
                "{}: page({}, {}).total vs all() {:?}",
                round,
                start,
                count,
                want
            );
        }
        log.compact(NOW, &always_live)
            .map_err(|e| TestCaseError::fail(format!("{round}: compact: {e:?}")))?;
    }
    Ok(())
}

fn outcome(case: &Case, store: &MemStore, atomic: bool) -> Result<Outcome, TestCaseError> {
    run(case, store, atomic).map_err(TestCaseError::fail)
}

/// Atomic increment: the log is exactly the model once writers finish, and reads made
/// while they ran are consistent with it.
fn atomic_case(case: &Case) -> Result<(), TestCaseError> {
    let store = MemStore::new();
    let out = outcome(case, &store, true)?;
    for s in &out.seen {
        // A read may give up when snapshots keep changing under it; that is
        // `unavailable`, not a wrong answer.
        if let Ok(p) = &s.page {
            check_safe(s, p, &out.history)?;
            check_consistent(s, p, &out.history)?;
        }
    }
    let slots = out.history.iter().map(Vec::len).sum::<usize>() as i64;
    let log = Collection::new(&store, BASE.to_string());
    check_final(&log, &model(&out.history), slots, case)
}

/// Non-atomic increment (read, then write): writers may share a slot and events may be
/// lost, but nothing shown was never added and no id shows twice; a lone writer is still
/// exact.
fn split_case(case: &Case) -> Result<(), TestCaseError> {
    let store = MemStore::new();
    let out = outcome(case, &store, false)?;
    for s in &out.seen {
        if let Ok(p) = &s.page {
            check_safe(s, p, &out.history)?;
        }
    }
    let direct = Sched::new(&store, None, 0, false);
    let log = Collection::new(&direct, BASE.to_string());
    let all = log
        .all(NOW, &always_live)
        .map_err(|e| TestCaseError::fail(format!("all: {e:?}")))?;
    let end = Seen {
        what: Read::All,
        span: (u64::MAX, u64::MAX),
        page: Ok(all.clone()),
    };
    check_safe(&end, &all, &out.history)?;
    if case.writers.len() == 1 {
        let slots = out.history.iter().map(Vec::len).sum::<usize>() as i64;
        check_final(&log, &model(&out.history), slots, case)?;
    }
    Ok(())
}

fn pass(r: Result<(), TestCaseError>) {
    if let Err(e) = r {
        panic!("{e}");
    }
}

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn concurrent_writers_match_the_model(case in case(2..=6, 16)) {
        atomic_case(&case)?;
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn split_increment_stays_safe(case in case(1..=4, 16)) {
        split_case(&case)?;
    }
}

/// Adds (or, when present, removes by slot) the writer's id number `id`.
const fn touch(id: u8) -> Op {
    Op::Touch {
        id,
        by_slot: true,
        display: false,
    }
}

fn by_hand(writers: Vec<Vec<Op>>, readers: Vec<Vec<Read>>, runs: Vec<(usize, usize)>) -> Case {
    Case {
        removes: Removes::BySlot,
        cached: false,
        writers,
        readers,
        runs,
        pages: vec![],
    }
}

// Store calls, for the schedules below: an add is increment + set (a split increment is
// get + set); a compaction is get meta, get counter, one get per tail slot, then (when it
// folds anything) set chunks, set meta, and deletes.

/// Found by the split-increment property: W0 adds `w0.0` (slot 1) and compacts it into
/// the snapshot; its remove and W1's add both read counter 1 and write slot 2, W1's add
/// last, so the remove is lost; W0's re-add (slot 3) must not show `w0.0` a second time.
#[test]
fn split_increment_lost_remove_then_readd() {
    pass(split_case(&by_hand(
        vec![
            vec![touch(0), Op::Compact, touch(0), touch(0)],
            vec![touch(0)],
        ],
        vec![vec![]],
        vec![(0, 3), (0, 5), (0, 1), (1, 1), (0, 2), (1, 2), (0, 3)],
    )));
}

/// Found by the atomic property: a reader that read the snapshot record (absent) before
/// three compactions and the tail after them. When compactions deleted the events they
/// folded two generations on, event 1 was gone, the reader took it for a slot still being
/// written and missed `w0.0`, added before the read began.
#[test]
fn reader_stalled_across_three_compactions() {
    pass(atomic_case(&by_hand(
        vec![vec![
            touch(0),
            Op::Compact,
            touch(1),
            Op::Compact,
            touch(2),
            Op::Compact,
        ]],
        vec![vec![Read::All]],
        vec![(0, 2), (1, 1), (0, 1000)],
    )));
}

/// Found by the atomic property: a compaction that read the log (slot 1) before three
/// others ran writes its snapshot (watermark 1) after them, over the newer one. Nothing
/// may be lost: the events after its watermark must still be there to read.
#[test]
fn compaction_stalled_across_three_compactions() {
    pass(atomic_case(&by_hand(
        vec![
            vec![touch(0), Op::Compact],
            vec![
                touch(0),
                Op::Compact,
                touch(1),
                Op::Compact,
                touch(2),
                Op::Compact,
            ],
        ],
        vec![],
        vec![(0, 5), (1, 1000)],
    )));
}

/// The same stall against availability: W0's compaction folds an add and its remove
/// (nothing for the chunks) from snapshot M1, stalls, and after two more compactions
/// writes a snapshot still naming M1's chunk, which must not have been deleted under it
/// (reads would find it vanished and give up for good).
#[test]
fn compaction_stalled_names_a_deleted_chunk() {
    pass(atomic_case(&by_hand(
        vec![
            vec![touch(0), touch(0), Op::Compact],
            vec![
                touch(0),
                Op::Compact,
                touch(1),
                Op::Compact,
                touch(2),
                Op::Compact,
            ],
        ],
        vec![],
        // W1: add, compact (M1); W0: add, remove, the compaction's reads; W1: the rest.
        vec![(1, 7), (0, 8), (1, 1000)],
    )));
}

// ---------------------------------------------------------------------------------------
// A writer that dies between taking its slot and writing it.

/// The snapshot's watermark, read from the stored snapshot record.
fn watermark(store: &MemStore) -> i64 {
    store
        .get(&format!("{BASE}/s"))
        .unwrap()
        .map(|b| serde_json::from_slice::<serde_json::Value>(&b).unwrap())
        .and_then(|m| m.get("w").and_then(serde_json::Value::as_i64))
        .unwrap_or(0)
}

#[test]
fn a_dead_writer_blocks_nothing_once_abandoned() {
    let t0 = NOW;
    let later = t0 + ABANDON_MS + 1;
    // Including the due slot itself: then nobody compacts there.
    for dead in [
        1,
        2,
        17,
        COMPACT_EVERY - 1,
        COMPACT_EVERY,
        COMPACT_EVERY + 1,
    ] {
        let store = MemStore::new();
        let log = Collection::new(&store, BASE.to_string());
        let mut want = Vec::new();
        let add = |now: i64, want: &mut Vec<Entry>| {
            let id = format!("u{}", want.len());
            let slot = log.add(&id, Some("d"), now).unwrap();
            want.push(Entry {
                id,
                slot,
                display: Some("d".into()),
            });
            if Collection::due(slot) {
                log.compact(now, &always_live).unwrap();
            }
            slot
        };
        while log.top().unwrap() < dead - 1 {
            add(t0, &mut want);
        }
        assert_eq!(log.allocate().unwrap(), dead);
        while log.top().unwrap() < COMPACT_EVERY + 8 {
            add(t0, &mut want);
        }

        // Not yet abandoned: everything written is visible, but the snapshot stays below
        // the empty slot.
        for now in [t0, t0 + ABANDON_MS - 1] {
            log.compact(now, &always_live).unwrap();
            assert!(watermark(&store) < dead, "dead slot {dead}: folded past it");
            assert_eq!(log.all(now, &always_live).unwrap().entries, want, "{dead}");
        }

        // Abandoned: later writers' compactions fold past it and old events go.
        let first = 2 * COMPACT_EVERY;
        while log.top().unwrap() < first {
            add(later, &mut want);
        }
        assert_eq!(
            watermark(&store),
            first,
            "dead slot {dead}: compaction stuck"
        );
        let all = log.all(later, &always_live).unwrap();
        assert_eq!(all.entries, want, "dead slot {dead}");
        assert_eq!(all.total, want.len());
        let p = log.page(3, 5, later, &always_live).unwrap();
        assert_eq!(p.entries, want[3..8], "dead slot {dead}");
        assert_eq!(p.total, want.len());
        // Events stay while a request could still read an older snapshot...
        while log.top().unwrap() < 3 * COMPACT_EVERY {
            add(later, &mut want);
        }
        assert!(store.exists(&format!("{BASE}/e/{first}")).unwrap());
        // ...and the compactions after that is over delete the folded ones (a bounded
        // number of keys each: two compactions' worth here).
        let after = later + ABANDON_MS;
        while log.top().unwrap() < 5 * COMPACT_EVERY {
            add(after, &mut want);
        }
        let written = if dead == 1 { 2 } else { 1 };
        for slot in [written, first] {
            let key = format!("{BASE}/e/{slot}");
            assert!(!store.exists(&key).unwrap(), "dead slot {dead}: {key} kept");
        }
        assert_eq!(log.all(later, &always_live).unwrap().entries, want);
    }
}

/// Found by the atomic property. A remove by slot whose add was folded away
/// by a compaction that could not fold the remove itself (an earlier slot was still being
/// written) stays in the tail and is counted against the chunk whose slot range covers
/// the add; with one more real removal the chunk counts as empty, is not read, and its
/// live entry vanished from `all()` until a later compaction rewrote the chunk.
#[test]
fn folded_away_add_is_not_removed_twice() {
    let store = MemStore::new();
    let log = Collection::new(&store, BASE.to_string());
    let a = log.add("a", None, NOW).unwrap();
    let b = log.add("b", None, NOW).unwrap();
    let c = log.add("c", None, NOW).unwrap();
    let pending = log.allocate().unwrap();
    log.remove("b", Some(b), NOW).unwrap();
    // Folds slots up to `c` (the pending slot stops it): the chunk is [a, c], slots a..c.
    log.compact(NOW, &always_live).unwrap();
    log.write_add(pending, "d", None, NOW).unwrap();
    log.remove("a", Some(a), NOW).unwrap();
    let all = log.all(NOW, &always_live).unwrap();
    let ids: Vec<(&str, i64)> = all.entries.iter().map(|e| (&*e.id, e.slot)).collect();
    assert_eq!(ids, [("c", c), ("d", pending)], "all()");
    assert_eq!(
        log.page(0, 10, NOW, &always_live).unwrap().total,
        2,
        "total"
    );
}
