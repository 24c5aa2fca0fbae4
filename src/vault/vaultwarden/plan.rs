//! What one import carries, built from the SCIM state and what the vault was last sent,
//! and what building it found (refused and replaced addresses) recorded before sending.

use crate::config::vault::VaultKind;
use crate::delivery::{digest, entry, load, save, Item, Kind, Meta};
use crate::schema::ResourceKind;
use crate::service::Service;
use crate::store::Store;
use crate::vault::address::refused;
use crate::vault::conn::{store_fail, Fail};
use crate::vault::drain::Drain;
use crate::vault::problem::Problem;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// A user the import carries.
pub(super) struct Member {
    pub(super) id: String,
    pub(super) email: String,
    pub(super) active: bool,
    pub(super) ext: String,
    /// What the vault was last sent for it.
    pub(super) item: Item,
}

/// An import's body: `overwriteExisting` always false (nothing removed wholesale);
/// `largeImport` is Bitwarden's, ignored by Vaultwarden.
pub(super) fn import_body(groups: Vec<Value>, members: Vec<Value>) -> Value {
    json!({"groups": groups, "members": members, "overwriteExisting": false, "largeImport": false})
}

impl Member {
    pub(super) fn json(&self) -> Value {
        json!({"email": self.email, "externalId": self.ext, "deleted": !self.active})
    }

    /// Whether the vault has a member at this address from an earlier import.
    pub(super) fn known(&self) -> bool {
        self.item
            .email
            .as_deref()
            .is_some_and(|e| e.to_lowercase() == self.email.to_lowercase())
    }
}

/// What one import is built from.
#[derive(Default)]
pub(super) struct Plan {
    /// Users and groups, without what is sent only until an import carries it.
    pub(super) body: Value,
    pub(super) members: Vec<Member>,
    /// Users whose address the check before sending refuses: id, address, why, item.
    pub(super) refused: Vec<(String, String, String, Item)>,
    /// Users whose address changed since the vault last had them: id, old address.
    pub(super) replaced: Vec<(String, String)>,
    /// Groups: id, externalId, name, and what the vault was last sent.
    pub(super) groups: Vec<(String, String, String, Item)>,
    /// Users deleted in SCIM and replaced addresses: address, externalId.
    pub(super) tombs: Vec<(String, String)>,
    /// Groups deleted in SCIM: externalId, name.
    pub(super) emptied: Vec<(String, String)>,
}

impl Plan {
    /// What an import is compared by: the state, the tombstones and the emptied groups.
    pub(super) fn digest(
        &self,
        tombs: &[(String, String)],
        emptied: &[(String, String)],
    ) -> String {
        digest(&json!([self.body, tombs, emptied]))
    }

    /// The body sent: tombstones no import carried yet as deleted members, emptied groups
    /// with no members.
    pub(super) fn payload(&self, meta: &Meta) -> Value {
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
    /// The import as the organization stands in `svc` (read through `store`). A user is
    /// left out while its address is refused: by the check before sending, or by the
    /// vault until its retry is due (unless `retry`), or set aside by this drain (`skip`).
    pub(super) fn plan(
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
            let keys = self.prefetch_items(store, Kind::User, chunk);
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
                    if let Some(why) = refused(VaultKind::Vaultwarden, &w.email) {
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
                    ext: w.ext(id).to_string(),
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
                let keys = self.prefetch_items(store, Kind::Group, chunk);
                for (id, key) in chunk.iter().zip(&keys) {
                    let Some(g) = svc.group_want(id).map_err(store_fail)? else {
                        continue;
                    };
                    let ext = g.ext(id).to_string();
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

    /// The item keys of these resources, read in one batch; users' observations in the
    /// same batch (a delivered import reads them).
    fn prefetch_items(&self, store: &dyn Store, kind: Kind, ids: &[String]) -> Vec<String> {
        let keys: Vec<String> = ids.iter().map(|id| self.keys.item(kind, id)).collect();
        let mut all = keys.clone();
        if kind == Kind::User {
            all.extend(ids.iter().map(|id| self.keys.observed(id)));
        }
        store.prefetch(&all);
        keys
    }

    /// Records what the plan found before anything is sent: refused addresses on their
    /// users (parked, with the reason), replaced addresses as tombstones; `true` when
    /// there were replaced addresses.
    pub(super) fn record(&mut self, plan: &Plan, meta: &mut Meta) -> Result<bool, Fail> {
        let store = self.conn.store();
        for (id, email, m, item) in &plan.refused {
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
            self.park(&e, m).map_err(store_fail)?;
            self.report.errors.push(Problem::Refused {
                entry: e,
                message: m.clone(),
            });
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
}
