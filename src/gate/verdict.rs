//! The gate's decisions in one call each, for hosts that hold a whole request at once
//! (the `scim-edge:okta/rules` component): a request's verdict, a response's repair, and
//! the identity check of a PATCH against the user it applies to.

use super::GateConfig;
use crate::error::Result;
use crate::http::Response;
use crate::okta::{self, Policy};
use crate::patch;
use crate::schema::ResourceKind;
use serde_json::{Map, Value};

/// What the gate decides about a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Let it through, with the body to forward instead when rewritten.
    Pass(Option<Vec<u8>>),
    /// Answer with this SCIM error.
    Refuse(Response),
}

impl GateConfig {
    /// Decides on a whole request, as the filter does on its headers and then its body.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Verdict {
        let screened = self.admit(method, path, headers).and_then(|a| {
            if a.reads_body() {
                self.check_size(body.len())?;
            }
            a.screen_body(self, body)
        });
        match screened {
            Ok(rewritten) => Verdict::Pass(rewritten),
            Err(e) => Verdict::Refuse(Response::error(&e)),
        }
    }

    /// Repairs the vault's response to a request [`check`](Self::check) let through;
    /// `None` when it passes as it is (or the request was not one the gate admits).
    pub fn repair(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        response: &Response,
    ) -> Option<Response> {
        let a = self.admit(method, path, headers).ok()?;
        a.repair(response.status, &response.headers, &response.body)
    }
}

/// Checks that `patch` (a PatchOp request) leaves the identity of `current` (a User) as
/// it is under `policy`: applied to the user, it must keep `userName` and the primary
/// email. A PatchOp that cannot apply is refused with its own error.
pub fn check_patch(current: &Map<String, Value>, patch: &Value, policy: Policy) -> Result<()> {
    let ops = patch::parse(patch)?;
    let mut after = current.clone();
    let id = current.get("id").and_then(Value::as_str).unwrap_or("");
    patch::apply(ResourceKind::User, &mut after, &ops, id)?;
    okta::check_unchanged(current, &after, policy)
}
