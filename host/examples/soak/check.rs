//! The soak's end: drain until the vault matches, then each invariant's verdict.

use crate::load::{call, json, sync, Client, Counters};
use scim_edge_fakevault::{FakeVault, Mode, REVOKED};
use scim_edge_host::Running;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

pub struct Settled {
    /// How long after the load stopped the vault matched SCIM with nothing pending.
    pub matched: Option<Duration>,
    /// How long the settling took in all.
    pub waited: Duration,
    /// What still differed at the end.
    pub differences: Vec<String>,
}

/// Every resource of a kind, page by page.
fn all(s: &Running, org: &str, key: &str, kind: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    loop {
        let path = format!("/{kind}?startIndex={}&count=100", out.len() + 1);
        let r =
            call(s.addr, org, key, "GET", &path, None).ok_or(format!("GET {path}: no answer"))?;
        let v = json(&r);
        let page = v["Resources"].as_array().cloned().unwrap_or_default();
        let total = v["totalResults"].as_u64().unwrap_or(0) as usize;
        if r.status != 200 {
            return Err(format!("GET {path}: {}", r.status));
        }
        let done = page.is_empty();
        out.extend(page);
        if done || out.len() >= total {
            return Ok(out);
        }
    }
}

/// Where the vault differs from SCIM: each user a member once (revoked when inactive),
/// a deleted user's member revoked, each group with its name and members (Vaultwarden's
/// import never renames a group, so there only the members count).
pub fn differences(s: &Running, v: &FakeVault, org: &str, key: &str) -> Vec<String> {
    let (users, groups) = match (all(s, org, key, "Users"), all(s, org, key, "Groups")) {
        (Ok(u), Ok(g)) => (u, g),
        (Err(e), _) | (_, Err(e)) => return vec![e],
    };
    let members = v.members();
    let mut out = Vec::new();
    let mut matched = HashSet::new();
    let mut vid = HashMap::new();
    for u in &users {
        let email = u["userName"].as_str().unwrap_or("").to_lowercase();
        let active = u["active"].as_bool().unwrap_or(true);
        match members.iter().find(|m| m.email.to_lowercase() == email) {
            None if active => out.push(format!("{email} is not in the vault")),
            None => {}
            Some(m) => {
                matched.insert(m.id.clone());
                if (m.status == REVOKED) == active {
                    out.push(format!(
                        "{email}: active {active}, vault status {}",
                        m.status
                    ));
                }
                vid.insert(u["id"].as_str().unwrap_or("").to_string(), m.id.clone());
            }
        }
    }
    for m in members
        .iter()
        .filter(|m| !matched.contains(&m.id) && m.status != REVOKED)
    {
        out.push(format!("{}: deleted in SCIM, still has access", m.email));
    }
    let renames = v.options().mode == Mode::Bitwarden;
    let vgroups = v.groups();
    for g in &groups {
        let ext = g["externalId"].as_str().or(g["id"].as_str()).unwrap_or("");
        let Some(vg) = vgroups
            .iter()
            .find(|x| x.external_id.as_deref() == Some(ext))
        else {
            out.push(format!("group {ext} is not in the vault"));
            continue;
        };
        if renames && Some(vg.name.as_str()) != g["displayName"].as_str() {
            out.push(format!("group {ext}: named {} in the vault", vg.name));
        }
        let want: BTreeSet<String> = g["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| vid.get(m["value"].as_str().unwrap_or("")).cloned())
            .collect();
        let got: BTreeSet<String> = vg.member_ids.iter().cloned().collect();
        if want != got {
            out.push(format!(
                "group {ext}: members {got:?} in the vault, {want:?} in SCIM"
            ));
        }
    }
    out
}

/// Syncs (and reconciles once nothing is pending) until the vault matches, or until the
/// backlog has not shrunk for `stall` (a backlog left by a long load takes as long as the
/// vault's limit makes it).
pub fn settle(
    s: &Running,
    v: &FakeVault,
    org: &str,
    key: &str,
    c: &Counters,
    stall: Duration,
) -> Settled {
    let start = Instant::now();
    let mut differences = vec!["no sync answered".to_string()];
    let (mut least, mut progress) = (u64::MAX, Instant::now());
    while progress.elapsed() < stall {
        s.host.wait_idle(Duration::from_secs(30));
        let report = sync(s.addr, org, key, false, c);
        let pending = report.as_ref().and_then(|r| r["pending"].as_u64());
        if let Some(p) = pending.filter(|p| *p < least) {
            (least, progress) = (p, Instant::now());
        }
        if pending != Some(0) {
            let status = call(s.addr, org, key, "GET", "/_vault/status", None)
                .map_or(Value::Null, |r| json(&r));
            differences = vec![format!(
                "the last sync: {}; the status: {}",
                report.unwrap_or_default(),
                status
            )];
        }
        if pending == Some(0) {
            let again = sync(s.addr, org, key, true, c).and_then(|r| r["pending"].as_u64());
            differences = differences_now(s, v, org, key);
            if again == Some(0) && differences.is_empty() {
                return Settled {
                    matched: Some(start.elapsed()),
                    waited: start.elapsed(),
                    differences,
                };
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    Settled {
        matched: None,
        waited: start.elapsed(),
        differences,
    }
}

fn differences_now(s: &Running, v: &FakeVault, org: &str, key: &str) -> Vec<String> {
    s.host.wait_idle(Duration::from_secs(30));
    differences(s, v, org, key)
}

/// What the clients had acknowledged and SCIM does not hold.
fn unheld(s: &Running, org: &str, key: &str, clients: &[Client]) -> Vec<String> {
    let mut out = Vec::new();
    for u in clients
        .iter()
        .flat_map(|c| &c.users)
        .filter(|u| !u.uncertain)
    {
        let r = call(s.addr, org, key, "GET", &format!("/Users/{}", u.id), None);
        match (u.deleted, r.as_ref().map(|r| (r.status, json(r)))) {
            (true, Some((404, _))) => {}
            (false, Some((200, v)))
                if v["active"].as_bool() == Some(u.active)
                    && v["userName"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(&u.email)) => {}
            (_, got) => out.push(format!(
                "user {} (deleted {}, active {}): {got:?}",
                u.email, u.deleted, u.active
            )),
        }
    }
    for g in clients
        .iter()
        .flat_map(|c| &c.groups)
        .filter(|g| !g.uncertain)
    {
        let r = call(s.addr, org, key, "GET", &format!("/Groups/{}", g.id), None);
        let v = r
            .as_ref()
            .filter(|r| r.status == 200)
            .map(json)
            .unwrap_or(Value::Null);
        let members: BTreeSet<String> = v["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["value"].as_str().map(str::to_string))
            .collect();
        if v["displayName"].as_str() != Some(g.name.as_str()) || members != g.members {
            out.push(format!(
                "group {}: {} {members:?}, acknowledged {} {:?}",
                g.id, v["displayName"], g.name, g.members
            ));
        }
    }
    out
}

fn verdict(problems: Vec<String>) -> Result<(), String> {
    if problems.is_empty() {
        return Ok(());
    }
    let n = problems.len();
    let shown: Vec<String> = problems.into_iter().take(5).collect();
    Err(format!("{n}: {}", shown.join("; ")))
}

/// Each invariant's name and verdict.
pub fn verdicts(
    s: &Running,
    v: &FakeVault,
    org: &str,
    key: &str,
    clients: &[Client],
    settled: &Settled,
) -> Vec<(String, Result<(), String>)> {
    let status = call(s.addr, org, key, "GET", "/_vault/status", None)
        .map(|r| json(&r))
        .unwrap_or(Value::Null);
    let parked: Vec<String> = status["parked"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| format!("{} ({})", p["entry"], p["error"]))
        .collect();
    let invites = v.stats().invites;
    let twice: Vec<String> = invites
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(e, n)| format!("{e} {n} times"))
        .collect();
    let acked = clients
        .iter()
        .flat_map(|c| &c.users)
        .filter(|u| !u.uncertain)
        .count();
    vec![
        (format!("every acknowledged write is in SCIM ({acked} users checked)"), verdict(unheld(s, org, key, clients))),
        ("the outbox drained and the vault equals SCIM (members, statuses, groups and their members)".into(),
            if settled.matched.is_some() { Ok(()) } else { verdict(settled.differences.clone()).and(Err("the outbox never drained".into())) }),
        (format!("nobody was invited twice ({} invited)", invites.len()), verdict(twice)),
        // Every address the load uses is one the vault takes.
        ("nothing is parked that the vault would now accept".into(), verdict(parked)),
    ]
}
