//! One request's view of the store. A key read once is remembered for the rest of the
//! request, with the request's own writes applied, so code can ask for what it needs
//! where it needs it and still pay one round trip per batch: callers `prefetch` the keys
//! they are about to read. A host whose batch reads fail (Spin's Redis backend) is asked
//! key by key from then on, for the rest of the request.
//!
//! Remembered values are as fresh as the read that fetched them; code that must see
//! another request's later write (the read-back after a create, a retried snapshot)
//! calls `forget` first.

use crate::store::{decode_counter, Store, StoreError};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// A request-scoped, read-through view of a store.
pub struct Cached<'s> {
    inner: &'s dyn Store,
    seen: RefCell<HashMap<String, Option<Vec<u8>>>>,
    batch: Cell<bool>,
    /// Counters taken without atomics, written with the request's next write: a slot
    /// taken and never used needs no write, and one that is used costs no extra call.
    counters: RefCell<Vec<(String, Vec<u8>)>>,
}

impl<'s> Cached<'s> {
    /// A view of `inner` that remembers nothing yet.
    pub fn new(inner: &'s dyn Store) -> Self {
        Cached {
            inner,
            seen: RefCell::default(),
            batch: Cell::new(true),
            counters: RefCell::default(),
        }
    }

    /// Forgets every read, so the next ones are fresh (a drain's next pass).
    pub fn forget_reads(&self) {
        self.seen.borrow_mut().clear();
    }

    fn unseen(&self, keys: &[String]) -> Vec<String> {
        let seen = self.seen.borrow();
        let mut out: Vec<String> = Vec::new();
        for k in keys {
            if !seen.contains_key(k) && !out.contains(k) {
                out.push(k.clone());
            }
        }
        out
    }

    fn remember(&self, key: &str, value: Option<Vec<u8>>) {
        self.seen.borrow_mut().insert(key.to_string(), value);
    }

    /// Reads `keys` (none of them seen) from the host and remembers them.
    fn fetch(&self, keys: &[String]) -> Result<(), StoreError> {
        if keys.len() > 1 && self.batch.get() {
            match self.inner.get_many(keys) {
                Ok(values) => {
                    for (k, v) in keys.iter().zip(values) {
                        self.remember(k, v);
                    }
                    return Ok(());
                }
                Err(_) => self.batch.set(false),
            }
        }
        for k in keys {
            let v = self.inner.get(k)?;
            self.remember(k, v);
        }
        Ok(())
    }

    fn recalled(&self, key: &str) -> Option<Option<Vec<u8>>> {
        self.seen.borrow().get(key).cloned()
    }

    /// `pairs` with the counters waiting to be written in front, in one call.
    fn write(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        let mut all = std::mem::take(&mut *self.counters.borrow_mut());
        all.extend_from_slice(pairs);
        match all.as_slice() {
            [] => Ok(()),
            [(k, v)] => self.inner.set(k, v),
            _ => self.inner.set_many(&all),
        }
    }
}

impl Store for Cached<'_> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.recalled(key) {
            return Ok(v);
        }
        let v = self.inner.get(key)?;
        self.remember(key, v.clone());
        Ok(v)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write(&[(key.to_string(), value.to_vec())])?;
        self.remember(key, Some(value.to_vec()));
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.write(&[])?;
        self.inner.delete(key)?;
        self.remember(key, None);
        Ok(())
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match self.recalled(key) {
            Some(v) => Ok(v.is_some()),
            None => self.inner.exists(key),
        }
    }

    /// Atomic where the host is; elsewhere the counter is read (from what this request
    /// has seen, if it has) and written back as decimal text.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        let next = if self.inner.atomic() {
            self.inner.increment(key, delta)?
        } else {
            let now = match self.get(key)? {
                None => 0,
                Some(b) => decode_counter(&b)
                    .ok_or_else(|| StoreError(format!("{key} holds a value, not a counter")))?,
            };
            let next = now + delta;
            if delta != 0 {
                let mut waiting = self.counters.borrow_mut();
                waiting.retain(|(k, _)| k != key);
                waiting.push((key.to_string(), next.to_string().into_bytes()));
            }
            next
        };
        self.remember(key, Some(next.to_string().into_bytes()));
        Ok(next)
    }

    fn atomic(&self) -> bool {
        self.inner.atomic()
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let missing = self.unseen(keys);
        if !missing.is_empty() {
            self.fetch(&missing)?;
        }
        let seen = self.seen.borrow();
        Ok(keys
            .iter()
            .map(|k| seen.get(k).cloned().flatten())
            .collect())
    }

    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        self.write(pairs)?;
        for (k, v) in pairs {
            self.remember(k, Some(v.clone()));
        }
        Ok(())
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        self.write(&[])?;
        match keys {
            [] => return Ok(()),
            [k] => self.inner.delete(k)?,
            _ => self.inner.delete_many(keys)?,
        }
        for k in keys {
            self.remember(k, None);
        }
        Ok(())
    }

    fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list_keys(prefix)
    }

    /// Reads the keys not yet seen, in one batch where the host has batch reads; on a
    /// host without them the keys are left to be read one by one when needed.
    fn prefetch(&self, keys: &[String]) {
        let missing = self.unseen(keys);
        if missing.len() > 1 && self.batch.get() {
            // A failure here is retried key by key by whoever needs the value, where a
            // store that is down reports itself.
            let _ = self.fetch(&missing);
        }
    }

    fn forget(&self, keys: &[String]) {
        let mut seen = self.seen.borrow_mut();
        for k in keys {
            seen.remove(k);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::MemStore;

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_prefetched_key_costs_no_further_call() {
        let mem = MemStore::new();
        mem.set("a", b"1").unwrap();
        let c = Cached::new(&mem);
        let before = mem.counts();
        c.prefetch(&keys(&["a", "b", "c"]));
        assert_eq!(c.get("a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(c.get("b").unwrap(), None);
        assert!(!c.exists("c").unwrap());
        let used = mem.counts() - before;
        assert_eq!((used.calls, used.reads), (1, 3));
    }

    #[test]
    fn without_batch_reads_each_key_is_read_once_when_needed() {
        let mem = MemStore::new();
        mem.set_batch(false);
        let c = Cached::new(&mem);
        let before = mem.counts();
        c.prefetch(&keys(&["a", "b"]));
        c.prefetch(&keys(&["c", "d"]));
        assert_eq!(c.get_many(&keys(&["a", "b"])).unwrap(), vec![None, None]);
        // One failed batch, then single reads: the second prefetch asks nothing.
        assert_eq!((mem.counts() - before).calls, 3);
    }

    #[test]
    fn writes_are_seen_and_forget_reads_again() {
        let mem = MemStore::new();
        let c = Cached::new(&mem);
        c.set("k", b"mine").unwrap();
        mem.set("k", b"theirs").unwrap();
        assert_eq!(c.get("k").unwrap(), Some(b"mine".to_vec()));
        c.forget(&keys(&["k"]));
        assert_eq!(c.get("k").unwrap(), Some(b"theirs".to_vec()));
        c.delete("k").unwrap();
        assert!(!c.exists("k").unwrap());
    }

    #[test]
    fn increment_without_atomics_reads_and_writes_back() {
        let mem = MemStore::without_atomics();
        let c = Cached::new(&mem);
        assert_eq!(c.increment("n", 1).unwrap(), 1);
        assert_eq!(c.increment("n", 1).unwrap(), 2);
        // Written with the next write, in the same call.
        assert_eq!(mem.get("n").unwrap(), None);
        let before = mem.counts();
        c.set("k", b"v").unwrap();
        assert_eq!((mem.counts() - before).calls, 1);
        assert_eq!(mem.get("n").unwrap(), Some(b"2".to_vec()));
        assert_eq!(Cached::new(&mem).increment("n", 0).unwrap(), 2);
        let atomic = MemStore::new();
        let c = Cached::new(&atomic);
        assert_eq!(c.increment("n", 5).unwrap(), 5);
        c.forget(&keys(&["n"]));
        assert_eq!(decode_counter(&c.get("n").unwrap().unwrap()), Some(5));
    }
}
