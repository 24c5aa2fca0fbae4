//! Vaultwarden: the organization's whole state in one `POST public/organization/import`,
//! keyed by email, sent only when it differs from the last import and at most once per
//! `debounce_ms`. Deactivated users go as `deleted: true` (Vaultwarden revokes them;
//! present again, it restores them). `overwriteExisting` is always false: nothing is
//! removed wholesale. Nothing keeps access that SCIM took away:
//! - a user deleted in SCIM, and an address a user had before its email changed, are
//!   sent as deleted until an import carrying them succeeds (absent from an import, a
//!   revoked member stays revoked); a replaced address goes with an empty externalId,
//!   so that the user's externalId names only its current member;
//! - a group deleted in SCIM is sent once more with no members (imports never delete a
//!   group), then left out.
//!
//! The import is not transactional: it stops at the first member it cannot add, after
//! saving those before it. An address Vaultwarden would refuse is set aside before
//! sending ([`super::address`]); when the vault still refuses an import, the member at
//! fault is found and set aside, and everyone else goes out.

mod culprit;
mod plan;

use super::conn::{store_fail, Fail};
use super::drain::{backoff_ms, Drain};
use super::problem::Problem;
use crate::collection::{always_live, Entry};
use crate::delivery::{
    entry, load, observe_all, observed, parse_entry, save, Item, Kind, Meta, Observed, Source,
};
use crate::member_status::MemberStatus;
use plan::Plan;
use std::collections::HashSet;

/// The parked entry of an import Vaultwarden keeps refusing.
const IMPORT: &str = "import";

/// The import route.
const ROUTE: &str = "public/organization/import";

impl Drain<'_, '_> {
    /// Sends the import when the outbox holds anything (or `force`), the state differs
    /// from the last import, and the debounce allows. `retry`: members the vault refused
    /// are tried again before their backoff is over (a reconcile).
    pub(super) fn vaultwarden(&mut self, force: bool, retry: bool) -> Result<(), Fail> {
        self.conn.serving = Some(IMPORT.into());
        let store = self.conn.store();
        let now = self.conn.now();
        // The debounce first: most drains after a request stop here, one read in.
        let mut meta: Meta = load(store, &self.keys.meta()).map_err(store_fail)?;
        if !force && (now - meta.import_at < self.cfg.debounce_ms || now < meta.import_next) {
            return Ok(());
        }
        // One drain after a request per debounce period imports; the others leave it
        // to that one (the counter is the store's increment, exact where atomics exist).
        let len = self.cfg.debounce_ms.max(1);
        if !force && !self.conn.take_slot("i", now / len, len)? {
            return Ok(());
        }
        let page = self
            .svc
            .outbox()
            .all(now, &always_live)
            .map_err(store_fail)?;
        if page.total == 0 && !force {
            return Ok(());
        }
        self.note_deleted(&page.entries, &mut meta)?;
        let mut retry = retry;
        let mut skip = HashSet::new();
        let d = loop {
            let plan = loop {
                let plan = self.plan(self.svc, store, &meta, retry, &skip)?;
                // Replaced addresses become tombstones: the plan is made again with them.
                if !self.record(&plan, &mut meta)? {
                    break plan;
                }
            };
            let d = plan.digest(&plan.tombs, &plan.emptied);
            if meta.import_digest.as_deref() == Some(d.as_str()) {
                break d;
            }
            let sent_at = self.conn.now();
            let r = self.conn.call("POST", ROUTE, Some(&plan.payload(&meta)))?;
            if r.status == 200 {
                break self.imported(&plan, &mut meta, sent_at)?;
            }
            if r.status == 400 {
                if let Some(i) = self.culprit(&plan, &r.message())? {
                    let m = &plan.members[i];
                    self.set_aside(m, &r.message())?;
                    skip.insert(m.id.clone());
                    retry = false;
                    continue;
                }
            }
            // Refused as a whole: retried with backoff, and shown as parked once it
            // keeps failing.
            let m = format!("import refused ({}): {}", r.status, r.message());
            self.report.errors.push(Problem::Refused {
                entry: IMPORT.into(),
                message: m.clone(),
            });
            meta.import_at = now;
            meta.import_failures += 1;
            meta.import_next = now + backoff_ms(self.cfg.retry_ms, meta.import_failures);
            if meta.import_failures >= self.cfg.max_attempts {
                self.park(IMPORT, &m).map_err(store_fail)?;
            }
            return save(store, &self.keys.meta(), &meta).map_err(store_fail);
        };
        meta.import_at = now;
        save(store, &self.keys.meta(), &meta).map_err(store_fail)?;
        for e in &page.entries {
            self.svc.outbox_remove(&e.id).map_err(store_fail)?;
        }
        // Changes made while the import was built are marked again.
        let fresh_store = crate::cache::Cached::new(self.raw);
        let fresh = self.svc.over(&fresh_store);
        let again = self.plan(&fresh, &fresh_store, &meta, false, &HashSet::new())?;
        if again.digest(&again.tombs, &again.emptied) != d {
            for e in &page.entries {
                self.svc.outbox_add(&e.id).map_err(store_fail)?;
            }
        }
        Ok(())
    }

    /// Users and groups deleted since the last import: a user's last address is sent as
    /// deleted, a group once more with no members.
    fn note_deleted(&self, entries: &[Entry], meta: &mut Meta) -> Result<(), Fail> {
        let store = self.conn.store();
        for e in entries {
            match parse_entry(&e.id) {
                Some((Kind::User, id)) if self.svc.user_want(id).map_err(store_fail)?.is_none() => {
                    let item: Item =
                        load(store, &self.keys.item(Kind::User, id)).map_err(store_fail)?;
                    if let Some(email) = item.email {
                        let email = email.to_lowercase();
                        meta.removed_sent.remove(&email);
                        meta.removed.insert(email, item.ext.clone());
                    }
                    if item.parked {
                        self.unpark(&e.id).map_err(store_fail)?;
                    }
                }
                Some((Kind::Group, id))
                    if self.cfg.groups
                        && self.svc.group_want(id).map_err(store_fail)?.is_none() =>
                {
                    let item: Item =
                        load(store, &self.keys.item(Kind::Group, id)).map_err(store_fail)?;
                    if let (Some(ext), Some(name)) = (item.ext, item.name) {
                        meta.emptied.insert(ext, name);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Records a delivered import: each member's status as far as an import tells it
    /// (Vaultwarden invites, or with mail off accepts, new members and revokes deleted
    /// ones), each group's externalId and name, and which tombstones are done. Returns
    /// the digest the next import is compared with.
    fn imported(&mut self, plan: &Plan, meta: &mut Meta, sent_at: i64) -> Result<String, Fail> {
        meta.import_failures = 0;
        meta.import_next = 0;
        self.unpark(IMPORT).map_err(store_fail)?;
        self.report.sent += 1;
        let store = self.conn.store();
        let mut writes = Vec::new();
        let mut seen = Vec::new();
        for m in &plan.members {
            let key = self.keys.item(Kind::User, &m.id);
            let item: Item = load(store, &key).map_err(store_fail)?;
            // Vaultwarden invites (or accepts) new members and revokes deleted ones; a
            // status seen before is kept while the member stays active.
            let before = observed(store, &self.keys, &m.id).map_err(store_fail)?;
            let status = match item.status(before.as_ref()) {
                _ if !m.active => Some(MemberStatus::Revoked),
                MemberStatus::Pending | MemberStatus::Revoked | MemberStatus::Error => {
                    Some(MemberStatus::Invited)
                }
                _ => None,
            };
            if let Some(status) = status {
                let at = sent_at;
                let source = Source::Delivery;
                seen.push((m.id.as_str(), Observed { status, at, source }));
            }
            if item.parked {
                self.unpark(&entry(Kind::User, &m.id)).map_err(store_fail)?;
            }
            let next = Item {
                email: Some(m.email.clone()),
                ext: Some(m.ext.clone()),
                active: Some(m.active),
                refused: None,
                error: None,
                parked: false,
                attempts: 0,
                next_at: 0,
                ..item.clone()
            };
            if next != item {
                writes.push((key, next));
            }
        }
        for (id, ext, name, item) in &plan.groups {
            if item.ext.as_deref() != Some(ext.as_str()) || item.name.as_deref() != Some(name) {
                let next = Item {
                    ext: Some(ext.clone()),
                    name: Some(name.clone()),
                    ..item.clone()
                };
                writes.push((self.keys.item(Kind::Group, id), next));
            }
        }
        let bytes = writes
            .into_iter()
            .map(|(k, item)| Ok((k, serde_json::to_vec(&item)?)))
            .collect::<Result<Vec<_>, serde_json::Error>>()
            .map_err(|e| Fail::Store(e.to_string()))?;
        for chunk in bytes.chunks(100) {
            store.set_many(chunk).map_err(|e| store_fail(e.into()))?;
        }
        observe_all(store, &self.keys, &seen).map_err(store_fail)?;
        // Tombstones an earlier import carried are forgotten; this one's are left out
        // of the next. Emptied groups are done (or in SCIM again under their externalId).
        for e in std::mem::take(&mut meta.removed_sent) {
            meta.removed.remove(&e);
        }
        meta.removed_sent = meta.removed.keys().cloned().collect();
        meta.emptied.clear();
        let kept: Vec<(String, String)> = plan
            .tombs
            .iter()
            .filter(|(e, _)| meta.removed.contains_key(e))
            .cloned()
            .collect();
        let d = plan.digest(&kept, &[]);
        meta.import_digest = Some(d.clone());
        Ok(d)
    }
}
