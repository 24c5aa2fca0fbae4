//! Provisioning outward: each committed SCIM change is marked in the organization's
//! outbox in the request that makes it, and drains deliver the outbox to the vault
//! (Bitwarden's Public API or Vaultwarden's import) over the host's outbound HTTP,
//! below the vault's rate limits. A drain runs after a SCIM answer has been sent (a few
//! calls) and from `POST /v2/{org}/_vault/sync` (a time budget: what a cron calls).

pub mod address;
pub mod agent;
mod api;
mod bitwarden;
mod conn;
mod drain;
mod member;
pub mod net;
#[cfg(test)]
mod policy_tests;
mod problem;
mod reconcile;
mod retry;
mod turn;
mod vaultwarden;

pub use drain::Report;
pub use problem::Problem;
pub use retry::retry;

use crate::cache::Cached;
use crate::collection::always_live;
use crate::config::vault::{VaultConfig, VaultKind};
use crate::config::OrgConfig;
use crate::delivery::{load, Item, Kind, Meta, Recorded, VaultKeys};
use crate::error::Result;
use crate::ids::{Clock, Ids, OrgId};
use crate::member_status::MemberStatus;
use crate::schema::ResourceKind;
use crate::service::{Limits, Service};
use crate::store::Store;
use conn::Conn;
use drain::Drain;
use net::Outbound;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use turn::Turn;

/// How often a sync waiting for the organization's turn looks again (ms).
const TURN_POLL_MS: i64 = 100;

/// How many members waiting for Confirm the status lists.
const CONFIRM_QUEUE_SHOWN: usize = 100;

/// A reconcile (listing the vault) runs on a sync when the last is older than this.
pub const REFRESH_MS: i64 = 15 * 60_000;

/// What starts a drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// After a SCIM request's answer: `after_request_calls` calls, no reconcile.
    AfterRequest,
    /// `POST _vault/sync`: `sync_budget_ms`; `reconcile` lists the vault first.
    Sync {
        /// Adopt and check drift now.
        reconcile: bool,
    },
}

/// The host's capabilities a drain uses.
pub struct Env<'a> {
    /// The store (not the request's cache: a drain reads fresh).
    pub store: &'a dyn Store,
    /// Outbound HTTP.
    pub out: &'a dyn Outbound,
    /// The clock.
    pub clock: &'a dyn Clock,
    /// Ids (unused by drains, needed by the service).
    pub ids: &'a dyn Ids,
    /// Limits.
    pub limits: &'a Limits,
}

fn service<'a>(env: &Env<'a>, store: &'a dyn Store, org: &OrgId, cfg: &OrgConfig) -> Service<'a> {
    Service::new(
        store,
        env.clock,
        env.ids,
        org.clone(),
        cfg.policy,
        format!("/v2/{org}"),
        env.limits,
    )
    .with_vault(true)
}

/// Delivers what the outbox holds within the trigger's budget.
pub fn drain(
    env: &Env<'_>,
    org: &OrgId,
    cfg: &OrgConfig,
    vault: &VaultConfig,
    trigger: Trigger,
) -> Result<Report> {
    let store = Cached::new(env.store);
    let svc = service(env, &store, org, cfg);
    let keys = VaultKeys(org);
    let now = env.clock.now_ms();
    let (budget_ms, calls, reconcile, force) = match trigger {
        Trigger::AfterRequest => {
            // Before the vault was ever listed, nobody is invited: existing members are
            // linked first.
            let meta: Meta = load(&store, &keys.meta())?;
            (
                vault.sync_budget_ms.min(5_000),
                vault.after_request_calls,
                vault.kind == VaultKind::Bitwarden && meta.adopted_at == 0,
                false,
            )
        }
        Trigger::Sync { reconcile } => {
            let meta: Meta = load(&store, &keys.meta())?;
            // Only Bitwarden is listed: a Vaultwarden reconcile is what the caller asks
            // (it retries members the vault refused).
            let due = vault.kind == VaultKind::Bitwarden
                && (meta.adopted_at == 0 || now - meta.adopted_at > REFRESH_MS);
            (vault.sync_budget_ms, u32::MAX, reconcile || due, true)
        }
    };
    let deadline = now + budget_ms;
    let conn = Conn::new(
        &store,
        env.out,
        env.clock,
        vault,
        VaultKeys(org),
        deadline,
        calls,
    );
    let turn_keys = VaultKeys(org);
    let mut turn = Turn::new(env.store, &turn_keys, turn::slot_ms(vault));
    let mut drain = Drain::new(&svc, conn, vault, keys, env.store);
    let mut first = true;
    loop {
        if !take_turn(env, &mut turn, trigger, deadline)? {
            if first && trigger != Trigger::AfterRequest {
                drain.busy();
            }
            break;
        }
        drain.pass(first && reconcile, force, &turn.counters())?;
        turn.give_back();
        first = false;
        store.forget_reads();
        if !drain.more()? {
            break;
        }
    }
    drain.report()
}

/// Takes the organization's turn: at once after a request (the holder takes this
/// request's changes too, see [`Drain::more`]), waiting for it within the budget on a sync.
fn take_turn(env: &Env<'_>, turn: &mut Turn<'_>, trigger: Trigger, deadline: i64) -> Result<bool> {
    loop {
        let now = env.clock.now_ms();
        if turn.take(now)? {
            return Ok(true);
        }
        if trigger == Trigger::AfterRequest || now + TURN_POLL_MS >= deadline {
            return Ok(false);
        }
        env.out.pause(TURN_POLL_MS);
        if env.clock.now_ms() == now {
            // A host that cannot wait (no outbound HTTP): no turn this time.
            return Ok(false);
        }
    }
}

/// `GET _vault/status`: the backlog, parked entries with their errors, the last sync,
/// drift, users by vault status, the members waiting for Confirm, the last token
/// request, the recent problems (newest first) and the Confirm agent's last pass.
pub fn status(env: &Env<'_>, org: &OrgId, cfg: &OrgConfig, vault: &VaultConfig) -> Result<Value> {
    let store = Cached::new(env.store);
    let svc = service(env, &store, org, cfg);
    let keys = VaultKeys(org);
    let now = env.clock.now_ms();
    let meta: Meta = load(&store, &keys.meta())?;
    let pause = store
        .get(&keys.pause())?
        .and_then(|b| crate::store::decode_counter(&b))
        .unwrap_or(0);
    let parked = drain::parked(&store, &keys)?;
    let backlog = svc.outbox().all(now, &always_live)?.total;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut waiting = Vec::new();
    let ids = svc.ids_of(ResourceKind::User)?;
    for chunk in ids.chunks(100) {
        let item_keys: Vec<String> = chunk
            .iter()
            .flat_map(|id| [keys.item(Kind::User, id), keys.observed(id)])
            .collect();
        store.prefetch(&item_keys);
        for id in chunk {
            let item: Item = load(&store, &keys.item(Kind::User, id))?;
            let seen = crate::delivery::observed(&store, &keys, id)?;
            let status = item.status(seen.as_ref());
            *counts.entry(status.as_str()).or_default() += 1;
            if status == MemberStatus::Accepted && waiting.len() < CONFIRM_QUEUE_SHOWN {
                waiting.push((id.clone(), seen.map_or(0, |o| o.at)));
            }
        }
    }
    let time = |ms: i64| (ms > 0).then(|| crate::time::format_millis(ms));
    let mut queue = Vec::new();
    for (id, since) in waiting {
        let email = svc.user_want(&id)?.map(|w| w.email);
        queue.push(json!({"id": id, "email": email, "since": time(since)}));
    }
    // Who each parked entry is: the user's address or the group's name.
    let mut parked_named = Vec::new();
    for (e, m) in &parked {
        let name = match crate::delivery::parse_entry(e) {
            Some((Kind::User, id)) => svc.user_want(id)?.map(|w| w.email),
            Some((Kind::Group, id)) => svc.group_want(id)?.map(|g| g.name),
            None => None,
        };
        parked_named.push(json!({"entry": e, "name": name, "error": m}));
    }
    let problems: Vec<Recorded> = load(&store, &keys.problems())?;
    let problems: Vec<Value> = problems
        .iter()
        .rev()
        .map(|p| json!({"at": time(p.at), "kind": p.kind, "id": p.id, "message": p.message}))
        .collect();
    let token = meta
        .token
        .as_ref()
        .map(|t| json!({"at": time(t.at), "ok": t.error.is_none(), "error": t.error}));
    Ok(json!({
        "kind": match vault.kind { VaultKind::Bitwarden => "bitwarden", VaultKind::Vaultwarden => "vaultwarden" },
        "vault": net::origin(&vault.api_url),
        "backlog": backlog,
        "parked": parked_named,
        "lastSync": time(meta.last_sync),
        "lastSent": time(meta.last_sent),
        "lastReconcile": time(meta.adopted_at),
        "pausedUntil": (pause > now).then(|| crate::time::format_millis(pause)),
        "lastError": meta.last_error,
        "drift": meta.drift,
        "users": counts,
        "confirmQueue": queue,
        "token": token,
        "problems": problems,
        "agent": agent::last_pass(&store, &keys)?,
    }))
}
