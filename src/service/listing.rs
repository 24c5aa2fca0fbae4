//! Lists: the filter goes to an index when it names an indexed value, else the listing
//! log is scanned (up to `max_scan`); sorting and paging follow on the documents.

use super::layout::{IndexKind, Record};
use super::{list_response, ListQuery, Service};
use crate::caseless;
use crate::error::{ErrorKind, Result, ScimError};
use crate::filter::{self, index_terms, Filter};
use crate::ids::parse_uuid;
use crate::resource::Projection;
use crate::schema::ResourceKind;
use serde_json::Value;
use std::collections::HashSet;

/// Records read per batch when a filter scans the listing.
const SCAN_BATCH: usize = 500;

impl<'a> Service<'a> {
    /// The resource whose indexed attribute `attr` has `value`, if an index answers.
    fn find_by_index(
        &self,
        kind: ResourceKind,
        attr: &str,
        value: &str,
    ) -> Result<Option<(String, Record)>> {
        match (kind, attr) {
            (_, "id") => match parse_uuid(value) {
                Some(id) => Ok(self.load(kind, &id)?.map(|r| (id, r))),
                None => Ok(None),
            },
            (ResourceKind::User, "userName") => self.find_user_by_name(value),
            (ResourceKind::User, "externalId") => self.via_index(IndexKind::UserExternal, value),
            (ResourceKind::Group, "displayName") => self.via_index(IndexKind::GroupName, value),
            (ResourceKind::Group, "externalId") => self.via_index(IndexKind::GroupExternal, value),
            _ => Ok(None),
        }
    }

    fn view(
        &self,
        kind: ResourceKind,
        id: &str,
        rec: Record,
        proj: &Projection,
        with_groups: bool,
    ) -> Result<Value> {
        Ok(match kind {
            ResourceKind::User => {
                self.user_view(id, rec, proj, with_groups.then_some(true))?
                    .0
            }
            ResourceKind::Group => self.group_view(id, rec, proj)?.0,
        })
    }

    /// The documents a filter is evaluated against: complete, with computed attributes
    /// when the filter mentions them.
    fn eval_doc(&self, kind: ResourceKind, id: &str, rec: Record, computed: bool) -> Result<Value> {
        self.view(kind, id, rec, &Projection::default(), computed)
    }

    /// GET /Users, GET /Groups, and `.search`.
    pub fn list(&self, kind: ResourceKind, q: &ListQuery) -> Result<Value> {
        let (total, items) = self.select(kind, q)?;
        Ok(list_response(total, q.start_index.max(1), items))
    }

    /// The total and the requested page of rendered resources.
    pub fn select(&self, kind: ResourceKind, q: &ListQuery) -> Result<(usize, Vec<Value>)> {
        let start = q.start_index.max(1);
        let count = q
            .count
            .unwrap_or(self.limits.default_count)
            .min(self.limits.max_count);
        let filter = match &q.filter {
            Some(f) => {
                let f = Filter::parse(f)?;
                f.check(kind)?;
                Some(f)
            }
            None => None,
        };
        // Users' groups are computed per user; in lists they are returned when asked for.
        let with_groups = q.projection.attributes.as_ref().is_some_and(|a| {
            a.iter().any(|p| {
                p.eq_ignore_ascii_case("groups") || p.to_ascii_lowercase().starts_with("groups.")
            })
        });
        let sort = match &q.sort_by {
            Some(s) => Some(filter::split_attr_path(s).ok_or_else(|| {
                ScimError::invalid_value(format!("Invalid sortBy attribute '{s}'"))
            })?),
            None => None,
        };
        if let Some(p) = &sort {
            filter::resolve(kind, p)
                .map_err(|_| ScimError::invalid_value(format!("Unknown sortBy attribute '{p}'")))?;
        }
        if filter.is_none() && sort.is_none() {
            let now = self.now();
            let page = self.listing(kind).page(start - 1, count, now, &|e, t| {
                self.verify_listing(kind, e, t)
            })?;
            self.prefetch_records(kind, page.entries.iter().map(|e| e.id.as_str()));
            let mut items = Vec::with_capacity(page.entries.len());
            for e in &page.entries {
                if let Some(rec) = self.load(kind, &e.id)? {
                    items.push(self.view(kind, &e.id, rec, &q.projection, with_groups)?);
                }
            }
            return Ok((page.total, items));
        }
        let computed = filter.as_ref().is_some_and(|f| mentions_computed(kind, f));
        let indexed = match kind {
            ResourceKind::User => ["id", "userName", "externalId"],
            ResourceKind::Group => ["id", "displayName", "externalId"],
        };
        let mut candidates: Vec<(String, Record)> = Vec::new();
        match filter.as_ref().and_then(|f| index_terms(f, kind, &indexed)) {
            Some(terms) => {
                let mut seen = HashSet::new();
                for (attr, value) in terms {
                    if let Some((id, rec)) = self.find_by_index(kind, attr, &value)? {
                        if seen.insert(id.clone()) {
                            candidates.push((id, rec));
                        }
                    }
                }
            }
            None => {
                let now = self.now();
                let log = self.listing(kind);
                let head = log.page(0, 0, now, &|e, t| self.verify_listing(kind, e, t))?;
                if head.total > self.limits.max_scan {
                    return Err(ScimError::new(ErrorKind::TooMany, format!(
                        "This filter or sort needs a scan of {} resources, more than the {} allowed; filter by an indexed attribute (id, {})",
                        head.total,
                        self.limits.max_scan,
                        if kind == ResourceKind::User { "userName, externalId" } else { "displayName, externalId" }
                    )));
                }
                let page = log.all(now, &|e, t| self.verify_listing(kind, e, t))?;
                for batch in page.entries.chunks(SCAN_BATCH) {
                    self.prefetch_records(kind, batch.iter().map(|e| e.id.as_str()));
                    for e in batch {
                        if let Some(rec) = self.load(kind, &e.id)? {
                            candidates.push((e.id.clone(), rec));
                        }
                    }
                }
            }
        }
        let mut matched: Vec<(String, Record, Value)> = Vec::new();
        for (id, rec) in candidates {
            let doc = self.eval_doc(kind, &id, rec.clone(), computed)?;
            if filter.as_ref().is_none_or(|f| f.matches(kind, &doc)) {
                matched.push((id, rec, doc));
            }
        }
        if let Some(p) = &sort {
            let def = filter::resolve(kind, p).ok();
            let exact = def.is_some_and(|d| {
                match (&p.sub, d.sub_attr(p.sub.as_deref().unwrap_or("value"))) {
                    (_, Some(s)) if d.ty == crate::schema::AttrType::Complex => s.case_exact,
                    _ => d.case_exact,
                }
            });
            let key = |doc: &Value| -> Option<Value> { sort_key(kind, doc, p, exact) };
            matched.sort_by(|a, b| {
                let (ka, kb) = (key(&a.2), key(&b.2));
                let ord = match (ka, kb) {
                    (None, None) => std::cmp::Ordering::Equal,
                    (None, Some(_)) => return std::cmp::Ordering::Greater,
                    (Some(_), None) => return std::cmp::Ordering::Less,
                    (Some(x), Some(y)) => cmp_json(&x, &y),
                };
                if q.descending {
                    ord.reverse()
                } else {
                    ord
                }
            });
        }
        let total = matched.len();
        let mut items = Vec::new();
        for (id, rec, _) in matched.into_iter().skip(start - 1).take(count) {
            items.push(self.view(kind, &id, rec, &q.projection, with_groups)?);
        }
        Ok((total, items))
    }
}

fn cmp_json(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(std::cmp::Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

fn sort_key(kind: ResourceKind, doc: &Value, p: &filter::AttrPath, exact: bool) -> Option<Value> {
    let found = kind.resolve(p.urn.as_deref(), &p.name)?;
    let container = match found.extension {
        Some(ext) => filter::get_ci(doc, ext.id)?,
        None => doc,
    };
    let v = filter::get_ci(container, found.attr.name)?;
    let v = match v {
        // Multi-valued: sort by the primary value, else the first (RFC 7644 3.4.2.3).
        Value::Array(items) => items
            .iter()
            .find(|i| filter::get_ci(i, "primary") == Some(&Value::Bool(true)))
            .or_else(|| items.first())?,
        other => other,
    };
    let v = match (&p.sub, v) {
        (Some(s), obj) => filter::get_ci(obj, s)?,
        (None, Value::Object(_)) => filter::get_ci(v, "value")?,
        (None, other) => other,
    };
    Some(match v {
        Value::String(s) if !exact => Value::String(caseless::fold(s)),
        other => other.clone(),
    })
}

fn mentions_computed(kind: ResourceKind, f: &Filter) -> bool {
    let computed = match kind {
        ResourceKind::User => "groups",
        ResourceKind::Group => "members",
    };
    match f {
        Filter::Compare(p, ..) | Filter::Present(p) | Filter::ValuePath(p, _) => {
            p.name.eq_ignore_ascii_case(computed)
        }
        Filter::And(a, b) | Filter::Or(a, b) => {
            mentions_computed(kind, a) || mentions_computed(kind, b)
        }
        Filter::Not(a) => mentions_computed(kind, a),
    }
}
