//! Vaultwarden: the organization's whole state in one `POST public/organization/import`,
//! keyed by email, sent only when it differs from the last import and at most once per
//! `debounce_ms`. Deactivated users go as `deleted: true` (Vaultwarden revokes them;
//! present again, it restores them); a user deleted in SCIM is sent as deleted until an
//! import carrying it succeeds (absent from an import, a revoked member stays revoked).
//! `overwriteExisting` is always false: nothing is removed wholesale.

use super::conn::{store_fail, Fail};
use super::drain::Drain;
use super::state::{digest, load, parse_entry, save, Item, Kind, Meta};
use crate::log::always_live;
use crate::schema::ResourceKind;
use serde_json::{json, Value};

/// The parked entry of an import Vaultwarden keeps refusing.
const IMPORT: &str = "import";

/// A user in an import: id, email, active, externalId.
type Imported = (String, String, bool, String);

/// A user deleted in SCIM, sent as deleted: email, externalId.
type Tomb = (String, Option<String>);

impl Drain<'_, '_> {
    /// Sends the import when the outbox holds anything (or `force`), the state differs
    /// from the last import, and the debounce allows.
    pub(super) fn vaultwarden(&mut self, force: bool) -> Result<(), Fail> {
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
        // Users deleted since the last import stay in it as deleted.
        for e in &page.entries {
            if let Some((Kind::User, id)) = parse_entry(&e.id) {
                if self.svc.user_want(id).map_err(store_fail)?.is_none() {
                    let item: Item =
                        load(store, &self.keys.item(Kind::User, id)).map_err(store_fail)?;
                    if let Some(email) = item.email {
                        let email = email.to_lowercase();
                        meta.removed_sent.remove(&email);
                        meta.removed.insert(email, item.ext.clone());
                    }
                }
            }
        }
        let (present, users, tombs) = self.import_payload(self.svc, &meta)?;
        let mut d = state_digest(&present, &tombs);
        if meta.import_digest.as_deref() != Some(d.as_str()) {
            let mut payload = present.clone();
            if let Some(Value::Array(members)) = payload.get_mut("members") {
                for (email, ext) in tombs.iter().filter(|(e, _)| !meta.removed_sent.contains(e)) {
                    members.push(json!({"email": email, "externalId": ext, "deleted": true}));
                }
            }
            let r = self
                .conn
                .call("POST", "public/organization/import", Some(&payload))?;
            if r.status != 200 {
                // Refused: retried with backoff, and shown as parked once it keeps failing.
                let m = format!("import refused ({}): {}", r.status, r.message());
                self.report.errors.push(m.clone());
                meta.import_at = now;
                meta.import_failures += 1;
                meta.import_next =
                    now + super::drain::backoff_ms(self.cfg.retry_ms, meta.import_failures);
                if meta.import_failures >= self.cfg.max_attempts {
                    self.park(IMPORT, &m).map_err(store_fail)?;
                }
                return save(store, &self.keys.meta(), &meta).map_err(store_fail);
            }
            meta.import_failures = 0;
            meta.import_next = 0;
            self.unpark(IMPORT).map_err(store_fail)?;
            self.report.sent += 1;
            // Statuses as far as an import tells them: Vaultwarden invites (or, with mail
            // off, accepts) new members and revokes deleted ones.
            let mut writes = Vec::new();
            for (id, email, active, ext) in &users {
                let key = self.keys.item(Kind::User, id);
                let mut item: Item = load(store, &key).map_err(store_fail)?;
                let status = if *active { "invited" } else { "revoked" };
                let keep = item
                    .status
                    .as_deref()
                    .filter(|s| *active && *s != "revoked")
                    .map(str::to_string);
                let next = Item {
                    status: Some(keep.unwrap_or_else(|| status.to_string())),
                    email: Some(email.clone()),
                    ext: Some(ext.clone()),
                    active: Some(*active),
                    ..item.clone()
                };
                if next != item {
                    item = next;
                    let bytes =
                        serde_json::to_vec(&item).map_err(|e| Fail::Transient(e.to_string()))?;
                    writes.push((key, bytes));
                }
            }
            for chunk in writes.chunks(100) {
                store.set_many(chunk).map_err(|e| store_fail(e.into()))?;
            }
            // Tombstones an earlier import carried are forgotten; this one's are left
            // out of the next.
            for e in std::mem::take(&mut meta.removed_sent) {
                meta.removed.remove(&e);
            }
            meta.removed_sent = meta.removed.keys().cloned().collect();
            let kept: Vec<_> = tombs
                .into_iter()
                .filter(|(e, _)| meta.removed.contains_key(e))
                .collect();
            d = state_digest(&present, &kept);
            meta.import_digest = Some(d.clone());
        }
        meta.import_at = now;
        save(store, &self.keys.meta(), &meta).map_err(store_fail)?;
        for e in &page.entries {
            self.svc.outbox_remove(&e.id).map_err(store_fail)?;
        }
        // Changes made while the import was built are marked again.
        let fresh_store = crate::cache::Cached::new(self.raw);
        let fresh = self.svc.over(&fresh_store);
        let (again, _, tombs) = self.import_payload(&fresh, &meta)?;
        if state_digest(&again, &tombs) != d {
            for e in &page.entries {
                self.svc.outbox_add(&e.id).map_err(store_fail)?;
            }
        }
        Ok(())
    }

    /// The import body without tombstones, each user's (id, email, active, externalId),
    /// and the tombstones: users deleted in SCIM whose email no user has now.
    fn import_payload(
        &self,
        svc: &crate::service::Service<'_>,
        meta: &Meta,
    ) -> Result<(Value, Vec<Imported>, Vec<Tomb>), Fail> {
        let ids = svc.ids_of(ResourceKind::User).map_err(store_fail)?;
        let mut members = Vec::with_capacity(ids.len());
        let mut users = Vec::with_capacity(ids.len());
        let mut ext_of = std::collections::HashMap::new();
        for chunk in ids.chunks(100) {
            svc.prefetch_wants(ResourceKind::User, chunk.iter().map(String::as_str));
            for id in chunk {
                let Some(w) = svc.user_want(id).map_err(store_fail)? else {
                    continue;
                };
                let ext = w.external_id.clone().unwrap_or_else(|| id.clone());
                members.push(json!({"email": w.email, "externalId": ext, "deleted": !w.active}));
                ext_of.insert(id.clone(), ext.clone());
                users.push((id.clone(), w.email.clone(), w.active, ext));
            }
        }
        let present: std::collections::HashSet<String> =
            users.iter().map(|(_, e, _, _)| e.to_lowercase()).collect();
        let tombs: Vec<Tomb> = meta
            .removed
            .iter()
            .filter(|(email, _)| !present.contains(*email))
            .map(|(e, x)| (e.clone(), x.clone()))
            .collect();
        let mut groups = Vec::new();
        if self.cfg.groups {
            for id in svc.ids_of(ResourceKind::Group).map_err(store_fail)? {
                let Some(g) = svc.group_want(&id).map_err(store_fail)? else {
                    continue;
                };
                let member_ext: Vec<&String> =
                    g.members.iter().filter_map(|m| ext_of.get(m)).collect();
                groups.push(json!({
                    "name": g.name,
                    "externalId": g.external_id.clone().unwrap_or_else(|| id.clone()),
                    "memberExternalIds": member_ext,
                }));
            }
        }
        Ok((
            json!({"groups": groups, "members": members, "overwriteExisting": false, "largeImport": false}),
            users,
            tombs,
        ))
    }
}

/// What an import is compared by: the organization's state and its tombstones.
fn state_digest(payload: &Value, tombs: &[Tomb]) -> String {
    digest(&json!([payload, tombs]))
}
