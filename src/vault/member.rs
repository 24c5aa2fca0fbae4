//! The one place that links a SCIM user to a vault member and unlinks it, and that
//! records what the vault was seen to say about the member ([`Observed`], in its own key
//! and merged by time, so a drain holding the user's delivery state never overwrites a
//! newer observation).

use super::conn::{store_fail, Fail};
use super::drain::Drain;
use crate::delivery::{observe, Item, Observed, Source};
use crate::member_status::MemberStatus;

/// A member as the vault lists or answers it.
pub struct Found {
    /// Its id.
    pub id: String,
    /// Its status.
    pub status: MemberStatus,
    /// Owner or admin: never changed.
    pub privileged: bool,
}

impl Drain<'_, '_> {
    /// Links user `id` to member `m`, as seen at `at` by `source`: its id, whether it is
    /// active, whether it is protected, the key from its id back to the user, its status.
    pub(super) fn link(
        &self,
        id: &str,
        item: &mut Item,
        m: &Found,
        source: Source,
        at: i64,
    ) -> Result<(), Fail> {
        let store = self.conn.store();
        if item.vid.as_deref() != Some(m.id.as_str()) || !item.keyed {
            if let Some(old) = item.vid.as_deref().filter(|v| *v != m.id) {
                store
                    .delete(&self.keys.member(old))
                    .map_err(|e| store_fail(e.into()))?;
            }
            store
                .set(&self.keys.member(&m.id), id.as_bytes())
                .map_err(|e| store_fail(e.into()))?;
            if item.vid.as_deref() != Some(m.id.as_str()) {
                item.linked_at = self.conn.now();
            }
            item.vid = Some(m.id.clone());
            item.keyed = true;
        }
        item.active = Some(m.status != MemberStatus::Revoked);
        item.protected = m.privileged;
        self.observe(id, m.status, source, at)
    }

    /// User `id` has no member in the vault as of `at` (removed by hand or by scim-edge).
    pub(super) fn unlink(
        &self,
        id: &str,
        item: &mut Item,
        source: Source,
        at: i64,
    ) -> Result<(), Fail> {
        if let Some(vid) = item.vid.take() {
            self.conn
                .store()
                .delete(&self.keys.member(&vid))
                .map_err(|e| store_fail(e.into()))?;
        }
        item.keyed = false;
        item.active = None;
        item.status = None;
        self.observe(id, MemberStatus::Pending, source, at)
    }

    /// Records what the vault said about user `id`'s member at `at`.
    pub(super) fn observe(
        &self,
        id: &str,
        status: MemberStatus,
        source: Source,
        at: i64,
    ) -> Result<(), Fail> {
        let seen = Observed { status, at, source };
        observe(self.conn.store(), &self.keys, id, seen)
            .map(|_| ())
            .map_err(store_fail)
    }
}
