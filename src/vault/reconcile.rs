//! Adoption and drift (Bitwarden): the vault's members and groups are listed and linked
//! to SCIM resources (externalId, then case-insensitive email; groups by externalId).
//! Owners and admins are linked but never changed. What an administrator changed in
//! the vault by hand is reported, and healed when the identity provider is the source
//! of truth (`heal`): a member revoked by hand is restored, one removed is invited again.

use super::bitwarden::status_name;
use super::conn::{store_fail, Fail};
use super::drain::Drain;
use super::state::{load, save, Item, Kind, Meta};
use crate::schema::ResourceKind;
use serde_json::Value;
use std::collections::HashMap;

impl Drain<'_, '_> {
    /// Lists the vault and links, reports drift, and marks what needs delivering.
    pub(super) fn reconcile(&mut self) -> Result<(), Fail> {
        let listed_at = self.conn.now();
        let members = self.list("public/members")?;
        let mut by_ext: HashMap<String, &Value> = HashMap::new();
        let mut by_email: HashMap<String, &Value> = HashMap::new();
        let mut by_id: HashMap<String, &Value> = HashMap::new();
        for m in &members {
            let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
            if let Some(e) = s("externalId") {
                by_ext.insert(e, m);
            }
            if let Some(e) = s("email") {
                by_email.insert(e.to_lowercase(), m);
            }
            if let Some(i) = s("id") {
                by_id.insert(i, m);
            }
        }
        let store = self.conn.store();
        let users = self.svc.ids_of(ResourceKind::User).map_err(store_fail)?;
        for chunk in users.chunks(100) {
            self.svc
                .prefetch_wants(ResourceKind::User, chunk.iter().map(String::as_str));
            for id in chunk {
                let Some(w) = self.svc.user_want(id).map_err(store_fail)? else {
                    continue;
                };
                let key = self.keys.item(Kind::User, id);
                let mut item: Item = load(store, &key).map_err(store_fail)?;
                let before = item.clone();
                let ext = w.external_id.clone().unwrap_or_else(|| id.clone());
                let vault = match &item.vid {
                    Some(v) => by_id.get(v).copied(),
                    None => by_ext
                        .get(&ext)
                        .or_else(|| by_email.get(&w.email.to_lowercase()))
                        .copied(),
                };
                match (vault, item.vid.is_some()) {
                    (Some(m), _) => {
                        let status = m.get("status").and_then(Value::as_i64).unwrap_or(0);
                        if item.vid.is_none() {
                            item.linked_at = self.conn.now();
                        }
                        item.vid = m.get("id").and_then(Value::as_str).map(str::to_string);
                        item.protected =
                            matches!(m.get("type").and_then(Value::as_i64), Some(0 | 1));
                        item.status = Some(status_name(status).into());
                        item.email = Some(w.email.clone());
                        let vault_active = status != -1;
                        if before.vid.is_some()
                            && item.active == Some(true)
                            && !vault_active
                            && w.active
                        {
                            self.report
                                .drift
                                .push(format!("{}: revoked in the vault by hand", w.email));
                        }
                        if before.vid.is_some()
                            && item.active == Some(false)
                            && vault_active
                            && !w.active
                        {
                            self.report
                                .drift
                                .push(format!("{}: restored in the vault by hand", w.email));
                        }
                        item.active = Some(vault_active);
                    }
                    // Linked by a drain after the listing: not drift.
                    (None, true) if item.linked_at >= listed_at => {}
                    (None, true) => {
                        self.report
                            .drift
                            .push(format!("{}: removed from the vault by hand", w.email));
                        item.vid = None;
                        item.active = None;
                        item.status = None;
                        item.claim_at = 0;
                    }
                    (None, false) => {}
                }
                let needs =
                    !item.protected && (item.vid.is_none() || item.active != Some(w.active));
                if needs && (self.cfg.heal || before.vid.is_none()) {
                    item.sent = None;
                    self.svc.mark(ResourceKind::User, id).map_err(store_fail)?;
                }
                if item != before {
                    save(store, &key, &item).map_err(store_fail)?;
                }
            }
        }
        if self.cfg.groups {
            let groups = self.list("public/groups")?;
            let by_ext: HashMap<&str, &str> = groups
                .iter()
                .filter_map(|g| Some((g.get("externalId")?.as_str()?, g.get("id")?.as_str()?)))
                .collect();
            for id in self.svc.ids_of(ResourceKind::Group).map_err(store_fail)? {
                let Some(g) = self.svc.group_want(&id).map_err(store_fail)? else {
                    continue;
                };
                let key = self.keys.item(Kind::Group, &id);
                let mut item: Item = load(store, &key).map_err(store_fail)?;
                let ext = g.external_id.clone().unwrap_or_else(|| id.clone());
                let linked = by_ext.get(ext.as_str()).map(|s| s.to_string());
                if item.vid != linked {
                    if item.vid.is_some() && linked.is_none() {
                        self.report
                            .drift
                            .push(format!("group {}: removed from the vault by hand", g.name));
                    }
                    item.vid = linked;
                    item.sent = None;
                    item.members = None;
                    save(store, &key, &item).map_err(store_fail)?;
                }
                // Membership is compared on delivery: every group is checked.
                self.svc
                    .mark(ResourceKind::Group, &id)
                    .map_err(store_fail)?;
            }
        }
        let mut meta: Meta = load(store, &self.keys.meta()).map_err(store_fail)?;
        meta.adopted_at = self.conn.now();
        save(store, &self.keys.meta(), &meta).map_err(store_fail)
    }
}
