//! Groups: create, read, replace, patch, delete, and the `displayName` and `externalId`
//! indexes they keep. Membership itself is in `members`.

use super::layout::{CollectionName, IndexKind, Record};
use super::members::{plan_ids, plan_members, split_group_op};
use super::record::{same_value, str_of};
use super::{check_if_match, Outcome, Service};
use crate::collection::Collection;
use crate::error::Result;
use crate::ids::parse_uuid;
use crate::patch;
use crate::resource::{canonicalize, Projection};
use crate::schema::ResourceKind;
use crate::store::LAYOUT_VERSION;
use serde_json::{Map, Value};

impl<'a> Service<'a> {
    /// A group's version covers its members: the member log's top slot is part of it.
    pub(super) fn group_version(&self, id: &str, rec: &Record) -> Result<String> {
        let top = self.collection(CollectionName::GroupMembers(id)).top()?;
        Ok(Self::version_of(rec, Some(top)))
    }

    pub(super) fn group_view(
        &self,
        id: &str,
        rec: Record,
        proj: &Projection,
    ) -> Result<(Value, String)> {
        let log_top;
        let (members, modified) = if proj.wants(ResourceKind::Group, "members") {
            let (list, top, changed) = self.members_of(id)?;
            log_top = top;
            (Some(("members", list)), rec.modified.max(changed))
        } else {
            log_top = self.collection(CollectionName::GroupMembers(id)).top()?;
            (None, rec.modified)
        };
        let version = Self::version_of(&rec, Some(log_top));
        let full = self.render(ResourceKind::Group, id, rec, &version, modified, members);
        Ok((
            Value::Object(proj.apply(ResourceKind::Group, full)),
            version,
        ))
    }

    fn group_outcome(
        &self,
        status: u16,
        id: &str,
        rec: Record,
        proj: &Projection,
    ) -> Result<Outcome> {
        let (body, etag) = self.group_view(id, rec, proj)?;
        Ok(Outcome {
            status,
            body: Some(body),
            etag: Some(etag),
            location: Some(self.location(ResourceKind::Group, id)),
        })
    }

    fn check_group_name(&self, doc: &Map<String, Value>, own: Option<&str>) -> Result<()> {
        self.check_unique(IndexKind::GroupName, doc, own)?;
        self.check_unique(IndexKind::GroupExternal, doc, own)
    }

    /// POST /Groups
    pub fn create_group(&self, body: &Value, proj: &Projection) -> Result<Outcome> {
        let mut doc = canonicalize(ResourceKind::Group, body)?;
        let members = Self::split_members(&mut doc).unwrap_or_default();
        self.check_group_name(&doc, None)?;
        let id = self.ids.new_id();
        self.mark(ResourceKind::Group, &id)?;
        let now = self.now();
        let listing = self.listing(ResourceKind::Group);
        let slot = listing.allocate()?;
        listing.write_add(slot, &id, None, now)?;
        let rec = Record {
            doc,
            slot,
            created: now,
            modified: now,
            layout: LAYOUT_VERSION,
        };
        self.save(ResourceKind::Group, &id, &rec)?;
        if let Some(n) = str_of(&rec.doc, "displayName") {
            self.set_index(IndexKind::GroupName, n, &id)?;
        }
        if let Some(e) = str_of(&rec.doc, "externalId") {
            self.set_index(IndexKind::GroupExternal, e, &id)?;
        }
        for (uid, display) in &members {
            self.add_member(&id, uid, display.as_deref())?;
        }
        if Collection::due(slot) {
            self.compact_listing(ResourceKind::Group)?;
        }
        self.group_outcome(201, &id, rec, proj)
    }

    /// GET /Groups/{id}
    pub fn get_group(&self, id: &str, proj: &Projection) -> Result<Outcome> {
        let (id, rec) = self.require(ResourceKind::Group, id)?;
        self.group_outcome(200, &id, rec, proj)
    }

    fn write_group(&self, id: &str, old: &Record, doc: Map<String, Value>) -> Result<Record> {
        self.check_group_name(&doc, Some(id))?;
        self.mark(ResourceKind::Group, id)?;
        let rec = Record {
            doc,
            slot: old.slot,
            created: old.created,
            modified: self.now(),
            layout: LAYOUT_VERSION,
        };
        self.save(ResourceKind::Group, id, &rec)?;
        for index in [IndexKind::GroupName, IndexKind::GroupExternal] {
            let attr = index.attr();
            let (o, n) = (str_of(&old.doc, attr), str_of(&rec.doc, attr));
            let same = match (o, n) {
                (Some(a), Some(b)) => same_value(a, b, index.exact()),
                (None, None) => true,
                _ => false,
            };
            if !same {
                if let Some(v) = n {
                    self.set_index(index, v, id)?;
                }
                if let Some(v) = o {
                    self.clear_index(index, v, id)?;
                }
            }
        }
        Ok(rec)
    }

    /// PUT /Groups/{id}. Absent `members` leaves membership as it is (a rename must not
    /// empty a group); `members: []` empties it.
    pub fn replace_group(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        proj: &Projection,
    ) -> Result<Outcome> {
        let (id, old) = self.require(ResourceKind::Group, id)?;
        check_if_match(if_match, &self.group_version(&id, &old)?)?;
        let mut doc = canonicalize(ResourceKind::Group, body)?;
        let explicit_empty = crate::filter::get_ci(body, "members")
            .is_some_and(|m| m.as_array().is_some_and(Vec::is_empty));
        let members = Self::split_members(&mut doc).or_else(|| explicit_empty.then(Vec::new));
        let rec = if doc == old.doc {
            old
        } else {
            self.write_group(&id, &old, doc)?
        };
        if let Some(m) = members {
            self.set_members(&id, &m)?;
        }
        self.group_outcome(200, &id, rec, proj)
    }

    /// PATCH /Groups/{id}. Operations on `members` become membership changes; the rest
    /// apply to the document. All are validated before anything is written.
    pub fn patch_group(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        proj: &Projection,
    ) -> Result<Outcome> {
        let ops = patch::parse(body)?;
        let mut doc_ops = Vec::new();
        let mut member_ops = Vec::new();
        let split = ops
            .into_iter()
            .try_for_each(|op| split_group_op(op, &mut doc_ops, &mut member_ops));
        let plan = plan_members(&member_ops);
        // The group, the head of its member log (the version, and what a compaction or
        // an answer with members reads first) and every member the plan names, in one
        // batch; errors keep their order (404, 412, then the operations').
        if let Some(gid) = parse_uuid(id) {
            let mut keys = vec![self.keys().record(ResourceKind::Group, &gid)];
            keys.extend(
                self.collection(CollectionName::GroupMembers(&gid))
                    .read_ahead(0),
            );
            if let Ok(plan) = &plan {
                keys.extend(self.member_keys(&gid, plan_ids(plan)));
            }
            self.store.prefetch(&keys);
        }
        let (id, old) = self.require(ResourceKind::Group, id)?;
        check_if_match(if_match, &self.group_version(&id, &old)?)?;
        split?;
        let mut doc = old.doc.clone();
        patch::apply(ResourceKind::Group, &mut doc, &doc_ops, &id)?;
        let doc = canonicalize(ResourceKind::Group, &Value::Object(doc))?;
        let plan = plan?;
        let rec = if doc == old.doc {
            old
        } else {
            self.write_group(&id, &old, doc)?
        };
        self.run_member_plan(&id, plan)?;
        self.group_outcome(200, &id, rec, proj)
    }

    /// DELETE /Groups/{id}. Members' `groups` drop the group when read (the group record
    /// is gone), so deleting a large group costs O(1).
    pub fn delete_group(&self, id: &str, if_match: Option<&str>) -> Result<Outcome> {
        let (id, rec) = self.require(ResourceKind::Group, id)?;
        check_if_match(if_match, &self.group_version(&id, &rec)?)?;
        self.mark(ResourceKind::Group, &id)?;
        self.store
            .delete(&self.keys().record(ResourceKind::Group, &id))?;
        let slot = self
            .listing(ResourceKind::Group)
            .remove(&id, Some(rec.slot), self.now())?;
        if let Some(n) = str_of(&rec.doc, "displayName") {
            self.clear_index(IndexKind::GroupName, n, &id)?;
        }
        if let Some(e) = str_of(&rec.doc, "externalId") {
            self.clear_index(IndexKind::GroupExternal, e, &id)?;
        }
        if Collection::due(slot) {
            self.compact_listing(ResourceKind::Group)?;
        }
        Ok(Outcome {
            status: 204,
            body: None,
            etag: None,
            location: None,
        })
    }
}
