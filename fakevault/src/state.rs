//! The vault's data (members, groups, accounts, tokens, counters) behind one mutex.

use crate::crypto::{KeyPair, SymKey};
use crate::limiter::Limiter;
use crate::{Fault, Group, Kdf, Member, Options, Stats, CONFIRMED, INVITED, OWNER, REVOKED};
use serde_json::Value;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// What the server threads and the [`crate::FakeVault`] handle share.
pub(crate) struct Shared {
    pub opts: Options,
    /// The organization's symmetric key, drawn at start; it never changes.
    pub org_key: SymKey,
    /// The next slot of the process-wide key pair pool this vault takes
    /// ([`crate::crypto::key_pair`]): its accounts never share a pair.
    pub next_key_pair: AtomicUsize,
    state: Mutex<State>,
}

impl Shared {
    pub fn new(opts: Options) -> Shared {
        let state = Mutex::new(State::new(&opts));
        Shared {
            opts,
            org_key: SymKey::random(),
            next_key_pair: AtomicUsize::new(0),
            state,
        }
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

/// Who an access token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The organization API key: only `/api/public/…`.
    Org,
    /// A personal API key login: the account's id.
    User(String),
}

/// A live access token.
pub(crate) struct Grant {
    pub expiry: Instant,
    pub owner: Owner,
}

/// An account with keys (an administrator seeded with a password, or an address that
/// registered).
pub(crate) struct Account {
    pub id: String,
    /// Trimmed and lowercased, as the KDF salt and the profile show it.
    pub email: String,
    pub kdf: Kdf,
    /// The user key, type 2 under the stretched master key (`Key`).
    pub key: String,
    /// The PKCS#8 private key, type 2 under the user key (`PrivateKey`).
    pub private_key: String,
    pub keys: Arc<KeyPair>,
    /// The personal API key (`client_secret` of `user.<id>`), if it has one.
    pub api_key: Option<String>,
}

pub(crate) struct State {
    pub members: Vec<MemberRec>,
    pub groups: Vec<Group>,
    /// Lowercased emails of existing accounts with a password (Vaultwarden).
    pub accounts: HashSet<String>,
    /// The accounts with keys.
    pub users: Vec<Account>,
    /// Membership id → the message its confirmation is refused with.
    pub refusals: HashMap<String, String>,
    /// Lowercased addresses the mail server refuses (Vaultwarden's invitations).
    pub mail_refused: HashSet<String>,
    /// Access token → expiry and owner.
    pub tokens: HashMap<String, Grant>,
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
            users: Vec::new(),
            refusals: HashMap::new(),
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

    pub fn user(&self, id: &str) -> Option<&Account> {
        self.users.iter().find(|a| a.id == id)
    }

    /// The member whose account this is, if any.
    pub fn member_of_user(&self, user_id: &str) -> Option<&MemberRec> {
        self.members
            .iter()
            .find(|r| r.m.user_id.as_deref() == Some(user_id))
    }

    /// The account id an address already has: its account with keys, else the id one
    /// of its memberships was given.
    pub fn user_id_of_email(&self, email: &str) -> Option<String> {
        let email = email.trim();
        self.users
            .iter()
            .find(|a| a.email.eq_ignore_ascii_case(email))
            .map(|a| a.id.clone())
            .or_else(|| {
                self.members
                    .iter()
                    .filter(|r| r.m.email.trim().eq_ignore_ascii_case(email))
                    .find_map(|r| r.m.user_id.clone())
            })
    }

    /// Adds an account, replacing one with the same id.
    pub fn put_user(&mut self, account: Account) {
        self.accounts.insert(account.email.clone());
        self.users.retain(|a| a.id != account.id);
        self.users.push(account);
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
                key: None,
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
    /// member an account id (its address's, if it has one); revoking keeps the prior
    /// status for a restore.
    pub fn set_status(&mut self, id: &str, status: i32) {
        let needs_user = status != INVITED && status != REVOKED;
        let user_id = match self.member(id) {
            Some(r) if needs_user && r.m.user_id.is_none() => {
                let email = r.m.email.clone();
                Some(self.user_id_of_email(&email).unwrap_or_else(|| self.guid()))
            }
            _ => None,
        };
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
