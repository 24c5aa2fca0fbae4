//! Users and Groups over a [`Store`]: the storage layout, indexes, memberships and
//! listing. Everything here is per organization; every key starts with the org id.
//!
//! Layout (`{o}` is the organization id):
//! - `{o}/u/{id}`, `{o}/g/{id}`: one record per resource (document, listing slot, times)
//! - `{o}/x/{un|ux|gn|gx}/{digest}`: index hints (userName, user externalId, group
//!   displayName, group externalId) -> id, verified against the record on every read
//! - `{o}/m/{group}/{user}`: membership marker (the slot of the add in the group's log)
//! - `{o}/L/u`, `{o}/L/g`, `{o}/L/gm/{group}`, `{o}/L/ug/{user}`: append-only logs (see
//!   [`crate::log`]) for listing users and groups, a group's members, a user's groups

use crate::caseless::{self, UserName};
use crate::error::{ErrorKind, Result, ScimError};
use crate::filter::{self, index_terms, Filter};
use crate::ids::{key_digest, parse_uuid, user_id, Clock, Ids, OrgId};
use crate::log::{always_live, Entry, Log, Verdict, ABANDON_MS};
use crate::okta::{self, Policy};
use crate::patch::{self, Op, PatchOp};
use crate::resource::{canonicalize, Projection};
use crate::schema::ResourceKind;
use crate::store::Store;
use crate::time::format_millis;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};

/// The ListResponse URN.
pub const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// Limits advertised in `/ServiceProviderConfig` and enforced.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body, bytes.
    pub max_payload: usize,
    /// Page size when the client gives no `count`.
    pub default_count: usize,
    /// Largest page (`filter.maxResults`).
    pub max_count: usize,
    /// Most operations in one bulk request.
    pub max_bulk_ops: usize,
    /// Most resources a filter or sort that no index answers may examine.
    pub max_scan: usize,
    /// Deepest JSON nesting accepted in a body.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload: 1 << 20,
            default_count: 100,
            max_count: 1000,
            max_bulk_ops: 100,
            max_scan: 50_000,
            max_depth: 32,
        }
    }
}

/// A list request's parameters.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// The filter text.
    pub filter: Option<String>,
    /// 1-based index of the first result.
    pub start_index: usize,
    /// Page size, when given.
    pub count: Option<usize>,
    /// Attribute to sort by.
    pub sort_by: Option<String>,
    /// Descending order.
    pub descending: bool,
    /// attributes / excludedAttributes.
    pub projection: Projection,
}

/// What an operation produced, for the router to put on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// HTTP status.
    pub status: u16,
    /// Body, when there is one.
    pub body: Option<Value>,
    /// Weak ETag.
    pub etag: Option<String>,
    /// Location of the resource.
    pub location: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    /// The document without `id` and `meta`.
    d: Map<String, Value>,
    /// The slot of the add in the organization's listing log.
    s: i64,
    /// Created (ms).
    c: i64,
    /// Last modified (ms).
    m: i64,
}

/// One organization's view of the store.
pub struct Service<'a> {
    store: &'a dyn Store,
    clock: &'a dyn Clock,
    ids: &'a dyn Ids,
    org: OrgId,
    policy: Policy,
    base: String,
    limits: &'a Limits,
}

fn letter(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "u",
        ResourceKind::Group => "g",
    }
}

fn str_of<'v>(doc: &'v Map<String, Value>, name: &str) -> Option<&'v str> {
    doc.get(name).and_then(Value::as_str)
}

/// Equality of an attribute's values: exact, or under case folding (`caseExact: false`).
fn same_value(a: &str, b: &str, exact: bool) -> bool {
    if exact {
        a == b
    } else {
        caseless::same(a, b)
    }
}

fn not_found(kind: ResourceKind, id: &str) -> ScimError {
    ScimError::not_found(format!("{} {id} not found", kind.name()))
}

/// Checks an `If-Match` header value against the current version.
pub fn check_if_match(if_match: Option<&str>, version: &str) -> Result<()> {
    let Some(h) = if_match else { return Ok(()) };
    if etag_list_matches(h, version) {
        Ok(())
    } else {
        Err(ScimError::new(
            ErrorKind::PreconditionFailed,
            "The resource has changed since the version in If-Match",
        ))
    }
}

/// Whether an `If-Match` / `If-None-Match` list names this version (weak comparison).
pub fn etag_list_matches(list: &str, version: &str) -> bool {
    let strip = |t: &str| {
        t.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_string()
    };
    let want = strip(version);
    list.split(',').any(|t| t.trim() == "*" || strip(t) == want)
}

impl<'a> Service<'a> {
    /// A service for one organization; `base` is the path prefix the client used
    /// (`/v2/{org}` or `/scim/v2/{org}`), for `Location` and `$ref`.
    pub fn new(
        store: &'a dyn Store,
        clock: &'a dyn Clock,
        ids: &'a dyn Ids,
        org: OrgId,
        policy: Policy,
        base: String,
        limits: &'a Limits,
    ) -> Self {
        Service {
            store,
            clock,
            ids,
            org,
            policy,
            base,
            limits,
        }
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    fn key(&self, kind: ResourceKind, id: &str) -> String {
        format!("{}/{}/{id}", self.org, letter(kind))
    }

    /// The key of an index entry: exact values digested as sent, caseless ones folded.
    fn index_key(&self, index: &str, value: &str, exact: bool) -> String {
        let digest = key_digest(&caseless::compare_form(value, exact));
        format!("{}/x/{index}/{digest}", self.org)
    }

    fn marker(&self, gid: &str, uid: &str) -> String {
        format!("{}/m/{gid}/{uid}", self.org)
    }

    fn log(&self, name: &str) -> Log<'a> {
        Log::new(self.store, format!("{}/L/{name}", self.org))
    }

    fn listing(&self, kind: ResourceKind) -> Log<'a> {
        self.log(letter(kind))
    }

    fn location(&self, kind: ResourceKind, id: &str) -> String {
        format!("{}/{}/{id}", self.base, kind.endpoint())
    }

    fn load(&self, kind: ResourceKind, id: &str) -> Result<Option<Record>> {
        let key = self.key(kind, id);
        match self.store.get(&key)? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| ScimError::internal(format!("corrupt record {key}: {e}"))),
        }
    }

    fn save(&self, kind: ResourceKind, id: &str, rec: &Record) -> Result<()> {
        let bytes =
            serde_json::to_vec(rec).map_err(|e| ScimError::internal(format!("encode: {e}")))?;
        Ok(self.store.set(&self.key(kind, id), &bytes)?)
    }

    fn require(&self, kind: ResourceKind, id: &str) -> Result<(String, Record)> {
        let Some(canon) = parse_uuid(id) else {
            return Err(not_found(kind, id));
        };
        match self.load(kind, &canon)? {
            Some(r) => Ok((canon, r)),
            None => Err(not_found(kind, id)),
        }
    }

    /// Verifies a listing log entry against the record it names.
    fn verify_listing(&self, kind: ResourceKind, e: &Entry, t: i64) -> Result<Verdict> {
        Ok(match self.load(kind, &e.id)? {
            Some(r) if r.s == e.slot => Verdict::Live,
            Some(_) => Verdict::Stale,
            None if self.now() - t < ABANDON_MS => Verdict::Pending,
            None => Verdict::Stale,
        })
    }

    fn compact_listing(&self, kind: ResourceKind) -> Result<()> {
        let now = self.now();
        self.listing(kind)
            .compact(now, &|e, t| self.verify_listing(kind, e, t))
    }

    /// Reads the index hint and returns the id only if the record still carries `value`.
    fn via_index(
        &self,
        kind: ResourceKind,
        index: &str,
        attr: &str,
        value: &str,
        exact: bool,
    ) -> Result<Option<(String, Record)>> {
        let Some(b) = self.store.get(&self.index_key(index, value, exact))? else {
            return Ok(None);
        };
        let id = String::from_utf8_lossy(&b).to_string();
        let Some(rec) = self.load(kind, &id)? else {
            return Ok(None);
        };
        let same = str_of(&rec.d, attr).is_some_and(|v| same_value(v, value, exact));
        Ok(same.then_some((id, rec)))
    }

    fn set_index(&self, index: &str, value: &str, exact: bool, id: &str) -> Result<()> {
        Ok(self
            .store
            .set(&self.index_key(index, value, exact), id.as_bytes())?)
    }

    /// Removes an index entry if it still points at `id`.
    fn clear_index(&self, index: &str, value: &str, exact: bool, id: &str) -> Result<()> {
        let key = self.index_key(index, value, exact);
        if self.store.get(&key)?.as_deref() == Some(id.as_bytes()) {
            self.store.delete(&key)?;
        }
        Ok(())
    }

    fn find_user_by_name(&self, name: &str) -> Result<Option<(String, Record)>> {
        let name = UserName::new(name);
        let id = user_id(&self.org, name, 0);
        if let Some(rec) = self.load(ResourceKind::User, &id)? {
            if str_of(&rec.d, "userName").is_some_and(|u| name.matches(u)) {
                return Ok(Some((id, rec)));
            }
        }
        self.via_index(ResourceKind::User, "un", "userName", name.as_str(), false)
    }

    fn find_by_index(
        &self,
        kind: ResourceKind,
        attr: &str,
        value: &str,
    ) -> Result<Option<(String, Record)>> {
        match (kind, attr) {
            (_, "id") => match parse_uuid(value) {
                Some(id) => Ok(self.load(kind, &id)?.map(|r| (id, r))),
                None => Ok(None),
            },
            (ResourceKind::User, "userName") => self.find_user_by_name(value),
            (ResourceKind::User, "externalId") => {
                self.via_index(kind, "ux", "externalId", value, true)
            }
            (ResourceKind::Group, "displayName") => {
                self.via_index(kind, "gn", "displayName", value, false)
            }
            (ResourceKind::Group, "externalId") => {
                self.via_index(kind, "gx", "externalId", value, true)
            }
            _ => Ok(None),
        }
    }

    fn version_of(rec: &Record, extra: Option<i64>) -> String {
        let bytes = serde_json::to_vec(&rec.d).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(&bytes);
        h.update(rec.m.to_be_bytes());
        let d = h.finalize();
        let hex: String = d.iter().take(8).map(|b| format!("{b:02x}")).collect();
        match extra {
            Some(x) => format!("W/\"{hex}-{x}\""),
            None => format!("W/\"{hex}\""),
        }
    }

    fn render(
        &self,
        kind: ResourceKind,
        id: &str,
        rec: Record,
        version: &str,
        modified: i64,
        extra: Option<(&str, Vec<Value>)>,
    ) -> Map<String, Value> {
        let mut out = Map::with_capacity(rec.d.len() + 3);
        let mut d = rec.d;
        out.insert(
            "schemas".into(),
            d.remove("schemas")
                .unwrap_or_else(|| json!([kind.core().id])),
        );
        out.insert("id".into(), Value::String(id.to_string()));
        out.extend(d);
        if let Some((name, list)) = extra {
            out.insert(name.to_string(), Value::Array(list));
        }
        out.insert(
            "meta".into(),
            json!({
                "resourceType": kind.name(),
                "created": format_millis(rec.c),
                "lastModified": format_millis(modified),
                "location": self.location(kind, id),
                "version": version,
            }),
        );
        out
    }

    // ---- users ----------------------------------------------------------------

    fn user_groups(&self, uid: &str) -> Result<Vec<Value>> {
        let page = self
            .log(&format!("ug/{uid}"))
            .all(self.now(), &always_live)?;
        let mut out = Vec::new();
        for e in page.entries {
            if let Some(g) = self.load(ResourceKind::Group, &e.id)? {
                out.push(json!({
                    "value": e.id,
                    "$ref": self.location(ResourceKind::Group, &e.id),
                    "display": str_of(&g.d, "displayName").unwrap_or(""),
                    "type": "direct",
                }));
            }
        }
        Ok(out)
    }

    fn user_view(
        &self,
        id: &str,
        rec: Record,
        proj: &Projection,
        with_groups: bool,
    ) -> Result<(Value, String)> {
        let version = Self::version_of(&rec, None);
        let groups = if with_groups && proj.wants(ResourceKind::User, "groups") {
            Some(("groups", self.user_groups(id)?))
        } else {
            None
        };
        let modified = rec.m;
        let full = self.render(ResourceKind::User, id, rec, &version, modified, groups);
        Ok((Value::Object(proj.apply(ResourceKind::User, full)), version))
    }

    fn user_outcome(
        &self,
        status: u16,
        id: &str,
        rec: Record,
        proj: &Projection,
    ) -> Result<Outcome> {
        let (body, etag) = self.user_view(id, rec, proj, true)?;
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

    fn taken(what: &str, value: &str) -> ScimError {
        ScimError::new(
            ErrorKind::Uniqueness,
            format!("{what} '{value}' is already in use"),
        )
    }

    /// A free derived id for a new user, or 409 when the name is taken.
    fn claim_user_id(&self, name: &str) -> Result<String> {
        if self
            .via_index(ResourceKind::User, "un", "userName", name, false)?
            .is_some()
        {
            return Err(Self::taken("userName", name));
        }
        let user = UserName::new(name);
        for n in 0..16 {
            let id = user_id(&self.org, user, n);
            match self.load(ResourceKind::User, &id)? {
                None => return Ok(id),
                Some(r) if str_of(&r.d, "userName").is_some_and(|u| user.matches(u)) => {
                    return Err(Self::taken("userName", name));
                }
                Some(_) => {}
            }
        }
        Err(ScimError::internal("no free user id after 16 derivations"))
    }

    fn check_external_unique(
        &self,
        kind: ResourceKind,
        index: &str,
        doc: &Map<String, Value>,
        own: Option<&str>,
    ) -> Result<()> {
        if let Some(ext) = str_of(doc, "externalId") {
            if let Some((other, _)) = self.via_index(kind, index, "externalId", ext, true)? {
                if Some(other.as_str()) != own {
                    return Err(Self::taken("externalId", ext));
                }
            }
        }
        Ok(())
    }

    /// POST /Users
    pub fn create_user(&self, body: &Value, proj: &Projection) -> Result<Outcome> {
        let doc = self.user_doc(body)?;
        let name = str_of(&doc, "userName").unwrap_or("").to_string();
        let id = self.claim_user_id(&name)?;
        self.check_external_unique(ResourceKind::User, "ux", &doc, None)?;
        let now = self.now();
        let listing = self.listing(ResourceKind::User);
        let slot = listing.allocate()?;
        listing.write_add(slot, &id, None, now)?;
        let rec = Record {
            d: doc,
            s: slot,
            c: now,
            m: now,
        };
        self.save(ResourceKind::User, &id, &rec)?;
        self.set_index("un", &name, false, &id)?;
        if let Some(ext) = str_of(&rec.d, "externalId") {
            self.set_index("ux", ext, true, &id)?;
        }
        // Two creates of one name write the same record; the one whose write landed
        // last answers 201, the other learns it lost.
        let landed = self.load(ResourceKind::User, &id)?;
        if landed.as_ref().is_some_and(|r| r.s != slot) {
            return Err(Self::taken("userName", &name));
        }
        if Log::due(slot) {
            self.compact_listing(ResourceKind::User)?;
        }
        self.user_outcome(201, &id, rec, proj)
    }

    /// GET /Users/{id}
    pub fn get_user(&self, id: &str, proj: &Projection) -> Result<Outcome> {
        let (id, rec) = self.require(ResourceKind::User, id)?;
        self.user_outcome(200, &id, rec, proj)
    }

    /// The current version of a resource, for `If-None-Match`.
    pub fn version(&self, kind: ResourceKind, id: &str) -> Result<String> {
        let (id, rec) = self.require(kind, id)?;
        Ok(match kind {
            ResourceKind::User => Self::version_of(&rec, None),
            ResourceKind::Group => self.group_version(&id, &rec)?,
        })
    }

    fn group_version(&self, id: &str, rec: &Record) -> Result<String> {
        let top = self.log(&format!("gm/{id}")).top()?;
        Ok(Self::version_of(rec, Some(top)))
    }

    fn write_user(&self, id: &str, old: &Record, doc: Map<String, Value>) -> Result<Record> {
        let old_name = str_of(&old.d, "userName").unwrap_or("").to_string();
        let new_name = str_of(&doc, "userName").unwrap_or("").to_string();
        let renamed = UserName::new(&old_name) != UserName::new(&new_name);
        if renamed {
            if let Some((other, _)) = self.find_user_by_name(&new_name)? {
                if other != id {
                    return Err(Self::taken("userName", &new_name));
                }
            }
        }
        self.check_external_unique(ResourceKind::User, "ux", &doc, Some(id))?;
        let rec = Record {
            d: doc,
            s: old.s,
            c: old.c,
            m: self.now(),
        };
        self.save(ResourceKind::User, id, &rec)?;
        if renamed {
            self.set_index("un", &new_name, false, id)?;
            self.clear_index("un", &old_name, false, id)?;
        }
        let (old_ext, new_ext) = (str_of(&old.d, "externalId"), str_of(&rec.d, "externalId"));
        if old_ext != new_ext {
            if let Some(e) = new_ext {
                self.set_index("ux", e, true, id)?;
            }
            if let Some(e) = old_ext {
                self.clear_index("ux", e, true, id)?;
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
        let (id, old) = self.require(ResourceKind::User, id)?;
        check_if_match(if_match, &Self::version_of(&old, None))?;
        let doc = self.user_doc(body)?;
        okta::check_unchanged(&old.d, &doc, self.policy)?;
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
        let (id, old) = self.require(ResourceKind::User, id)?;
        check_if_match(if_match, &Self::version_of(&old, None))?;
        let mut doc = old.d.clone();
        patch::apply(ResourceKind::User, &mut doc, &ops, &id)?;
        let doc = self.user_doc(&Value::Object(doc))?;
        okta::check_unchanged(&old.d, &doc, self.policy)?;
        let rec = if doc == old.d {
            old
        } else {
            self.write_user(&id, &old, doc)?
        };
        self.user_outcome(200, &id, rec, proj)
    }

    /// DELETE /Users/{id}: the user and its memberships.
    pub fn delete_user(&self, id: &str, if_match: Option<&str>) -> Result<Outcome> {
        let (id, rec) = self.require(ResourceKind::User, id)?;
        check_if_match(if_match, &Self::version_of(&rec, None))?;
        let now = self.now();
        let groups = self.log(&format!("ug/{id}")).all(now, &always_live)?;
        for g in &groups.entries {
            self.remove_member(&g.id, &id)?;
        }
        self.store.delete(&self.key(ResourceKind::User, &id))?;
        let slot = self
            .listing(ResourceKind::User)
            .remove(&id, Some(rec.s), now)?;
        if let Some(n) = str_of(&rec.d, "userName") {
            self.clear_index("un", n, false, &id)?;
        }
        if let Some(e) = str_of(&rec.d, "externalId") {
            self.clear_index("ux", e, true, &id)?;
        }
        if Log::due(slot) {
            self.compact_listing(ResourceKind::User)?;
        }
        Ok(Outcome {
            status: 204,
            body: None,
            etag: None,
            location: None,
        })
    }

    // ---- groups ---------------------------------------------------------------

    fn members_of(&self, gid: &str) -> Result<(Vec<Value>, i64, i64)> {
        let page = self
            .log(&format!("gm/{gid}"))
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

    fn group_view(&self, id: &str, rec: Record, proj: &Projection) -> Result<(Value, String)> {
        let log_top;
        let (members, modified) = if proj.wants(ResourceKind::Group, "members") {
            let (list, top, changed) = self.members_of(id)?;
            log_top = top;
            (Some(("members", list)), rec.m.max(changed))
        } else {
            log_top = self.log(&format!("gm/{id}")).top()?;
            (None, rec.m)
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

    /// Adds a member unless it already is one. Ids that name no user of this
    /// organization are skipped (nothing dangling is stored).
    fn add_member(&self, gid: &str, uid: &str, display: Option<&str>) -> Result<()> {
        let Some(uid) = parse_uuid(uid) else {
            return Ok(());
        };
        if self.store.exists(&self.marker(gid, &uid))? {
            return Ok(());
        }
        let Some(user) = self.load(ResourceKind::User, &uid)? else {
            return Ok(());
        };
        let display = display.or_else(|| str_of(&user.d, "userName"));
        let now = self.now();
        let gm = self.log(&format!("gm/{gid}"));
        let slot = gm.add(&uid, display, now)?;
        self.store
            .set(&self.marker(gid, &uid), slot.to_string().as_bytes())?;
        let ug = self.log(&format!("ug/{uid}"));
        let uslot = ug.add(gid, None, now)?;
        if Log::due(slot) {
            gm.compact(now, &always_live)?;
        }
        if Log::due(uslot) {
            ug.compact(now, &always_live)?;
        }
        Ok(())
    }

    /// Removes a member; removing a non-member succeeds (Okta's stale links).
    fn remove_member(&self, gid: &str, uid: &str) -> Result<()> {
        let Some(uid) = parse_uuid(uid) else {
            return Ok(());
        };
        let marker = self.marker(gid, &uid);
        if !self.store.exists(&marker)? {
            return Ok(());
        }
        self.store.delete(&marker)?;
        let now = self.now();
        let gm = self.log(&format!("gm/{gid}"));
        let slot = gm.remove(&uid, None, now)?;
        let ug = self.log(&format!("ug/{uid}"));
        let uslot = ug.remove(gid, None, now)?;
        if Log::due(slot) {
            gm.compact(now, &always_live)?;
        }
        if Log::due(uslot) {
            ug.compact(now, &always_live)?;
        }
        Ok(())
    }

    fn check_group_name(&self, doc: &Map<String, Value>, own: Option<&str>) -> Result<()> {
        if let Some(name) = str_of(doc, "displayName") {
            if let Some((other, _)) =
                self.via_index(ResourceKind::Group, "gn", "displayName", name, false)?
            {
                if Some(other.as_str()) != own {
                    return Err(Self::taken("displayName", name));
                }
            }
        }
        self.check_external_unique(ResourceKind::Group, "gx", doc, own)
    }

    /// Splits `members` out of a Group document: (document, members as (id, display)).
    fn split_members(doc: &mut Map<String, Value>) -> Option<Vec<(String, Option<String>)>> {
        let members = doc.remove("members")?;
        Some(member_list(&members))
    }

    /// POST /Groups
    pub fn create_group(&self, body: &Value, proj: &Projection) -> Result<Outcome> {
        let mut doc = canonicalize(ResourceKind::Group, body)?;
        let members = Self::split_members(&mut doc).unwrap_or_default();
        self.check_group_name(&doc, None)?;
        let id = self.ids.new_id();
        let now = self.now();
        let listing = self.listing(ResourceKind::Group);
        let slot = listing.allocate()?;
        listing.write_add(slot, &id, None, now)?;
        let rec = Record {
            d: doc,
            s: slot,
            c: now,
            m: now,
        };
        self.save(ResourceKind::Group, &id, &rec)?;
        if let Some(n) = str_of(&rec.d, "displayName") {
            self.set_index("gn", n, false, &id)?;
        }
        if let Some(e) = str_of(&rec.d, "externalId") {
            self.set_index("gx", e, true, &id)?;
        }
        for (uid, display) in &members {
            self.add_member(&id, uid, display.as_deref())?;
        }
        if Log::due(slot) {
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
        let rec = Record {
            d: doc,
            s: old.s,
            c: old.c,
            m: self.now(),
        };
        self.save(ResourceKind::Group, id, &rec)?;
        for (index, attr, exact) in [("gn", "displayName", false), ("gx", "externalId", true)] {
            let (o, n) = (str_of(&old.d, attr), str_of(&rec.d, attr));
            let same = match (o, n) {
                (Some(a), Some(b)) => same_value(a, b, exact),
                (None, None) => true,
                _ => false,
            };
            if !same {
                if let Some(v) = n {
                    self.set_index(index, v, exact, id)?;
                }
                if let Some(v) = o {
                    self.clear_index(index, v, exact, id)?;
                }
            }
        }
        Ok(rec)
    }

    fn current_members(&self, gid: &str) -> Result<Vec<String>> {
        let page = self
            .log(&format!("gm/{gid}"))
            .all(self.now(), &always_live)?;
        Ok(page.entries.into_iter().map(|e| e.id).collect())
    }

    /// Makes the member set exactly `target`.
    fn set_members(&self, gid: &str, target: &[(String, Option<String>)]) -> Result<()> {
        let want: HashSet<String> = target.iter().filter_map(|(u, _)| parse_uuid(u)).collect();
        for uid in self.current_members(gid)? {
            if !want.contains(&uid) {
                self.remove_member(gid, &uid)?;
            }
        }
        for (uid, display) in target {
            self.add_member(gid, uid, display.as_deref())?;
        }
        Ok(())
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
        let rec = if doc == old.d {
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
        let (id, old) = self.require(ResourceKind::Group, id)?;
        check_if_match(if_match, &self.group_version(&id, &old)?)?;
        let mut doc_ops = Vec::new();
        let mut member_ops = Vec::new();
        for op in ops {
            split_group_op(op, &mut doc_ops, &mut member_ops)?;
        }
        let mut doc = old.d.clone();
        patch::apply(ResourceKind::Group, &mut doc, &doc_ops, &id)?;
        let doc = canonicalize(ResourceKind::Group, &Value::Object(doc))?;
        let plan = plan_members(&member_ops)?;
        let rec = if doc == old.d {
            old
        } else {
            self.write_group(&id, &old, doc)?
        };
        self.run_member_plan(&id, plan)?;
        self.group_outcome(200, &id, rec, proj)
    }

    fn run_member_plan(&self, gid: &str, plan: Vec<MemberChange>) -> Result<()> {
        let needs_list = plan
            .iter()
            .any(|c| matches!(c, MemberChange::Set(_) | MemberChange::RemoveWhere(_)));
        if !needs_list {
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

    /// DELETE /Groups/{id}. Members' `groups` drop the group when read (the group record
    /// is gone), so deleting a large group costs O(1).
    pub fn delete_group(&self, id: &str, if_match: Option<&str>) -> Result<Outcome> {
        let (id, rec) = self.require(ResourceKind::Group, id)?;
        check_if_match(if_match, &self.group_version(&id, &rec)?)?;
        self.store.delete(&self.key(ResourceKind::Group, &id))?;
        let slot = self
            .listing(ResourceKind::Group)
            .remove(&id, Some(rec.s), self.now())?;
        if let Some(n) = str_of(&rec.d, "displayName") {
            self.clear_index("gn", n, false, &id)?;
        }
        if let Some(e) = str_of(&rec.d, "externalId") {
            self.clear_index("gx", e, true, &id)?;
        }
        if Log::due(slot) {
            self.compact_listing(ResourceKind::Group)?;
        }
        Ok(Outcome {
            status: 204,
            body: None,
            etag: None,
            location: None,
        })
    }

    // ---- listing --------------------------------------------------------------

    fn view(
        &self,
        kind: ResourceKind,
        id: &str,
        rec: Record,
        proj: &Projection,
        with_groups: bool,
    ) -> Result<Value> {
        Ok(match kind {
            ResourceKind::User => self.user_view(id, rec, proj, with_groups)?.0,
            ResourceKind::Group => self.group_view(id, rec, proj)?.0,
        })
    }

    /// The documents a filter is evaluated against: complete, with computed attributes
    /// when the filter mentions them.
    fn eval_doc(&self, kind: ResourceKind, id: &str, rec: Record, computed: bool) -> Result<Value> {
        self.view(kind, id, rec, &Projection::default(), computed)
    }

    /// GET /Users, GET /Groups, and `.search`.
    pub fn list(&self, kind: ResourceKind, q: &ListQuery) -> Result<Value> {
        let (total, items) = self.select(kind, q)?;
        Ok(list_response(total, q.start_index.max(1), items))
    }

    /// The total and the requested page of rendered resources.
    pub fn select(&self, kind: ResourceKind, q: &ListQuery) -> Result<(usize, Vec<Value>)> {
        let start = q.start_index.max(1);
        let count = q
            .count
            .unwrap_or(self.limits.default_count)
            .min(self.limits.max_count);
        let filter = match &q.filter {
            Some(f) => {
                let f = Filter::parse(f)?;
                f.check(kind)?;
                Some(f)
            }
            None => None,
        };
        // Users' groups are computed per user; in lists they are returned when asked for.
        let with_groups = q.projection.attributes.as_ref().is_some_and(|a| {
            a.iter().any(|p| {
                p.eq_ignore_ascii_case("groups") || p.to_ascii_lowercase().starts_with("groups.")
            })
        });
        let sort = match &q.sort_by {
            Some(s) => Some(filter::split_attr_path(s).ok_or_else(|| {
                ScimError::invalid_value(format!("Invalid sortBy attribute '{s}'"))
            })?),
            None => None,
        };
        if let Some(p) = &sort {
            filter::resolve(kind, p)
                .map_err(|_| ScimError::invalid_value(format!("Unknown sortBy attribute '{p}'")))?;
        }
        if filter.is_none() && sort.is_none() {
            let now = self.now();
            let page = self.listing(kind).page(start - 1, count, now, &|e, t| {
                self.verify_listing(kind, e, t)
            })?;
            let mut items = Vec::with_capacity(page.entries.len());
            for e in &page.entries {
                if let Some(rec) = self.load(kind, &e.id)? {
                    items.push(self.view(kind, &e.id, rec, &q.projection, with_groups)?);
                }
            }
            return Ok((page.total, items));
        }
        let computed = filter.as_ref().is_some_and(|f| mentions_computed(kind, f));
        let indexed = match kind {
            ResourceKind::User => ["id", "userName", "externalId"],
            ResourceKind::Group => ["id", "displayName", "externalId"],
        };
        let mut candidates: Vec<(String, Record)> = Vec::new();
        match filter.as_ref().and_then(|f| index_terms(f, kind, &indexed)) {
            Some(terms) => {
                let mut seen = HashSet::new();
                for (attr, value) in terms {
                    if let Some((id, rec)) = self.find_by_index(kind, attr, &value)? {
                        if seen.insert(id.clone()) {
                            candidates.push((id, rec));
                        }
                    }
                }
            }
            None => {
                let now = self.now();
                let log = self.listing(kind);
                let head = log.page(0, 0, now, &|e, t| self.verify_listing(kind, e, t))?;
                if head.total > self.limits.max_scan {
                    return Err(ScimError::new(ErrorKind::TooMany, format!(
                        "This filter or sort needs a scan of {} resources, more than the {} allowed; filter by an indexed attribute (id, {})",
                        head.total,
                        self.limits.max_scan,
                        if kind == ResourceKind::User { "userName, externalId" } else { "displayName, externalId" }
                    )));
                }
                let page = log.all(now, &|e, t| self.verify_listing(kind, e, t))?;
                for e in page.entries {
                    if let Some(rec) = self.load(kind, &e.id)? {
                        candidates.push((e.id, rec));
                    }
                }
            }
        }
        let mut matched: Vec<(String, Record, Value)> = Vec::new();
        for (id, rec) in candidates {
            let doc = self.eval_doc(kind, &id, rec.clone(), computed)?;
            if filter.as_ref().is_none_or(|f| f.matches(kind, &doc)) {
                matched.push((id, rec, doc));
            }
        }
        if let Some(p) = &sort {
            let def = filter::resolve(kind, p).ok();
            let exact = def.is_some_and(|d| {
                match (&p.sub, d.sub_attr(p.sub.as_deref().unwrap_or("value"))) {
                    (_, Some(s)) if d.ty == crate::schema::AttrType::Complex => s.case_exact,
                    _ => d.case_exact,
                }
            });
            let key = |doc: &Value| -> Option<Value> { sort_key(kind, doc, p, exact) };
            matched.sort_by(|a, b| {
                let (ka, kb) = (key(&a.2), key(&b.2));
                let ord = match (ka, kb) {
                    (None, None) => std::cmp::Ordering::Equal,
                    (None, Some(_)) => return std::cmp::Ordering::Greater,
                    (Some(_), None) => return std::cmp::Ordering::Less,
                    (Some(x), Some(y)) => cmp_json(&x, &y),
                };
                if q.descending {
                    ord.reverse()
                } else {
                    ord
                }
            });
        }
        let total = matched.len();
        let mut items = Vec::new();
        for (id, rec, _) in matched.into_iter().skip(start - 1).take(count) {
            items.push(self.view(kind, &id, rec, &q.projection, with_groups)?);
        }
        Ok((total, items))
    }
}

/// A ListResponse body.
pub fn list_response(total: usize, start: usize, items: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_URN],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": items.len(),
        "Resources": items,
    })
}

fn cmp_json(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(std::cmp::Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

fn sort_key(kind: ResourceKind, doc: &Value, p: &filter::AttrPath, exact: bool) -> Option<Value> {
    let found = kind.resolve(p.urn.as_deref(), &p.name)?;
    let container = match found.extension {
        Some(ext) => filter::get_ci(doc, ext.id)?,
        None => doc,
    };
    let v = filter::get_ci(container, found.attr.name)?;
    let v = match v {
        // Multi-valued: sort by the primary value, else the first (RFC 7644 3.4.2.3).
        Value::Array(items) => items
            .iter()
            .find(|i| filter::get_ci(i, "primary") == Some(&Value::Bool(true)))
            .or_else(|| items.first())?,
        other => other,
    };
    let v = match (&p.sub, v) {
        (Some(s), obj) => filter::get_ci(obj, s)?,
        (None, Value::Object(_)) => filter::get_ci(v, "value")?,
        (None, other) => other,
    };
    Some(match v {
        Value::String(s) if !exact => Value::String(caseless::fold(s)),
        other => other.clone(),
    })
}

fn mentions_computed(kind: ResourceKind, f: &Filter) -> bool {
    let computed = match kind {
        ResourceKind::User => "groups",
        ResourceKind::Group => "members",
    };
    match f {
        Filter::Compare(p, ..) | Filter::Present(p) | Filter::ValuePath(p, _) => {
            p.name.eq_ignore_ascii_case(computed)
        }
        Filter::And(a, b) | Filter::Or(a, b) => {
            mentions_computed(kind, a) || mentions_computed(kind, b)
        }
        Filter::Not(a) => mentions_computed(kind, a),
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

/// A membership change requested by PATCH.
#[derive(Debug, Clone)]
enum MemberChange {
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
fn split_group_op(
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

fn plan_members(ops: &[PatchOp]) -> Result<Vec<MemberChange>> {
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
