//! Bitwarden's Public API, one resource at a time: members are invited, revoked and
//! restored (never `PUT public/members`, which clears collection access); groups are
//! created and renamed always with their `externalId`, and their members set whole with
//! `PUT public/groups/{id}/member-ids`.

use super::address::refused;
use super::api::{Answer, Api, ApiGroup, ApiMember};
use super::conn::{store_fail, Fail};
use super::drain::{Drain, Step};
use super::member::Found;
use crate::config::vault::VaultKind;
use crate::delivery::Source;
use crate::delivery::{digest, group_digest, save, Item, Kind};
use crate::member_status::MemberStatus;
use crate::service::{GroupWant, UserWant};
use serde_json::json;

/// A create claimed this recently by another drain is left to it (ms).
pub const LEASE_MS: i64 = 60_000;

/// A member in a vault listing or answer.
pub(super) fn found(m: &ApiMember) -> Found {
    Found {
        id: m.id.clone(),
        status: MemberStatus::from_bitwarden(m.status),
        privileged: matches!(m.kind, 0 | 1),
    }
}

/// A group deleted in the vault by hand: created again on the next pass.
fn lost_group(item: &mut Item) -> Step {
    item.vid = None;
    item.members = None;
    item.member_vids.clear();
    Step::Again
}

impl Drain<'_, '_> {
    /// The vault's member with this externalId, else this email (case-insensitive).
    pub(super) fn find_member(&mut self, email: &str, ext: &str) -> Result<Option<Found>, Fail> {
        let all: Vec<ApiMember> = self.conn.api_list(Api::Members)?;
        let by_ext = all.iter().find(|m| m.external_id.as_deref() == Some(ext));
        let by_email = || {
            all.iter().find(|m| {
                m.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
        };
        Ok(by_ext.or_else(by_email).map(found))
    }

    /// Takes the right to create a resource in the vault. `Ok(true)`: create it (after
    /// looking it up when an earlier claim exists); `Ok(false)`: another drain is at it.
    fn claim(&mut self, kind: Kind, id: &str, item: &mut Item) -> Result<Option<bool>, Fail> {
        // The latest claim, not the drain's cached copy.
        let key = self.keys.item(kind, id);
        self.conn.store().forget(std::slice::from_ref(&key));
        let latest: Item = crate::delivery::load(self.conn.store(), &key).map_err(store_fail)?;
        if latest.vid.is_some() {
            // Created meanwhile by another drain.
            *item = latest;
            return Ok(None);
        }
        item.claim_at = latest.claim_at;
        let now = self.conn.now();
        if item.claim_at > 0 && now - item.claim_at < LEASE_MS {
            return Ok(None);
        }
        item.claim_at = now;
        self.claimed = true;
        save(self.conn.store(), &self.keys.item(kind, id), item).map_err(store_fail)?;
        let n =
            super::conn::bump(self.conn.store(), &self.keys.claim(kind, id)).map_err(store_fail)?;
        // The first claim ever creates; a later one looks first (an earlier drain may
        // have died after the vault created it).
        Ok(Some(n == 1))
    }

    /// Whether this user, not in the vault yet, is on its way there: active in SCIM.
    fn will_invite(&self, user: &str) -> Result<bool, Fail> {
        let want = self.svc.user_want(user).map_err(store_fail)?;
        Ok(want.is_some_and(|w| w.active))
    }

    /// Brings one member to the state its SCIM user asks for.
    pub(super) fn bitwarden_user(
        &mut self,
        id: &str,
        item: &mut Item,
        want: Option<&UserWant>,
    ) -> Result<Step, Fail> {
        let Some(w) = want else {
            let Some(vid) = item.vid.clone() else {
                return Ok(Step::Done);
            };
            if item.protected {
                return Ok(Step::Done);
            }
            return match self.cfg.on_delete {
                crate::config::vault::OnDelete::Remove => {
                    let at = self.conn.now();
                    if let a @ Answer::Refused { .. } = self.conn.api(Api::Remove(&vid))? {
                        return Ok(Step::Rejected(a.message()));
                    }
                    self.unlink(id, item, Source::Delivery, at)?;
                    Ok(Step::Done)
                }
                crate::config::vault::OnDelete::Revoke => self.set_active(id, &vid, item, false),
            };
        };
        let ext = w.ext(id);
        if item.vid.is_none() && !w.active {
            // Never invited while active: a deactivated user is not invited at all.
            return Ok(Step::Done);
        }
        if item.vid.is_none() {
            if let Some(m) = refused(VaultKind::Bitwarden, &w.email) {
                return Ok(Step::Invalid(m));
            }
            let fresh = match self.claim(Kind::User, id, item)? {
                None => return Ok(Step::Wait),
                Some(fresh) => fresh,
            };
            let at = self.conn.now();
            let existing = if fresh {
                None
            } else {
                self.find_member(&w.email, ext)?
            };
            match existing {
                Some(f) => self.link(id, item, &f, Source::Delivery, at)?,
                None => {
                    let invite = Api::Invite {
                        email: &w.email,
                        ext,
                    };
                    let a = self.conn.api(invite)?;
                    match &a {
                        Answer::Done(_) => {
                            let Some(f) = a.read::<ApiMember>().as_ref().map(found) else {
                                return Err(Fail::Vault(
                                    "the vault's member answer has no id".into(),
                                ));
                            };
                            self.link(id, item, &f, Source::Delivery, at)?;
                            self.report.invited += 1;
                        }
                        // Bitwarden's "This user has already been invited.": linked.
                        Answer::Refused {
                            status: 400,
                            message,
                        } if message.contains("already") => {
                            match self.find_member(&w.email, ext)? {
                                Some(f) => self.link(id, item, &f, Source::Delivery, at)?,
                                None => return Ok(Step::Rejected(a.message())),
                            }
                        }
                        _ => return Ok(Step::Rejected(a.message())),
                    }
                }
            }
            item.email = Some(w.email.clone());
        }
        if item.protected {
            return Ok(Step::Done);
        }
        let Some(vid) = item.vid.clone() else {
            return Ok(Step::Done);
        };
        if item.active != Some(w.active) {
            return self.set_active(id, &vid, item, w.active);
        }
        Ok(Step::Done)
    }

    fn set_active(
        &mut self,
        id: &str,
        vid: &str,
        item: &mut Item,
        active: bool,
    ) -> Result<Step, Fail> {
        if item.active == Some(active) {
            return Ok(Step::Done);
        }
        let at = self.conn.now();
        let a = self.conn.api(if active {
            Api::Restore(vid)
        } else {
            Api::Revoke(vid)
        })?;
        match a {
            Answer::Done(_) => {}
            Answer::NotFound => {
                // Removed in the vault: invited again at once if still wanted.
                self.unlink(id, item, Source::Delivery, at)?;
                return Ok(if active { Step::Again } else { Step::Done });
            }
            Answer::Refused { .. } => {
                // Already in that state, or refused (seats): the member says which.
                let m = self.conn.api(Api::Member(vid))?.read::<ApiMember>();
                match m.map(|m| MemberStatus::from_bitwarden(m.status)) {
                    Some(s) if (s != MemberStatus::Revoked) == active => {}
                    _ => return Ok(Step::Rejected(a.message())),
                }
            }
        }
        item.active = Some(active);
        if !active {
            self.observe(id, MemberStatus::Revoked, Source::Delivery, at)?;
            return Ok(Step::Done);
        }
        // A restore brings back the status before the revoke: the member says which.
        let at = self.conn.now();
        let m = self.conn.api(Api::Member(vid))?.read::<ApiMember>();
        let seen = m.map_or(MemberStatus::Invited, |m| {
            MemberStatus::from_bitwarden(m.status)
        });
        self.observe(id, seen, Source::Delivery, at)?;
        Ok(Step::Done)
    }

    /// Brings one group to its SCIM state; its members must have been delivered first.
    pub(super) fn bitwarden_group(
        &mut self,
        id: &str,
        item: &mut Item,
        want: Option<&GroupWant>,
    ) -> Result<Step, Fail> {
        let Some(g) = want else {
            if let Some(vid) = item.vid.clone() {
                if let a @ Answer::Refused { .. } = self.conn.api(Api::DeleteGroup(&vid))? {
                    return Ok(Step::Rejected(a.message()));
                }
                item.vid = None;
            }
            return Ok(Step::Done);
        };
        let ext = g.ext(id);
        let named = group_digest(&g.name, ext);
        if item.vid.is_none() {
            let fresh = match self.claim(Kind::Group, id, item)? {
                None => return Ok(Step::Wait),
                Some(fresh) => fresh,
            };
            if !fresh {
                item.vid = self.find_group(ext)?;
            }
            if item.vid.is_none() {
                let create = Api::CreateGroup { name: &g.name, ext };
                let a = self.conn.api(create)?;
                if !matches!(a, Answer::Done(_)) {
                    return Ok(Step::Rejected(a.message()));
                }
                item.vid = a.read::<ApiGroup>().map(|g| g.id);
                item.linked_at = self.conn.now();
                item.sent = Some(named.clone());
            }
        }
        let Some(vid) = item.vid.clone() else {
            return Err(Fail::Vault("the vault's group answer has no id".into()));
        };
        if item.sent.as_deref() != Some(named.as_str()) {
            // Always with externalId: a PUT without it clears it.
            let update = Api::UpdateGroup {
                id: &vid,
                name: &g.name,
                ext,
            };
            match self.conn.api(update)? {
                Answer::Done(_) => {}
                Answer::NotFound => return Ok(lost_group(item)),
                a => return Ok(Step::Rejected(a.message())),
            }
            item.sent = Some(named);
        }
        let mut vids = Vec::with_capacity(g.members.len());
        let keys: Vec<String> = g
            .members
            .iter()
            .map(|m| self.keys.item(Kind::User, m))
            .collect();
        self.conn.store().prefetch(&keys);
        for (user, key) in g.members.iter().zip(&keys) {
            let m: Item = crate::delivery::load(self.conn.store(), key).map_err(store_fail)?;
            match m.vid {
                Some(v) => vids.push(v),
                // A member not delivered yet: the group waits for it, unless it failed.
                None if m.parked || m.error.is_some() => {}
                // Or unless it is not to be invited (inactive or gone): its delivery adds
                // the group back if it ever is.
                None if !self.will_invite(user)? => {}
                None => return Ok(Step::Wait),
            }
        }
        vids.sort();
        let members = digest(&json!(vids));
        if item.members.as_deref() != Some(members.as_str()) {
            // The set is replaced whole: members put there in the vault by hand (owners,
            // admins, people scim-edge does not manage) are kept.
            let current: Vec<String> = match self.conn.api(Api::GroupMembers(&vid))? {
                a @ Answer::Done(_) => a.read().unwrap_or_default(),
                Answer::NotFound => return Ok(lost_group(item)),
                a => return Ok(Step::Rejected(a.message())),
            };
            let mut set = vids.clone();
            set.extend(
                current
                    .into_iter()
                    .filter(|m| !item.member_vids.contains(m) && !vids.contains(m)),
            );
            match self.conn.api(Api::SetGroupMembers(&vid, &set))? {
                Answer::Done(_) => {}
                Answer::NotFound => return Ok(lost_group(item)),
                a => return Ok(Step::Rejected(a.message())),
            }
            item.members = Some(members);
            item.member_vids = vids;
        }
        Ok(Step::Done)
    }

    /// The vault's group with this externalId.
    pub(super) fn find_group(&mut self, ext: &str) -> Result<Option<String>, Fail> {
        let all: Vec<ApiGroup> = self.conn.api_list(Api::Groups)?;
        Ok(all
            .into_iter()
            .find(|g| g.external_id.as_deref() == Some(ext))
            .map(|g| g.id))
    }
}
