//! Adoption and drift (Bitwarden): the vault's members and groups are listed and linked
//! to SCIM resources (externalId, then case-insensitive email; groups by externalId).
//! Owners and admins are linked but never changed. What an administrator changed in
//! the vault by hand is reported, and healed when the identity provider is the source
//! of truth (`heal`): a member revoked by hand is restored, one removed is invited again,
//! a group renamed by hand is named back, members taken out of a group are put back.

use super::api::{Api, ApiGroup, ApiMember};
use super::bitwarden::found;
use super::conn::{store_fail, Fail};
use super::drain::Drain;
use super::problem::Problem;
use crate::delivery::{entry, group_digest, load, save, Item, Kind, Meta, Source};
use crate::member_status::MemberStatus;
use crate::schema::ResourceKind;
use std::collections::HashMap;

/// Groups whose members one reconcile reads from the vault (a call each); the next
/// reconcile goes on from there.
const GROUP_CHECKS: usize = 20;

impl Drain<'_, '_> {
    /// Lists the vault and links, reports drift, and marks what needs delivering.
    pub(super) fn reconcile(&mut self) -> Result<(), Fail> {
        self.conn.serving = Some("reconcile".into());
        let listed_at = self.conn.now();
        let members: Vec<ApiMember> = self.conn.api_list(Api::Members)?;
        let mut by_ext: HashMap<&str, &ApiMember> = HashMap::new();
        let mut by_email: HashMap<String, &ApiMember> = HashMap::new();
        let mut by_id: HashMap<&str, &ApiMember> = HashMap::new();
        for m in &members {
            if let Some(e) = &m.external_id {
                by_ext.insert(e, m);
            }
            if let Some(e) = &m.email {
                by_email.insert(e.to_lowercase(), m);
            }
            by_id.insert(&m.id, m);
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
                let ext = w.ext(id);
                let vault = match &item.vid {
                    Some(v) => by_id.get(v.as_str()).copied(),
                    None => by_ext
                        .get(ext)
                        .or_else(|| by_email.get(&w.email.to_lowercase()))
                        .copied(),
                };
                match (vault.map(found), item.vid.is_some()) {
                    (Some(m), _) => {
                        item.email = Some(w.email.clone());
                        let vault_active = m.status != MemberStatus::Revoked;
                        if before.vid.is_some()
                            && item.active == Some(true)
                            && !vault_active
                            && w.active
                        {
                            self.drift(Kind::User, id, &w.email, "revoked in the vault by hand");
                        }
                        if before.vid.is_some()
                            && item.active == Some(false)
                            && vault_active
                            && !w.active
                        {
                            self.drift(Kind::User, id, &w.email, "restored in the vault by hand");
                        }
                        self.link(id, &mut item, &m, Source::Reconcile, listed_at)?;
                    }
                    // Linked by a drain after the listing: not drift.
                    (None, true) if item.linked_at >= listed_at => {}
                    (None, true) => {
                        self.drift(Kind::User, id, &w.email, "removed from the vault by hand");
                        self.unlink(id, &mut item, Source::Reconcile, listed_at)?;
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
        let mut meta: Meta = load(store, &self.keys.meta()).map_err(store_fail)?;
        if self.cfg.groups {
            self.reconcile_groups(&mut meta)?;
        }
        meta.adopted_at = self.conn.now();
        save(store, &self.keys.meta(), &meta).map_err(store_fail)
    }

    /// Links groups by externalId, finds groups renamed by hand, and checks the members
    /// of a few groups, in turn from where the last reconcile stopped (reading a group's
    /// members costs a call each).
    fn reconcile_groups(&mut self, meta: &mut Meta) -> Result<(), Fail> {
        let store = self.conn.store();
        let groups: Vec<ApiGroup> = self.conn.api_list(Api::Groups)?;
        let listed: HashMap<&str, (&str, &str)> = groups
            .iter()
            .filter_map(|g| Some((g.external_id.as_deref()?, (g.id.as_str(), g.name.as_str()))))
            .collect();
        let mut ids = self.svc.ids_of(ResourceKind::Group).map_err(store_fail)?;
        ids.sort();
        for id in &ids {
            let Some(g) = self.svc.group_want(id).map_err(store_fail)? else {
                continue;
            };
            let key = self.keys.item(Kind::Group, id);
            let mut item: Item = load(store, &key).map_err(store_fail)?;
            let before = item.clone();
            let ext = g.ext(id);
            let found = listed.get(ext).copied();
            let linked = found.map(|(vid, _)| vid.to_string());
            if item.vid != linked {
                if item.vid.is_some() && linked.is_none() {
                    let who = format!("group {}", g.name);
                    self.drift(Kind::Group, id, &who, "removed from the vault by hand");
                }
                item.vid = linked;
                item.sent = None;
                item.members = None;
            } else if let Some((_, name)) = found {
                // Delivered as SCIM has it, yet the vault's name differs.
                let named = |n: &str| Some(group_digest(n, ext));
                if item.sent == named(&g.name) && item.sent != named(name) {
                    let who = format!("group {}", g.name);
                    let what = format!("renamed to {name} in the vault by hand");
                    self.report.drift.push(Problem::Drift {
                        entry: entry(Kind::Group, id),
                        text: format!("{who}: {what}"),
                        kind: "renamed in the vault by hand",
                    });
                    if self.cfg.heal {
                        item.sent = None;
                    }
                }
            }
            if item != before {
                save(store, &key, &item).map_err(store_fail)?;
            }
            // Membership is compared on delivery: every group is checked.
            self.svc.mark(ResourceKind::Group, id).map_err(store_fail)?;
        }
        let start = ids.partition_point(|i| *i <= meta.group_cursor);
        let mut checked = 0;
        let mut whole = true;
        for id in ids[start..].iter().chain(&ids[..start]) {
            if checked == GROUP_CHECKS || !self.conn.has_budget() {
                whole = false;
                break;
            }
            let key = self.keys.item(Kind::Group, id);
            let mut item: Item = load(store, &key).map_err(store_fail)?;
            let Some(vid) = item.vid.clone().filter(|_| item.members.is_some()) else {
                continue;
            };
            checked += 1;
            meta.group_cursor = id.clone();
            let a = self.conn.api(Api::GroupMembers(&vid))?;
            let Some(current) = a.read::<Vec<String>>() else {
                continue;
            };
            let gone = item
                .member_vids
                .iter()
                .filter(|m| !current.contains(m))
                .count();
            if gone > 0 {
                let name = self
                    .svc
                    .group_want(id)
                    .map_err(store_fail)?
                    .map_or_else(|| id.clone(), |g| g.name);
                self.report.drift.push(Problem::Drift {
                    entry: entry(Kind::Group, id),
                    text: format!(
                        "group {name}: {gone} member(s) removed from it in the vault by hand"
                    ),
                    kind: "members removed from it in the vault by hand",
                });
                if self.cfg.heal {
                    item.members = None;
                    save(store, &key, &item).map_err(store_fail)?;
                }
            }
        }
        if whole {
            // Every group was checked: the next reconcile starts over.
            meta.group_cursor = String::new();
        }
        Ok(())
    }

    /// Records drift on a resource: `who` names it for the operator, `what` says what
    /// happened without naming anyone.
    fn drift(&mut self, kind: Kind, id: &str, who: &str, what: &'static str) {
        self.report.drift.push(Problem::Drift {
            entry: entry(kind, id),
            text: format!("{who}: {what}"),
            kind: what,
        });
    }
}
