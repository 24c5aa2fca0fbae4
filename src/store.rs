//! The key-value capability the core needs, shaped after what every Spin host offers:
//! single-key get/set/delete/exists, batches of them, and an atomic increment where the
//! host has `wasi:keyvalue/atomics`. No transactions, no compare-and-swap.

use crate::error::ScimError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// The layout this build writes. Records and log snapshots carry it; one that names a
/// later layout is refused rather than misread, so a future layout can migrate data
/// (data written before versions existed reads as layout 1).
pub(crate) const LAYOUT_VERSION: u32 = 1;

/// The layout of data that carries no version.
pub(crate) fn first_layout() -> u32 {
    1
}

/// Refuses data written under a layout this build does not know.
pub(crate) fn check_layout(key: &str, version: u32) -> crate::error::Result<()> {
    if version > LAYOUT_VERSION {
        return Err(crate::error::ScimError::internal(format!(
            "{key} was written under storage layout {version}; this build reads layouts up to {LAYOUT_VERSION}: upgrade scim-edge"
        )));
    }
    Ok(())
}

/// A store failure, described for the log only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        ScimError::unavailable(format!("store: {}", e.0))
    }
}

/// A key-value store. Every call is one round trip to the host; a single-key call is one
/// atomic operation on that key, a batch is no more than its single-key calls.
pub trait Store {
    /// The value, or `Ok(None)` when the key is absent.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes the value.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Removes the key; absent keys are not an error.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Whether the key is present.
    fn exists(&self, key: &str) -> Result<bool, StoreError>;
    /// Atomically adds `delta` to a counter (absent counts as 0) and returns the new
    /// value. Only called when [`Store::atomic`] is true.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError>;
    /// Whether [`Store::increment`] is atomic on this host. Without it a counter is read
    /// and written back, and concurrent writers may take the same number.
    fn atomic(&self) -> bool {
        true
    }
    /// The values of `keys`, in order, in one round trip where the host batches.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        keys.iter().map(|k| self.get(k)).collect()
    }
    /// Writes every pair; not atomic as a whole.
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        pairs.iter().try_for_each(|(k, v)| self.set(k, v))
    }
    /// Removes every key; not atomic as a whole.
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        keys.iter().try_for_each(|k| self.delete(k))
    }
    /// Every key starting with `prefix` (a scan of the whole store on every Spin
    /// backend: for repair, never on a request's path).
    fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let _ = prefix;
        Err(StoreError("this store cannot list its keys".into()))
    }
    /// Says the caller is about to read `keys`: a request-scoped cache fetches them in one
    /// batch. Plain stores read nothing ahead.
    fn prefetch(&self, keys: &[String]) {
        let _ = keys;
    }
    /// Drops what a request-scoped cache remembers of `keys`, so the next read asks the
    /// host. Plain stores remember nothing.
    fn forget(&self, keys: &[String]) {
        let _ = keys;
    }
}

/// A counter's value as a host stored it: 8 little-endian bytes (Spin's SQLite backend),
/// or decimal text (Redis `INCRBY`, and counters this crate writes without atomics).
pub fn decode_counter(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok().filter(|t| {
        !t.is_empty()
            && t.bytes()
                .enumerate()
                .all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-'))
    });
    match text {
        Some(t) => t.parse().ok(),
        None => <[u8; 8]>::try_from(bytes).ok().map(i64::from_le_bytes),
    }
}

/// Key-value work done, in host calls (round trips) and keys touched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Host calls; a batch is one.
    pub calls: u64,
    /// Keys read (a batch read counts each key).
    pub reads: u64,
    /// Keys written or deleted.
    pub writes: u64,
    /// Host calls that write (a batch is one).
    pub write_calls: u64,
}

impl std::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, o: Counts) -> Counts {
        Counts {
            calls: self.calls - o.calls,
            reads: self.reads - o.reads,
            writes: self.writes - o.writes,
            write_calls: self.write_calls - o.write_calls,
        }
    }
}

/// An in-memory store for tests and benchmarks, with Spin's SQLite semantics (counters
/// are 8 little-endian bytes that `get` reads back). It counts its work, can be told to
/// fail every operation on keys containing a marker, to refuse batch reads (as Spin's
/// Redis backend does), or to have no atomics (as the edge host).
#[derive(Debug)]
pub struct MemStore {
    data: Mutex<HashMap<String, Vec<u8>>>,
    calls: AtomicU64,
    reads: AtomicU64,
    writes: AtomicU64,
    write_calls: AtomicU64,
    fail_on: Mutex<Option<String>>,
    batch: AtomicBool,
    atomic: bool,
}

impl Default for MemStore {
    fn default() -> Self {
        MemStore {
            data: Mutex::default(),
            calls: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            write_calls: AtomicU64::new(0),
            fail_on: Mutex::default(),
            batch: AtomicBool::new(true),
            atomic: true,
        }
    }
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store without atomics: `increment` fails, as on the edge host.
    pub fn without_atomics() -> Self {
        MemStore {
            atomic: false,
            ..Self::default()
        }
    }

    /// From now on, every `get_many` fails (`false`), as on Spin's Redis backend.
    pub fn set_batch(&self, works: bool) {
        self.batch.store(works, Ordering::Relaxed);
    }

    /// Host calls performed so far.
    pub fn ops(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Work done so far.
    pub fn counts(&self) -> Counts {
        Counts {
            calls: self.calls.load(Ordering::Relaxed),
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            write_calls: self.write_calls.load(Ordering::Relaxed),
        }
    }

    /// All keys, sorted (for tests that inspect what was written).
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self
            .data
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    }

    /// Every stored value concatenated (for tests that check what was never written).
    pub fn get_raw_all(&self) -> Vec<u8> {
        self.data
            .lock()
            .map(|m| m.values().flatten().copied().collect())
            .unwrap_or_default()
    }

    /// From now on, fail every operation whose key contains `marker` (`None` heals).
    pub fn fail_keys_containing(&self, marker: Option<&str>) {
        if let Ok(mut f) = self.fail_on.lock() {
            *f = marker.map(str::to_string);
        }
    }

    fn call(&self, keys: &[&str], reads: u64, writes: u64) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.reads.fetch_add(reads, Ordering::Relaxed);
        self.writes.fetch_add(writes, Ordering::Relaxed);
        if writes > 0 {
            self.write_calls.fetch_add(1, Ordering::Relaxed);
        }
        let fail = self
            .fail_on
            .lock()
            .map_err(|_| StoreError("poisoned".into()))?;
        match fail.as_deref() {
            Some(m) => match keys.iter().find(|k| k.contains(m)) {
                Some(k) => Err(StoreError(format!("injected failure on {k}"))),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }

    fn data(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>>, StoreError> {
        self.data
            .lock()
            .map_err(|_| StoreError("lock poisoned".into()))
    }
}

fn strs(keys: &[String]) -> Vec<&str> {
    keys.iter().map(String::as_str).collect()
}

impl Store for MemStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.call(&[key], 1, 0)?;
        Ok(self.data()?.get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.call(&[key], 0, 1)?;
        self.data()?.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.call(&[key], 0, 1)?;
        self.data()?.remove(key);
        Ok(())
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.call(&[key], 1, 0)?;
        Ok(self.data()?.contains_key(key))
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.call(&[key], 0, 1)?;
        if !self.atomic {
            return Err(StoreError("this store has no atomics".into()));
        }
        let mut d = self.data()?;
        let now = match d.get(key) {
            None => 0,
            // Spin's SQLite backend cannot increment a key holding other bytes either.
            Some(b) => <[u8; 8]>::try_from(b.as_slice())
                .map(i64::from_le_bytes)
                .map_err(|_| StoreError(format!("{key} holds a value, not a counter")))?,
        };
        let next = now + delta;
        d.insert(key.to_string(), next.to_le_bytes().to_vec());
        Ok(next)
    }

    fn atomic(&self) -> bool {
        self.atomic
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.call(&strs(keys), keys.len() as u64, 0)?;
        if !self.batch.load(Ordering::Relaxed) {
            return Err(StoreError(
                "get_many is not supported by this backend".into(),
            ));
        }
        let d = self.data()?;
        Ok(keys.iter().map(|k| d.get(k).cloned()).collect())
    }

    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        self.call(&keys, 0, pairs.len() as u64)?;
        let mut d = self.data()?;
        for (k, v) in pairs {
            d.insert(k.clone(), v.clone());
        }
        Ok(())
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        self.call(&strs(keys), 0, keys.len() as u64)?;
        let mut d = self.data()?;
        for k in keys {
            d.remove(k);
        }
        Ok(())
    }

    fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.call(&[prefix], 0, 0)?;
        let mut out: Vec<String> = self
            .data()?
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        out.sort();
        Ok(out)
    }
}
