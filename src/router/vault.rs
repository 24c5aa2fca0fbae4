//! The vault's share of the router: `/_vault/sync`, `/_vault/status` and
//! `/_vault/observed` with the refusals under `/_vault/`, and the drain after an answer.

use super::{method_not_allowed, param, Route, Router, Target, VaultOp};
use crate::error::{Result, ScimError};
use crate::http::{Request, Response};
use crate::vault;
use serde_json::Value;

impl Router<'_> {
    pub(super) fn env(&self) -> vault::Env<'_> {
        vault::Env {
            store: self.store,
            out: self.out,
            clock: self.clock,
            ids: self.ids,
            limits: &self.config.limits,
        }
    }

    /// The drain after a request's answer has been sent: for an authenticated change to
    /// an organization with a vault, on stores with atomics (without them, concurrent
    /// drains could share a create claim: the edge delivers from `_vault/sync` alone).
    /// Returns what it did, for the host's log, or `None` when it did not run.
    pub fn after(
        &self,
        req: &Request,
        resp: &Response,
    ) -> Option<std::result::Result<vault::Report, String>> {
        if resp.status >= 400 || !self.store.atomic() {
            return None;
        }
        let (t, route) = self.target(req).ok()?;
        let v = t
            .cfg
            .vault
            .as_ref()
            .filter(|v| route.drains_after() && v.after_request_calls > 0)?;
        Some(
            vault::drain(&self.env(), &t.org, t.cfg, v, vault::Trigger::AfterRequest)
                .map_err(|e| e.to_string()),
        )
    }

    /// `/_vault/{op}`, including the refusals there: an organization without a vault
    /// hears that before anything else.
    pub(super) fn vault_route(
        &self,
        t: &Target<'_>,
        route: Route<'_>,
        q: &[(String, String)],
        body: &Value,
    ) -> Result<Response> {
        let Some(v) = t.cfg.vault.as_ref() else {
            return Err(ScimError::not_found(
                "This organization has no vault configured (organizations.<id>.vault)",
            ));
        };
        match route {
            Route::Vault(VaultOp::Sync) => {
                let reconcile = param(q, "reconcile")
                    .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
                let report = vault::drain(
                    &self.env(),
                    &t.org,
                    t.cfg,
                    v,
                    vault::Trigger::Sync { reconcile },
                )?;
                Ok(Response::json(
                    200,
                    &serde_json::to_value(&report).unwrap_or(Value::Null),
                ))
            }
            Route::Vault(VaultOp::Status) => Ok(Response::json(
                200,
                &vault::status(&self.env(), &t.org, t.cfg, v)?,
            )),
            Route::Vault(VaultOp::Observed) => Ok(Response::json(
                200,
                &vault::agent::record(&self.env(), &t.org, t.cfg, body)?,
            )),
            Route::Vault(VaultOp::Retry) => Ok(Response::json(
                200,
                &vault::retry(&self.env(), &t.org, t.cfg, v, body)?,
            )),
            Route::NotAllowed { allow, .. } => Err(method_not_allowed(allow)),
            _ => Err(ScimError::not_found(
                "No such vault endpoint; use _vault/sync, _vault/status, _vault/observed or _vault/retry",
            )),
        }
    }
}
