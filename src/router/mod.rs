//! The one router: path prefix and organization, then the request's [`Route`], parsed
//! once, which says whether a key and a body are needed; then the route's endpoint.
//! Every answer inside an organization, including every failure, is a SCIM response;
//! `/healthz`, outside every organization, answers plain JSON.

mod route;

pub use route::{Discovery, First, ResourceOp, Route, VaultOp};

use crate::auth::{authenticate, unauthorized};
use crate::cache::Cached;
use crate::config::{Config, OrgConfig};
use crate::error::{ErrorKind, Result, ScimError};
use crate::filter::get_ci;
use crate::health;
use crate::http::{check_json_type, parse_body, parse_query, Request, Response};
use crate::ids::{Clock, Ids, OrgId};
use crate::resource::Projection;
use crate::schema::{discovered_schemas, ResourceKind};
use crate::service::{etag_list_matches, list_response, ListQuery, Outcome, Service};
use crate::store::Store;
use crate::vault::{
    self,
    net::{NoOutbound, Outbound},
};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

const SEARCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
const BULK_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const BULK_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

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

fn param<'q>(q: &'q [(String, String)], name: &str) -> Option<&'q str> {
    q.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn parse_index(name: &str, v: Option<&str>) -> Result<Option<i64>> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s.parse::<i64>().map(Some).map_err(|_| {
            ScimError::invalid_value(format!("'{name}' must be an integer, not '{s}'"))
        }),
    }
}

fn sort_desc(v: Option<&str>) -> Result<bool> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("ascending") => Ok(false),
        Some("descending") => Ok(true),
        Some(other) => Err(ScimError::invalid_value(format!(
            "'sortOrder' must be ascending or descending, not '{other}'"
        ))),
    }
}

/// RFC 7644 3.4.2.4: startIndex below 1 is read as 1, a negative count as 0.
fn list_query(
    filter: Option<&str>,
    start: Option<i64>,
    count: Option<i64>,
    sort_by: Option<&str>,
    sort_order: Option<&str>,
    projection: Projection,
) -> Result<ListQuery> {
    Ok(ListQuery {
        filter: filter
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_string),
        start_index: usize::try_from(start.unwrap_or(1).max(1)).unwrap_or(1),
        count: count.map(|c| usize::try_from(c.max(0)).unwrap_or(0)),
        sort_by: sort_by
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        descending: sort_desc(sort_order)?,
        projection,
    })
}

fn projection_of(q: &[(String, String)]) -> Projection {
    Projection::from_params(param(q, "attributes"), param(q, "excludedAttributes"))
}

fn outcome_response(o: Outcome) -> Response {
    let mut r = match &o.body {
        Some(b) => Response::json(o.status, b),
        None => Response {
            status: o.status,
            ..Response::default()
        },
    };
    if let Some(e) = o.etag {
        r.headers.push(("etag".into(), e));
    }
    // Every answer that is one resource says where it lives (RFC 7644 3.1, 3.4.1).
    if let Some(l) = o.location {
        r.headers.push(("location".into(), l));
    }
    r
}

fn array_of_strings(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Array(a) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
        ),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
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

    fn env(&self) -> vault::Env<'_> {
        vault::Env {
            store: self.store,
            out: self.out,
            clock: self.clock,
            ids: self.ids,
            limits: &self.config.limits,
        }
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
    fn vault_route(
        &self,
        t: &Target<'_>,
        route: Route<'_>,
        q: &[(String, String)],
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
            Route::NotAllowed { allow, .. } => Err(method_not_allowed(allow)),
            _ => Err(ScimError::not_found(
                "No such vault endpoint; use _vault/sync or _vault/status",
            )),
        }
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
        let (t, route) = self.target(req)?;
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
            Route::Resource(kind, op) => resource(svc, kind, op, call),
            Route::Search(Some(kind)) => {
                let lq = search_query(call.body)?;
                Ok(Response::json(200, &svc.list(kind, &lq)?))
            }
            Route::Search(None) => {
                let lq = search_query(call.body)?;
                Ok(Response::json(200, &self.root_search(svc, &lq)?))
            }
            Route::Bulk => self.bulk(svc, t, call.body),
            Route::Discovery(d) => self.discovery(t, d),
            Route::Repair => Ok(Response::json(200, &svc.repair()?)),
            Route::Me => Err(ScimError::new(
                ErrorKind::NotImplemented,
                "/Me is not supported: keys belong to organizations, not users",
            )),
            Route::Vault(_)
            | Route::NotAllowed {
                first: First::Vault,
                ..
            }
            | Route::Unknown(First::Vault) => self.vault_route(t, route, call.query),
            Route::NotAllowed { allow, .. } => Err(method_not_allowed(allow)),
            Route::Unknown(_) => Err(no_route(call.path)),
        }
    }

    fn discovery(&self, t: &Target<'_>, d: Discovery<'_>) -> Result<Response> {
        let vault = t.cfg.vault.is_some();
        let found = match d {
            Discovery::ServiceProviderConfig => self.service_provider_config(&t.base),
            Discovery::ResourceTypes => list_response(
                2,
                1,
                vec![
                    ResourceKind::User.resource_type_json(&t.base, vault),
                    ResourceKind::Group.resource_type_json(&t.base, vault),
                ],
            ),
            Discovery::ResourceType(name) => [ResourceKind::User, ResourceKind::Group]
                .into_iter()
                .find(|k| name.eq_ignore_ascii_case(k.name()))
                .map(|k| k.resource_type_json(&t.base, vault))
                .ok_or_else(|| ScimError::not_found("No such resource type"))?,
            Discovery::Schemas => {
                let all = discovered_schemas(vault);
                list_response(
                    all.len(),
                    1,
                    all.iter().map(|s| s.to_json(&t.base)).collect(),
                )
            }
            Discovery::Schema(id) => discovered_schemas(vault)
                .into_iter()
                .find(|s| id.eq_ignore_ascii_case(s.id))
                .map(|s| s.to_json(&t.base))
                .ok_or_else(|| ScimError::not_found("No such schema"))?,
        };
        Ok(Response::json(200, &found))
    }

    fn service_provider_config(&self, base: &str) -> Value {
        let l = &self.config.limits;
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
            "patch": {"supported": true},
            "bulk": {"supported": true, "maxOperations": l.max_bulk_ops, "maxPayloadSize": l.max_payload},
            "filter": {"supported": true, "maxResults": l.max_count},
            "changePassword": {"supported": false},
            "sort": {"supported": true},
            "etag": {"supported": true},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "Bearer key",
                "description": "A per-organization key sent as 'Authorization: Bearer <key>'",
                "primary": true,
            }],
            "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
        })
    }

    fn root_search(&self, svc: &Service<'_>, lq: &ListQuery) -> Result<Value> {
        // Users, then Groups, as one list: the page's window [start, start + count) is
        // cut from each type at its own offset, so no type is read past what it owes.
        let start = lq.start_index.max(1);
        let count = lq
            .count
            .unwrap_or(self.config.limits.default_count)
            .min(self.config.limits.max_count);
        let mut page = Vec::new();
        let mut total = 0;
        let mut any_valid = None;
        for kind in [ResourceKind::User, ResourceKind::Group] {
            let mut q = lq.clone();
            q.start_index = start.saturating_sub(total).max(1);
            q.count = Some(count - page.len());
            // Each type answers the filter where it is defined for that type.
            match svc.select(kind, &q) {
                Ok((n, items)) => {
                    total += n;
                    page.extend(items);
                    any_valid = Some(Ok(()));
                }
                Err(e) if e.kind() == ErrorKind::InvalidFilter => {
                    any_valid.get_or_insert(Err(e));
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(Err(e)) = any_valid {
            return Err(e);
        }
        Ok(list_response(total, start, page))
    }

    /// A bulk request; the causes of failed operations go to the response's log, one
    /// line each, since the client only sees their generic details.
    fn bulk(&self, svc: &Service<'_>, t: &Target<'_>, body: &Value) -> Result<Response> {
        let schemas_ok = get_ci(body, "schemas")
            .and_then(Value::as_array)
            .is_some_and(|a| {
                a.iter().any(|s| {
                    s.as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case(BULK_REQUEST_URN))
                })
            });
        if !schemas_ok {
            return Err(ScimError::invalid_value(format!(
                "'schemas' must contain '{BULK_REQUEST_URN}'"
            )));
        }
        let Some(Value::Array(ops)) = get_ci(body, "Operations") else {
            return Err(ScimError::invalid_value("'Operations' must be an array"));
        };
        let max = self.config.limits.max_bulk_ops;
        if ops.len() > max {
            return Err(ScimError::new(
                ErrorKind::PayloadTooLarge,
                format!(
                    "The bulk request has {} operations; the maximum is {max}",
                    ops.len()
                ),
            ));
        }
        let fail_on = match get_ci(body, "failOnErrors") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                ScimError::invalid_value("'failOnErrors' must be a positive integer")
            })?),
        };
        let mut ids: HashMap<String, String> = HashMap::new();
        let mut results: Vec<Option<Value>> = vec![None; ops.len()];
        let mut errors = 0u64;
        let mut causes: Vec<String> = Vec::new();
        let mut pending: Vec<usize> = (0..ops.len()).collect();
        // Operations whose bulkId references are not yet known wait for a later pass;
        // what is still unresolved when no pass makes progress is circular or dangling.
        loop {
            let mut progressed = false;
            let mut next = Vec::new();
            for i in pending {
                if fail_on.is_some_and(|f| errors >= f) {
                    break;
                }
                let op = ops.get(i).unwrap_or(&Value::Null);
                let deferred = !refs_of(op).iter().all(|r| ids.contains_key(r));
                if deferred {
                    next.push(i);
                    continue;
                }
                progressed = true;
                let r = self.bulk_op(svc, t, op, &ids);
                if let (Some(bid), Some(id)) = (r.bulk_id.clone(), r.id.clone()) {
                    ids.insert(bid, id);
                }
                if r.status >= 400 {
                    errors += 1;
                }
                if let Some(cause) = r.cause {
                    causes.push(format!("bulk operation {}: {cause}", i + 1));
                }
                if let Some(slot) = results.get_mut(i) {
                    *slot = Some(r.json);
                }
            }
            pending = next;
            if pending.is_empty() || !progressed || fail_on.is_some_and(|f| errors >= f) {
                break;
            }
        }
        for i in pending {
            if fail_on.is_some_and(|f| errors >= f) {
                break;
            }
            let op = ops.get(i).unwrap_or(&Value::Null);
            let e = ScimError::new(ErrorKind::Conflict, "A bulkId reference could not be resolved (it is circular or names no POST in this request)");
            errors += 1;
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(bulk_result(op, e.status(), None, None, Some(e.to_json())));
            }
        }
        let mut r = Response::json(
            200,
            &json!({
                "schemas": [BULK_RESPONSE_URN],
                "Operations": results.into_iter().flatten().collect::<Vec<Value>>(),
            }),
        );
        r.cause = (!causes.is_empty()).then(|| causes.join("; "));
        Ok(r)
    }

    fn bulk_op(
        &self,
        svc: &Service<'_>,
        t: &Target<'_>,
        op: &Value,
        ids: &HashMap<String, String>,
    ) -> BulkOutcome {
        let fail = |e: ScimError| BulkOutcome {
            status: e.status(),
            bulk_id: None,
            id: None,
            json: bulk_result(op, e.status(), None, None, Some(e.to_json())),
            cause: e.log_cause().map(str::to_string),
        };
        let method = get_ci(op, "method")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_uppercase();
        let Some(path) = get_ci(op, "path").and_then(Value::as_str) else {
            return fail(ScimError::invalid_value(
                "Each bulk operation needs a 'path'",
            ));
        };
        let bulk_id = get_ci(op, "bulkId")
            .and_then(Value::as_str)
            .map(str::to_string);
        if method == "POST" && bulk_id.is_none() {
            return fail(ScimError::invalid_value("A bulk POST needs a 'bulkId'"));
        }
        if !matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
            return fail(ScimError::invalid_value(format!(
                "Bulk method '{method}' is not supported (POST, PUT, PATCH, DELETE)"
            )));
        }
        let path = resolve_refs(&Value::String(path.to_string()), ids);
        let path = path.as_str().unwrap_or("");
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if !matches!(
            segs.first().map(|s| s.to_ascii_lowercase()).as_deref(),
            Some("users" | "groups")
        ) || segs.len() > 2
        {
            return fail(ScimError::invalid_value(format!(
                "Bulk path '{path}' must be /Users[/id] or /Groups[/id]"
            )));
        }
        let data = get_ci(op, "data").map(|d| resolve_refs(d, ids));
        let call = Call {
            path,
            query: &[],
            if_match: get_ci(op, "version").and_then(Value::as_str),
            if_none_match: None,
            body: data.as_ref().unwrap_or(&Value::Null),
        };
        let resp = match self.dispatch(svc, t, Route::parse(&method, &segs), &call) {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        let body = resp.body_json();
        let id = body.get("id").and_then(Value::as_str).map(str::to_string);
        let location = body
            .pointer("/meta/location")
            .and_then(Value::as_str)
            .map(str::to_string);
        let version = resp.header_value("etag").map(str::to_string);
        let error_body = (resp.status >= 400).then_some(body);
        BulkOutcome {
            status: resp.status,
            bulk_id,
            id,
            json: bulk_result(op, resp.status, location, version, error_body),
            cause: resp.cause,
        }
    }
}

/// One resource route: a page, a create, or one resource read, replaced, patched or
/// deleted.
fn resource(
    svc: &Service<'_>,
    kind: ResourceKind,
    op: ResourceOp<'_>,
    call: &Call<'_>,
) -> Result<Response> {
    let (q, body, if_match) = (call.query, call.body, call.if_match);
    let proj = projection_of(q);
    let outcome = match op {
        ResourceOp::List => {
            let lq = list_query(
                param(q, "filter"),
                parse_index("startIndex", param(q, "startIndex"))?,
                parse_index("count", param(q, "count"))?,
                param(q, "sortBy"),
                param(q, "sortOrder"),
                proj,
            )?;
            return Ok(Response::json(200, &svc.list(kind, &lq)?));
        }
        ResourceOp::Create => match kind {
            ResourceKind::User => svc.create_user(body, &proj)?,
            ResourceKind::Group => svc.create_group(body, &proj)?,
        },
        ResourceOp::Get(id) => {
            if let Some(inm) = call.if_none_match {
                let v = svc.version(kind, id)?;
                if etag_list_matches(inm, &v) {
                    return Ok(Response {
                        status: 304,
                        headers: vec![("etag".into(), v)],
                        ..Response::default()
                    });
                }
            }
            match kind {
                ResourceKind::User => svc.get_user(id, &proj)?,
                ResourceKind::Group => svc.get_group(id, &proj)?,
            }
        }
        ResourceOp::Replace(id) => match kind {
            ResourceKind::User => svc.replace_user(id, body, if_match, &proj)?,
            ResourceKind::Group => svc.replace_group(id, body, if_match, &proj)?,
        },
        ResourceOp::Patch(id) => match kind {
            ResourceKind::User => svc.patch_user(id, body, if_match, &proj)?,
            ResourceKind::Group => svc.patch_group(id, body, if_match, &proj)?,
        },
        ResourceOp::Delete(id) => match kind {
            ResourceKind::User => svc.delete_user(id, if_match)?,
            ResourceKind::Group => svc.delete_group(id, if_match)?,
        },
    };
    Ok(outcome_response(outcome))
}

struct BulkOutcome {
    status: u16,
    bulk_id: Option<String>,
    id: Option<String>,
    json: Value,
    cause: Option<String>,
}

fn bulk_result(
    op: &Value,
    status: u16,
    location: Option<String>,
    version: Option<String>,
    response: Option<Value>,
) -> Value {
    let mut m = Map::new();
    if let Some(v) = get_ci(op, "method") {
        m.insert("method".into(), v.clone());
    }
    if let Some(v) = get_ci(op, "bulkId") {
        m.insert("bulkId".into(), v.clone());
    }
    if let Some(v) = version {
        m.insert("version".into(), Value::String(v));
    }
    if let Some(l) = location {
        m.insert("location".into(), Value::String(l));
    }
    m.insert("status".into(), Value::String(status.to_string()));
    if let Some(r) = response {
        m.insert("response".into(), r);
    }
    Value::Object(m)
}

/// The bulkIds an operation refers to (`bulkId:x` in its path or data).
fn refs_of(op: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => {
                for part in s.split('/') {
                    if let Some(r) = part.strip_prefix("bulkId:") {
                        out.push(r.to_string());
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(p) = get_ci(op, "path") {
        walk(p, &mut out);
    }
    if let Some(d) = get_ci(op, "data") {
        walk(d, &mut out);
    }
    out
}

fn resolve_refs(v: &Value, ids: &HashMap<String, String>) -> Value {
    match v {
        Value::String(s) if s.contains("bulkId:") => Value::String(
            s.split('/')
                .map(
                    |part| match part.strip_prefix("bulkId:").and_then(|r| ids.get(r)) {
                        Some(id) => id.clone(),
                        None => part.to_string(),
                    },
                )
                .collect::<Vec<_>>()
                .join("/"),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| resolve_refs(x, ids)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), resolve_refs(x, ids)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A `.search` body (RFC 7644 3.4.3).
fn search_query(body: &Value) -> Result<ListQuery> {
    let Value::Object(_) = body else {
        return Err(ScimError::invalid_syntax(
            "The request body must be a JSON object",
        ));
    };
    if let Some(s) = get_ci(body, "schemas") {
        let ok = s.as_array().is_some_and(|a| {
            a.iter().any(|u| {
                u.as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(SEARCH_URN))
            })
        });
        if !ok {
            return Err(ScimError::invalid_value(format!(
                "'schemas' must contain '{SEARCH_URN}'"
            )));
        }
    }
    let int = |name: &str| -> Result<Option<i64>> {
        match get_ci(body, name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| ScimError::invalid_value(format!("'{name}' must be an integer"))),
            Some(Value::String(s)) => parse_index(name, Some(s)),
            Some(_) => Err(ScimError::invalid_value(format!(
                "'{name}' must be an integer"
            ))),
        }
    };
    let text = |name: &str| get_ci(body, name).and_then(Value::as_str);
    let projection = Projection::from_params(
        array_of_strings(get_ci(body, "attributes")).as_deref(),
        array_of_strings(get_ci(body, "excludedAttributes")).as_deref(),
    );
    list_query(
        text("filter"),
        int("startIndex")?,
        int("count")?,
        text("sortBy"),
        text("sortOrder"),
        projection,
    )
}
