//! Schema-driven validation of client documents and projection of stored ones.

use crate::error::{Result, ScimError};
use crate::filter::{split_attr_path, AttrPath};
use crate::schema::{AttrDef, AttrType, Mutability, ResourceKind, Returned, Schema};
use crate::time::parse_nanos;
use serde_json::{Map, Value};

fn is_urn(k: &str) -> bool {
    k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

fn bad(detail: String) -> ScimError {
    ScimError::invalid_value(detail)
}

/// Validates a client document for `kind` and returns it in canonical form: attribute
/// names spelled as the schema spells them, `null`s and empty values dropped, string
/// booleans read as booleans, read-only and write-only attributes removed (they are
/// ignored on input, RFC 7643 7). Unknown attributes and schemas are errors that name them.
pub fn canonicalize(kind: ResourceKind, input: &Value) -> Result<Map<String, Value>> {
    let Value::Object(obj) = input else {
        return Err(ScimError::invalid_syntax(
            "The request body must be a JSON object",
        ));
    };
    let mut out = Map::new();
    let mut schemas = vec![Value::String(kind.core().id.to_string())];
    for (k, v) in obj {
        if k.eq_ignore_ascii_case("schemas") {
            check_schemas(v)?;
            continue;
        }
        if let Some(ext) = kind.extension(k) {
            match v {
                Value::Null => {}
                Value::Object(inner) => {
                    let m = canonical_attrs(ext, inner, ext.id)?;
                    if !m.is_empty() {
                        schemas.push(Value::String(ext.id.to_string()));
                        out.insert(ext.id.to_string(), Value::Object(m));
                    }
                }
                _ => return Err(bad(format!("Extension '{}' must be a JSON object", ext.id))),
            }
            continue;
        }
        let Some(def) = kind.core_attr(k) else {
            let what = if is_urn(k) {
                "schema extension"
            } else {
                "attribute"
            };
            return Err(bad(format!(
                "Unknown {what} '{k}' for resource type {}",
                kind.name()
            )));
        };
        if let Some(val) = canonical_value(def, v, def.name)? {
            if def.writable() && def.mutability != Mutability::WriteOnly {
                out.insert(def.name.to_string(), val);
            }
        }
    }
    for def in kind.core().attributes.iter().filter(|a| a.required) {
        if !out.contains_key(def.name) {
            return Err(bad(format!("Attribute '{}' is required", def.name)));
        }
    }
    let mut doc = Map::new();
    doc.insert("schemas".into(), Value::Array(schemas));
    doc.extend(out);
    Ok(doc)
}

/// `schemas` must be a list of URNs. URNs the resource type does not know are ignored
/// (OneLogin lists SCIM 1.x's `urn:scim:schemas:core:1.0` beside 2.0's): they name no
/// attributes here, and attributes under an unknown URN are refused where they appear.
fn check_schemas(v: &Value) -> Result<()> {
    let Value::Array(list) = v else {
        return Err(bad("'schemas' must be an array of schema URNs".into()));
    };
    if list.iter().all(Value::is_string) {
        Ok(())
    } else {
        Err(bad("'schemas' must be an array of schema URNs".into()))
    }
}

fn canonical_attrs(
    schema: &Schema,
    obj: &Map<String, Value>,
    prefix: &str,
) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for (k, v) in obj {
        // Some clients repeat `schemas` inside an extension object.
        if k.eq_ignore_ascii_case("schemas") {
            continue;
        }
        let Some(def) = schema.attr(k) else {
            return Err(bad(format!("Unknown attribute '{prefix}:{k}'")));
        };
        if let Some(val) = canonical_value(def, v, def.name)? {
            if def.writable() {
                out.insert(def.name.to_string(), val);
            }
        }
    }
    Ok(out)
}

/// Validates one attribute value; `None` when it is unassigned (null or empty).
pub fn canonical_value(def: &AttrDef, v: &Value, label: &str) -> Result<Option<Value>> {
    if v.is_null() {
        return Ok(None);
    }
    if def.multi {
        let Value::Array(items) = v else {
            return Err(bad(format!("Attribute '{label}' must be an array")));
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(x) = single_value(def, item, label)? {
                out.push(x);
            }
        }
        let primaries = out
            .iter()
            .filter(|e| e.get("primary") == Some(&Value::Bool(true)))
            .count();
        if primaries > 1 {
            return Err(bad(format!("Only one '{label}' value may be primary")));
        }
        return Ok((!out.is_empty()).then_some(Value::Array(out)));
    }
    single_value(def, v, label)
}

fn single_value(def: &AttrDef, v: &Value, label: &str) -> Result<Option<Value>> {
    let wrong = |ty: &str| bad(format!("Attribute '{label}' must be {ty}"));
    Ok(match (def.ty, v) {
        (_, Value::Null) => None,
        (AttrType::Complex, Value::Object(obj)) => {
            let mut out = Map::new();
            for (k, sv) in obj {
                let Some(sd) = def.sub_attr(k) else {
                    return Err(bad(format!("Unknown attribute '{label}.{k}'")));
                };
                let sub_label = format!("{label}.{}", sd.name);
                if let Some(x) = single_value(sd, sv, &sub_label)? {
                    if sd.writable() {
                        out.insert(sd.name.to_string(), x);
                    }
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        // Entra sends a manager as its bare id; RFC 7643 makes it `{"value": id}`.
        (AttrType::Complex, Value::String(id)) if !def.multi && def.sub_attr("value").is_some() => {
            let mut obj = Map::new();
            obj.insert("value".into(), Value::String(id.clone()));
            return single_value(def, &Value::Object(obj), label);
        }
        (AttrType::Complex, _) => return Err(wrong("an object")),
        (AttrType::Boolean, Value::Bool(b)) => Some(Value::Bool(*b)),
        (AttrType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => {
            Some(Value::Bool(true))
        }
        (AttrType::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => {
            Some(Value::Bool(false))
        }
        (AttrType::Boolean, _) => return Err(wrong("a boolean")),
        (AttrType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Some(v.clone()),
        (AttrType::Integer, _) => return Err(wrong("an integer")),
        (AttrType::Decimal, Value::Number(_)) => Some(v.clone()),
        (AttrType::Decimal, _) => return Err(wrong("a number")),
        (AttrType::DateTime, Value::String(s)) => match parse_nanos(s) {
            Ok(_) => Some(v.clone()),
            Err(why) => {
                return Err(bad(format!(
                    "Attribute '{label}' is not a date-time: '{s}': {why}"
                )))
            }
        },
        (AttrType::DateTime, _) => return Err(wrong("an RFC 3339 date-time string")),
        (_, Value::String(s)) if s.is_empty() => None,
        (_, Value::String(_)) => Some(v.clone()),
        (_, _) => return Err(wrong("a string")),
    })
}

/// The `attributes` / `excludedAttributes` request parameters.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    /// Only these (plus those always returned), when set.
    pub attributes: Option<Vec<String>>,
    /// Never these (unless always returned).
    pub excluded: Vec<String>,
}

impl Projection {
    /// Parses the comma-separated parameter values.
    pub fn from_params(attributes: Option<&str>, excluded: Option<&str>) -> Self {
        let split = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        };
        Projection {
            attributes: attributes.map(split).filter(|v| !v.is_empty()),
            excluded: excluded.map(split).unwrap_or_default(),
        }
    }

    /// Whether the projection could include `name` (top level, core schema).
    pub fn wants(&self, kind: ResourceKind, name: &str) -> bool {
        let hit = |list: &[String]| {
            list.iter().any(|p| {
                parse_proj(kind, p).is_some_and(|(urn, ap)| {
                    urn.is_none() && ap.name.eq_ignore_ascii_case(name) && ap.sub.is_none()
                })
            })
        };
        match &self.attributes {
            Some(list) => list.iter().any(|p| {
                parse_proj(kind, p)
                    .is_some_and(|(urn, ap)| urn.is_none() && ap.name.eq_ignore_ascii_case(name))
            }),
            None => !hit(&self.excluded),
        }
    }

    /// Applies the projection and `returned` rules to a stored document.
    pub fn apply(&self, kind: ResourceKind, doc: Map<String, Value>) -> Map<String, Value> {
        let mut out = Map::new();
        for (k, v) in doc {
            if k == "schemas" {
                out.insert(k, v);
                continue;
            }
            if let Some(ext) = kind.extension(&k) {
                let Value::Object(inner) = v else { continue };
                let m = self.apply_attrs(kind, Some(ext), inner);
                if !m.is_empty() {
                    out.insert(k, Value::Object(m));
                }
                continue;
            }
            let Some(def) = kind.core_attr(&k) else {
                continue;
            };
            if let Some(x) = self.project_attr(kind, None, def, v) {
                out.insert(k, x);
            }
        }
        out
    }

    fn apply_attrs(
        &self,
        kind: ResourceKind,
        ext: Option<&Schema>,
        inner: Map<String, Value>,
    ) -> Map<String, Value> {
        let mut m = Map::new();
        for (k, v) in inner {
            let Some(def) = ext.and_then(|e| e.attr(&k)) else {
                continue;
            };
            if let Some(x) = self.project_attr(kind, ext, def, v) {
                m.insert(k, x);
            }
        }
        m
    }

    fn project_attr(
        &self,
        kind: ResourceKind,
        ext: Option<&Schema>,
        def: &AttrDef,
        v: Value,
    ) -> Option<Value> {
        match def.returned {
            Returned::Never => return None,
            Returned::Always => return Some(v),
            _ => {}
        }
        let matches = |p: &str| -> Option<Option<String>> {
            let (urn, ap) = parse_proj(kind, p)?;
            let same_schema = match (ext, urn) {
                (None, None) => true,
                (None, Some(u)) => u.eq_ignore_ascii_case(kind.core().id),
                (Some(e), Some(u)) => u.eq_ignore_ascii_case(e.id),
                (Some(_), None) => false,
            };
            if ap.name == "*" {
                return same_schema.then_some(None);
            }
            (same_schema && ap.name.eq_ignore_ascii_case(def.name)).then_some(ap.sub)
        };
        if let Some(list) = &self.attributes {
            let subs: Vec<Option<String>> = list.iter().filter_map(|p| matches(p)).collect();
            if subs.is_empty() {
                return None;
            }
            if subs.iter().any(Option::is_none) || def.ty != AttrType::Complex {
                return Some(v);
            }
            let keep: Vec<String> = subs.into_iter().flatten().collect();
            return Some(keep_subs(&v, &keep));
        }
        let mut excluded_subs = Vec::new();
        for p in &self.excluded {
            match matches(p) {
                Some(None) => return None,
                Some(Some(s)) => excluded_subs.push(s),
                None => {}
            }
        }
        if excluded_subs.is_empty() {
            return Some(v);
        }
        Some(drop_subs(&v, &excluded_subs))
    }
}

/// Parses one projection entry. A bare extension URN selects the whole extension (`*`).
fn parse_proj(kind: ResourceKind, p: &str) -> Option<(Option<String>, AttrPath)> {
    if let Some(ext) = kind.extension(p) {
        return Some((
            Some(ext.id.to_string()),
            AttrPath {
                urn: Some(ext.id.to_string()),
                name: "*".into(),
                sub: None,
            },
        ));
    }
    let ap = split_attr_path(p)?;
    Some((ap.urn.clone(), ap))
}

type Object = Map<String, Value>;

fn map_elements(v: &Value, f: &dyn Fn(&Object) -> Object) -> Value {
    match v {
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|e| match e {
                    Value::Object(o) => Value::Object(f(o)),
                    other => other.clone(),
                })
                .collect(),
        ),
        Value::Object(o) => Value::Object(f(o)),
        other => other.clone(),
    }
}

fn keep_subs(v: &Value, keep: &[String]) -> Value {
    map_elements(v, &|o| {
        o.iter()
            .filter(|(k, _)| keep.iter().any(|s| s.eq_ignore_ascii_case(k)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    })
}

fn drop_subs(v: &Value, drop: &[String]) -> Value {
    map_elements(v, &|o| {
        o.iter()
            .filter(|(k, _)| !drop.iter().any(|s| s.eq_ignore_ascii_case(k)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::schema::GROUP_URN;
    use serde_json::json;

    #[test]
    fn canonical_names_and_dropped_read_only() {
        let doc = canonicalize(
            ResourceKind::User,
            &json!({"USERNAME": "a@b.c", "id": "x", "meta": {}, "groups": [], "password": "p",
                    "name": {"GIVENNAME": "A", "familyName": null},
                    "emails": [{"Value": "a@b.c", "primary": "True"}],
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}}),
        )
        .unwrap();
        assert_eq!(
            Value::Object(doc),
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                               "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                   "userName": "a@b.c", "name": {"givenName": "A"},
                   "emails": [{"value": "a@b.c", "primary": true}],
                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}})
        );
    }

    #[test]
    fn errors_name_the_attribute() {
        let e = canonicalize(
            ResourceKind::User,
            &json!({"userName": "u", "nickname2": 1}),
        )
        .unwrap_err();
        assert_eq!(
            e.detail(),
            "Unknown attribute 'nickname2' for resource type User"
        );
        let e =
            canonicalize(ResourceKind::User, &json!({"userName": "u", "active": 3})).unwrap_err();
        assert_eq!(e.detail(), "Attribute 'active' must be a boolean");
        let e = canonicalize(
            ResourceKind::User,
            &json!({"userName": "u", "emails": [{"value": 1}]}),
        )
        .unwrap_err();
        assert_eq!(e.detail(), "Attribute 'emails.value' must be a string");
        let e = canonicalize(ResourceKind::User, &json!({"name": {}})).unwrap_err();
        assert_eq!(e.detail(), "Attribute 'userName' is required");
        let e = canonicalize(
            ResourceKind::Group,
            &json!({"displayName": "g", "schemas": ["urn:x"], "urn:x": {"a": 1}}),
        )
        .unwrap_err();
        assert_eq!(
            e.detail(),
            "Unknown schema extension 'urn:x' for resource type Group"
        );
        let doc = canonicalize(
            ResourceKind::Group,
            &json!({"displayName": "g", "schemas": ["urn:scim:schemas:core:1.0", GROUP_URN]}),
        )
        .unwrap();
        assert_eq!(doc["schemas"], json!([GROUP_URN]));
        let e = canonicalize(ResourceKind::User, &json!({"userName": "u", "emails": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]})).unwrap_err();
        assert_eq!(e.detail(), "Only one 'emails' value may be primary");
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
    }

    #[test]
    fn projection_rules() {
        let doc = canonicalize(
            ResourceKind::User,
            &json!({"userName": "u", "displayName": "D", "name": {"givenName": "G", "familyName": "F"}}),
        )
        .unwrap();
        let mut doc = doc;
        doc.insert("id".into(), json!("i"));
        let p = Projection::from_params(Some("name.givenName"), None);
        assert_eq!(
            Value::Object(p.apply(ResourceKind::User, doc.clone())),
            json!({"schemas": [crate::schema::USER_URN], "id": "i", "name": {"givenName": "G"}})
        );
        let p = Projection::from_params(None, Some("name,id"));
        let out = p.apply(ResourceKind::User, doc);
        assert!(
            out.contains_key("id") && !out.contains_key("name") && out.contains_key("displayName")
        );
    }
}
