//! `/Users` and `/Groups`: a page, a create, one resource read, replaced, patched or
//! deleted; and `.search`, under one type or across both. Query and search-body
//! parameters are read here.

use super::{param, Call, ResourceOp, Router};
use crate::error::{ErrorKind, Result, ScimError};
use crate::filter::get_ci;
use crate::http::{check_schemas, Response};
use crate::resource::Projection;
use crate::schema::ResourceKind;
use crate::service::{etag_list_matches, list_response, ListQuery, Outcome, Service};
use serde_json::Value;

const SEARCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

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

/// One resource route: a page, a create, or one resource read, replaced, patched or
/// deleted.
pub(super) fn resource(
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

impl Router<'_> {
    /// `POST .search` under one type, or across both (`None`).
    pub(super) fn search(
        &self,
        svc: &Service<'_>,
        kind: Option<ResourceKind>,
        body: &Value,
    ) -> Result<Response> {
        let lq = search_query(body)?;
        let found = match kind {
            Some(kind) => svc.list(kind, &lq)?,
            None => self.root_search(svc, &lq)?,
        };
        Ok(Response::json(200, &found))
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
}

/// A `.search` body (RFC 7644 3.4.3).
fn search_query(body: &Value) -> Result<ListQuery> {
    let Value::Object(_) = body else {
        return Err(ScimError::invalid_syntax(
            "The request body must be a JSON object",
        ));
    };
    check_schemas(body, SEARCH_URN, false)?;
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
