//! The gate in front of an existing vault's SCIM endpoint: everything the Envoy filter
//! decides, without proxy types, so it is tested natively.
//!
//! A request is admitted on its headers (path, key, declared size), then, if it is one
//! the SCIM API reads a body for, its body is screened (JSON syntax and nesting, Okta's
//! rules on user writes, identity changes a PATCH shows); any other passes unscreened.
//! Responses of a Bitwarden-shaped upstream are repaired: a list's `resources` becomes
//! `Resources`, and an error without a body (Bitwarden's 401) gets a SCIM one.

use crate::auth::{authenticate, unauthorized};
use crate::config::{checked_orgs, OrgConfig, OrgDto};
use crate::error::{error_body, Result, ScimError};
use crate::filter::{get_ci, get_mut_ci};
use crate::http::{
    check_json_type, header, header_values, is_json_type, parse_body, too_large, Response,
    SCIM_JSON,
};
use crate::ids::OrgId;
use crate::okta::{self, Policy};
use crate::patch::{self, PatchOp};
use crate::schema::ResourceKind;
use crate::service::Limits;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub mod forward;
pub mod verdict;

/// The prefixes used when the configuration names none: Bitwarden serves `/v2/{org}`
/// under the `/scim` path base.
pub const DEFAULT_PREFIXES: [&str; 2] = ["/scim/v2", "/v2"];

const SETTINGS: [&str; 3] = ["organizations", "path_prefixes", "max_body_bytes"];

/// The filter's configuration (the plugin's JSON).
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// Organizations by id.
    pub orgs: BTreeMap<OrgId, OrgConfig>,
    /// Path prefixes before `/{organization}`, longest first.
    pub path_prefixes: Vec<String>,
    /// The largest request body let through, in bytes.
    pub max_body: usize,
}

fn prefix(i: usize, v: &Value) -> std::result::Result<String, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("path_prefixes[{i}]: expected a string"))?;
    let t = s.trim_end_matches('/');
    let clean = s.starts_with('/')
        && !t.is_empty()
        && !t.contains(['?', '#', '%', '\\'])
        && t.split('/')
            .skip(1)
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if clean {
        Ok(t.to_string())
    } else {
        Err(format!(
            "path_prefixes[{i}]: '{s}' is not an absolute path such as /scim/v2"
        ))
    }
}

impl GateConfig {
    /// Parses `{"organizations": {..}, "path_prefixes": [..], "max_body_bytes": n}`;
    /// an error names the setting at fault.
    pub fn from_json(json: &str) -> std::result::Result<GateConfig, String> {
        let v: Value = serde_json::from_str(json)
            .map_err(|e| format!("configuration: not valid JSON: {e}"))?;
        let Value::Object(top) = v else {
            return Err("configuration: expected a JSON object".into());
        };
        if let Some(k) = top.keys().find(|k| !SETTINGS.contains(&k.as_str())) {
            return Err(format!(
                "{k}: unknown setting (expected organizations, path_prefixes or max_body_bytes)"
            ));
        }
        let orgs = top
            .get("organizations")
            .ok_or_else(|| "organizations: required".to_string())?;
        let dto: BTreeMap<String, OrgDto> = serde_json::from_value(orgs.clone())
            .map_err(|e| format!("organizations: not the expected JSON object: {e}"))?;
        let orgs = checked_orgs(dto, "organizations.")?;
        let mut path_prefixes = match top.get("path_prefixes") {
            None => DEFAULT_PREFIXES.iter().map(|p| p.to_string()).collect(),
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .enumerate()
                .map(|(i, p)| prefix(i, p))
                .collect::<std::result::Result<Vec<_>, _>>()?,
            Some(_) => return Err("path_prefixes: expected a non-empty array of paths".into()),
        };
        path_prefixes.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let max_body = match top.get("max_body_bytes") {
            None => Limits::default().max_payload,
            Some(v) => v
                .as_u64()
                .filter(|n| *n > 0)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| "max_body_bytes: expected a positive integer".to_string())?,
        };
        Ok(GateConfig {
            orgs,
            path_prefixes,
            max_body,
        })
    }

    /// The 413 for a body of `size` bytes, or none within the limit.
    pub fn check_size(&self, size: usize) -> Result<()> {
        if size > self.max_body {
            return Err(too_large(size, self.max_body));
        }
        Ok(())
    }

    /// Decides on a request from its method, `:path` and headers.
    pub fn admit(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
    ) -> Result<Admitted> {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let segs = self.segments(path)?;
        let org = segs
            .first()
            .and_then(|s| OrgId::parse(s))
            .and_then(|o| self.orgs.get(&o))
            .ok_or_else(unauthorized)?;
        authenticate(header_values(headers, "authorization"), &org.keys)?;
        if let Some(cl) = header(headers, "content-length") {
            // Envoy rejects malformed lengths itself; an unparsable one is over any limit.
            self.check_size(cl.trim().parse().unwrap_or(usize::MAX))?;
        }
        let method = method.to_ascii_uppercase();
        let rest: Vec<String> = segs
            .get(1..)
            .unwrap_or(&[])
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        let screen = Screen::of(&method, &rest);
        if screen != Screen::None {
            check_json_type(header(headers, "content-type"))?;
        }
        let list = matches!(
            (method.as_str(), rest.as_slice()),
            ("GET", ["users" | "groups"]) | ("POST", [.., ".search"])
        );
        Ok(Admitted {
            policy: org.policy,
            screen,
            list,
        })
    }

    /// The segments after a configured prefix; a path with empty, dot or encoded
    /// separator segments is refused, so the upstream cannot resolve it to another
    /// organization than the one checked.
    fn segments<'p>(&self, path: &'p str) -> Result<Vec<&'p str>> {
        let lower = path.to_ascii_lowercase();
        if path.contains('\\') || ["%2e", "%2f", "%5c"].iter().any(|e| lower.contains(e)) {
            return Err(ScimError::not_found(format!(
                "The path '{path}' has encoded separators or dots; send a plain path"
            )));
        }
        let rest = self
            .path_prefixes
            .iter()
            .find_map(|p| {
                let head = path.get(..p.len())?;
                let tail = path.get(p.len()..)?;
                (head.eq_ignore_ascii_case(p) && tail.starts_with('/')).then(|| &tail[1..])
            })
            .ok_or_else(|| {
                let forms: Vec<String> = self
                    .path_prefixes
                    .iter()
                    .map(|p| format!("{p}/{{organization}}/..."))
                    .collect();
                ScimError::not_found(format!(
                    "No SCIM endpoint at '{path}'; use {}",
                    forms.join(" or ")
                ))
            })?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let segs: Vec<&str> = rest.split('/').collect();
        if segs.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
            return Err(ScimError::not_found(format!(
                "The path '{path}' has empty or dot segments; send a plain path"
            )));
        }
        Ok(segs)
    }
}

/// How a request body is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Screen {
    /// No body is read.
    None,
    /// JSON syntax and nesting only.
    Json,
    /// A user create or replace: Okta's rules, possibly rewriting the body.
    UserWrite,
    /// A user PATCH: PatchOp syntax, and no change of identity.
    UserPatch,
    /// A bulk request: each user operation in it as if it came alone.
    Bulk,
}

impl Screen {
    /// The body rule for an upper-cased method and the lower-cased segments after the
    /// organization: only the requests the SCIM API reads a body for have one. Anything
    /// else (discovery endpoints, which are GET only, methods an endpoint does not take,
    /// unknown routes) passes unscreened, so the vault answers it (405, 404) as it would
    /// without the filter; it is still authenticated and its declared length checked.
    fn of(method: &str, rest: &[&str]) -> Screen {
        match (method, rest) {
            ("POST", ["users"]) => Screen::UserWrite,
            ("PUT", ["users", id]) if *id != ".search" => Screen::UserWrite,
            ("PATCH", ["users", id]) if *id != ".search" => Screen::UserPatch,
            ("POST", ["bulk"]) => Screen::Bulk,
            ("POST", ["groups"] | [".search"] | ["users" | "groups", ".search"]) => Screen::Json,
            ("PUT" | "PATCH", ["groups", id]) if *id != ".search" => Screen::Json,
            _ => Screen::None,
        }
    }
}

/// What the response of an admitted request needs.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponsePlan {
    /// Forward it as it is.
    Forward,
    /// The upstream sent headers only: answer with this instead.
    Replace(Response),
    /// Buffer the body and pass it to [`Admitted::finish_response`].
    Buffer,
}

/// A request let through on its headers, and what remains to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    policy: Policy,
    screen: Screen,
    list: bool,
}

/// A user whose identity a PATCH operation must leave as it is. Nothing a client sends
/// equals these values, so any operation that sets `userName` or the primary email,
/// even to the stored value, shows up as a change.
fn probe() -> Map<String, Value> {
    let doc = json!({
        "userName": "\u{1}probe-user-name",
        "emails": [
            {"value": "\u{1}probe-work", "type": "work", "primary": true},
            {"value": "\u{1}probe-home", "type": "home"},
            {"value": "\u{1}probe-other", "type": "other"}
        ]
    });
    match doc {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

const PROBE_ID: &str = "00000000-0000-0000-0000-000000000000";

/// Rejects an operation that would set or remove `userName` or the primary email.
/// Operations the probe cannot take (a filter that matches none of its emails, an
/// attribute the core does not know) are left to the vault.
fn check_identity(op: &PatchOp, policy: Policy) -> Result<()> {
    let before = probe();
    let mut after = before.clone();
    if patch::apply(
        ResourceKind::User,
        &mut after,
        std::slice::from_ref(op),
        PROBE_ID,
    )
    .is_err()
    {
        return Ok(());
    }
    okta::check_unchanged(&before, &after, policy)
}

/// Screens one body by its rule; `Some` is the body to forward instead.
fn screen_one(screen: Screen, policy: Policy, doc: Value) -> Result<Option<Value>> {
    match screen {
        Screen::None | Screen::Json | Screen::Bulk => Ok(None),
        Screen::UserWrite => {
            let Value::Object(mut m) = doc else {
                return Err(ScimError::invalid_syntax(
                    "The request body must be a JSON object",
                ));
            };
            let before = m.clone();
            okta::normalize(&mut m, policy)?;
            Ok((m != before).then_some(Value::Object(m)))
        }
        Screen::UserPatch => {
            let ops = patch::parse(&doc)?;
            if policy != Policy::Off {
                for op in &ops {
                    check_identity(op, policy)?;
                }
            }
            Ok(None)
        }
    }
}

impl Admitted {
    /// Whether the body must be buffered and passed to [`Admitted::screen_body`].
    pub fn reads_body(&self) -> bool {
        self.screen != Screen::None
    }

    /// Checks a complete request body. `Ok(None)`: forward it unchanged;
    /// `Ok(Some(bytes))`: forward these bytes instead.
    pub fn screen_body(&self, gate: &GateConfig, body: &[u8]) -> Result<Option<Vec<u8>>> {
        if self.screen == Screen::None {
            return Ok(None);
        }
        let doc = parse_body(body, gate.max_body, Limits::default().max_depth)?;
        let screened = match self.screen {
            Screen::Bulk => self.screen_bulk(doc)?,
            screen => screen_one(screen, self.policy, doc)?,
        };
        screened
            .map(|v| serde_json::to_vec(&v))
            .transpose()
            .map_err(|e| ScimError::internal(format!("serializing a body: {e}")))
    }

    /// Screens the user operations of a bulk request (RFC 7644 3.7) by the rules of
    /// their method and path; one that breaks a rule refuses the whole request, naming
    /// it, since the gate cannot forward part of one. `Some` is the rewritten request.
    fn screen_bulk(&self, mut doc: Value) -> Result<Option<Value>> {
        let Some(Value::Array(ops)) = get_mut_ci(&mut doc, "Operations") else {
            return Ok(None);
        };
        let mut changed = false;
        for (n, op) in ops.iter_mut().enumerate() {
            let text = |name: &str| get_ci(op, name).and_then(Value::as_str).unwrap_or("");
            let method = text("method").to_ascii_uppercase();
            let path = text("path").to_ascii_lowercase();
            let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            let screen = match Screen::of(&method, &segments) {
                s @ (Screen::UserWrite | Screen::UserPatch) => s,
                _ => continue,
            };
            let Some(data) = get_mut_ci(op, "data") else {
                continue;
            };
            match screen_one(screen, self.policy, data.clone()) {
                Ok(Some(fixed)) => {
                    *data = fixed;
                    changed = true;
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(ScimError::new(
                        e.kind(),
                        format!("Bulk operation {}: {}", n + 1, e.detail()),
                    ))
                }
            }
        }
        Ok(changed.then_some(doc))
    }

    /// Whether the upstream's response headers need reading at all: for lists (to
    /// rename `resources`) and for responses with no body (an error may need one).
    /// Other responses pass untouched, so the common case costs no host call.
    pub fn inspects_response(&self, end_of_stream: bool) -> bool {
        self.list || end_of_stream
    }

    /// Decides from the upstream's status and headers whether its response needs work.
    /// An error that came with a body is the vault's own, and is forwarded.
    pub fn response_plan(
        &self,
        status: u16,
        headers: &[(String, String)],
        end_of_stream: bool,
    ) -> ResponsePlan {
        if status >= 400 && end_of_stream {
            return ResponsePlan::Replace(filled_error(status));
        }
        let json = header(headers, "content-type").is_some_and(is_json_type);
        let encoded = header(headers, "content-encoding")
            .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"));
        if self.list && status == 200 && json && !encoded && !end_of_stream {
            return ResponsePlan::Buffer;
        }
        ResponsePlan::Forward
    }

    /// Repairs a whole response (status, headers, body) by its plan; `None`: forward it
    /// as it is.
    pub fn repair(
        &self,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Option<Response> {
        match self.response_plan(status, headers, body.is_empty()) {
            ResponsePlan::Forward => None,
            ResponsePlan::Replace(r) => Some(r),
            ResponsePlan::Buffer => self.finish_response(status, body),
        }
    }

    /// Repairs a buffered list body; `None` forwards it unchanged. The returned
    /// response's headers replace the upstream's (its status is the upstream's).
    pub fn finish_response(&self, status: u16, body: &[u8]) -> Option<Response> {
        let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body) else {
            return None;
        };
        if m.contains_key("Resources") || !m.keys().any(|k| k.eq_ignore_ascii_case("resources")) {
            return None;
        }
        let fixed: Map<String, Value> = m
            .into_iter()
            .map(|(k, v)| {
                if k.eq_ignore_ascii_case("resources") {
                    ("Resources".to_string(), v)
                } else {
                    (k, v)
                }
            })
            .collect();
        Some(Response {
            status,
            headers: vec![("content-type".into(), SCIM_JSON.into())],
            body: Value::Object(fixed).to_string().into_bytes(),
            cause: None,
        })
    }
}

/// The SCIM error for an upstream error that came without a body.
fn filled_error(status: u16) -> Response {
    let detail = if status == 401 {
        "The vault rejected the credentials (it answered 401 without a body)".to_string()
    } else {
        format!("The vault answered {status} without a body")
    };
    let mut headers = vec![("content-type".to_string(), SCIM_JSON.to_string())];
    if status == 401 {
        headers.push(("www-authenticate".into(), "Bearer realm=\"scim\"".into()));
    }
    Response {
        status,
        headers,
        body: error_body(status, &detail, None).to_string().into_bytes(),
        cause: None,
    }
}
