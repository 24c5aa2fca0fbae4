//! The storage layout: the one place that spells keys and the record's encoding, so a
//! change to either shows in one file. Every key starts with the organization id.
//!
//! Layout (`{o}` is the organization id):
//! - `{o}/u/{id}`, `{o}/g/{id}`: one record per resource (document, listing slot, times)
//! - `{o}/x/{un|ux|gn|gx}/{digest}`: index hints (userName, user externalId, group
//!   displayName, group externalId) -> id, verified against the record on every read
//! - `{o}/m/{group}/{user}`: membership marker (the slot of the add in the group's log)
//! - `{o}/L/u`, `{o}/L/g`, `{o}/L/gm/{group}`, `{o}/L/ug/{user}`: append-only logs (see
//!   [`crate::collection`]) for listing users and groups, a group's members, a user's groups

use crate::caseless;
use crate::ids::{key_digest, OrgId};
use crate::schema::ResourceKind;
use crate::store::first_layout;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A stored resource. The one-letter names are the stored form; renaming them would
/// orphan every record already written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Record {
    /// The document without `id` and `meta`.
    #[serde(rename = "d")]
    pub(super) doc: Map<String, Value>,
    /// The slot of the add in the organization's listing log.
    #[serde(rename = "s")]
    pub(super) slot: i64,
    /// Created (ms).
    #[serde(rename = "c")]
    pub(super) created: i64,
    /// Last modified (ms).
    #[serde(rename = "m")]
    pub(super) modified: i64,
    /// The layout it was written under.
    #[serde(rename = "v", default = "first_layout")]
    pub(super) layout: u32,
}

/// An index from an attribute value to the id of the resource carrying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IndexKind {
    /// Users by `userName` (caseless).
    UserName,
    /// Users by `externalId` (case-exact).
    UserExternal,
    /// Groups by `displayName` (caseless).
    GroupName,
    /// Groups by `externalId` (case-exact).
    GroupExternal,
}

impl IndexKind {
    /// The key segment: stored data is found by it.
    fn code(self) -> &'static str {
        match self {
            IndexKind::UserName => "un",
            IndexKind::UserExternal => "ux",
            IndexKind::GroupName => "gn",
            IndexKind::GroupExternal => "gx",
        }
    }

    /// The resource type the index points at.
    pub(super) fn kind(self) -> ResourceKind {
        match self {
            IndexKind::UserName | IndexKind::UserExternal => ResourceKind::User,
            IndexKind::GroupName | IndexKind::GroupExternal => ResourceKind::Group,
        }
    }

    /// The attribute whose value is indexed.
    pub(super) fn attr(self) -> &'static str {
        match self {
            IndexKind::UserName => "userName",
            IndexKind::GroupName => "displayName",
            IndexKind::UserExternal | IndexKind::GroupExternal => "externalId",
        }
    }

    /// Whether values compare exactly (`caseExact`) rather than folded.
    pub(super) fn exact(self) -> bool {
        matches!(self, IndexKind::UserExternal | IndexKind::GroupExternal)
    }
}

/// An append-only log (see [`crate::collection`]).
#[derive(Debug, Clone, Copy)]
pub(super) enum CollectionName<'i> {
    /// Every resource of a type, in creation order: the listing.
    Listing(ResourceKind),
    /// A group's members.
    GroupMembers(&'i str),
    /// A user's groups.
    UserGroups(&'i str),
}

fn letter(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "u",
        ResourceKind::Group => "g",
    }
}

/// The keys of one organization.
#[derive(Debug, Clone, Copy)]
pub(super) struct Keys<'o>(&'o OrgId);

impl<'o> Keys<'o> {
    /// The keys under `org`.
    pub(super) fn new(org: &'o OrgId) -> Self {
        Keys(org)
    }

    /// A resource's record.
    pub(super) fn record(self, kind: ResourceKind, id: &str) -> String {
        format!("{}{id}", self.records(kind))
    }

    /// What every record of a type starts with.
    pub(super) fn records(self, kind: ResourceKind) -> String {
        format!("{}/{}/", self.0, letter(kind))
    }

    /// What every membership marker starts with.
    pub(super) fn markers(self) -> String {
        format!("{}/m/", self.0)
    }

    /// Everything of this organization.
    pub(super) fn all(self) -> String {
        format!("{}/", self.0)
    }

    /// An index entry: exact values digested as sent, caseless ones folded.
    pub(super) fn index(self, index: IndexKind, value: &str) -> String {
        let digest = key_digest(&caseless::compare_form(value, index.exact()));
        format!("{}/x/{}/{digest}", self.0, index.code())
    }

    /// The marker that `uid` is a member of `gid`.
    pub(super) fn marker(self, gid: &str, uid: &str) -> String {
        format!("{}/m/{gid}/{uid}", self.0)
    }

    /// The base key of a log.
    pub(super) fn collection(self, name: CollectionName<'_>) -> String {
        match name {
            CollectionName::Listing(kind) => format!("{}/L/{}", self.0, letter(kind)),
            CollectionName::GroupMembers(gid) => format!("{}/L/gm/{gid}", self.0),
            CollectionName::UserGroups(uid) => format!("{}/L/ug/{uid}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{check_layout, LAYOUT_VERSION};
    use serde_json::json;

    const ORG: &str = "11111111-1111-4111-8111-111111111111";
    const ID: &str = "00000000-0000-4000-8000-000000000001";

    // Pinned spellings: stored data is only found again if these never change.
    #[test]
    fn keys_keep_their_stored_spelling() {
        let org = OrgId::parse(ORG).unwrap();
        let k = Keys::new(&org);
        assert_eq!(k.record(ResourceKind::User, ID), format!("{ORG}/u/{ID}"));
        assert_eq!(k.record(ResourceKind::Group, ID), format!("{ORG}/g/{ID}"));
        assert_eq!(k.marker("G", "U"), format!("{ORG}/m/G/U"));
        assert_eq!(
            k.collection(CollectionName::Listing(ResourceKind::User)),
            format!("{ORG}/L/u")
        );
        assert_eq!(
            k.collection(CollectionName::Listing(ResourceKind::Group)),
            format!("{ORG}/L/g")
        );
        assert_eq!(
            k.collection(CollectionName::GroupMembers("G")),
            format!("{ORG}/L/gm/G")
        );
        assert_eq!(
            k.collection(CollectionName::UserGroups("U")),
            format!("{ORG}/L/ug/U")
        );
        let folded = key_digest(&caseless::compare_form("Ann", false));
        let exact = key_digest(&caseless::compare_form("Ann", true));
        assert_eq!(
            k.index(IndexKind::UserName, "Ann"),
            format!("{ORG}/x/un/{folded}")
        );
        assert_eq!(
            k.index(IndexKind::UserExternal, "Ann"),
            format!("{ORG}/x/ux/{exact}")
        );
        assert_eq!(
            k.index(IndexKind::GroupName, "Ann"),
            format!("{ORG}/x/gn/{folded}")
        );
        assert_eq!(
            k.index(IndexKind::GroupExternal, "Ann"),
            format!("{ORG}/x/gx/{exact}")
        );
        assert_eq!(
            k.index(IndexKind::UserName, "ANN"),
            k.index(IndexKind::UserName, "ann")
        );
        assert_ne!(
            k.index(IndexKind::UserExternal, "ANN"),
            k.index(IndexKind::UserExternal, "ann")
        );
    }

    #[test]
    fn record_keeps_its_stored_form() {
        let doc = json!({"userName": "ann"}).as_object().cloned().unwrap();
        let rec = Record {
            doc,
            slot: 7,
            created: 1,
            modified: 2,
            layout: LAYOUT_VERSION,
        };
        let bytes = serde_json::to_vec(&rec).unwrap();
        assert_eq!(
            bytes,
            br#"{"d":{"userName":"ann"},"s":7,"c":1,"m":2,"v":1}"#
        );
        let back: Record = serde_json::from_slice(&bytes).unwrap();
        assert_eq!((back.slot, back.created, back.modified), (7, 1, 2));
        // Records written before layouts were versioned read as layout 1.
        let old: Record =
            serde_json::from_slice(br#"{"d":{"userName":"ann"},"s":7,"c":1,"m":2}"#).unwrap();
        assert_eq!(old.layout, 1);
        assert!(check_layout("k", old.layout).is_ok());
        assert!(check_layout("k", LAYOUT_VERSION + 1).is_err());
    }
}
