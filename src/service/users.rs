//! Users: create, read, replace, patch, delete, and the `userName` and `externalId`
//! indexes they keep.

use super::layout::{CollectionName, IndexKind, Record};
use super::record::str_of;
use super::{check_if_match, Outcome, Service};
use crate::caseless::UserName;
use crate::collection::Collection;
use crate::error::{Result, ScimError};
use crate::ids::user_id;
use crate::okta;
use crate::patch;
use crate::resource::{canonicalize, Projection};
use crate::schema::ResourceKind;
use crate::store::LAYOUT_VERSION;
use serde_json::{Map, Value};

/// Membership events of a user's group log read with its head, before the log says how
/// many there are: a user in one or two groups is then read in one batch.
pub(super) const GROUPS_READ_AHEAD: i64 = 2;

impl<'a> Service<'a> {
    /// Reads a user's record and the head of its groups in one batch.
    fn prefetch_user(&self, id: &str) {
        let Some(id) = crate::ids::parse_uuid(id) else {
            return;
        };
        let mut keys = vec![self.keys().record(ResourceKind::User, &id)];
        keys.extend(
            self.collection(CollectionName::UserGroups(&id))
                .read_ahead(GROUPS_READ_AHEAD),
        );
        self.store.prefetch(&keys);
    }

    /// The user with this name: the derived id first, then the index hint.
    pub(super) fn find_user_by_name(&self, name: &str) -> Result<Option<(String, Record)>> {
        let name = UserName::new(name);
        let id = user_id(&self.org, name, 0);
        if let Some(rec) = self.load(ResourceKind::User, &id)? {
            if str_of(&rec.doc, "userName").is_some_and(|u| name.matches(u)) {
                return Ok(Some((id, rec)));
            }
        }
        self.via_index(IndexKind::UserName, name.as_str())
    }

    /// The rendered user; `groups` is read when `with_groups` (`Some(false)`: the user is
    /// new and has none).
    pub(super) fn user_view(
        &self,
        id: &str,
        rec: Record,
        proj: &Projection,
        with_groups: Option<bool>,
    ) -> Result<(Value, String)> {
        let version = Self::version_of(&rec, None);
        let groups = match with_groups {
            Some(read) if proj.wants(ResourceKind::User, "groups") => Some((
                "groups",
                if read {
                    self.user_groups(id)?
                } else {
                    Vec::new()
                },
            )),
            _ => None,
        };
        let modified = rec.modified;
        let mut full = self.render(ResourceKind::User, id, rec, &version, modified, groups);
        if self.vault {
            self.add_vault_status(id, &mut full)?;
        }
        Ok((Value::Object(proj.apply(ResourceKind::User, full)), version))
    }

    fn user_outcome(
        &self,
        status: u16,
        id: &str,
        rec: Record,
        proj: &Projection,
    ) -> Result<Outcome> {
        // A user just created (201) is in no group yet: nothing to read.
        let (body, etag) = self.user_view(id, rec, proj, Some(status != 201))?;
        Ok(Outcome {
            status,
            body: Some(body),
            etag: Some(etag),
            location: Some(self.location(ResourceKind::User, id)),
        })
    }

    /// Validates a client User document: schema, then Okta rules.
    fn user_doc(&self, body: &Value) -> Result<Map<String, Value>> {
        let mut doc = canonicalize(ResourceKind::User, body)?;
        okta::normalize(&mut doc, self.policy)?;
        Ok(doc)
    }

    /// A free derived id for a new user and whether it is the name's first (found
    /// without the index), or 409 when the name is taken.
    fn claim_user_id(&self, name: &str) -> Result<(String, bool)> {
        if self.via_index(IndexKind::UserName, name)?.is_some() {
            return Err(Self::taken("userName", name));
        }
        let user = UserName::new(name);
        for n in 0..16 {
            let id = user_id(&self.org, user, n);
            match self.load(ResourceKind::User, &id)? {
                None => return Ok((id, n == 0)),
                Some(r) if str_of(&r.doc, "userName").is_some_and(|u| user.matches(u)) => {
                    return Err(Self::taken("userName", name));
                }
                Some(_) => {}
            }
        }
        Err(ScimError::internal("no free user id after 16 derivations"))
    }

    /// POST /Users
    pub fn create_user(&self, body: &Value, proj: &Projection) -> Result<Outcome> {
        let doc = self.user_doc(body)?;
        let name = str_of(&doc, "userName").unwrap_or("").to_string();
        let listing = self.listing(ResourceKind::User);
        // Everything the checks read, and the listing's counter where it is not atomic.
        let first = user_id(&self.org, UserName::new(&name), 0);
        let mut ahead = vec![
            self.keys().index(IndexKind::UserName, &name),
            self.keys().record(ResourceKind::User, &first),
        ];
        if let Some(ext) = str_of(&doc, "externalId") {
            ahead.push(self.keys().index(IndexKind::UserExternal, ext));
        }
        if !self.store.atomic() {
            ahead.push(listing.counter_key());
        }
        self.store.prefetch(&ahead);
        let (id, first) = self.claim_user_id(&name)?;
        self.check_unique(IndexKind::UserExternal, &doc, None)?;
        self.mark(ResourceKind::User, &id)?;
        let now = self.now();
        let slot = listing.allocate()?;
        // The listing's event first: a record is never written without it.
        listing.write_add(slot, &id, None, now)?;
        let rec = Record {
            doc,
            slot,
            created: now,
            modified: now,
            layout: LAYOUT_VERSION,
        };
        let mut writes = vec![self.encoded(ResourceKind::User, &id, &rec)?];
        // A name's first derived id finds the user without the index.
        if !first {
            writes.push(self.index_entry(IndexKind::UserName, &name, &id));
        }
        if let Some(ext) = str_of(&rec.doc, "externalId") {
            writes.push(self.index_entry(IndexKind::UserExternal, ext, &id));
        }
        self.store.set_many(&writes)?;
        // Two creates of one name write the same record; the one whose write landed
        // last answers 201, the other learns it lost.
        let key = self.keys().record(ResourceKind::User, &id);
        self.store.forget(std::slice::from_ref(&key));
        let landed = self.load(ResourceKind::User, &id)?;
        if landed.as_ref().is_some_and(|r| r.slot != slot) {
            return Err(Self::taken("userName", &name));
        }
        if Collection::due(slot) {
            self.compact_listing(ResourceKind::User)?;
        }
        self.user_outcome(201, &id, rec, proj)
    }

    /// GET /Users/{id}
    pub fn get_user(&self, id: &str, proj: &Projection) -> Result<Outcome> {
        self.prefetch_user(id);
        let (id, rec) = self.require(ResourceKind::User, id)?;
        self.user_outcome(200, &id, rec, proj)
    }

    fn write_user(&self, id: &str, old: &Record, doc: Map<String, Value>) -> Result<Record> {
        let old_name = str_of(&old.doc, "userName").unwrap_or("").to_string();
        let new_name = str_of(&doc, "userName").unwrap_or("").to_string();
        let renamed = UserName::new(&old_name) != UserName::new(&new_name);
        if renamed {
            if let Some((other, _)) = self.find_user_by_name(&new_name)? {
                if other != id {
                    return Err(Self::taken("userName", &new_name));
                }
            }
        }
        let ext_changed = str_of(&old.doc, "externalId") != str_of(&doc, "externalId");
        if ext_changed {
            self.check_unique(IndexKind::UserExternal, &doc, Some(id))?;
        }
        self.mark(ResourceKind::User, id)?;
        let rec = Record {
            doc,
            slot: old.slot,
            created: old.created,
            modified: self.now(),
            layout: LAYOUT_VERSION,
        };
        self.save(ResourceKind::User, id, &rec)?;
        if renamed {
            self.set_index(IndexKind::UserName, &new_name, id)?;
            self.clear_index(IndexKind::UserName, &old_name, id)?;
        }
        if ext_changed {
            if let Some(e) = str_of(&rec.doc, "externalId") {
                self.set_index(IndexKind::UserExternal, e, id)?;
            }
            if let Some(e) = str_of(&old.doc, "externalId") {
                self.clear_index(IndexKind::UserExternal, e, id)?;
            }
        }
        Ok(rec)
    }

    /// PUT /Users/{id}
    pub fn replace_user(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        proj: &Projection,
    ) -> Result<Outcome> {
        self.prefetch_user(id);
        let (id, old) = self.require(ResourceKind::User, id)?;
        check_if_match(if_match, &Self::version_of(&old, None))?;
        let doc = self.user_doc(body)?;
        okta::check_unchanged(&old.doc, &doc, self.policy)?;
        let rec = self.write_user(&id, &old, doc)?;
        self.user_outcome(200, &id, rec, proj)
    }

    /// PATCH /Users/{id}
    pub fn patch_user(
        &self,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        proj: &Projection,
    ) -> Result<Outcome> {
        let ops = patch::parse(body)?;
        self.prefetch_user(id);
        let (id, old) = self.require(ResourceKind::User, id)?;
        check_if_match(if_match, &Self::version_of(&old, None))?;
        let mut doc = old.doc.clone();
        patch::apply(ResourceKind::User, &mut doc, &ops, &id)?;
        let doc = self.user_doc(&Value::Object(doc))?;
        okta::check_unchanged(&old.doc, &doc, self.policy)?;
        let rec = if doc == old.doc {
            old
        } else {
            self.write_user(&id, &old, doc)?
        };
        self.user_outcome(200, &id, rec, proj)
    }

    /// DELETE /Users/{id}: the user and its memberships.
    pub fn delete_user(&self, id: &str, if_match: Option<&str>) -> Result<Outcome> {
        self.prefetch_user(id);
        let (id, rec) = self.require(ResourceKind::User, id)?;
        check_if_match(if_match, &Self::version_of(&rec, None))?;
        self.mark(ResourceKind::User, &id)?;
        let now = self.now();
        for g in self.group_ids_of(&id)? {
            self.remove_member(&g, &id)?;
        }
        self.store
            .delete(&self.keys().record(ResourceKind::User, &id))?;
        let slot = self
            .listing(ResourceKind::User)
            .remove(&id, Some(rec.slot), now)?;
        if let Some(n) = str_of(&rec.doc, "userName") {
            self.clear_index(IndexKind::UserName, n, &id)?;
        }
        if let Some(e) = str_of(&rec.doc, "externalId") {
            self.clear_index(IndexKind::UserExternal, e, &id)?;
        }
        if Collection::due(slot) {
            self.compact_listing(ResourceKind::User)?;
        }
        Ok(Outcome {
            status: 204,
            body: None,
            etag: None,
            location: None,
        })
    }
}
