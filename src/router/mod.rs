//! The one router: path prefix and organization, then the request's [`Route`], parsed
//! once, which says whether a key and a body are needed; then the route's endpoint.
//! Every answer inside an organization, including every failure, is a SCIM response;
//! `/healthz`, outside every organization, answers plain JSON.

mod bulk;
mod console;
mod discovery;
mod resources;
mod route;
mod vault;

pub use route::{Discovery, First, ResourceOp, Route, VaultOp};

use crate::auth::{authenticate, unauthorized};
use crate::cache::Cached;
use crate::config::{Config, OrgConfig};
use crate::error::{ErrorKind, Result, ScimError};
use crate::health;
use crate::http::{check_json_type, parse_body, parse_query, Request, Response};
use crate::ids::{Clock, Ids, OrgId};
use crate::service::Service;
use crate::store::Store;
use crate::vault::net::{NoOutbound, Outbound};
use serde_json::Value;

/// Routes requests for every configured organization.
pub struct Router<'a> {
    config: &'a Config,
    store: &'a dyn Store,
    clock: &'a dyn Clock,
    ids: &'a dyn Ids,
    out: &'a dyn Outbound,
}

/// The organization a path points into, its configuration looked up once.
struct Target<'a> {
    base: String,
    org: OrgId,
    cfg: &'a OrgConfig,
}

/// What a routed request brings besides its route. Bulk operations fill it from their
/// own fields.
struct Call<'c> {
    /// The path as the client wrote it, for a 404's detail.
    path: &'c str,
    query: &'c [(String, String)],
    if_match: Option<&'c str>,
    if_none_match: Option<&'c str>,
    body: &'c Value,
}

fn method_not_allowed(allowed: &str) -> ScimError {
    ScimError::new(
        ErrorKind::MethodNotAllowed,
        format!("Method not allowed here; allowed: {allowed}"),
    )
}

fn no_route(path: &str) -> ScimError {
    ScimError::not_found(format!("No SCIM endpoint at '{path}'"))
}

/// Splits `/v2/{org}/...` or `/scim/v2/{org}/...` into the base the organization's
/// locations use, the organization and the segments after it.
fn split_path(path: &str) -> Option<(String, OrgId, Vec<&str>)> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (prefix, at) = match segs.as_slice() {
        [s, v, ..] if s.eq_ignore_ascii_case("scim") && v.eq_ignore_ascii_case("v2") => {
            ("/scim/v2", 2)
        }
        [v, ..] if v.eq_ignore_ascii_case("v2") => ("/v2", 1),
        _ => return None,
    };
    let org_text = segs.get(at)?;
    let org = OrgId::parse(org_text)?;
    Some((
        format!("{prefix}/{org_text}"),
        org,
        segs.get(at + 1..).unwrap_or(&[]).to_vec(),
    ))
}

/// The organization a request's path names and its route's template, for its log line.
pub fn describe(req: &Request) -> (Option<OrgId>, &'static str) {
    if health::is_health(&req.path) {
        return (None, "/healthz");
    }
    match split_path(&req.path) {
        Some((_, org, rest)) => (Some(org), Route::parse(&req.method, &rest).template()),
        None => (None, "/{unknown}"),
    }
}

fn param<'q>(q: &'q [(String, String)], name: &str) -> Option<&'q str> {
    q.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl<'a> Router<'a> {
    /// A router over a configuration and the host's capabilities.
    pub fn new(
        config: &'a Config,
        store: &'a dyn Store,
        clock: &'a dyn Clock,
        ids: &'a dyn Ids,
    ) -> Self {
        Router {
            config,
            store,
            clock,
            ids,
            out: &NoOutbound,
        }
    }

    /// Gives the router outbound HTTP, for organizations with a vault.
    pub fn with_outbound(mut self, out: &'a dyn Outbound) -> Self {
        self.out = out;
        self
    }

    /// The organization a request points into (401 when it has none configured here)
    /// and the request's route there.
    fn target<'p>(&self, req: &'p Request) -> Result<(Target<'a>, Route<'p>)> {
        let Some((base, org, rest)) = split_path(&req.path) else {
            return Err(ScimError::not_found(format!("No SCIM endpoint at '{}'; use /v2/{{organization}}/... or /scim/v2/{{organization}}/...", req.path)));
        };
        let cfg = self.config.orgs.get(&org).ok_or_else(unauthorized)?;
        let route = Route::parse(&req.method, &rest);
        Ok((Target { base, org, cfg }, route))
    }

    /// Handles one request.
    pub fn handle(&self, req: &Request) -> Response {
        match self.try_handle(req) {
            Ok(r) => r,
            Err(e) => Response::error(&e),
        }
    }

    fn try_handle(&self, req: &Request) -> Result<Response> {
        if health::is_health(&req.path) {
            return Ok(health::check(&req.method, self.store));
        }
        // Browsers ask for it on their own; the console names no icon.
        if req.path == "/favicon.ico" {
            return Ok(Response::asset(204, "image/x-icon", b""));
        }
        let (t, route) = self.target(req)?;
        // `_console/` would load its assets from `_console/_console/`.
        if matches!(route, Route::Console(Some(console::Asset::Page))) && req.path.ends_with('/') {
            let mut r = Response::asset(308, "text/plain; charset=utf-8", b"");
            let to = format!("{}/_console", t.base);
            r.headers.push(("location".into(), to));
            return Ok(console::guarded(r));
        }
        if route.needs_key() {
            authenticate(req.header_values("authorization"), &t.cfg.keys)?;
        }
        let store = Cached::new(self.store);
        let svc = Service::new(
            &store,
            self.clock,
            self.ids,
            t.org.clone(),
            t.cfg.policy,
            t.base.clone(),
            &self.config.limits,
        )
        .with_vault(t.cfg.vault.is_some());
        let body = if route.takes_body() {
            check_json_type(req.header_value("content-type"))?;
            parse_body(
                &req.body,
                self.config.limits.max_payload,
                self.config.limits.max_depth,
            )?
        } else {
            Value::Null
        };
        let query = parse_query(&req.query);
        let call = Call {
            path: &req.path,
            query: &query,
            if_match: req.header_value("if-match"),
            if_none_match: req.header_value("if-none-match"),
            body: &body,
        };
        let out = self.dispatch(&svc, &t, route, &call);
        // Marked again once written: a drain that took the first mark before the write
        // landed cannot take this one.
        svc.remark()?;
        out
    }

    fn dispatch(
        &self,
        svc: &Service<'_>,
        t: &Target<'_>,
        route: Route<'_>,
        call: &Call<'_>,
    ) -> Result<Response> {
        match route {
            Route::Resource(kind, op) => resources::resource(svc, kind, op, call),
            Route::Search(kind) => self.search(svc, kind, call.body),
            Route::Bulk => self.bulk(svc, t, call.body),
            Route::Discovery(d) => self.discovery(t, d),
            Route::Repair => Ok(Response::json(200, &svc.repair()?)),
            Route::Console(Some(asset)) => Ok(console::asset(asset)),
            Route::Console(None) => self.overview(svc, t),
            Route::Me => Err(ScimError::new(
                ErrorKind::NotImplemented,
                "/Me is not supported: keys belong to organizations, not users",
            )),
            Route::Vault(_)
            | Route::NotAllowed {
                first: First::Vault,
                ..
            }
            | Route::Unknown(First::Vault) => self.vault_route(t, route, call.query, call.body),
            Route::NotAllowed { allow, .. } => Err(method_not_allowed(allow)),
            Route::Unknown(_) => Err(no_route(call.path)),
        }
    }
}
