//! `POST _vault/retry {"entry": "u:<id>"}`: an operator's retry of a parked entry (the
//! console's retry button). The entry's backoff is cleared and it goes back in the
//! outbox; then a sync runs, so the answer says at once whether the vault took it. It
//! stays parked until a delivery succeeds.

use super::{drain, service, Env, Trigger};
use crate::cache::Cached;
use crate::config::vault::VaultConfig;
use crate::config::OrgConfig;
use crate::delivery::{load, parse_entry, save, Item, Meta, VaultKeys};
use crate::error::{Result, ScimError};
use crate::ids::OrgId;
use serde_json::{json, Value};

/// Retries `body`'s entry; answers the entry and the sync's report.
pub fn retry(
    env: &Env<'_>,
    org: &OrgId,
    cfg: &OrgConfig,
    vault: &VaultConfig,
    body: &Value,
) -> Result<Value> {
    let entry = body
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get("entry"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ScimError::invalid_syntax(
                "The body must be {\"entry\": \"u:<id>\"}, naming an entry _vault/status lists as parked",
            )
        })?;
    let store = Cached::new(env.store);
    let keys = VaultKeys(org);
    if !drain::parked(&store, &keys)?.contains_key(entry) {
        return Err(ScimError::not_found(format!(
            "'{entry}' is not parked; _vault/status lists the parked entries"
        )));
    }
    let svc = service(env, &store, org, cfg);
    match parse_entry(entry) {
        Some((kind, id)) => {
            let key = keys.item(kind, id);
            let mut item: Item = load(&store, &key)?;
            item.attempts = 0;
            item.next_at = 0;
            save(&store, &key, &item)?;
            svc.outbox_add(entry)?;
        }
        // A Vaultwarden import refused as a whole: its backoff is the organization's.
        None => {
            let mut meta: Meta = load(&store, &keys.meta())?;
            meta.import_failures = 0;
            meta.import_next = 0;
            save(&store, &keys.meta(), &meta)?;
        }
    }
    let report = drain(env, org, cfg, vault, Trigger::Sync { reconcile: false })?;
    Ok(json!({
        "retried": entry,
        "sync": serde_json::to_value(&report).unwrap_or(Value::Null),
    }))
}
