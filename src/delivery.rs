//! What scim-edge remembers about delivering to the vault, per organization, and the keys
//! it lives under (beside the SCIM data, under `{o}/V/`). The service marks the outbox and
//! shows each user's status from here; the drains ([`crate::vault`]) keep it. It depends
//! on neither, so neither depends on the other through it.
//! - `{o}/L/vo`: the outbox, a collection (see [`crate::collection`]) of `u:{id}` /
//!   `g:{id}` that may differ from what the vault was last sent;
//! - `{o}/V/i/{u|g}/{id}`: per resource, its vault id and what was delivered ([`Item`]);
//! - `{o}/V/c/{u|g}/{id}`: a counter taken before creating the resource in the vault;
//! - `{o}/V/s/{id}`: what the vault was last seen to say about a user's member
//!   ([`Observed`]), apart from the delivery state so that no drain overwrites it;
//! - `{o}/V/m/{member id}`: the SCIM id of the user linked to a vault member;
//! - `{o}/V/meta`: the organization's delivery state ([`Meta`]);
//! - `{o}/V/parked`: parked entries with the vault's error;
//! - `{o}/V/pause`: until when drains hold back (429, vault down);
//! - `{o}/V/token`: the cached access token;
//! - `{o}/V/r/{what}/{slot}`: the limiter's counters;
//! - `{o}/V/d/{slot}`: the organization's drain turn (see the vault's drain turn).

use crate::error::{Result, ScimError};
use crate::ids::OrgId;
use crate::member_status::MemberStatus;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Which kind of resource an outbox entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A user (a vault member).
    User,
    /// A group.
    Group,
}

impl Kind {
    fn letter(self) -> &'static str {
        match self {
            Kind::User => "u",
            Kind::Group => "g",
        }
    }
}

/// The outbox entry for a resource.
pub fn entry(kind: Kind, id: &str) -> String {
    format!("{}:{id}", kind.letter())
}

/// An outbox entry's kind and id.
pub fn parse_entry(e: &str) -> Option<(Kind, &str)> {
    match e.split_once(':')? {
        ("u", id) => Some((Kind::User, id)),
        ("g", id) => Some((Kind::Group, id)),
        _ => None,
    }
}

/// The organization's vault keys.
pub struct VaultKeys<'o>(pub &'o OrgId);

impl VaultKeys<'_> {
    /// The outbox log's base.
    pub fn outbox(&self) -> String {
        format!("{}/L/vo", self.0)
    }
    /// A resource's [`Item`].
    pub fn item(&self, kind: Kind, id: &str) -> String {
        format!("{}/V/i/{}/{id}", self.0, kind.letter())
    }
    /// A resource's create claim counter.
    pub fn claim(&self, kind: Kind, id: &str) -> String {
        format!("{}/V/c/{}/{id}", self.0, kind.letter())
    }
    /// What the vault was last seen to say about a user's member.
    pub fn observed(&self, id: &str) -> String {
        format!("{}/V/s/{id}", self.0)
    }
    /// The SCIM id of the user linked to a vault member.
    pub fn member(&self, vid: &str) -> String {
        format!("{}/V/m/{vid}", self.0)
    }
    /// The recent problems ([`Recorded`]).
    pub fn problems(&self) -> String {
        format!("{}/V/problems", self.0)
    }
    /// The Confirm agent's last pass.
    pub fn agent(&self) -> String {
        format!("{}/V/a", self.0)
    }
    /// The [`Meta`] record.
    pub fn meta(&self) -> String {
        format!("{}/V/meta", self.0)
    }
    /// Parked entries with their errors.
    pub fn parked(&self) -> String {
        format!("{}/V/parked", self.0)
    }
    /// Until when (ms) the organization's drains hold back (a 429, a vault down).
    pub fn pause(&self) -> String {
        format!("{}/V/pause", self.0)
    }
    /// The cached token.
    pub fn token(&self) -> String {
        format!("{}/V/token", self.0)
    }
    /// The drain turn's counter for a slot.
    pub fn turn(&self, slot: i64) -> String {
        format!("{}/V/d/{slot}", self.0)
    }
    /// A limiter counter.
    pub fn rate(&self, what: &str, slot: i64) -> String {
        format!("{}/V/r/{what}/{slot}", self.0)
    }
}

/// A resource as the vault was last told, and how its delivery goes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The vault's id for it (member or group id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vid: Option<String>,
    /// Digest of the state last delivered (users: email, externalId, active; groups:
    /// name and externalId).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<String>,
    /// Groups: digest of the member ids last delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<String>,
    /// Groups: the member ids last delivered (others in the vault's group were put there
    /// by hand and are kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member_vids: Vec<String>,
    /// Users: whether the vault has the member active (not revoked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Records written before observations had their own key kept the member's status
    /// here; it is read when no [`Observed`] exists, and never written but cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<MemberStatus>,
    /// Users: the key from the member id back to this user is written.
    #[serde(default)]
    pub keyed: bool,
    /// Vaultwarden: the externalId the vault knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<String>,
    /// Users: the email the vault knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Vaultwarden users: the address (lowercased) the vault refused; the user is left
    /// out of imports while it keeps that address, until its retry is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Vaultwarden groups: the name last imported (a group deleted in SCIM is emptied
    /// under it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Failed attempts in a row.
    #[serde(default)]
    pub attempts: u32,
    /// Not before (ms) after a failure.
    #[serde(default)]
    pub next_at: i64,
    /// The vault's last error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Given up on until the resource changes or a reconcile runs.
    #[serde(default)]
    pub parked: bool,
    /// When a create was claimed (ms).
    #[serde(default)]
    pub claim_at: i64,
    /// When `vid` was set (ms): a reconcile's listing older than that cannot show it.
    #[serde(default)]
    pub linked_at: i64,
    /// An owner or admin in the vault: never changed.
    #[serde(default)]
    pub protected: bool,
}

impl Item {
    /// The status the user reports: `error` while delivery fails or is parked, else
    /// what the vault was last seen to say, `pending` before the first delivery.
    pub fn status(&self, observed: Option<&Observed>) -> MemberStatus {
        if self.parked || (self.error.is_some() && self.vid.is_none()) {
            return MemberStatus::Error;
        }
        observed
            .map(|o| o.status)
            .or(self.status)
            .unwrap_or(MemberStatus::Pending)
    }
}

/// Who saw a member's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A reconcile's listing of the vault.
    Reconcile,
    /// A drain's call that changed or read the member.
    Delivery,
    /// An agent that reads the vault as an administrator (the Confirm agent).
    Agent,
}

/// What the vault was seen to say about a member, when (ms: the time of the listing or
/// of the call's sending, so that whatever was seen after it wins) and by whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// The member's status.
    pub status: MemberStatus,
    /// When it was seen.
    pub at: i64,
    /// By whom.
    pub source: Source,
}

/// The SCIM id of the user linked to vault member `vid`.
pub fn member_user(store: &dyn Store, keys: &VaultKeys<'_>, vid: &str) -> Result<Option<String>> {
    Ok(store
        .get(&keys.member(vid))?
        .and_then(|b| String::from_utf8(b).ok()))
}

/// What the vault was last seen to say about user `id`'s member.
pub fn observed(store: &dyn Store, keys: &VaultKeys<'_>, id: &str) -> Result<Option<Observed>> {
    Ok(match store.get(&keys.observed(id))? {
        Some(b) => serde_json::from_slice(&b).ok(),
        None => None,
    })
}

/// Records an observation of user `id`'s member unless a newer one is stored; one that
/// says what the stored one says is not written. Whether it was written.
pub fn observe(store: &dyn Store, keys: &VaultKeys<'_>, id: &str, seen: Observed) -> Result<bool> {
    Ok(observe_all(store, keys, &[(id, seen)])? == 1)
}

/// [`observe`] for many users: the stored observations are read fresh a hundred to a
/// batch, and what is newer is written in one batch each. How many were written.
pub fn observe_all(
    store: &dyn Store,
    keys: &VaultKeys<'_>,
    seen: &[(&str, Observed)],
) -> Result<usize> {
    let mut written = 0;
    for chunk in seen.chunks(100) {
        let ks: Vec<String> = chunk.iter().map(|(id, _)| keys.observed(id)).collect();
        store.forget(&ks);
        store.prefetch(&ks);
        let mut writes = Vec::new();
        for ((id, o), k) in chunk.iter().zip(ks) {
            let stored = observed(store, keys, id)?;
            if stored.is_some_and(|s| s.at > o.at || s.status == o.status) {
                continue;
            }
            let bytes = serde_json::to_vec(o)
                .map_err(|e| ScimError::internal(format!("encode {k}: {e}")))?;
            writes.push((k, bytes));
        }
        if !writes.is_empty() {
            store.set_many(&writes)?;
        }
        written += writes.len();
    }
    Ok(written)
}

/// The organization's delivery state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Meta {
    /// When the vault's members were last listed and linked (ms).
    #[serde(default)]
    pub adopted_at: i64,
    /// When a drain last ran (ms).
    #[serde(default)]
    pub last_sync: i64,
    /// When a drain last delivered something (ms).
    #[serde(default)]
    pub last_sent: i64,
    /// The last failure that stopped a drain, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Vaultwarden: digest of the last import delivered, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_digest: Option<String>,
    /// Vaultwarden: when the last import was sent (ms).
    #[serde(default)]
    pub import_at: i64,
    /// Vaultwarden: imports refused in a row, and not before when (ms) the next is sent.
    #[serde(default)]
    pub import_failures: u32,
    /// Vaultwarden: the next import's earliest time (ms) after a refusal.
    #[serde(default)]
    pub import_next: i64,
    /// Vaultwarden: users deleted in SCIM, by email (with the externalId sent), sent as
    /// `deleted` until an import carrying them succeeds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub removed: BTreeMap<String, Option<String>>,
    /// Vaultwarden: those of `removed` an import carried. Absent from the vault's view
    /// they stay revoked, so the next import leaves them out and they are forgotten;
    /// until then they still count in the digest, so dropping them sends nothing.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub removed_sent: BTreeSet<String>,
    /// Vaultwarden: groups deleted in SCIM, by externalId (with their name), sent with no
    /// members until an import carrying them succeeds (imports never delete a group, so
    /// it would keep granting its members what it grants).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub emptied: BTreeMap<String, String>,
    /// Counters (limiter slots, the drain turn) a drain left behind, by when (ms) each
    /// may be deleted: the next drain under the turn deletes those due.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sweep: BTreeMap<String, i64>,
    /// The last group whose members a reconcile read from the vault ("": start over).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group_cursor: String,
    /// Drift found in the vault by the last reconcile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<String>,
    /// The last token request: when (ms), and why it failed if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenSeen>,
}

/// How the last token request went.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TokenSeen {
    /// When (ms).
    pub at: i64,
    /// Why it failed; none when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One of an organization's recent problems (the last [`PROBLEMS_KEPT`], newest last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// When (ms).
    pub at: i64,
    /// `refused`, `drift`, `vault`, `fatal`, `store`, `busy` or `token`.
    pub kind: String,
    /// The SCIM id of the resource concerned, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The vault's or the store's words.
    pub message: String,
}

/// How many recent problems an organization keeps.
pub const PROBLEMS_KEPT: usize = 200;

/// A short digest of a value's JSON.
pub fn digest(v: &serde_json::Value) -> String {
    let d = Sha256::digest(v.to_string().as_bytes());
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The digest of a group's name and externalId as the vault was sent them: a delivery
/// and a reconcile compare the same bytes, or every group would read as renamed.
pub fn group_digest(name: &str, ext: &str) -> String {
    digest(&serde_json::json!({"name": name, "externalId": ext}))
}

fn decode<T: for<'de> Deserialize<'de> + Default>(key: &str, bytes: Option<Vec<u8>>) -> Result<T> {
    match bytes {
        None => Ok(T::default()),
        Some(b) => serde_json::from_slice(&b)
            .map_err(|e| ScimError::internal(format!("corrupt vault record {key}: {e}"))),
    }
}

/// Reads a record (the default when absent).
pub fn load<T: for<'de> Deserialize<'de> + Default>(store: &dyn Store, key: &str) -> Result<T> {
    decode(key, store.get(key)?)
}

/// Writes a record.
pub fn save<T: Serialize>(store: &dyn Store, key: &str, v: &T) -> Result<()> {
    let bytes =
        serde_json::to_vec(v).map_err(|e| ScimError::internal(format!("encode {key}: {e}")))?;
    Ok(store.set(key, &bytes)?)
}
