//! Group membership: a marker per (group, user) and two logs, the group's members and
//! the user's groups, kept in step. PATCH operations on `members` become a plan of
//! changes here, validated before anything is written.

use super::layout::CollectionName;
use super::record::str_of;
use super::Service;
use crate::collection::{always_live, Collection};
use crate::error::{ErrorKind, Result, ScimError};
use crate::filter::{self, Filter};
use crate::ids::parse_uuid;
use crate::patch::{self, Op, PatchOp};
use crate::schema::ResourceKind;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};

impl<'a> Service<'a> {
    /// A user's `groups`: groups deleted since the add are dropped here, on read.
    pub(super) fn user_groups(&self, uid: &str) -> Result<Vec<Value>> {
        let ids = self.group_ids_of(uid)?;
        self.prefetch_records(ResourceKind::Group, ids.iter().map(String::as_str));
        let mut out = Vec::new();
        for id in ids {
            if let Some(g) = self.load(ResourceKind::Group, &id)? {
                let location = self.location(ResourceKind::Group, &id);
                out.push(json!({
                    "value": id,
                    "$ref": location,
                    "display": str_of(&g.doc, "displayName").unwrap_or(""),
                    "type": "direct",
                }));
            }
        }
        Ok(out)
    }

    /// A group's `members`, the member log's version and when it last changed.
    pub(super) fn members_of(&self, gid: &str) -> Result<(Vec<Value>, i64, i64)> {
        let page = self
            .collection(CollectionName::GroupMembers(gid))
            .all(self.now(), &always_live)?;
        let list = page
            .entries
            .into_iter()
            .map(|e| {
                let mut m = Map::with_capacity(4);
                m.insert("value".into(), Value::String(e.id.clone()));
                m.insert(
                    "$ref".into(),
                    Value::String(self.location(ResourceKind::User, &e.id)),
                );
                if let Some(d) = e.display {
                    m.insert("display".into(), Value::String(d));
                }
                m.insert("type".into(), Value::String("User".into()));
                Value::Object(m)
            })
            .collect();
        Ok((list, page.version, page.changed))
    }

    /// Adds a member unless it already is one. Ids that name no user of this
    /// organization are skipped (nothing dangling is stored).
    pub(super) fn add_member(&self, gid: &str, uid: &str, display: Option<&str>) -> Result<()> {
        let Some(uid) = parse_uuid(uid) else {
            return Ok(());
        };
        if self.store.exists(&self.keys().marker(gid, &uid))? {
            return Ok(());
        }
        let Some(user) = self.load(ResourceKind::User, &uid)? else {
            return Ok(());
        };
        let display = display.or_else(|| str_of(&user.doc, "userName"));
        self.mark(ResourceKind::Group, gid)?;
        let now = self.now();
        let gm = self.collection(CollectionName::GroupMembers(gid));
        let ug = self.collection(CollectionName::UserGroups(&uid));
        let slot = gm.allocate()?;
        let uslot = ug.allocate()?;
        // Both events and the marker in one batch.
        self.store.set_many(&[
            gm.add_event(slot, &uid, display, now)?,
            (self.keys().marker(gid, &uid), slot.to_string().into_bytes()),
            ug.add_event(uslot, gid, None, now)?,
        ])?;
        self.compact_if_due(&gm, slot)?;
        self.compact_if_due(&ug, uslot)
    }

    /// Removes a member; removing a non-member succeeds (Okta's stale links).
    pub(super) fn remove_member(&self, gid: &str, uid: &str) -> Result<()> {
        let Some(uid) = parse_uuid(uid) else {
            return Ok(());
        };
        let marker = self.keys().marker(gid, &uid);
        if !self.store.exists(&marker)? {
            return Ok(());
        }
        self.mark(ResourceKind::Group, gid)?;
        self.store.delete(&marker)?;
        let now = self.now();
        let gm = self.collection(CollectionName::GroupMembers(gid));
        let ug = self.collection(CollectionName::UserGroups(&uid));
        let slot = gm.allocate()?;
        let uslot = ug.allocate()?;
        self.store.set_many(&[
            gm.remove_event(slot, &uid, None, now)?,
            ug.remove_event(uslot, gid, None, now)?,
        ])?;
        self.compact_if_due(&gm, slot)?;
        self.compact_if_due(&ug, uslot)
    }

    /// Compacts a membership log when `slot`, just written, is due.
    pub(super) fn compact_if_due(&self, log: &Collection<'_>, slot: i64) -> Result<()> {
        if Collection::due(slot) {
            log.compact(self.now(), &always_live)?;
        }
        Ok(())
    }

    /// Splits `members` out of a Group document: (document, members as (id, display)).
    pub(super) fn split_members(
        doc: &mut Map<String, Value>,
    ) -> Option<Vec<(String, Option<String>)>> {
        let members = doc.remove("members")?;
        Some(member_list(&members))
    }

    /// The groups a user's log holds, by id (groups deleted since are still there).
    pub fn group_ids_of(&self, uid: &str) -> Result<Vec<String>> {
        let page = self
            .collection(CollectionName::UserGroups(uid))
            .all(self.now(), &always_live)?;
        Ok(page.entries.into_iter().map(|e| e.id).collect())
    }

    /// The members a group's log holds, by id.
    pub(super) fn current_members(&self, gid: &str) -> Result<Vec<String>> {
        let page = self
            .collection(CollectionName::GroupMembers(gid))
            .all(self.now(), &always_live)?;
        Ok(page.entries.into_iter().map(|e| e.id).collect())
    }

    /// Reads, in one batch, what adding or removing these users reads: the markers, the
    /// users' records, and the counters a store without atomics reads back.
    pub(super) fn prefetch_members<'i>(&self, gid: &str, uids: impl IntoIterator<Item = &'i str>) {
        self.store.prefetch(&self.member_keys(gid, uids));
    }

    /// The keys [`Service::prefetch_members`] reads.
    pub(super) fn member_keys<'i>(
        &self,
        gid: &str,
        uids: impl IntoIterator<Item = &'i str>,
    ) -> Vec<String> {
        let atomic = self.store.atomic();
        let mut keys = Vec::new();
        if !atomic {
            keys.push(
                self.collection(CollectionName::GroupMembers(gid))
                    .counter_key(),
            );
        }
        for uid in uids.into_iter().filter_map(parse_uuid) {
            keys.push(self.keys().marker(gid, &uid));
            keys.push(self.keys().record(ResourceKind::User, &uid));
            if !atomic {
                keys.push(
                    self.collection(CollectionName::UserGroups(&uid))
                        .counter_key(),
                );
            }
        }
        keys
    }

    /// Makes the member set exactly `target`.
    pub(super) fn set_members(&self, gid: &str, target: &[(String, Option<String>)]) -> Result<()> {
        let want: HashSet<String> = target.iter().filter_map(|(u, _)| parse_uuid(u)).collect();
        let current = self.current_members(gid)?;
        self.prefetch_members(
            gid,
            current
                .iter()
                .map(String::as_str)
                .chain(target.iter().map(|(u, _)| u.as_str())),
        );
        for uid in current {
            if !want.contains(&uid) {
                self.remove_member(gid, &uid)?;
            }
        }
        for (uid, display) in target {
            self.add_member(gid, uid, display.as_deref())?;
        }
        Ok(())
    }

    /// Applies a plan: adds and removes one by one, or, when a change replaces the set
    /// or removes by filter, the difference between the current and the folded list.
    pub(super) fn run_member_plan(&self, gid: &str, plan: Vec<MemberChange>) -> Result<()> {
        let needs_list = plan
            .iter()
            .any(|c| matches!(c, MemberChange::Set(_) | MemberChange::RemoveWhere(_)));
        if !needs_list {
            self.prefetch_members(gid, plan_ids(&plan));
            for c in plan {
                match c {
                    MemberChange::Add(list) => {
                        for (u, d) in list {
                            self.add_member(gid, &u, d.as_deref())?;
                        }
                    }
                    MemberChange::Remove(ids) => {
                        for u in ids {
                            self.remove_member(gid, &u)?;
                        }
                    }
                    MemberChange::Set(_) | MemberChange::RemoveWhere(_) => {}
                }
            }
            return Ok(());
        }
        // Fold the changes over the current list, then apply the difference.
        let (current, _, _) = self.members_of(gid)?;
        let mut state: BTreeMap<String, (Option<String>, usize)> = BTreeMap::new();
        for (i, m) in current.iter().enumerate() {
            if let Some(v) = m.get("value").and_then(Value::as_str) {
                state.insert(
                    v.to_string(),
                    (
                        m.get("display").and_then(Value::as_str).map(str::to_string),
                        i,
                    ),
                );
            }
        }
        let mut order = current.len();
        let member_def = ResourceKind::Group.core_attr("members");
        for c in plan {
            match c {
                MemberChange::Add(list) => {
                    for (u, d) in list {
                        if let Some(u) = parse_uuid(&u) {
                            order += 1;
                            state.entry(u).or_insert((d, order));
                        }
                    }
                }
                MemberChange::Remove(ids) => {
                    for u in ids {
                        if let Some(u) = parse_uuid(&u) {
                            state.remove(&u);
                        }
                    }
                }
                MemberChange::Set(list) => {
                    state.clear();
                    for (u, d) in list {
                        if let Some(u) = parse_uuid(&u) {
                            order += 1;
                            state.insert(u, (d, order));
                        }
                    }
                }
                MemberChange::RemoveWhere(f) => {
                    if let Some(def) = member_def {
                        state.retain(|u, (d, _)| {
                            let elem = json!({"value": u, "display": d, "type": "User", "$ref": self.location(ResourceKind::User, u)});
                            !f.matches_element(def, &elem)
                        });
                    }
                }
            }
        }
        let mut target: Vec<(String, (Option<String>, usize))> = state.into_iter().collect();
        target.sort_by_key(|(_, (_, i))| *i);
        let target: Vec<(String, Option<String>)> =
            target.into_iter().map(|(u, (d, _))| (u, d)).collect();
        self.set_members(gid, &target)
    }
}

/// Member entries of a `members` value: `(id, display)`.
fn member_list(v: &Value) -> Vec<(String, Option<String>)> {
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![v],
        _ => Vec::new(),
    };
    items
        .into_iter()
        .filter_map(|m| {
            let id = filter::get_ci(m, "value")?.as_str()?.to_string();
            let display = filter::get_ci(m, "display")
                .and_then(Value::as_str)
                .map(str::to_string);
            Some((id, display))
        })
        .collect()
}

/// The users a plan adds or removes by id.
pub(super) fn plan_ids(plan: &[MemberChange]) -> Vec<&str> {
    let mut out = Vec::new();
    for c in plan {
        match c {
            MemberChange::Add(list) | MemberChange::Set(list) => {
                out.extend(list.iter().map(|(u, _)| u.as_str()));
            }
            MemberChange::Remove(ids) => out.extend(ids.iter().map(String::as_str)),
            MemberChange::RemoveWhere(_) => {}
        }
    }
    out
}

/// A membership change requested by PATCH.
#[derive(Debug, Clone)]
pub(super) enum MemberChange {
    Add(Vec<(String, Option<String>)>),
    Remove(Vec<String>),
    Set(Vec<(String, Option<String>)>),
    RemoveWhere(Filter),
}

fn is_members_path(op: &PatchOp) -> bool {
    op.path.as_ref().is_some_and(|p| {
        p.attr.name.eq_ignore_ascii_case("members")
            && p.attr
                .urn
                .as_deref()
                .is_none_or(|u| u.eq_ignore_ascii_case(crate::schema::GROUP_URN))
    })
}

/// Routes one group operation to the document or to the membership plan.
pub(super) fn split_group_op(
    op: PatchOp,
    doc_ops: &mut Vec<PatchOp>,
    member_ops: &mut Vec<PatchOp>,
) -> Result<()> {
    if is_members_path(&op) {
        member_ops.push(op);
        return Ok(());
    }
    if op.path.is_none() {
        if let Some(Value::Object(values)) = &op.value {
            if let Some(k) = values
                .keys()
                .find(|k| k.eq_ignore_ascii_case("members"))
                .cloned()
            {
                let mut rest = values.clone();
                let members = rest.remove(&k).unwrap_or(Value::Null);
                member_ops.push(PatchOp {
                    op: op.op,
                    path: Some(filter::parse_patch_path("members")?),
                    value: Some(members),
                });
                if !rest.is_empty() {
                    doc_ops.push(PatchOp {
                        op: op.op,
                        path: None,
                        value: Some(Value::Object(rest)),
                    });
                }
                return Ok(());
            }
        }
    }
    doc_ops.push(op);
    Ok(())
}

pub(super) fn plan_members(ops: &[PatchOp]) -> Result<Vec<MemberChange>> {
    let mut plan = Vec::new();
    for op in ops {
        let Some(p) = &op.path else { continue };
        if p.attr.sub.is_some() || p.sub_after.is_some() {
            return Err(ScimError::new(
                ErrorKind::Mutability,
                "Group members are immutable: add or remove whole members",
            ));
        }
        let values = op.value.as_ref().map(member_list);
        if let Some(Value::Array(items)) = &op.value {
            for m in items {
                if !filter::get_ci(m, "value").is_some_and(Value::is_string) {
                    return Err(ScimError::invalid_value(
                        "Each member must be an object with a string 'value'",
                    ));
                }
            }
        }
        plan.push(match (op.op, &p.filter) {
            (Op::Add, None) => MemberChange::Add(values.unwrap_or_default()),
            (Op::Replace, None) => MemberChange::Set(values.unwrap_or_default()),
            (Op::Remove, None) => match values {
                Some(v) if !v.is_empty() => {
                    MemberChange::Remove(v.into_iter().map(|(u, _)| u).collect())
                }
                _ => MemberChange::Set(Vec::new()),
            },
            (Op::Remove, Some(f)) => match patch::member_ids(f) {
                Some(ids) => MemberChange::Remove(ids),
                None => MemberChange::RemoveWhere(f.clone()),
            },
            (Op::Add, Some(f)) => match patch::member_ids(f) {
                Some(ids) => MemberChange::Add(ids.into_iter().map(|u| (u, None)).collect()),
                None => {
                    return Err(ScimError::new(
                        ErrorKind::InvalidPath,
                        "Members can be added by 'members' or 'members[value eq \"id\"]' only",
                    ))
                }
            },
            (Op::Replace, Some(_)) => {
                return Err(ScimError::new(
                    ErrorKind::Mutability,
                    "Group members are immutable: add or remove whole members",
                ))
            }
        });
    }
    Ok(plan)
}
