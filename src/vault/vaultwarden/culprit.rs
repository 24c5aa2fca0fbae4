//! A Vaultwarden import refused at one member: the member found, and set aside.

use super::plan::{import_body, Member, Plan};
use super::ROUTE;
use crate::delivery::{entry, load, save, Item, Kind};
use crate::vault::conn::{store_fail, Fail};
use crate::vault::drain::{backoff_ms, Drain};
use crate::vault::problem::Problem;
use serde_json::Value;

impl Drain<'_, '_> {
    /// The member whose refusal stopped the import: the one new member the vault's
    /// message names, else the first new member that an import of new members alone
    /// stops at (found by halves). `None` when no single member is at fault.
    pub(super) fn culprit(&mut self, plan: &Plan, message: &str) -> Result<Option<usize>, Fail> {
        // Only a member the vault has to add can fail on its own.
        let new: Vec<usize> = (0..plan.members.len())
            .filter(|&i| plan.members[i].active && !plan.members[i].known())
            .collect();
        let message = message.to_lowercase();
        let named: Vec<usize> = new
            .iter()
            .copied()
            .filter(|&i| {
                let email = plan.members[i].email.to_lowercase();
                message.split(' ').any(|w| w == email)
            })
            .collect();
        if let [i] = named[..] {
            return Ok(Some(i));
        }
        let mut refused = |n: usize| -> Result<bool, Fail> {
            let members: Vec<Value> = new[..n].iter().map(|&i| plan.members[i].json()).collect();
            let body = import_body(Vec::new(), members);
            Ok(self.conn.call("POST", ROUTE, Some(&body))?.status == 400)
        };
        if new.is_empty() || !refused(new.len())? {
            return Ok(None);
        }
        // The first `ok` new members import, the first `bad` do not.
        let (mut ok, mut bad) = (0, new.len());
        while bad - ok > 1 {
            let mid = (ok + bad) / 2;
            if refused(mid)? {
                bad = mid;
            } else {
                ok = mid;
            }
        }
        Ok(Some(new[bad - 1]))
    }

    /// Leaves a member the vault refused out of imports, parked with the vault's words,
    /// until its address changes or its retry (with backoff) is due.
    pub(super) fn set_aside(&mut self, m: &Member, message: &str) -> Result<(), Fail> {
        let store = self.conn.store();
        let key = self.keys.item(Kind::User, &m.id);
        let mut item: Item = load(store, &key).map_err(store_fail)?;
        item.attempts += 1;
        item.refused = Some(m.email.to_lowercase());
        item.error = Some(message.to_string());
        item.parked = true;
        item.next_at = self.conn.now() + backoff_ms(self.cfg.retry_ms, item.attempts);
        save(store, &key, &item).map_err(store_fail)?;
        let e = entry(Kind::User, &m.id);
        self.park(&e, message).map_err(store_fail)?;
        self.report.errors.push(Problem::Refused {
            entry: e.clone(),
            message: message.to_string(),
        });
        Ok(())
    }
}
