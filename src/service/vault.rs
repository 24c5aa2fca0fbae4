//! What the vault connector needs from the SCIM data: the outbox marks written before
//! each change, and the state the vault must reach for a user or a group.

use super::record::str_of;
use super::Service;
use crate::collection::Collection;
use crate::delivery::{entry, load, observed, Item, Kind, VaultKeys};
use crate::error::Result;
use crate::schema::ResourceKind;
use crate::schema::VAULT_URN;
use serde_json::{Map, Value};

/// A user as the vault must have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserWant {
    /// The member's email: the primary email, else the first, else `userName`.
    pub email: String,
    /// `externalId`, when the identity provider sent one.
    pub external_id: Option<String>,
    /// `active`.
    pub active: bool,
}

/// A group as the vault must have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupWant {
    /// `displayName`.
    pub name: String,
    /// `externalId`, when the identity provider sent one.
    pub external_id: Option<String>,
    /// The members' SCIM ids, sorted.
    pub members: Vec<String>,
}

impl UserWant {
    /// The externalId the vault knows the member by: the identity provider's, else the
    /// scim-edge id `id` (the rule every drain and reconcile uses).
    pub fn ext<'a>(&'a self, id: &'a str) -> &'a str {
        self.external_id.as_deref().unwrap_or(id)
    }
}

impl GroupWant {
    /// The externalId the vault knows the group by (as [`UserWant::ext`]).
    pub fn ext<'a>(&'a self, id: &'a str) -> &'a str {
        self.external_id.as_deref().unwrap_or(id)
    }
}

fn kind_of(kind: ResourceKind) -> Kind {
    match kind {
        ResourceKind::User => Kind::User,
        ResourceKind::Group => Kind::Group,
    }
}

fn email_of(doc: &serde_json::Map<String, Value>) -> String {
    let emails = doc.get("emails").and_then(Value::as_array);
    let pick = |primary: bool| {
        emails?.iter().find_map(|e| {
            let p = e.get("primary").and_then(Value::as_bool).unwrap_or(false);
            (p || !primary)
                .then(|| e.get("value").and_then(Value::as_str))
                .flatten()
        })
    };
    pick(true)
        .or_else(|| pick(false))
        .or_else(|| str_of(doc, "userName"))
        .unwrap_or("")
        .trim()
        .to_string()
}

impl<'a> Service<'a> {
    /// Adds the vault extension (see [`crate::schema::VAULT_SCHEMA`]) to a rendered user.
    pub(super) fn add_vault_status(&self, id: &str, doc: &mut Map<String, Value>) -> Result<()> {
        let keys = VaultKeys(&self.org);
        // One batch for both, unless a list's prefetch already read them.
        self.store
            .prefetch(&[keys.item(Kind::User, id), keys.observed(id)]);
        let item: Item = load(self.store, &keys.item(Kind::User, id))?;
        let seen = observed(self.store, &keys, id)?;
        let mut ext = Map::new();
        ext.insert(
            "status".into(),
            Value::String(item.status(seen.as_ref()).as_str().into()),
        );
        if let Some(v) = &item.vid {
            ext.insert("memberId".into(), Value::String(v.clone()));
        }
        if let Some(e) = &item.error {
            ext.insert("error".into(), Value::String(e.clone()));
        }
        if let Some(Value::Array(s)) = doc.get_mut("schemas") {
            s.push(Value::String(VAULT_URN.into()));
        }
        doc.insert(VAULT_URN.into(), Value::Object(ext));
        Ok(())
    }

    /// The outbox this organization's changes are marked in.
    pub fn outbox(&self) -> Collection<'_> {
        Collection::new(self.store, VaultKeys(&self.org).outbox())
    }

    /// Marks a resource as one the vault must be told about, before it is written: a
    /// change that fails half-way leaves a mark and nothing undelivered. Once per
    /// resource and request; nothing when the organization has no vault.
    pub fn mark(&self, kind: ResourceKind, id: &str) -> Result<()> {
        if !self.vault {
            return Ok(());
        }
        let e = entry(kind_of(kind), id);
        if self.marked.borrow().contains(&e) {
            return Ok(());
        }
        self.outbox_add(&e)?;
        self.marked.borrow_mut().push(e);
        Ok(())
    }

    /// Adds an entry to the outbox, compacting it when due.
    pub fn outbox_add(&self, e: &str) -> Result<()> {
        let outbox = self.outbox();
        let slot = outbox.add(e, None, self.now())?;
        self.compact_if_due(&outbox, slot)
    }

    /// Removes an entry from the outbox, compacting it when due.
    pub fn outbox_remove(&self, e: &str) -> Result<()> {
        let outbox = self.outbox();
        let slot = outbox.remove(e, None, self.now())?;
        self.compact_if_due(&outbox, slot)
    }

    /// Marks again everything this request marked, now that its writes are done: the
    /// first mark makes a change that fails half-way safe, this one closes the window in
    /// which a drain could take the first mark before the write landed.
    pub fn remark(&self) -> Result<()> {
        let marked = self.marked.borrow().clone();
        for e in &marked {
            self.outbox_add(e)?;
        }
        Ok(())
    }

    /// The same organization's view over another store (a drain's fresh reads).
    pub fn over<'b>(&self, store: &'b dyn crate::store::Store) -> Service<'b>
    where
        'a: 'b,
    {
        Service::new(
            store,
            self.clock,
            self.ids,
            self.org.clone(),
            self.policy,
            self.base.clone(),
            self.limits,
        )
        .with_vault(self.vault)
    }

    /// Marks every user and group (a reconcile); returns how many.
    pub fn mark_all(&self) -> Result<usize> {
        let mut n = 0;
        for kind in [ResourceKind::User, ResourceKind::Group] {
            for id in self.ids_of(kind)? {
                self.mark(kind, &id)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Drops a resource's record from the request's cache, so the next read is fresh.
    pub fn forget(&self, kind: ResourceKind, id: &str) {
        self.store.forget(&[self.keys().record(kind, id)]);
    }

    /// Every resource of a kind, by id.
    pub fn ids_of(&self, kind: ResourceKind) -> Result<Vec<String>> {
        let page = self
            .listing(kind)
            .all(self.now(), &|e, t| self.verify_listing(kind, e, t))?;
        Ok(page.entries.into_iter().map(|e| e.id).collect())
    }

    /// Reads the records of these resources in one batch.
    pub fn prefetch_wants<'i>(&self, kind: ResourceKind, ids: impl IntoIterator<Item = &'i str>) {
        self.prefetch_records(kind, ids);
    }

    /// The id of the user named `name` (`userName`, compared as the index does).
    pub fn user_named(&self, name: &str) -> Result<Option<String>> {
        Ok(self.find_user_by_name(name)?.map(|(id, _)| id))
    }

    /// The user the vault must have, or `None` when it is gone.
    pub fn user_want(&self, id: &str) -> Result<Option<UserWant>> {
        Ok(self.load(ResourceKind::User, id)?.map(|rec| UserWant {
            email: email_of(&rec.doc),
            external_id: str_of(&rec.doc, "externalId").map(str::to_string),
            active: rec
                .doc
                .get("active")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        }))
    }

    /// The group the vault must have, or `None` when it is gone.
    pub fn group_want(&self, id: &str) -> Result<Option<GroupWant>> {
        let Some(rec) = self.load(ResourceKind::Group, id)? else {
            return Ok(None);
        };
        let mut members = self.current_members(id)?;
        members.sort();
        members.dedup();
        // Users deleted since they were added are not members.
        self.prefetch_records(ResourceKind::User, members.iter().map(String::as_str));
        let mut live = Vec::with_capacity(members.len());
        for m in members {
            if self.load(ResourceKind::User, &m)?.is_some() {
                live.push(m);
            }
        }
        Ok(Some(GroupWant {
            name: str_of(&rec.doc, "displayName").unwrap_or("").to_string(),
            external_id: str_of(&rec.doc, "externalId").map(str::to_string),
            members: live,
        }))
    }
}
