//! The in-memory key-value data all requests share ([`Backend`]), and each request's view
//! of it ([`Kv`]): the view counts every call for the request's response headers and
//! applies the profile's size limits and `get-many` answer before the data sees a call.

use crate::client::{KvCounts, KV_CALLS, KV_READS, KV_WRITES, OUTBOUND_CALLS};
use crate::Profile;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The longest key the edge store takes, in bytes.
pub const EDGE_MAX_KEY: usize = 8192;
/// The largest value the edge store takes, in bytes.
pub const EDGE_MAX_VALUE: usize = 1_048_576;

/// The counts of one request (key-value calls and outbound HTTP requests), shared by its
/// instance and the code that answers it.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    calls: AtomicU64,
    reads: AtomicU64,
    writes: AtomicU64,
    outbound: AtomicU64,
}

impl Tally {
    /// Counts one outbound HTTP request, allowed or refused.
    pub(crate) fn outbound_call(&self) {
        self.outbound.fetch_add(1, Ordering::Relaxed);
    }

    fn counts(&self) -> KvCounts {
        KvCounts {
            calls: self.calls.load(Ordering::Relaxed),
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }

    /// Writes the counts into a response's headers.
    pub(crate) fn stamp(&self, headers: &mut hyper::HeaderMap) {
        let c = self.counts();
        for (name, n) in [
            (KV_CALLS, c.calls),
            (KV_READS, c.reads),
            (KV_WRITES, c.writes),
            (OUTBOUND_CALLS, self.outbound.load(Ordering::Relaxed)),
        ] {
            headers.insert(name, hyper::header::HeaderValue::from(n));
        }
    }
}

/// A stored value: bytes, or a counter that only `increment` changes.
#[derive(Debug, Clone)]
enum Slot {
    Bytes(Vec<u8>),
    Counter(i64),
}

impl Slot {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Slot::Bytes(b) => b.clone(),
            // Spin's SQLite backend keeps a counter as 8 little-endian bytes.
            Slot::Counter(n) => n.to_le_bytes().to_vec(),
        }
    }
}

/// The key-value data shared by all requests.
#[derive(Debug, Default)]
pub struct Backend {
    data: Mutex<HashMap<String, Slot>>,
    ops: AtomicU64,
    down: AtomicBool,
    no_batch: AtomicBool,
}

impl Backend {
    /// Key-value calls served so far, over all requests (refused ones included).
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }

    /// Makes every operation fail, as a backend that stopped answering does.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }

    /// Makes every `get-many` fail, as on Spin's Redis backend (it sends `KEYS`);
    /// `set-many` and `delete-many` still work there.
    pub fn set_no_batch(&self, no_batch: bool) {
        self.no_batch.store(no_batch, Ordering::Relaxed);
    }

    /// Every entry holding bytes (counters excluded), for tests that inspect the data.
    pub fn entries(&self) -> Vec<(String, Vec<u8>)> {
        self.data
            .lock()
            .map(|d| {
                d.iter()
                    .filter_map(|(k, v)| match v {
                        Slot::Bytes(b) => Some((k.clone(), b.clone())),
                        Slot::Counter(_) => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Slot>) -> R) -> Result<R, String> {
        if self.down.load(Ordering::Relaxed) {
            return Err("the store is down".to_string());
        }
        let mut d = self
            .data
            .lock()
            .map_err(|_| "store lock poisoned".to_string())?;
        Ok(f(&mut d))
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.with(|d| d.get(key).map(Slot::bytes))
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, String> {
        if self.no_batch.load(Ordering::Relaxed) {
            return Err("this store does not support get-many".to_string());
        }
        self.with(|d| keys.iter().map(|k| d.get(k).map(Slot::bytes)).collect())
    }

    fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), String> {
        self.with(|d| {
            for (k, v) in pairs {
                d.insert(k, Slot::Bytes(v));
            }
        })
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), String> {
        self.with(|d| {
            for k in keys {
                d.remove(k);
            }
        })
    }

    fn exists(&self, key: &str) -> Result<bool, String> {
        self.with(|d| d.contains_key(key))
    }

    fn keys(&self) -> Result<Vec<String>, String> {
        self.with(|d| d.keys().cloned().collect())
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, String> {
        self.with(|d| match d.get_mut(key) {
            None => {
                d.insert(key.to_string(), Slot::Counter(delta));
                Ok(delta)
            }
            Some(Slot::Counter(n)) => {
                *n += delta;
                Ok(*n)
            }
            Some(Slot::Bytes(_)) => Err(format!("key '{key}' holds a value, not a counter")),
        })?
    }
}

/// A `get-many` answer: keys with their values (or `none`, as the profile answers).
pub(crate) type GetMany = Vec<(String, Option<Vec<u8>>)>;

/// One request's view of the store: it counts each call and applies the profile's
/// limits and batch semantics before the shared [`Backend`] sees it.
pub(crate) struct Kv {
    backend: Arc<Backend>,
    profile: Profile,
    tally: Arc<Tally>,
}

impl Kv {
    pub(crate) fn new(backend: Arc<Backend>, profile: Profile, tally: Arc<Tally>) -> Self {
        Kv {
            backend,
            profile,
            tally,
        }
    }

    fn count(&self, reads: usize, writes: usize) {
        self.backend.ops.fetch_add(1, Ordering::Relaxed);
        self.tally.calls.fetch_add(1, Ordering::Relaxed);
        self.tally.reads.fetch_add(reads as u64, Ordering::Relaxed);
        self.tally
            .writes
            .fetch_add(writes as u64, Ordering::Relaxed);
    }

    fn key_fits(&self, key: &str) -> Result<(), String> {
        if self.profile == Profile::Edge && key.len() > EDGE_MAX_KEY {
            return Err(format!(
                "a key of {} bytes is over the store's limit of {EDGE_MAX_KEY}",
                key.len()
            ));
        }
        Ok(())
    }

    fn value_fits(&self, value: &[u8]) -> Result<(), String> {
        if self.profile == Profile::Edge && value.len() > EDGE_MAX_VALUE {
            return Err(format!(
                "a value of {} bytes is over the store's limit of {EDGE_MAX_VALUE}",
                value.len()
            ));
        }
        Ok(())
    }

    pub(crate) fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.count(1, 0);
        self.key_fits(key)?;
        self.backend.get(key)
    }

    pub(crate) fn set(&self, key: &str, value: Vec<u8>) -> Result<(), String> {
        self.count(0, 1);
        self.key_fits(key)?;
        self.value_fits(&value)?;
        self.backend.set_many(vec![(key.to_string(), value)])
    }

    pub(crate) fn delete(&self, key: &str) -> Result<(), String> {
        self.count(0, 1);
        self.key_fits(key)?;
        self.backend.delete_many(&[key.to_string()])
    }

    pub(crate) fn exists(&self, key: &str) -> Result<bool, String> {
        self.count(1, 0);
        self.key_fits(key)?;
        self.backend.exists(key)
    }

    pub(crate) fn keys(&self) -> Result<Vec<String>, String> {
        self.count(0, 0);
        self.backend.keys()
    }

    pub(crate) fn increment(&self, key: &str, delta: i64) -> Result<i64, String> {
        self.count(0, 1);
        self.key_fits(key)?;
        self.backend.increment(key, delta)
    }

    pub(crate) fn get_many(&self, keys: Vec<String>) -> Result<GetMany, String> {
        self.count(keys.len(), 0);
        keys.iter().try_for_each(|k| self.key_fits(k))?;
        let values = self.backend.get_many(&keys)?;
        let pairs = keys.into_iter().zip(values);
        Ok(match self.profile {
            Profile::Spin => pairs.filter(|(_, v)| v.is_some()).collect(),
            Profile::Edge => pairs.collect(),
        })
    }

    pub(crate) fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), String> {
        self.count(0, pairs.len());
        // The whole batch is checked first, so a refused one writes nothing.
        pairs
            .iter()
            .try_for_each(|(k, v)| self.key_fits(k).and_then(|()| self.value_fits(v)))?;
        self.backend.set_many(pairs)
    }

    pub(crate) fn delete_many(&self, keys: Vec<String>) -> Result<(), String> {
        self.count(0, keys.len());
        keys.iter().try_for_each(|k| self.key_fits(k))?;
        self.backend.delete_many(&keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(profile: Profile) -> Kv {
        Kv::new(
            Arc::new(Backend::default()),
            profile,
            Arc::new(Tally::default()),
        )
    }

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn get_many_omits_missing_keys_on_spin_and_answers_none_on_the_edge() {
        for (profile, want) in [
            (Profile::Spin, vec![("a".to_string(), Some(b"1".to_vec()))]),
            (
                Profile::Edge,
                vec![
                    ("a".to_string(), Some(b"1".to_vec())),
                    ("b".to_string(), None),
                ],
            ),
        ] {
            let kv = kv(profile);
            kv.set("a", b"1".to_vec()).unwrap();
            assert_eq!(kv.get_many(keys(&["a", "b"])).unwrap(), want, "{profile}");
        }
    }

    #[test]
    fn batches_write_and_delete_every_key() {
        let kv = kv(Profile::Edge);
        kv.set_many(vec![
            ("a".into(), b"1".to_vec()),
            ("b".into(), b"2".to_vec()),
        ])
        .unwrap();
        assert_eq!(kv.get("b").unwrap(), Some(b"2".to_vec()));
        kv.delete_many(keys(&["a", "b", "never"])).unwrap();
        assert_eq!(
            kv.get_many(keys(&["a", "b"])).unwrap(),
            vec![("a".into(), None), ("b".into(), None)]
        );
    }

    #[test]
    fn counters_read_back_as_eight_little_endian_bytes() {
        let kv = kv(Profile::Spin);
        assert_eq!(kv.increment("n", 5).unwrap(), 5);
        assert_eq!(kv.increment("n", -2).unwrap(), 3);
        assert_eq!(kv.get("n").unwrap(), Some(3i64.to_le_bytes().to_vec()));
        assert_eq!(
            kv.get_many(keys(&["n"])).unwrap(),
            vec![("n".into(), Some(3i64.to_le_bytes().to_vec()))]
        );
    }

    #[test]
    fn the_edge_refuses_oversized_keys_and_values_on_every_operation() {
        let long = "k".repeat(EDGE_MAX_KEY + 1);
        let big = vec![0u8; EDGE_MAX_VALUE + 1];
        let edge = kv(Profile::Edge);
        let refusals = [
            edge.get(&long).err(),
            edge.set(&long, vec![]).err(),
            edge.set("k", big.clone()).err(),
            edge.delete(&long).err(),
            edge.exists(&long).err(),
            edge.increment(&long, 1).err(),
            edge.get_many(vec!["k".into(), long.clone()]).err(),
            edge.set_many(vec![("k".into(), vec![]), (long.clone(), vec![])])
                .err(),
            edge.set_many(vec![("k".into(), big.clone())]).err(),
            edge.delete_many(vec![long.clone()]).err(),
        ];
        for (i, r) in refusals.iter().enumerate() {
            let e = r
                .as_deref()
                .unwrap_or_else(|| panic!("operation {i} was allowed"));
            assert!(e.contains("over the store's limit"), "{e}");
        }
        // A refused batch writes none of its keys.
        assert_eq!(edge.get("k").unwrap(), None);
        // The limits themselves are allowed; Spin enforces none.
        let at = "k".repeat(EDGE_MAX_KEY);
        edge.set(&at, vec![0u8; EDGE_MAX_VALUE]).unwrap();
        let spin = kv(Profile::Spin);
        spin.set(&long, big).unwrap();
        assert!(spin.exists(&long).unwrap());
    }

    #[test]
    fn without_batch_only_get_many_fails() {
        let kv = kv(Profile::Spin);
        kv.backend.set_no_batch(true);
        assert!(kv.get_many(keys(&["a"])).is_err());
        kv.set_many(vec![("a".into(), b"1".to_vec())]).unwrap();
        assert_eq!(kv.get("a").unwrap(), Some(b"1".to_vec()));
        kv.delete_many(keys(&["a"])).unwrap();
        assert!(!kv.exists("a").unwrap());
    }

    #[test]
    fn every_call_counts_with_the_keys_it_reads_and_writes() {
        let kv = kv(Profile::Spin);
        kv.get("a").unwrap();
        kv.exists("a").unwrap();
        kv.set("a", vec![]).unwrap();
        kv.delete("a").unwrap();
        kv.increment("n", 1).unwrap();
        kv.keys().unwrap();
        kv.get_many(keys(&["a", "b", "c"])).unwrap();
        kv.set_many(vec![("a".into(), vec![]), ("b".into(), vec![])])
            .unwrap();
        kv.delete_many(keys(&["a", "b"])).unwrap();
        // A refused call is still a call.
        kv.backend.set_down(true);
        assert!(kv.get("a").is_err());
        assert_eq!(
            kv.tally.counts(),
            KvCounts {
                calls: 10,
                reads: 1 + 1 + 3 + 1,
                writes: 1 + 1 + 1 + 2 + 2,
            }
        );
        assert_eq!(kv.backend.ops(), 10);
    }
}
