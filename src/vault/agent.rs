//! `POST _vault/observed`: what the Confirm agent read in the vault as an administrator
//! (each member's id, email and status, after its own confirmations), recorded as the
//! users' vault status, and the counts of its pass for `_vault/status`. For Vaultwarden,
//! whose import answers nothing about members, this is how `accepted` and `confirmed`
//! ever show.
//!
//! A member is matched to a user by the member id a drain linked, else by email: the
//! user whose `userName` it is and whose vault email it is. A member matching no user,
//! or whose user is linked to another member, is refused (listed in the answer, nothing
//! written): the agent reports every member it read, owners included.

use super::{service, Env};
use crate::config::OrgConfig;
use crate::delivery::{
    load, member_user, observe_all, save, Item, Kind, Observed, Source, VaultKeys,
};
use crate::error::{Result, ScimError};
use crate::ids::OrgId;
use crate::member_status::MemberStatus;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The agent's report.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    members: Vec<Seen>,
    #[serde(default)]
    pass: Option<Pass>,
}

/// One member as the agent read it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Seen {
    /// The membership id.
    id: String,
    email: String,
    /// Bitwarden's number (`OrganizationUserStatusType`).
    status: i64,
}

/// The counts of one agent pass.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pass {
    #[serde(default)]
    confirmed: u32,
    #[serde(default)]
    skipped: u32,
    #[serde(default)]
    failed: u32,
}

/// A pass as stored: its counts and when it was reported (ms, the component's clock).
#[derive(Serialize, Deserialize)]
struct LastPass {
    at: i64,
    #[serde(flatten)]
    pass: Pass,
}

/// Records the report in `body`; answers what was recorded and what was refused.
pub fn record(env: &Env<'_>, org: &OrgId, cfg: &OrgConfig, body: &Value) -> Result<Value> {
    let report: Report = serde_json::from_value(body.clone()).map_err(|e| {
        ScimError::invalid_syntax(format!(
            "The body must be {{\"members\": [{{\"id\", \"email\", \"status\"}}], \"pass\": {{\"confirmed\", \"skipped\", \"failed\"}}}}: {e}"
        ))
    })?;
    let store = crate::cache::Cached::new(env.store);
    let svc = service(env, &store, org, cfg);
    let keys = VaultKeys(org);
    let now = env.clock.now_ms();
    let mut seen: Vec<(String, Observed)> = Vec::new();
    let mut refused = Vec::new();
    let mut users = std::collections::BTreeSet::new();
    for chunk in report.members.chunks(100) {
        let member_keys: Vec<String> = chunk.iter().map(|m| keys.member(&m.id)).collect();
        store.prefetch(&member_keys);
        for m in chunk {
            let status = MemberStatus::from_bitwarden(m.status);
            let user = if status == MemberStatus::Error {
                Err(format!("status {} is not a vault member status", m.status))
            } else {
                find(&svc, &store, &keys, m)
            };
            let user = user.and_then(|id| {
                if users.insert(id.clone()) {
                    Ok(id)
                } else {
                    Err("another member of this report is this user's".to_string())
                }
            });
            match user {
                Ok(id) => seen.push((
                    id,
                    Observed {
                        status,
                        at: now,
                        source: Source::Agent,
                    },
                )),
                Err(reason) => {
                    refused.push(json!({"id": m.id, "email": m.email, "reason": reason}))
                }
            }
        }
    }
    let pairs: Vec<(&str, Observed)> = seen.iter().map(|(id, o)| (id.as_str(), *o)).collect();
    let written = observe_all(&store, &keys, &pairs)?;
    if let Some(pass) = report.pass {
        save(&store, &keys.agent(), &LastPass { at: now, pass })?;
    }
    Ok(json!({
        "recorded": written,
        "unchanged": seen.len() - written,
        "refused": refused,
    }))
}

/// The user member `m` belongs to, or why none does.
fn find(
    svc: &crate::service::Service<'_>,
    store: &dyn crate::store::Store,
    keys: &VaultKeys<'_>,
    m: &Seen,
) -> std::result::Result<String, String> {
    let fail = |e: ScimError| e.detail().to_string();
    if let Some(id) = member_user(store, keys, &m.id).map_err(fail)? {
        if svc.user_want(&id).map_err(fail)?.is_some() {
            return Ok(id);
        }
    }
    let unknown = || "scim-edge provisioned no user for this member".to_string();
    let Some(id) = svc.user_named(m.email.trim()).map_err(fail)? else {
        return Err(unknown());
    };
    let Some(want) = svc.user_want(&id).map_err(fail)? else {
        return Err(unknown());
    };
    if !want.email.eq_ignore_ascii_case(m.email.trim()) {
        return Err(unknown());
    }
    let item: Item = load(store, &keys.item(Kind::User, &id)).map_err(fail)?;
    match item.vid {
        Some(vid) if vid != m.id => Err(format!(
            "the user with this email is linked to member {vid}"
        )),
        _ => Ok(id),
    }
}

/// The last pass, for `_vault/status`.
pub fn last_pass(store: &dyn crate::store::Store, keys: &VaultKeys<'_>) -> Result<Value> {
    let last: Option<LastPass> = match store.get(&keys.agent())? {
        Some(b) => serde_json::from_slice(&b).ok(),
        None => None,
    };
    Ok(last.map_or(Value::Null, |l| {
        json!({
            "at": crate::time::format_millis(l.at),
            "confirmed": l.pass.confirmed,
            "skipped": l.pass.skipped,
            "failed": l.pass.failed,
        })
    }))
}
