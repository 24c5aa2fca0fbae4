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

use super::address::refusal;
use super::config::VaultKind;
use super::conn::{store_fail, Fail};
use super::drain::{backoff_ms, Drain};
use super::state::{digest, entry, load, parse_entry, save, Item, Kind, Meta};
use crate::log::{always_live, Entry};
use crate::schema::ResourceKind;
use crate::service::Service;
use crate::store::Store;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// The parked entry of an import Vaultwarden keeps refusing.
const IMPORT: &str = "import";

/// The import route.
const ROUTE: &str = "public/organization/import";

/// A user the import carries.
struct Member {
    id: String,
    email: String,
    active: bool,
    ext: String,
    /// What the vault was last sent for it.
    item: Item,
}

/// An import's body: `overwriteExisting` always false (nothing removed wholesale);
/// `largeImport` is Bitwarden's, ignored by Vaultwarden.
fn import_body(groups: Vec<Value>, members: Vec<Value>) -> Value {
    json!({"groups": groups, "members": members, "overwriteExisting": false, "largeImport": false})
}

impl Member {
    fn json(&self) -> Value {
        json!({"email": self.email, "externalId": self.ext, "deleted": !self.active})
    }

    /// Whether the vault has a member at this address from an earlier import.
    fn known(&self) -> bool {
        self.item
            .email
            .as_deref()
            .is_some_and(|e| e.to_lowercase() == self.email.to_lowercase())
    }
}

/// What one import is built from.
#[derive(Default)]
struct Plan {
    /// Users and groups, without what is sent only until an import carries it.
    body: Value,
    members: Vec<Member>,
    /// Users whose address the check before sending refuses: id, address, why, item.
    refused: Vec<(String, String, &'static str, Item)>,
    /// Users whose address changed since the vault last had them: id, old address.
    replaced: Vec<(String, String)>,
    /// Groups: id, externalId, name, and what the vault was last sent.
    groups: Vec<(String, String, String, Item)>,
    /// Users deleted in SCIM and replaced addresses: address, externalId.
    tombs: Vec<(String, String)>,
    /// Groups deleted in SCIM: externalId, name.
    emptied: Vec<(String, String)>,
}

impl Plan {
    /// What an import is compared by: the state, the tombstones and the emptied groups.
    fn digest(&self, tombs: &[(String, String)], emptied: &[(String, String)]) -> String {
        digest(&json!([self.body, tombs, emptied]))
    }

    /// The body sent: tombstones no import carried yet as deleted members, emptied groups
    /// with no members.
    fn payload(&self, meta: &Meta) -> Value {
        let mut body = self.body.clone();
        if let Some(Value::Array(members)) = body.get_mut("members") {
            for (email, ext) in self
                .tombs
                .iter()
                .filter(|(e, _)| !meta.removed_sent.contains(e))
            {
                members.push(json!({"email": email, "externalId": ext, "deleted": true}));
            }
        }
        if let Some(Value::Array(groups)) = body.get_mut("groups") {
            for (ext, name) in &self.emptied {
                groups.push(json!({"name": name, "externalId": ext, "memberExternalIds": []}));
            }
        }
        body
    }
}

impl Drain<'_, '_> {
    /// Sends the import when the outbox holds anything (or `force`), the state differs
    /// from the last import, and the debounce allows. `retry`: members the vault refused
    /// are tried again before their backoff is over (a reconcile).
    pub(super) fn vaultwarden(&mut self, force: bool, retry: bool) -> Result<(), Fail> {
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
            let r = self.conn.call("POST", ROUTE, Some(&plan.payload(&meta)))?;
            if r.status == 200 {
                break self.imported(&plan, &mut meta)?;
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
            self.report.errors.push(m.clone());
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

    /// The import as the organization stands in `svc` (read through `store`). A user is
    /// left out while its address is refused: by the check before sending, or by the
    /// vault until its retry is due (unless `retry`), or set aside by this drain (`skip`).
    fn plan(
        &self,
        svc: &Service<'_>,
        store: &dyn Store,
        meta: &Meta,
        retry: bool,
        skip: &HashSet<String>,
    ) -> Result<Plan, Fail> {
        let now = self.conn.now();
        let mut plan = Plan::default();
        let mut members = Vec::new();
        let mut ext_of = HashMap::new();
        let mut present = HashSet::new();
        let ids = svc.ids_of(ResourceKind::User).map_err(store_fail)?;
        for chunk in ids.chunks(100) {
            svc.prefetch_wants(ResourceKind::User, chunk.iter().map(String::as_str));
            let keys: Vec<String> = chunk
                .iter()
                .map(|id| self.keys.item(Kind::User, id))
                .collect();
            store.prefetch(&keys);
            for (id, key) in chunk.iter().zip(&keys) {
                let Some(w) = svc.user_want(id).map_err(store_fail)? else {
                    continue;
                };
                let item: Item = load(store, key).map_err(store_fail)?;
                let email = w.email.to_lowercase();
                present.insert(email.clone());
                if let Some(old) = item.email.as_deref().map(str::to_lowercase) {
                    if old != email {
                        plan.replaced.push((id.clone(), old));
                    }
                }
                if w.active {
                    if let Some(why) = refusal(VaultKind::Vaultwarden, &w.email) {
                        plan.refused.push((id.clone(), email, why, item));
                        continue;
                    }
                    let held = item.refused.as_deref() == Some(email.as_str())
                        && !retry
                        && (item.attempts >= self.cfg.max_attempts || item.next_at > now);
                    if held || skip.contains(id) {
                        continue;
                    }
                }
                let m = Member {
                    id: id.clone(),
                    ext: w.external_id.clone().unwrap_or_else(|| id.clone()),
                    email: w.email,
                    active: w.active,
                    item,
                };
                members.push(m.json());
                ext_of.insert(m.id.clone(), m.ext.clone());
                plan.members.push(m);
            }
        }
        let mut groups = Vec::new();
        if self.cfg.groups {
            let ids = svc.ids_of(ResourceKind::Group).map_err(store_fail)?;
            for chunk in ids.chunks(100) {
                let keys: Vec<String> = chunk
                    .iter()
                    .map(|id| self.keys.item(Kind::Group, id))
                    .collect();
                store.prefetch(&keys);
                for (id, key) in chunk.iter().zip(&keys) {
                    let Some(g) = svc.group_want(id).map_err(store_fail)? else {
                        continue;
                    };
                    let ext = g.external_id.clone().unwrap_or_else(|| id.clone());
                    let member_ext: Vec<&String> =
                        g.members.iter().filter_map(|m| ext_of.get(m)).collect();
                    groups.push(
                        json!({"name": g.name, "externalId": ext, "memberExternalIds": member_ext}),
                    );
                    let item: Item = load(store, key).map_err(store_fail)?;
                    plan.groups.push((id.clone(), ext, g.name, item));
                }
            }
        }
        plan.tombs = meta
            .removed
            .iter()
            .filter(|(email, _)| !present.contains(*email))
            .map(|(e, x)| (e.clone(), x.clone().unwrap_or_default()))
            .collect();
        let exts: HashSet<&str> = plan.groups.iter().map(|g| g.1.as_str()).collect();
        plan.emptied = meta
            .emptied
            .iter()
            .filter(|(x, _)| !exts.contains(x.as_str()))
            .map(|(x, n)| (x.clone(), n.clone()))
            .collect();
        plan.body = import_body(groups, members);
        Ok(plan)
    }

    /// Records what the plan found before anything is sent: refused addresses on their
    /// users (parked, with the reason), replaced addresses as tombstones; `true` when
    /// there were replaced addresses.
    fn record(&mut self, plan: &Plan, meta: &mut Meta) -> Result<bool, Fail> {
        let store = self.conn.store();
        for (id, email, why, item) in &plan.refused {
            let m = format!("the vault would refuse this address: {why}");
            if item.parked && item.error.as_deref() == Some(m.as_str()) {
                continue;
            }
            let next = Item {
                refused: Some(email.clone()),
                error: Some(m.clone()),
                parked: true,
                attempts: 0,
                next_at: 0,
                ..item.clone()
            };
            save(store, &self.keys.item(Kind::User, id), &next).map_err(store_fail)?;
            let e = entry(Kind::User, id);
            self.park(&e, &m).map_err(store_fail)?;
            self.report.errors.push(format!("{e}: {m}"));
        }
        if plan.replaced.is_empty() {
            return Ok(false);
        }
        for (_, old) in &plan.replaced {
            meta.removed_sent.remove(old);
            meta.removed.insert(old.clone(), Some(String::new()));
        }
        // The old addresses are in the delivery state before their users forget them.
        save(store, &self.keys.meta(), meta).map_err(store_fail)?;
        for (id, _) in &plan.replaced {
            let key = self.keys.item(Kind::User, id);
            let mut item: Item = load(store, &key).map_err(store_fail)?;
            item.email = None;
            save(store, &key, &item).map_err(store_fail)?;
        }
        Ok(true)
    }

    /// The member whose refusal stopped the import: the one new member the vault's
    /// message names, else the first new member that an import of new members alone
    /// stops at (found by halves). `None` when no single member is at fault.
    fn culprit(&mut self, plan: &Plan, message: &str) -> Result<Option<usize>, Fail> {
        // Only a member the vault has to add can fail on its own.
        let new: Vec<usize> = (0..plan.members.len())
            .filter(|&i| plan.members[i].active && !plan.members[i].known())
            .collect();
        let message = message.to_lowercase();
        let named: Vec<usize> = new
            .iter()
            .copied()
            .filter(|&i| {
                let email = plan.members[i].email.to_lowercase();
                message.split(' ').any(|w| w == email)
            })
            .collect();
        if let [i] = named[..] {
            return Ok(Some(i));
        }
        let mut refused = |n: usize| -> Result<bool, Fail> {
            let members: Vec<Value> = new[..n].iter().map(|&i| plan.members[i].json()).collect();
            let body = import_body(Vec::new(), members);
            Ok(self.conn.call("POST", ROUTE, Some(&body))?.status == 400)
        };
        if new.is_empty() || !refused(new.len())? {
            return Ok(None);
        }
        // The first `ok` new members import, the first `bad` do not.
        let (mut ok, mut bad) = (0, new.len());
        while bad - ok > 1 {
            let mid = (ok + bad) / 2;
            if refused(mid)? {
                bad = mid;
            } else {
                ok = mid;
            }
        }
        Ok(Some(new[bad - 1]))
    }

    /// Leaves a member the vault refused out of imports, parked with the vault's words,
    /// until its address changes or its retry (with backoff) is due.
    fn set_aside(&mut self, m: &Member, message: &str) -> Result<(), Fail> {
        let store = self.conn.store();
        let key = self.keys.item(Kind::User, &m.id);
        let mut item: Item = load(store, &key).map_err(store_fail)?;
        item.attempts += 1;
        item.refused = Some(m.email.to_lowercase());
        item.error = Some(message.to_string());
        item.parked = true;
        item.next_at = self.conn.now() + backoff_ms(self.cfg.retry_ms, item.attempts);
        save(store, &key, &item).map_err(store_fail)?;
        let e = entry(Kind::User, &m.id);
        self.park(&e, message).map_err(store_fail)?;
        self.report.errors.push(format!("{e}: {message}"));
        Ok(())
    }

    /// Records a delivered import: each member's status as far as an import tells it
    /// (Vaultwarden invites, or with mail off accepts, new members and revokes deleted
    /// ones), each group's externalId and name, and which tombstones are done. Returns
    /// the digest the next import is compared with.
    fn imported(&mut self, plan: &Plan, meta: &mut Meta) -> Result<String, Fail> {
        meta.import_failures = 0;
        meta.import_next = 0;
        self.unpark(IMPORT).map_err(store_fail)?;
        self.report.sent += 1;
        let store = self.conn.store();
        let mut writes = Vec::new();
        for m in &plan.members {
            let key = self.keys.item(Kind::User, &m.id);
            let item: Item = load(store, &key).map_err(store_fail)?;
            let status = if m.active { "invited" } else { "revoked" };
            let keep = item
                .status
                .as_deref()
                .filter(|s| m.active && *s != "revoked")
                .map(str::to_string);
            if item.parked {
                self.unpark(&entry(Kind::User, &m.id)).map_err(store_fail)?;
            }
            let next = Item {
                status: Some(keep.unwrap_or_else(|| status.to_string())),
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
            .map_err(|e| Fail::Transient(e.to_string()))?;
        for chunk in bytes.chunks(100) {
            store.set_many(chunk).map_err(|e| store_fail(e.into()))?;
        }
        // Tombstones an earlier import carried are forgotten; this one's are left out
        // of the next. Emptied groups are done.
        for e in std::mem::take(&mut meta.removed_sent) {
            meta.removed.remove(&e);
        }
        meta.removed_sent = meta.removed.keys().cloned().collect();
        for (ext, _) in &plan.emptied {
            meta.emptied.remove(ext);
        }
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
