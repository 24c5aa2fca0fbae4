//! Bitwarden's Public API, one resource at a time: members are invited, revoked and
//! restored (never `PUT public/members`, which clears collection access); groups are
//! created and renamed always with their `externalId`, and their members set whole with
//! `PUT public/groups/{id}/member-ids`.

use super::address::refusal;
use super::conn::{store_fail, Fail};
use super::drain::{Drain, Step};
use super::member::Found;
use crate::config::vault::VaultKind;
use crate::delivery::Source;
use crate::delivery::{digest, group_digest, save, Item, Kind};
use crate::member_status::MemberStatus;
use crate::service::{GroupWant, UserWant};
use serde_json::{json, Value};

/// A create claimed this recently by another drain is left to it (ms).
pub const LEASE_MS: i64 = 60_000;

/// A member in a vault listing or answer.
pub(super) fn found(v: &Value) -> Option<Found> {
    Some(Found {
        id: v.get("id")?.as_str()?.to_string(),
        status: MemberStatus::from_bitwarden(v.get("status").and_then(Value::as_i64).unwrap_or(0)),
        privileged: matches!(v.get("type").and_then(Value::as_i64), Some(0 | 1)),
    })
}

/// A group deleted in the vault by hand: created again on the next pass.
fn lost_group(item: &mut Item) -> Step {
    item.vid = None;
    item.members = None;
    item.member_vids.clear();
    Step::Again
}

/// The state a user's delivery is compared with.
pub fn user_digest(w: &UserWant) -> String {
    digest(&json!([w.email.to_lowercase(), w.external_id, w.active]))
}

impl Drain<'_, '_> {
    /// A Public API list (`{"object": "list", "data": [..]}`): every item, unpaged.
    pub(super) fn list(&mut self, path: &str) -> Result<Vec<Value>, Fail> {
        let r = self.conn.call("GET", path, None)?;
        if r.status != 200 {
            return Err(Fail::Vault(format!(
                "listing {path}: {} {}",
                r.status,
                r.message()
            )));
        }
        Ok(match r.json().get_mut("data").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        })
    }

    /// The vault's member with this externalId, else this email (case-insensitive).
    pub(super) fn find_member(&mut self, email: &str, ext: &str) -> Result<Option<Found>, Fail> {
        let data = self.list("public/members")?;
        let by = |f: &dyn Fn(&Value) -> bool| data.iter().find(|m| f(m)).and_then(found);
        Ok(
            by(&|m| m.get("externalId").and_then(Value::as_str) == Some(ext)).or_else(|| {
                by(&|m| {
                    m.get("email")
                        .and_then(Value::as_str)
                        .is_some_and(|e| e.eq_ignore_ascii_case(email))
                })
            }),
        )
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
                    let r = self
                        .conn
                        .call("DELETE", &format!("public/members/{vid}"), None)?;
                    if r.status != 200 && r.status != 404 {
                        return Ok(Step::Rejected(r.message()));
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
            if let Some(why) = refusal(VaultKind::Bitwarden, &w.email) {
                return Ok(Step::Invalid(format!(
                    "the vault would refuse this address: {why}"
                )));
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
                    let body = json!({"email": w.email, "type": 2, "externalId": ext, "collections": [], "groups": []});
                    let r = self.conn.call("POST", "public/members", Some(&body))?;
                    match r.status {
                        200 => {
                            let Some(f) = found(&r.json()) else {
                                return Err(Fail::Vault(
                                    "the vault's member answer has no id".into(),
                                ));
                            };
                            self.link(id, item, &f, Source::Delivery, at)?;
                            self.report.invited += 1;
                        }
                        400 if r.message().contains("already") => {
                            match self.find_member(&w.email, ext)? {
                                Some(f) => self.link(id, item, &f, Source::Delivery, at)?,
                                None => return Ok(Step::Rejected(r.message())),
                            }
                        }
                        _ => return Ok(Step::Rejected(r.message())),
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
        let verb = if active { "restore" } else { "revoke" };
        let r = self
            .conn
            .call("POST", &format!("public/members/{vid}/{verb}"), None)?;
        match r.status {
            200 => {}
            404 => {
                // Removed in the vault: invited again on the next pass if still wanted.
                self.unlink(id, item, Source::Delivery, at)?;
                return Ok(if active { Step::Again } else { Step::Done });
            }
            _ => {
                // Already in that state, or refused (seats): the member says which.
                let g = self
                    .conn
                    .call("GET", &format!("public/members/{vid}"), None)?;
                let status = g.json().get("status").and_then(Value::as_i64);
                match status {
                    Some(s) if (s != -1) == active => {}
                    _ => return Ok(Step::Rejected(r.message())),
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
        let g = self
            .conn
            .call("GET", &format!("public/members/{vid}"), None)?;
        let status = g.json().get("status").and_then(Value::as_i64);
        let seen = status.map_or(MemberStatus::Invited, MemberStatus::from_bitwarden);
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
                let r = self
                    .conn
                    .call("DELETE", &format!("public/groups/{vid}"), None)?;
                if r.status != 200 && r.status != 404 {
                    return Ok(Step::Rejected(r.message()));
                }
                item.vid = None;
            }
            return Ok(Step::Done);
        };
        let ext = g.ext(id);
        let body = json!({"name": g.name, "externalId": ext});
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
                let r = self.conn.call("POST", "public/groups", Some(&body))?;
                if r.status != 200 {
                    return Ok(Step::Rejected(r.message()));
                }
                item.vid = r
                    .json()
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                item.linked_at = self.conn.now();
                item.sent = Some(named.clone());
            }
        }
        let Some(vid) = item.vid.clone() else {
            return Err(Fail::Vault("the vault's group answer has no id".into()));
        };
        if item.sent.as_deref() != Some(named.as_str()) {
            // Always with externalId: a PUT without it clears it.
            let r = self
                .conn
                .call("PUT", &format!("public/groups/{vid}"), Some(&body))?;
            if r.status == 404 {
                return Ok(lost_group(item));
            }
            if r.status != 200 {
                return Ok(Step::Rejected(r.message()));
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
        for key in &keys {
            let m: Item = crate::delivery::load(self.conn.store(), key).map_err(store_fail)?;
            match m.vid {
                Some(v) => vids.push(v),
                // A member not delivered yet: the group waits for it, unless it failed.
                None if m.parked || m.error.is_some() => {}
                None => return Ok(Step::Wait),
            }
        }
        vids.sort();
        let members = digest(&json!(vids));
        if item.members.as_deref() != Some(members.as_str()) {
            // The set is replaced whole: members put there in the vault by hand (owners,
            // admins, people scim-edge does not manage) are kept.
            let r = self
                .conn
                .call("GET", &format!("public/groups/{vid}/member-ids"), None)?;
            if r.status == 404 {
                return Ok(lost_group(item));
            }
            let current: Vec<String> = serde_json::from_slice(&r.body).unwrap_or_default();
            let mut set = vids.clone();
            set.extend(
                current
                    .into_iter()
                    .filter(|m| !item.member_vids.contains(m) && !vids.contains(m)),
            );
            let r = self.conn.call(
                "PUT",
                &format!("public/groups/{vid}/member-ids"),
                Some(&json!({"memberIds": set})),
            )?;
            if r.status == 404 {
                return Ok(lost_group(item));
            }
            if r.status != 200 {
                return Ok(Step::Rejected(r.message()));
            }
            item.members = Some(members);
            item.member_vids = vids;
        }
        Ok(Step::Done)
    }

    /// The vault's group with this externalId.
    pub(super) fn find_group(&mut self, ext: &str) -> Result<Option<String>, Fail> {
        Ok(self
            .list("public/groups")?
            .iter()
            .find(|g| g.get("externalId").and_then(Value::as_str) == Some(ext))
            .and_then(|g| g.get("id").and_then(Value::as_str).map(str::to_string)))
    }
}
