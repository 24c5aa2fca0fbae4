//! `POST /Bulk` (RFC 7644 3.7): operations in order, those that name a `bulkId` not yet
//! created waiting for a later pass; each runs through the router's own dispatch.

use super::{Call, Route, Router, Target};
use crate::error::{ErrorKind, Result, ScimError};
use crate::filter::get_ci;
use crate::http::{check_schemas, Response};
use crate::service::Service;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

const BULK_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const BULK_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

impl Router<'_> {
    /// A bulk request; the causes of failed operations go to the response's log, one
    /// line each, since the client only sees their generic details.
    pub(super) fn bulk(&self, svc: &Service<'_>, t: &Target<'_>, body: &Value) -> Result<Response> {
        check_schemas(body, BULK_REQUEST_URN, true)?;
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
