//! The vault's data (members, groups, tokens, counters) behind one mutex.

use crate::limiter::Limiter;
use crate::{Fault, Group, Member, Options, Stats, CONFIRMED, INVITED, OWNER, REVOKED};
use serde_json::Value;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// What the server threads and the [`crate::FakeVault`] handle share.
pub(crate) struct Shared {
    pub opts: Options,
    state: Mutex<State>,
}

impl Shared {
    pub fn new(opts: Options) -> Shared {
        let state = Mutex::new(State::new(&opts));
        Shared { opts, state }
    }

    /// The state; a poisoned lock is taken over (a test that panicked holding it
    /// leaves consistent data: every change is made under one lock).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A member and what the public snapshot does not show.
pub(crate) struct MemberRec {
    pub m: Member,
    /// The status a restore goes back to.
    pub prior_status: i32,
}

pub(crate) struct State {
    pub members: Vec<MemberRec>,
    pub groups: Vec<Group>,
    /// Lowercased emails of existing accounts with a password (Vaultwarden).
    pub accounts: HashSet<String>,
    /// Lowercased addresses the mail server refuses (Vaultwarden's invitations).
    pub mail_refused: HashSet<String>,
    /// Access token → expiry.
    pub tokens: HashMap<String, Instant>,
    pub stats: Stats,
    pub faults: VecDeque<Fault>,
    pub down: bool,
    pub last_import: Option<Value>,
    pub writes: Limiter,
    pub reads: Limiter,
    pub token_limit: Limiter,
    ids: RandomState,
    next: u64,
}

impl State {
    fn new(opts: &Options) -> State {
        let l = &opts.limits;
        State {
            members: Vec::new(),
            groups: Vec::new(),
            accounts: HashSet::new(),
            mail_refused: HashSet::new(),
            tokens: HashMap::new(),
            stats: Stats::default(),
            faults: VecDeque::new(),
            down: false,
            last_import: None,
            writes: Limiter::new(&[(l.per_second, l.second_ms), (l.per_window, l.window_ms)]),
            reads: Limiter::new(&[(l.reads_per_window, l.window_ms)]),
            token_limit: Limiter::new(&[(opts.token_per_window, l.window_ms)]),
            ids: RandomState::new(),
            next: 0,
        }
    }

    fn random(&mut self) -> u64 {
        self.next += 1;
        self.ids.hash_one(self.next)
    }

    /// A fresh lowercase GUID (version 4 layout).
    pub fn guid(&mut self) -> String {
        let (a, b) = (self.random(), self.random());
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }

    /// A fresh opaque access token.
    pub fn token(&mut self) -> String {
        format!(
            "{:016x}{:016x}{:016x}",
            self.random(),
            self.random(),
            self.random()
        )
    }

    pub fn member(&self, id: &str) -> Option<&MemberRec> {
        self.members.iter().find(|r| r.m.id == id)
    }

    pub fn member_mut(&mut self, id: &str) -> Option<&mut MemberRec> {
        self.members.iter_mut().find(|r| r.m.id == id)
    }

    pub fn member_by_email(&mut self, email: &str) -> Option<&mut MemberRec> {
        self.members
            .iter_mut()
            .find(|r| r.m.email.eq_ignore_ascii_case(email))
    }

    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }

    pub fn group_mut(&mut self, id: &str) -> Option<&mut Group> {
        self.groups.iter_mut().find(|g| g.id == id)
    }

    pub fn add_member(
        &mut self,
        email: String,
        type_: i32,
        status: i32,
        external_id: Option<String>,
    ) -> String {
        let id = self.guid();
        self.members.push(MemberRec {
            m: Member {
                id: id.clone(),
                user_id: None,
                email,
                type_,
                status,
                external_id,
                collections: Vec::new(),
                permissions: None,
                group_ids: Vec::new(),
            },
            prior_status: status,
        });
        id
    }

    pub fn add_group(
        &mut self,
        name: String,
        external_id: Option<String>,
        collections: Vec<Value>,
    ) -> String {
        let id = self.guid();
        self.groups.push(Group {
            id: id.clone(),
            name,
            external_id,
            collections,
            member_ids: Vec::new(),
        });
        id
    }

    pub fn remove_member(&mut self, id: &str) {
        self.members.retain(|r| r.m.id != id);
        for g in &mut self.groups {
            g.member_ids.retain(|m| m != id);
        }
    }

    /// Sets a status as an accept/confirm/revoke by hand would: leaving Invited gives the
    /// member an account id; revoking keeps the prior status for a restore.
    pub fn set_status(&mut self, id: &str, status: i32) {
        let needs_user = status != INVITED && status != REVOKED;
        let user_id = if needs_user { Some(self.guid()) } else { None };
        if let Some(r) = self.member_mut(id) {
            if status == REVOKED {
                if r.m.status != REVOKED {
                    r.prior_status = r.m.status;
                }
            } else {
                r.prior_status = status;
                if r.m.user_id.is_none() {
                    r.m.user_id = user_id;
                }
            }
            r.m.status = status;
        }
    }

    /// Whether the member is the organization's only confirmed owner.
    pub fn is_last_confirmed_owner(&self, id: &str) -> bool {
        let confirmed_owner = |r: &MemberRec| r.m.type_ == OWNER && r.m.status == CONFIRMED;
        match self.member(id) {
            Some(r) if confirmed_owner(r) => {
                self.members.iter().filter(|r| confirmed_owner(r)).count() <= 1
            }
            _ => false,
        }
    }

    /// Replaces a group's members with those of `ids` that are members (order kept,
    /// duplicates dropped).
    pub fn set_group_members(&mut self, group_id: &str, ids: &[String]) {
        let mut keep: Vec<String> = Vec::new();
        for id in ids {
            if self.member(id).is_some() && !keep.contains(id) {
                keep.push(id.clone());
            }
        }
        if let Some(g) = self.group_mut(group_id) {
            g.member_ids = keep;
        }
    }

    /// Replaces a member's groups with those of `ids` that exist.
    pub fn set_member_groups(&mut self, member_id: &str, ids: &[String]) {
        for g in &mut self.groups {
            let wanted = ids.contains(&g.id);
            let has = g.member_ids.iter().any(|m| m == member_id);
            if wanted && !has {
                g.member_ids.push(member_id.to_string());
            } else if !wanted && has {
                g.member_ids.retain(|m| m != member_id);
            }
        }
    }

    pub fn group_ids_of(&self, member_id: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|g| g.member_ids.iter().any(|m| m == member_id))
            .map(|g| g.id.clone())
            .collect()
    }

    pub fn invited(&mut self, email: &str) {
        *self.stats.invites.entry(email.to_lowercase()).or_insert(0) += 1;
    }

    pub fn members_snapshot(&self) -> Vec<Member> {
        self.members
            .iter()
            .map(|r| Member {
                group_ids: self.group_ids_of(&r.m.id),
                ..r.m.clone()
            })
            .collect()
    }

    pub fn groups_snapshot(&self) -> Vec<Group> {
        self.groups.clone()
    }
}
