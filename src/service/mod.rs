//! Users and Groups over a [`Store`]: indexes, memberships and listing. Everything here
//! is per organization; every key starts with the org id, and `layout` alone spells
//! keys (its module doc describes them).
//!
//! The operations are split by what they touch: `users`, `groups`, `members` (the
//! membership logs and markers), `listing` (lists, filters, sorting); `record` holds
//! what they share (loading, saving, index hints, rendering).

mod groups;
pub(crate) mod layout;
mod listing;
mod members;
mod record;
mod repair;
mod users;
mod vault;

pub use vault::{GroupWant, UserWant};

use crate::collection::Collection;
use crate::error::{ErrorKind, Result, ScimError};
use crate::ids::{Clock, Ids, OrgId};
use crate::okta::Policy;
use crate::resource::Projection;
use crate::schema::ResourceKind;
use crate::store::Store;
use layout::{CollectionName, Keys};
use serde_json::{json, Value};

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

/// One organization's view of the store.
pub struct Service<'a> {
    store: &'a dyn Store,
    clock: &'a dyn Clock,
    ids: &'a dyn Ids,
    org: OrgId,
    policy: Policy,
    base: String,
    limits: &'a Limits,
    /// Whether the organization has a vault: changes are marked in its outbox and users
    /// show their vault status.
    vault: bool,
    marked: std::cell::RefCell<Vec<String>>,
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
            vault: false,
            marked: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// Says that the organization has a vault (see [`crate::vault`]).
    pub fn with_vault(mut self, on: bool) -> Self {
        self.vault = on;
        self
    }

    /// The current version of a resource, for `If-None-Match`.
    pub fn version(&self, kind: ResourceKind, id: &str) -> Result<String> {
        let (id, rec) = self.require(kind, id)?;
        Ok(match kind {
            ResourceKind::User => Self::version_of(&rec, None),
            ResourceKind::Group => self.group_version(&id, &rec)?,
        })
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    fn keys(&self) -> Keys<'_> {
        Keys::new(&self.org)
    }

    fn collection(&self, name: CollectionName<'_>) -> Collection<'a> {
        Collection::new(self.store, self.keys().collection(name))
    }

    /// The listing log; its verifier reads each tail add's record.
    fn listing(&self, kind: ResourceKind) -> Collection<'a> {
        self.collection(CollectionName::Listing(kind))
            .verified_from(self.keys().records(kind))
    }

    fn location(&self, kind: ResourceKind, id: &str) -> String {
        format!("{}/{}/{id}", self.base, kind.endpoint())
    }
}
