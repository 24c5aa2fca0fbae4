//! A drain: the outbox's entries delivered one by one within a budget, each compared
//! with what the vault was last sent so that a change that changed nothing costs no
//! call; failures retried with backoff and parked after `max_attempts`.
//!
//! An entry is removed from the outbox only after delivery, and the resource is read
//! again after the removal: a change that landed meanwhile marks it again, so no change
//! is lost between a drain's read and its removal.

use super::conn::{store_fail, Conn, Fail};
use super::problem::{texts, Problem};
use crate::collection::always_live;
use crate::config::vault::{VaultConfig, VaultKind};
use crate::delivery::{
    load, parse_entry, save, Item, Kind, Meta, Recorded, TokenSeen, VaultKeys, PROBLEMS_KEPT,
};
use crate::error::Result;
use crate::service::{GroupWant, Service, UserWant};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};

/// What one resource's delivery came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The vault has it.
    Done,
    /// Not now (another drain creates it, or a member it needs is not delivered yet).
    Wait,
    /// Run it again: the vault lost what it had (removed by hand).
    Again,
    /// The vault refused it; retried with backoff, parked after `max_attempts`.
    Rejected(String),
    /// The vault would refuse it (checked before sending): parked at once, until the
    /// resource changes.
    Invalid(String),
}

/// What a drain did, for `_vault/sync` and the logs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Resources brought up to date with at least one vault write.
    pub sent: u32,
    /// Members invited.
    pub invited: u32,
    /// Entries still in the outbox.
    pub pending: usize,
    /// Entries given up on.
    pub parked: usize,
    /// This drain's failures (as their operator texts in JSON).
    #[serde(serialize_with = "texts")]
    pub errors: Vec<Problem>,
    /// Vault calls made.
    pub calls: u32,
    /// 429 answers.
    pub limited: u32,
    /// Drift found by a reconcile.
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "texts")]
    pub drift: Vec<Problem>,
}

/// One drain over one organization.
pub struct Drain<'s, 'a> {
    pub(super) svc: &'s Service<'a>,
    pub(super) conn: Conn<'a>,
    pub(super) cfg: &'a VaultConfig,
    pub(super) keys: VaultKeys<'a>,
    pub(super) report: Report,
    /// Whether the entry being delivered holds a create claim it took itself.
    pub(super) claimed: bool,
    /// The store without the drain's cache, for reads that must see the latest writes.
    pub(super) raw: &'a dyn crate::store::Store,
    /// Entries this drain has delivered or looked at, and not seen marked again since.
    seen: HashSet<String>,
    /// Whether a pass stopped early (budget, a failure): no further pass.
    stopped: bool,
    /// How many of the report's errors and drift are in the recent problems already.
    recorded: (usize, usize),
}

/// Backoff after `attempts` failures: `retry_ms` doubling, at most an hour.
pub(super) fn backoff_ms(retry_ms: i64, attempts: u32) -> i64 {
    retry_ms
        .saturating_mul(1 << attempts.saturating_sub(1).min(16))
        .min(3_600_000)
}

impl<'s, 'a> Drain<'s, 'a> {
    /// A drain with its connection.
    pub fn new(
        svc: &'s Service<'a>,
        conn: Conn<'a>,
        cfg: &'a VaultConfig,
        keys: VaultKeys<'a>,
        raw: &'a dyn crate::store::Store,
    ) -> Self {
        Drain {
            raw,
            svc,
            conn,
            cfg,
            keys,
            report: Report::default(),
            claimed: false,
            seen: HashSet::new(),
            recorded: (0, 0),
            stopped: false,
        }
    }

    /// The resource's wanted state as JSON (`null` when it is gone), read fresh from the
    /// store.
    pub(super) fn fresh_want(&self, kind: Kind, id: &str) -> Result<Value> {
        let store = crate::cache::Cached::new(self.raw);
        want_in(&self.svc.over(&store), kind, id)
    }
}

/// The state a user's delivery is compared with: its address, externalId and whether it
/// is active.
fn user_digest(w: &UserWant) -> String {
    crate::delivery::digest(&json!([w.email.to_lowercase(), w.external_id, w.active]))
}

/// A resource's wanted state as JSON (`null` when it is gone).
fn want_in(svc: &Service<'_>, kind: Kind, id: &str) -> Result<Value> {
    Ok(match kind {
        Kind::User => user_value(svc.user_want(id)?.as_ref()),
        Kind::Group => group_value(svc.group_want(id)?.as_ref()),
    })
}

fn user_value(w: Option<&UserWant>) -> Value {
    w.map_or(
        Value::Null,
        |w| json!({"email": w.email, "externalId": w.external_id, "active": w.active}),
    )
}

fn group_value(g: Option<&GroupWant>) -> Value {
    g.map_or(
        Value::Null,
        |g| json!({"name": g.name, "externalId": g.external_id, "members": g.members}),
    )
}

impl<'s, 'a> Drain<'s, 'a> {
    /// One pass, under the organization's turn: the vault listed first when `reconcile`
    /// (adoption and drift), then the outbox; the organization's delivery state saved.
    /// `counters` are the turn's, for a later drain to sweep (see [`Meta::sweep`]).
    pub fn pass(&mut self, reconcile: bool, force: bool, counters: &[(String, i64)]) -> Result<()> {
        let outcome = match self.cfg.kind {
            VaultKind::Bitwarden => {
                let r = if reconcile { self.reconcile() } else { Ok(()) };
                r.and_then(|()| self.entries())
            }
            VaultKind::Vaultwarden => self.vaultwarden(force || reconcile, reconcile),
        };
        // Only the vault's own failures hold the organization back.
        if self.cfg.kind == VaultKind::Vaultwarden && matches!(outcome, Err(Fail::Vault(_))) {
            self.conn.pause(self.cfg.retry_ms);
        }
        self.stopped = outcome.is_err();
        match outcome {
            Ok(()) | Err(Fail::Budget) => {}
            Err(Fail::Limited) => self.report.errors.push(Problem::Vault(
                "the vault is failing or asked to wait (429): delivery resumes after the pause"
                    .into(),
            )),
            Err(Fail::Vault(m)) => self.report.errors.push(Problem::Vault(m)),
            Err(Fail::Fatal(m)) => self.report.errors.push(Problem::Fatal(m)),
            Err(Fail::Store(m)) => self.report.errors.push(Problem::Store(m)),
        }
        let now = self.conn.now();
        let key = self.keys.meta();
        self.conn.store().forget(std::slice::from_ref(&key));
        let mut meta: Meta = load(self.conn.store(), &key)?;
        meta.last_sync = now;
        if self.report.sent > 0 {
            meta.last_sent = now;
        }
        if reconcile && self.cfg.kind == VaultKind::Bitwarden {
            meta.drift = self.report.drift.iter().map(ToString::to_string).collect();
        }
        match self.report.errors.last() {
            Some(e) => meta.last_error = Some(format!("{}: {e}", crate::time::format_millis(now))),
            None if self.report.sent > 0 => meta.last_error = None,
            None => {}
        }
        if let Some(seen) = self.conn.token_seen.take() {
            meta.token = Some(TokenSeen {
                at: now,
                error: seen.err(),
            });
        }
        // Best effort: a store that fails here has failed the drain's own writes already.
        let _ = self.record_problems(now, meta.token.as_ref());
        self.sweep(&mut meta, counters, now);
        // The last write also carries counters a store without atomics writes behind.
        save(self.conn.store(), &key, &meta)
    }

    /// Adds what this pass ran into to the organization's recent problems: nothing is
    /// read or written when it ran into nothing.
    fn record_problems(&mut self, now: i64, token: Option<&TokenSeen>) -> Result<()> {
        let failed_token = token.filter(|t| t.at == now).and_then(|t| t.error.clone());
        let (errors, drift) = self.recorded;
        let new: Vec<Recorded> = self.report.errors[errors..]
            .iter()
            .chain(&self.report.drift[drift..])
            .map(|p| Recorded {
                at: now,
                kind: p.kind().into(),
                id: p.resource().map(str::to_string),
                message: p.to_string(),
            })
            .chain(failed_token.map(|m| Recorded {
                at: now,
                kind: "token".into(),
                id: None,
                message: m,
            }))
            .collect();
        self.recorded = (self.report.errors.len(), self.report.drift.len());
        if new.is_empty() {
            return Ok(());
        }
        let key = self.keys.problems();
        let mut all: Vec<Recorded> = load(self.conn.store(), &key)?;
        all.extend(new);
        let over = all.len().saturating_sub(PROBLEMS_KEPT);
        all.drain(..over);
        save(self.conn.store(), &key, &all)
    }

    /// Records the counters this pass leaves behind and deletes those due.
    fn sweep(&self, meta: &mut Meta, counters: &[(String, i64)], now: i64) {
        for (k, at) in self
            .conn
            .counters()
            .into_iter()
            .chain(counters.iter().cloned())
        {
            let e = meta.sweep.entry(k).or_insert(at);
            *e = (*e).max(at);
        }
        let due: Vec<String> = meta
            .sweep
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        if !due.is_empty() && self.conn.store().delete_many(&due).is_ok() {
            for k in &due {
                meta.sweep.remove(k);
            }
        }
    }

    /// Whether another pass is due: budget is left and the outbox (read after the turn
    /// was given back) holds entries marked since this drain looked, whose own drain may
    /// have found the turn taken. Vaultwarden's import is debounced instead.
    pub fn more(&self) -> Result<bool> {
        if self.stopped || self.cfg.kind != VaultKind::Bitwarden || !self.conn.has_budget() {
            return Ok(false);
        }
        let page = self.svc.outbox().all(self.conn.now(), &always_live)?;
        Ok(page.entries.iter().any(|e| !self.seen.contains(&e.id)))
    }

    /// The turn stayed with another drain for the whole budget.
    pub fn busy(&mut self) {
        self.report.errors.push(Problem::Busy);
    }

    /// What the drain did, with the outbox's backlog now.
    pub fn report(mut self) -> Result<Report> {
        let now = self.conn.now();
        self.report.pending = self.svc.outbox().all(now, &always_live)?.total;
        self.report.parked = parked(self.conn.store(), &self.keys)?.len();
        self.report.calls = self.conn.calls;
        self.report.limited = self.conn.limited;
        Ok(self.report)
    }

    /// Delivers the outbox's entries, users before groups (groups name members by their
    /// vault ids).
    fn entries(&mut self) -> std::result::Result<(), Fail> {
        let now = self.conn.now();
        let page = self
            .svc
            .outbox()
            .all(now, &always_live)
            .map_err(store_fail)?;
        let mut entries: Vec<(Kind, String)> = page
            .entries
            .iter()
            .filter_map(|e| parse_entry(&e.id).map(|(k, id)| (k, id.to_string())))
            .collect();
        entries.sort_by_key(|(k, _)| *k);
        if !self.cfg.groups {
            // Groups are not pushed: their marks are dropped.
            for (_, id) in entries.iter().filter(|(k, _)| *k == Kind::Group) {
                self.svc
                    .outbox_remove(&crate::delivery::entry(Kind::Group, id))
                    .map_err(store_fail)?;
            }
            entries.retain(|(k, _)| *k == Kind::User);
        }
        // A short budget looks at a few entries only (each costs at least one call);
        // entries waiting out a backoff do not count.
        let mut tries =
            usize::try_from(self.conn.calls_left().saturating_mul(2)).unwrap_or(usize::MAX);
        for chunk in entries.chunks(64) {
            let item_keys: Vec<String> =
                chunk.iter().map(|(k, id)| self.keys.item(*k, id)).collect();
            self.conn.store().prefetch(&item_keys);
            for (kind, id) in chunk {
                if !self.conn.has_budget() || tries == 0 {
                    return Err(Fail::Budget);
                }
                if self.entry(*kind, id)? {
                    tries -= 1;
                }
            }
        }
        Ok(())
    }

    /// Delivers one entry; `false` when it waits out a backoff (nothing tried).
    fn entry(&mut self, kind: Kind, id: &str) -> std::result::Result<bool, Fail> {
        let e = crate::delivery::entry(kind, id);
        self.conn.serving = Some(e.clone());
        self.seen.insert(e);
        let store = self.conn.store();
        let key = self.keys.item(kind, id);
        let mut item: Item = load(store, &key).map_err(store_fail)?;
        if item.next_at > self.conn.now() {
            return Ok(false);
        }
        let loaded = item.clone();
        let writes = self.conn.writes;
        self.claimed = false;
        let mut step = Step::Again;
        let mut want = Value::Null;
        for _ in 0..2 {
            if step != Step::Again {
                break;
            }
            step = match kind {
                Kind::User => {
                    let w = self.svc.user_want(id).map_err(store_fail)?;
                    want = user_value(w.as_ref());
                    let d = w.as_ref().map_or_else(|| "gone".to_string(), user_digest);
                    if item.sent.as_deref() == Some(d.as_str()) && !item.parked {
                        Step::Done
                    } else {
                        let s = self.bitwarden_user(id, &mut item, w.as_ref());
                        if matches!(s, Ok(Step::Done)) {
                            item.sent = Some(d);
                        }
                        self.settle(s, &key, &mut item)?
                    }
                }
                Kind::Group => {
                    let g = self.svc.group_want(id).map_err(store_fail)?;
                    want = group_value(g.as_ref());
                    let s = self.bitwarden_group(id, &mut item, g.as_ref());
                    self.settle(s, &key, &mut item)?
                }
            };
        }
        match step {
            Step::Done => {
                if self.conn.writes > writes {
                    self.report.sent += 1;
                }
                item.attempts = 0;
                if item.vid.is_some() {
                    item.claim_at = 0;
                }
                item.error = None;
                item.next_at = 0;
                item.parked = false;
                save(store, &key, &item).map_err(store_fail)?;
                self.unpark(&crate::delivery::entry(kind, id))
                    .map_err(store_fail)?;
                if kind == Kind::User && loaded.vid.is_none() && item.vid.is_some() {
                    // Its groups may have gone out without it.
                    for g in self.svc.group_ids_of(id).map_err(store_fail)? {
                        let e = crate::delivery::entry(Kind::Group, &g);
                        self.svc.outbox_add(&e).map_err(store_fail)?;
                        self.seen.remove(&e);
                    }
                }
                self.finish(kind, id, &want).map_err(store_fail)?;
            }
            // What this drain created is kept; another drain's record is not overwritten.
            Step::Wait if self.claimed && item != loaded => {
                save(store, &key, &item).map_err(store_fail)?
            }
            Step::Wait => {}
            // Saved when the step asked to run again (see `settle`).
            Step::Again => {}
            Step::Rejected(m) => self.failed(kind, id, &key, &mut item, m, false)?,
            Step::Invalid(m) => self.failed(kind, id, &key, &mut item, m, true)?,
        }
        Ok(true)
    }

    /// A step's failure that ends the drain is saved first, so a claim is not lost.
    fn settle(
        &self,
        s: std::result::Result<Step, Fail>,
        key: &str,
        item: &mut Item,
    ) -> std::result::Result<Step, Fail> {
        if !matches!(s, Ok(Step::Done | Step::Wait)) && self.claimed && item.vid.is_none() {
            // A create that did not happen frees its claim; the next one looks first.
            item.claim_at = 0;
        }
        match s {
            // Run again at once: what the vault lost is saved first, so the run's create
            // claim, which reads the stored record, does not find the lost id there.
            Ok(Step::Again) => {
                save(self.conn.store(), key, item).map_err(store_fail)?;
                Ok(Step::Again)
            }
            Ok(step) => Ok(step),
            // The vault answered this drain before: the failure is this entry's.
            Err(Fail::Vault(m)) if self.conn.answered() => Ok(Step::Rejected(m)),
            Err(Fail::Vault(m)) => {
                // The vault is down, as far as this drain can tell: every drain of the
                // organization waits, and the entry is not charged an attempt.
                self.conn.pause(self.cfg.retry_ms);
                save(self.conn.store(), key, item).map_err(store_fail)?;
                Err(Fail::Vault(m))
            }
            // The store failed, not the vault: no pause, no attempt charged. The entry
            // is saved if the store still takes it, so a claim is not lost.
            Err(Fail::Store(m)) => {
                let _ = save(self.conn.store(), key, item);
                Err(Fail::Store(m))
            }
            Err(f) => {
                save(self.conn.store(), key, item).map_err(store_fail)?;
                Err(f)
            }
        }
    }

    /// Records a refusal: retried with backoff, parked after `max_attempts` or at once
    /// when `give_up`.
    fn failed(
        &mut self,
        kind: Kind,
        id: &str,
        key: &str,
        item: &mut Item,
        m: String,
        give_up: bool,
    ) -> std::result::Result<(), Fail> {
        let e = crate::delivery::entry(kind, id);
        item.attempts += 1;
        item.error = Some(m.clone());
        item.next_at = self.conn.now() + backoff_ms(self.cfg.retry_ms, item.attempts);
        self.report.errors.push(Problem::Refused {
            entry: e.clone(),
            message: m.clone(),
        });
        let store = self.conn.store();
        if give_up || item.attempts >= self.cfg.max_attempts {
            item.parked = true;
            item.next_at = 0;
            save(store, key, item).map_err(store_fail)?;
            self.park(&e, &m).map_err(store_fail)?;
            // Out of the outbox until the resource changes or a reconcile runs.
            self.svc.outbox_remove(&e).map_err(store_fail)?;
            return Ok(());
        }
        save(store, key, item).map_err(store_fail)
    }

    /// Removes a delivered entry, then reads the resource again: a change made since
    /// the delivery read it marks it again.
    fn finish(&mut self, kind: Kind, id: &str, delivered: &Value) -> Result<()> {
        let e = crate::delivery::entry(kind, id);
        self.svc.outbox_remove(&e)?;
        if &self.fresh_want(kind, id)? != delivered {
            self.svc.outbox_add(&e)?;
            self.seen.remove(&e);
        }
        Ok(())
    }

    pub(super) fn park(&self, e: &str, m: &str) -> Result<()> {
        let mut all = parked(self.conn.store(), &self.keys)?;
        all.insert(e.to_string(), m.to_string());
        save(self.conn.store(), &self.keys.parked(), &all)
    }

    pub(super) fn unpark(&self, e: &str) -> Result<()> {
        let mut all = parked(self.conn.store(), &self.keys)?;
        if all.remove(e).is_some() {
            save(self.conn.store(), &self.keys.parked(), &all)?;
        }
        Ok(())
    }
}

/// The parked entries with the vault's error for each.
pub fn parked(
    store: &dyn crate::store::Store,
    keys: &VaultKeys<'_>,
) -> Result<BTreeMap<String, String>> {
    load(store, &keys.parked())
}
