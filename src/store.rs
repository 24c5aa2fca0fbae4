//! The key-value capability the core needs, shaped after Spin's: single-key atomic
//! get/set/delete/exists and an atomic increment. No transactions, no compare-and-swap,
//! no key listing.

use crate::error::ScimError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A store failure, described for the log only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        ScimError::unavailable(format!("store: {}", e.0))
    }
}

/// A key-value store. Every call is one atomic operation on one key.
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
    /// value. Counter keys are only ever read through `increment(key, 0)`.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError>;
}

/// An in-memory store for tests and benchmarks. It counts operations, and can be told
/// to fail every operation on keys containing a marker, to exercise failure paths.
#[derive(Debug, Default)]
pub struct MemStore {
    data: Mutex<HashMap<String, Vec<u8>>>,
    counters: Mutex<HashMap<String, i64>>,
    ops: AtomicU64,
    fail_on: Mutex<Option<String>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Operations performed so far.
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
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

    fn check(&self, key: &str) -> Result<(), StoreError> {
        self.ops.fetch_add(1, Ordering::Relaxed);
        let fail = self
            .fail_on
            .lock()
            .map_err(|_| StoreError("poisoned".into()))?;
        match fail.as_deref() {
            Some(m) if key.contains(m) => Err(StoreError(format!("injected failure on {key}"))),
            _ => Ok(()),
        }
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError("lock poisoned".into())
}

impl Store for MemStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.check(key)?;
        Ok(self.data.lock().map_err(poisoned)?.get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.check(key)?;
        self.data
            .lock()
            .map_err(poisoned)?
            .insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.check(key)?;
        self.data.lock().map_err(poisoned)?.remove(key);
        self.counters.lock().map_err(poisoned)?.remove(key);
        Ok(())
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.check(key)?;
        Ok(self.data.lock().map_err(poisoned)?.contains_key(key))
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.check(key)?;
        let mut c = self.counters.lock().map_err(poisoned)?;
        let v = c.entry(key.to_string()).or_insert(0);
        *v += delta;
        Ok(*v)
    }
}
