//! RFC 7644 3.5.2 PATCH: parsing of PatchOp bodies (with Okta's and Entra's shapes) and
//! application to a document. The caller applies to a copy and writes only on success,
//! so a request's operations take effect all together or not at all.

use crate::error::{ErrorKind, Result, ScimError};
use crate::filter::{get_ci, parse_patch_path, AttrPath, CompValue, CompareOp, Filter, PatchPath};
use crate::http::check_schemas;
use crate::schema::{AttrDef, AttrType, Mutability, ResourceKind};
use serde_json::{Map, Value};

/// The PatchOp message URN.
pub const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The three operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// add
    Add,
    /// remove
    Remove,
    /// replace
    Replace,
}

/// One parsed operation.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    /// The operation.
    pub op: Op,
    /// The target, when given.
    pub path: Option<PatchPath>,
    /// The value, when given.
    pub value: Option<Value>,
}

/// Parses a PatchOp request body.
pub fn parse(body: &Value) -> Result<Vec<PatchOp>> {
    let Value::Object(obj) = body else {
        return Err(ScimError::invalid_syntax(
            "The request body must be a JSON object",
        ));
    };
    check_schemas(body, PATCH_URN, false)?;
    for k in obj.keys() {
        if !k.eq_ignore_ascii_case("schemas") && !k.eq_ignore_ascii_case("Operations") {
            return Err(ScimError::invalid_value(format!(
                "Unknown attribute '{k}' in a PatchOp request"
            )));
        }
    }
    let Some(Value::Array(ops)) = get_ci(body, "Operations") else {
        return Err(ScimError::invalid_value(
            "'Operations' must be a non-empty array",
        ));
    };
    if ops.is_empty() {
        return Err(ScimError::invalid_value(
            "'Operations' must be a non-empty array",
        ));
    }
    ops.iter()
        .enumerate()
        .map(|(i, o)| parse_op(i, o))
        .collect()
}

fn parse_op(i: usize, o: &Value) -> Result<PatchOp> {
    let n = i + 1;
    let Value::Object(m) = o else {
        return Err(ScimError::invalid_syntax(format!(
            "Operation {n} must be a JSON object"
        )));
    };
    for k in m.keys() {
        if !["op", "path", "value"]
            .iter()
            .any(|a| a.eq_ignore_ascii_case(k))
        {
            return Err(ScimError::invalid_value(format!(
                "Operation {n} has an unknown member '{k}'"
            )));
        }
    }
    let op = match get_ci(o, "op")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("add") => Op::Add,
        Some("remove") => Op::Remove,
        Some("replace") => Op::Replace,
        Some(other) => {
            return Err(ScimError::invalid_syntax(format!(
                "Operation {n} has an unknown op '{other}' (expected add, remove or replace)"
            )))
        }
        None => {
            return Err(ScimError::invalid_syntax(format!(
                "Operation {n} has no 'op'"
            )))
        }
    };
    let path = match get_ci(o, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(parse_patch_path(s.trim())?),
        Some(_) => {
            return Err(ScimError::new(
                ErrorKind::InvalidPath,
                format!("Operation {n} has a 'path' that is not a string"),
            ))
        }
    };
    let value = get_ci(o, "value").cloned();
    match (op, &path, &value) {
        (Op::Remove, None, _) => Err(ScimError::new(
            ErrorKind::NoTarget,
            format!("Operation {n} (remove) needs a 'path'"),
        )),
        (Op::Add | Op::Replace, None, Some(Value::Object(_))) => Ok(PatchOp { op, path, value }),
        (Op::Add | Op::Replace, None, _) => Err(ScimError::invalid_value(format!(
            "Operation {n} has no 'path', so its 'value' must be an object of attributes"
        ))),
        // Bitwarden accepts `add` of `members[value eq "id"]` with no value.
        (Op::Add, Some(p), None | Some(Value::Null)) if p.filter.is_none() => Err(
            ScimError::invalid_value(format!("Operation {n} (add) needs a 'value'")),
        ),
        _ => Ok(PatchOp { op, path, value }),
    }
}

fn mutability_err(name: &str) -> ScimError {
    ScimError::new(
        ErrorKind::Mutability,
        format!("Attribute '{name}' is read-only"),
    )
}

fn unknown_path(p: &AttrPath) -> ScimError {
    ScimError::new(ErrorKind::InvalidPath, format!("Unknown attribute '{p}'"))
}

/// Where an attribute lives in the document: the top level or an extension object.
fn container<'d>(
    doc: &'d mut Map<String, Value>,
    ext: Option<&str>,
) -> Result<&'d mut Map<String, Value>> {
    let Some(urn) = ext else { return Ok(doc) };
    let slot = doc
        .entry(urn.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
        .ok_or_else(|| ScimError::internal("extension container is not an object"))
}

/// Applies operations to a document of `kind`, in order. `id` is the resource's id: a
/// path-less value that repeats it (Okta's group rename) is accepted, any other `id`
/// is a mutability error.
pub fn apply(
    kind: ResourceKind,
    doc: &mut Map<String, Value>,
    ops: &[PatchOp],
    id: &str,
) -> Result<()> {
    for op in ops {
        apply_one(kind, doc, op, id)?;
    }
    tidy(doc);
    Ok(())
}

fn apply_one(
    kind: ResourceKind,
    doc: &mut Map<String, Value>,
    op: &PatchOp,
    id: &str,
) -> Result<()> {
    match &op.path {
        None => {
            let Some(Value::Object(values)) = &op.value else {
                return Ok(());
            };
            for (k, v) in values {
                if let Some(ext) = kind.extension(k) {
                    let Value::Object(inner) = v else {
                        return Err(ScimError::invalid_value(format!(
                            "Extension '{}' must be a JSON object",
                            ext.id
                        )));
                    };
                    for (ik, iv) in inner {
                        // Some clients repeat `schemas` inside an extension object.
                        if ik.eq_ignore_ascii_case("schemas") {
                            continue;
                        }
                        let def = ext.attr(ik).ok_or_else(|| {
                            ScimError::new(
                                ErrorKind::InvalidPath,
                                format!("Unknown attribute '{}:{ik}'", ext.id),
                            )
                        })?;
                        set_attr(container(doc, Some(ext.id))?, def, op.op, iv)?;
                    }
                    continue;
                }
                if k.eq_ignore_ascii_case("schemas") {
                    continue;
                }
                if k.eq_ignore_ascii_case("id") {
                    if v.as_str() == Some(id) {
                        continue;
                    }
                    return Err(mutability_err("id"));
                }
                // Entra writes extension attributes as full paths inside the value.
                let path = crate::filter::split_attr_path(k).ok_or_else(|| {
                    ScimError::new(
                        ErrorKind::InvalidPath,
                        format!("Invalid attribute name '{k}'"),
                    )
                })?;
                let single = PatchOp {
                    op: op.op,
                    path: Some(PatchPath {
                        attr: path,
                        filter: None,
                        sub_after: None,
                    }),
                    value: Some(v.clone()),
                };
                apply_one(kind, doc, &single, id)?;
            }
            Ok(())
        }
        Some(p) => apply_path(kind, doc, op.op, p, op.value.as_ref()),
    }
}

fn check_writable(def: &AttrDef, p: &AttrPath) -> Result<()> {
    if def.mutability == Mutability::ReadOnly {
        return Err(mutability_err(&p.to_string()));
    }
    Ok(())
}

fn apply_path(
    kind: ResourceKind,
    doc: &mut Map<String, Value>,
    op: Op,
    p: &PatchPath,
    value: Option<&Value>,
) -> Result<()> {
    // A path naming a whole extension schema addresses the extension object.
    if let (Some(ext), None) = (kind.extension(&p.attr.to_string()), &p.filter) {
        return match (op, value) {
            (Op::Remove, _) => {
                doc.remove(ext.id);
                Ok(())
            }
            (_, Some(v @ Value::Object(_))) => {
                let mut values = Map::new();
                values.insert(ext.id.to_string(), v.clone());
                let whole = PatchOp {
                    op,
                    path: None,
                    value: Some(Value::Object(values)),
                };
                apply_one(kind, doc, &whole, "")
            }
            _ => Err(ScimError::invalid_value(format!(
                "The value for '{}' must be an object of its attributes",
                ext.id
            ))),
        };
    }
    let found = kind
        .resolve(p.attr.urn.as_deref(), &p.attr.name)
        .ok_or_else(|| unknown_path(&p.attr))?;
    let def = found.attr;
    check_writable(def, &p.attr)?;
    let ext = found.extension.map(|s| s.id);
    let value = match (op, value) {
        (Op::Replace, None | Some(Value::Null)) => {
            return apply_path(kind, doc, Op::Remove, p, None)
        }
        (Op::Add, None | Some(Value::Null)) => {
            return Err(ScimError::invalid_value(format!(
                "Adding to '{}' needs a 'value'",
                p.attr
            )))
        }
        (_, v) => v,
    };
    let sub_name = p.attr.sub.as_deref().or(p.sub_after.as_deref());
    let sub_def = match sub_name {
        Some(s) => {
            let sd = def.sub_attr(s).ok_or_else(|| unknown_path(&p.attr))?;
            if sd.mutability == Mutability::ReadOnly {
                return Err(mutability_err(&format!("{}.{}", def.name, sd.name)));
            }
            Some(sd)
        }
        None => None,
    };
    let target = container(doc, ext)?;
    if let Some(filter) = &p.filter {
        if !def.multi || def.ty != AttrType::Complex {
            return Err(ScimError::new(
                ErrorKind::InvalidPath,
                format!(
                    "'{}' is not multi-valued and cannot take a value filter",
                    def.name
                ),
            ));
        }
        return apply_filtered(target, def, filter, sub_def, op, value);
    }
    match (sub_def, op) {
        (Some(sd), Op::Remove) => {
            match target.get_mut(def.name) {
                Some(Value::Object(m)) => {
                    m.remove(sd.name);
                }
                Some(Value::Array(items)) => {
                    for it in items.iter_mut() {
                        if let Value::Object(m) = it {
                            m.remove(sd.name);
                        }
                    }
                }
                _ => {}
            }
            Ok(())
        }
        (Some(sd), _) => {
            let v = value.cloned().unwrap_or(Value::Null);
            if def.multi {
                return Err(ScimError::new(ErrorKind::InvalidPath, format!(
                    "'{}.{}' names a sub-attribute of every value; select values with a filter, e.g. {}[type eq \"work\"].{}",
                    def.name, sd.name, def.name, sd.name
                )));
            }
            let entry = target
                .entry(def.name.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Value::Object(m) = entry {
                m.insert(sd.name.to_string(), v);
            }
            Ok(())
        }
        (None, Op::Remove) => {
            match (value, target.get_mut(def.name)) {
                // Entra: remove with a value removes those values of a multi-valued attribute.
                (Some(Value::Array(gone)), Some(Value::Array(items))) if def.multi => {
                    items.retain(|it| !gone.iter().any(|g| same_value(it, g)));
                }
                _ => {
                    target.remove(def.name);
                }
            }
            Ok(())
        }
        (None, _) => set_attr(target, def, op, value.unwrap_or(&Value::Null)),
    }
}

/// Two values of a multi-valued attribute are the same value when their `value`
/// sub-attributes are equal (or, lacking one, when they are equal as JSON).
fn same_value(a: &Value, b: &Value) -> bool {
    match (get_ci(a, "value"), get_ci(b, "value")) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// add / replace of a whole attribute.
fn set_attr(target: &mut Map<String, Value>, def: &AttrDef, op: Op, v: &Value) -> Result<()> {
    if def.mutability == Mutability::ReadOnly {
        return Err(mutability_err(def.name));
    }
    if v.is_null() {
        target.remove(def.name);
        return Ok(());
    }
    if def.multi {
        let new_items: Vec<Value> = match v {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        let sets_primary = new_items.iter().any(is_primary);
        let existing = target
            .entry(def.name.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if op == Op::Replace || !existing.is_array() {
            *existing = Value::Array(Vec::new());
        }
        if let Value::Array(items) = existing {
            if sets_primary {
                clear_primary(items);
            }
            for it in new_items {
                if !items.contains(&it) {
                    items.push(it);
                }
            }
        }
        return Ok(());
    }
    match (def.ty, v, target.get_mut(def.name)) {
        (AttrType::Complex, Value::Object(new), Some(Value::Object(old))) => {
            for (k, sv) in new {
                let key = def
                    .sub_attr(k)
                    .map_or_else(|| k.clone(), |s| s.name.to_string());
                old.insert(key, sv.clone());
            }
        }
        _ => {
            target.insert(def.name.to_string(), v.clone());
        }
    }
    Ok(())
}

fn is_primary(v: &Value) -> bool {
    matches!(get_ci(v, "primary"), Some(Value::Bool(true)))
        || get_ci(v, "primary")
            .and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case("true"))
}

fn clear_primary(items: &mut [Value]) {
    for it in items.iter_mut() {
        if let Value::Object(m) = it {
            let keys: Vec<String> = m
                .keys()
                .filter(|k| k.eq_ignore_ascii_case("primary"))
                .cloned()
                .collect();
            for k in keys {
                m.remove(&k);
            }
        }
    }
}

/// Terms of an `a eq "x" and b eq "y"` filter, from which a missing value can be built.
fn eq_terms(f: &Filter, out: &mut Vec<(String, Value)>) -> bool {
    match f {
        Filter::Compare(p, CompareOp::Eq, v) if p.sub.is_none() => {
            let val = match v {
                CompValue::Str(s) => Value::String(s.clone()),
                CompValue::Num(n) => Value::Number(n.value().clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Null => return false,
            };
            out.push((p.name.clone(), val));
            true
        }
        Filter::And(a, b) => eq_terms(a, out) && eq_terms(b, out),
        _ => false,
    }
}

fn apply_filtered(
    target: &mut Map<String, Value>,
    def: &'static AttrDef,
    filter: &Filter,
    sub_def: Option<&AttrDef>,
    op: Op,
    value: Option<&Value>,
) -> Result<()> {
    let items = match target.get_mut(def.name) {
        Some(Value::Array(items)) => items,
        _ => {
            target.insert(def.name.to_string(), Value::Array(Vec::new()));
            match target.get_mut(def.name) {
                Some(Value::Array(items)) => items,
                _ => return Ok(()),
            }
        }
    };
    let hits: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, it)| filter.matches_element(def, it))
        .map(|(i, _)| i)
        .collect();
    if op == Op::Remove {
        match sub_def {
            Some(sd) => {
                for &i in &hits {
                    if let Some(Value::Object(m)) = items.get_mut(i) {
                        m.remove(sd.name);
                    }
                }
            }
            None => {
                let mut i = 0usize;
                items.retain(|_| {
                    let keep = !hits.contains(&i);
                    i += 1;
                    keep
                });
            }
        }
        return Ok(());
    }
    let v = value.cloned().unwrap_or(Value::Null);
    if hits.is_empty() {
        // Entra sets `emails[type eq "work"].value` on users without a work email:
        // build the value from the filter's equality terms.
        let mut terms = Vec::new();
        if !eq_terms(filter, &mut terms) {
            return Err(ScimError::new(
                ErrorKind::NoTarget,
                format!("No '{}' value matches the filter '{filter}'", def.name),
            ));
        }
        let mut m = Map::new();
        for (k, tv) in terms {
            let name = def.sub_attr(&k).map_or(k, |s| s.name.to_string());
            m.insert(name, tv);
        }
        match (sub_def, v) {
            (Some(sd), v) => {
                m.insert(sd.name.to_string(), v);
            }
            (None, Value::Object(o)) => m.extend(o),
            (None, _) => {
                return Err(ScimError::invalid_value(format!(
                    "The value for '{}[{filter}]' must be an object of sub-attributes",
                    def.name
                )))
            }
        }
        let new = Value::Object(m);
        if is_primary(&new) {
            clear_primary(items);
        }
        items.push(new);
        return Ok(());
    }
    let sets_primary = match (sub_def, &v) {
        (Some(sd), v) => {
            sd.name == "primary"
                && (*v == Value::Bool(true)
                    || v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("true")))
        }
        (None, v) => is_primary(v),
    };
    if sets_primary {
        clear_primary(items);
    }
    for &i in &hits {
        let Some(item) = items.get_mut(i) else {
            continue;
        };
        if !item.is_object() {
            *item = Value::Object(Map::new());
        }
        let Value::Object(m) = item else { continue };
        match (sub_def, &v) {
            (Some(sd), v) => {
                m.insert(sd.name.to_string(), v.clone());
            }
            (None, Value::Object(o)) => {
                for (k, sv) in o {
                    let key = def
                        .sub_attr(k)
                        .map_or_else(|| k.clone(), |s| s.name.to_string());
                    m.insert(key, sv.clone());
                }
            }
            (None, _) => {
                return Err(ScimError::invalid_value(format!(
                    "The value for '{}[{filter}]' must be an object of sub-attributes",
                    def.name
                )))
            }
        }
    }
    Ok(())
}

/// Drops empty containers left by removals.
fn tidy(doc: &mut Map<String, Value>) {
    doc.retain(|_, v| match v {
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => {
            tidy(o);
            !o.is_empty()
        }
        Value::Null => false,
        _ => true,
    });
}

/// Member ids named by a `members[...]` filter made only of `value eq "id"` terms joined
/// by `or`; `None` when the filter needs the member list to be evaluated.
pub fn member_ids(f: &Filter) -> Option<Vec<String>> {
    match f {
        Filter::Compare(p, CompareOp::Eq, CompValue::Str(v))
            if p.name.eq_ignore_ascii_case("value") && p.sub.is_none() =>
        {
            Some(vec![v.clone()])
        }
        Filter::Or(a, b) => {
            let mut l = member_ids(a)?;
            l.extend(member_ids(b)?);
            Some(l)
        }
        _ => None,
    }
}
