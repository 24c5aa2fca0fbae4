//! The soak's Okta-like clients: each owns its users and groups and remembers what the
//! service acknowledged of them.

use scim_edge_host::client::{request, Reply};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// xorshift64: reproducible from `--seed`.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Totals over every client and the cron.
#[derive(Default)]
pub struct Counters {
    requests: AtomicU64,
    acknowledged: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    syncs: AtomicU64,
    limited: AtomicU64,
    max_pending: AtomicU64,
}

impl Counters {
    fn count(&self, r: &Option<Reply>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let c = match r.as_ref().map(|r| r.status) {
            Some(200..=299) => &self.acknowledged,
            Some(400..=499) => &self.refused,
            _ => &self.failed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn limited(&self) -> u64 {
        self.limited.load(Ordering::Relaxed)
    }

    pub fn max_pending(&self) -> u64 {
        self.max_pending.load(Ordering::Relaxed)
    }

    pub fn report(&self) -> String {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "{} ({} answered 2xx, {} 4xx, {} 5xx or unanswered; {} syncs)",
            n(&self.requests),
            n(&self.acknowledged),
            n(&self.refused),
            n(&self.failed),
            n(&self.syncs)
        )
    }
}

/// One request with the organization's key; `None` when unanswered.
pub fn call(
    addr: SocketAddr,
    org: &str,
    key: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Option<Reply> {
    let auth = format!("Bearer {key}");
    let mut h = vec![("authorization", auth.as_str())];
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    if body.is_some() {
        h.push(("content-type", "application/scim+json"));
    }
    request(addr, method, &format!("/v2/{org}{path}"), &h, &bytes).ok()
}

pub fn json(r: &Reply) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

/// `_vault/sync` (with a reconcile when asked); its report when answered 200.
pub fn sync(
    addr: SocketAddr,
    org: &str,
    key: &str,
    reconcile: bool,
    c: &Counters,
) -> Option<Value> {
    let path = if reconcile {
        "/_vault/sync?reconcile=1"
    } else {
        "/_vault/sync"
    };
    let r = call(addr, org, key, "POST", path, None);
    c.count(&r);
    c.syncs.fetch_add(1, Ordering::Relaxed);
    let v = r.filter(|r| r.status == 200).map(|r| json(&r))?;
    c.limited
        .fetch_add(v["limited"].as_u64().unwrap_or(0), Ordering::Relaxed);
    c.max_pending
        .fetch_max(v["pending"].as_u64().unwrap_or(0), Ordering::Relaxed);
    Some(v)
}

/// A user as the client last had it acknowledged.
#[derive(Debug, Clone)]
pub struct UserRec {
    pub id: String,
    pub email: String,
    pub active: bool,
    pub deleted: bool,
    /// A write to it went unacknowledged: its state is unknown.
    pub uncertain: bool,
}

#[derive(Debug, Clone)]
pub struct GroupRec {
    pub id: String,
    pub name: String,
    pub members: BTreeSet<String>,
    pub uncertain: bool,
}

pub struct Client {
    n: usize,
    addr: SocketAddr,
    org: String,
    key: String,
    rng: Rng,
    made: usize,
    pub users: Vec<UserRec>,
    pub groups: Vec<GroupRec>,
}

fn ok(r: &Option<Reply>, want: u16) -> Option<&Reply> {
    r.as_ref().filter(|r| r.status == want)
}

impl Client {
    pub fn new(n: usize, addr: SocketAddr, org: &str, key: &str, rng: Rng) -> Self {
        Client {
            n,
            addr,
            org: org.into(),
            key: key.into(),
            rng,
            made: 0,
            users: Vec::new(),
            groups: Vec::new(),
        }
    }

    fn send(&self, c: &Counters, method: &str, path: &str, body: Option<&Value>) -> Option<Reply> {
        let r = call(self.addr, &self.org, &self.key, method, path, body);
        c.count(&r);
        r
    }

    fn pick_user(&mut self, active: bool) -> Option<usize> {
        let live: Vec<usize> = (0..self.users.len())
            .filter(|&i| {
                let u = &self.users[i];
                !u.deleted && !u.uncertain && !u.id.is_empty() && u.active == active
            })
            .collect();
        let i = self.rng.below(live.len() as u64) as usize;
        live.get(i).copied()
    }

    /// One action of Okta's, then a pause: four clients average about four vault writes
    /// a second, half of what the soak's vault admits, so bursts meet its limit and the
    /// backlog drains between them.
    pub fn step(&mut self, c: &Counters) {
        match self.rng.below(20) {
            0..=5 => self.create_burst(c),
            6..=8 => self.set_active(c, false),
            9..=10 => self.set_active(c, true),
            11..=12 => self.create_group(c),
            13..=17 => self.push_group(c),
            _ => self.delete_user(c),
        }
        std::thread::sleep(Duration::from_millis(600 + self.rng.below(2400)));
    }

    fn create_burst(&mut self, c: &Counters) {
        // Mostly a few users; one burst in eight is a group assignment of 10 to 29.
        let n = if self.rng.below(8) == 0 {
            10 + self.rng.below(20)
        } else {
            1 + self.rng.below(5)
        };
        for _ in 0..n {
            self.made += 1;
            let email = format!("c{}-u{}@example.com", self.n, self.made);
            let body = json!({"schemas": [USER_URN], "userName": email, "externalId": format!("okta-{email}"),
                "name": {"givenName": "Soak", "familyName": format!("U{}", self.made)},
                "emails": [{"primary": true, "value": email, "type": "work"}], "active": true});
            let r = self.send(c, "POST", "/Users", Some(&body));
            let id = ok(&r, 201).and_then(|r| json(r)["id"].as_str().map(str::to_string));
            self.users.push(UserRec {
                uncertain: id.is_none(),
                id: id.unwrap_or_default(),
                email,
                active: true,
                deleted: false,
            });
        }
    }

    fn set_active(&mut self, c: &Counters, on: bool) {
        let Some(i) = self.pick_user(!on) else { return };
        let body = json!({"schemas": [PATCH_URN], "Operations": [{"op": "replace", "value": {"active": on}}]});
        let r = self.send(
            c,
            "PATCH",
            &format!("/Users/{}", self.users[i].id),
            Some(&body),
        );
        let u = &mut self.users[i];
        match ok(&r, 200) {
            Some(_) => u.active = on,
            None => u.uncertain = true,
        }
    }

    fn create_group(&mut self, c: &Counters) {
        let mut members = BTreeSet::new();
        for _ in 0..self.rng.below(4) {
            if let Some(i) = self.pick_user(true) {
                members.insert(self.users[i].id.clone());
            }
        }
        let name = format!("c{}-g{}", self.n, self.groups.len() + 1);
        let ms: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        let body = json!({"schemas": [GROUP_URN], "displayName": name, "members": ms});
        let r = self.send(c, "POST", "/Groups", Some(&body));
        if let Some(id) = ok(&r, 201).and_then(|r| json(r)["id"].as_str().map(str::to_string)) {
            self.groups.push(GroupRec {
                id,
                name,
                members,
                uncertain: false,
            });
        }
    }

    /// Okta's group push: a rename with `{"id", "displayName"}`, then members added or
    /// removed, each its own PATCH.
    fn push_group(&mut self, c: &Counters) {
        let live: Vec<usize> = (0..self.groups.len())
            .filter(|&i| !self.groups[i].uncertain)
            .collect();
        let Some(&g) = live.get(self.rng.below(live.len() as u64) as usize) else {
            return;
        };
        let id = self.groups[g].id.clone();
        let mut ops = Vec::new();
        if self.rng.below(3) == 0 {
            let name = format!(
                "{}-r{}",
                self.groups[g].name.split("-r").next().unwrap_or(""),
                self.rng.below(1000)
            );
            ops.push((
                json!({"op": "replace", "value": {"id": id, "displayName": name}}),
                Some(name),
                None,
            ));
        }
        if let Some(u) = self.pick_user(true) {
            let uid = self.users[u].id.clone();
            if self.groups[g].members.contains(&uid) {
                ops.push((
                    json!({"op": "remove", "path": format!("members[value eq \"{uid}\"]")}),
                    None,
                    Some((uid, false)),
                ));
            } else {
                ops.push((
                    json!({"op": "add", "path": "members", "value": [{"value": uid}]}),
                    None,
                    Some((uid, true)),
                ));
            }
        }
        for (op, rename, member) in ops {
            let body = json!({"schemas": [PATCH_URN], "Operations": [op]});
            let r = self.send(c, "PATCH", &format!("/Groups/{id}"), Some(&body));
            let acked = r
                .as_ref()
                .is_some_and(|r| r.status == 200 || r.status == 204);
            let grp = &mut self.groups[g];
            if !acked {
                grp.uncertain = true;
                return;
            }
            if let Some(n) = rename {
                grp.name = n;
            }
            match member {
                Some((uid, true)) => {
                    grp.members.insert(uid);
                }
                Some((uid, false)) => {
                    grp.members.remove(&uid);
                }
                None => {}
            }
        }
    }

    fn delete_user(&mut self, c: &Counters) {
        let active = self.rng.below(2) == 0;
        let Some(i) = self.pick_user(active) else {
            return;
        };
        let id = self.users[i].id.clone();
        let r = self.send(c, "DELETE", &format!("/Users/{id}"), None);
        if ok(&r, 204).is_some() {
            self.users[i].deleted = true;
            for g in &mut self.groups {
                g.members.remove(&id);
            }
        } else {
            self.users[i].uncertain = true;
            // A group holding it may or may not still list it.
            for g in self.groups.iter_mut().filter(|g| g.members.contains(&id)) {
                g.uncertain = true;
            }
        }
    }
}
