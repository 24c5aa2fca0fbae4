//! One drain at a time per organization. A drain reads what the vault was last sent,
//! calls the vault, and records the answer; two drains doing that for one member at once
//! could each act on the other's stale record (a restore and a revoke crossing), so a
//! drain takes the organization's turn first. Vault calls are limited per organization
//! anyway: one drain at a time costs no throughput.
//!
//! The turn is a counter per time slot, `{o}/V/d/{slot}`, raised with the store's
//! increment: a drain holds it when it raised its slot's counter from 0 and finds both
//! neighbouring slots at 0 (each side raises its own before reading the other's, so two
//! drains near a slot boundary never both hold it). A slot is longer than any drain
//! runs, so a drain that dies holding the turn blocks the organization for two slots at
//! most. The holder records the counters around its slot for a later drain to sweep
//! (see [`crate::delivery::Meta::sweep`]). Without atomics (the edge) the counters are read and written back and the turn
//! is only a best effort.

use super::conn::add;
use crate::config::vault::VaultConfig;
use crate::delivery::VaultKeys;
use crate::error::Result;
use crate::store::{decode_counter, Store};

/// A slot of the turn: longer than a drain's budget plus a call's timeout.
pub fn slot_ms(cfg: &VaultConfig) -> i64 {
    cfg.sync_budget_ms
        .saturating_add(cfg.timeout_ms)
        .saturating_add(10_000)
}

/// The organization's turn, given back when dropped.
pub struct Turn<'a> {
    store: &'a dyn Store,
    keys: &'a VaultKeys<'a>,
    len: i64,
    held: Option<i64>,
}

impl<'a> Turn<'a> {
    /// The turn of `keys`' organization, in slots of `len` ms.
    pub fn new(store: &'a dyn Store, keys: &'a VaultKeys<'a>, len: i64) -> Self {
        Turn {
            store,
            keys,
            len: len.max(1),
            held: None,
        }
    }

    /// Takes the turn at `now` (ms); `false` while another drain holds it.
    pub fn take(&mut self, now: i64) -> Result<bool> {
        if self.held.is_some() {
            return Ok(true);
        }
        let slot = now / self.len;
        let key = self.keys.turn(slot);
        if add(self.store, &key, 1)? == 1 {
            let held = |s: i64| -> Result<bool> {
                let v = self.store.get(&self.keys.turn(s))?;
                Ok(v.as_deref().and_then(decode_counter).unwrap_or(0) > 0)
            };
            if !held(slot - 1)? && !held(slot + 1)? {
                self.held = Some(slot);
                return Ok(true);
            }
        }
        add(self.store, &key, -1)?;
        Ok(false)
    }

    /// The counters around the held slot (where drains that found the turn taken left
    /// theirs), with when each may be deleted: once no drain can be holding, taking or
    /// giving back any of them.
    pub fn counters(&self) -> Vec<(String, i64)> {
        self.held.map_or_else(Vec::new, |k| {
            let after = (k + 4).saturating_mul(self.len);
            (k - 1..=k + 1)
                .map(|s| (self.keys.turn(s), after))
                .collect()
        })
    }

    /// Gives the turn back.
    pub fn give_back(&mut self) {
        if let Some(slot) = self.held.take() {
            // A failure here leaves the slot held until it expires.
            let _ = add(self.store, &self.keys.turn(slot), -1);
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.give_back();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::OrgId;
    use crate::store::MemStore;

    fn org() -> OrgId {
        OrgId::parse("6a1e5c3b-2d4f-4a8b-9c0d-1e2f3a4b5c6d").unwrap()
    }

    #[test]
    fn one_holder_at_a_time_and_a_dead_one_expires() {
        let store = MemStore::new();
        let o = org();
        let keys = VaultKeys(&o);
        let mut a = Turn::new(&store, &keys, 100);
        let mut b = Turn::new(&store, &keys, 100);
        assert!(a.take(1_000).unwrap());
        assert!(!b.take(1_050).unwrap());
        // Across the slot boundary the holder is still seen.
        assert!(!b.take(1_120).unwrap());
        a.give_back();
        assert!(b.take(1_130).unwrap());
        // b dies holding it: the next slot still waits, the one after does not.
        std::mem::forget(b);
        let mut c = Turn::new(&store, &keys, 100);
        assert!(!c.take(1_250).unwrap());
        assert!(c.take(1_310).unwrap());
        // Its counters may go once nobody can be near them.
        let swept = c.counters();
        assert_eq!(swept.len(), 3);
        assert!(swept
            .iter()
            .all(|(k, at)| k.contains("/V/d/1") && *at == 1_700));
    }

    #[test]
    fn a_drain_near_a_boundary_sees_the_next_slot() {
        let store = MemStore::new();
        let o = org();
        let keys = VaultKeys(&o);
        let mut late = Turn::new(&store, &keys, 100);
        assert!(late.take(1_210).unwrap());
        // A drain whose clock still reads the slot before.
        let mut early = Turn::new(&store, &keys, 100);
        assert!(!early.take(1_199).unwrap());
        drop(late);
        assert!(early.take(1_199).unwrap());
    }
}
