//! PATCH (RFC 7644 3.5.2) table: each case applies one PatchOp body to a document the
//! way the service does (parse, apply to a copy, validate) and checks the result or the
//! exact error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scim_edge::patch;
use scim_edge::resource::canonicalize;
use scim_edge::schema::ResourceKind;
use serde_json::{json, Map, Value};

const ID: &str = "2819c223-7f76-453a-919d-413861904646";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn base_user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ann@x.io",
        "name": {"givenName": "Ann", "familyName": "Lee"},
        "active": true,
        "emails": [{"value": "ann@x.io", "type": "work", "primary": true}, {"value": "ann@home.io", "type": "home"}],
        "phoneNumbers": [{"value": "555-1", "type": "work"}]
    })
}

fn base_group() -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Ops"})
}

fn run(kind: ResourceKind, doc: &Value, ops: Value) -> Result<Value, (String, String)> {
    let body = json!({"schemas": [patch::PATCH_URN], "Operations": ops});
    let go = || -> scim_edge::error::Result<Map<String, Value>> {
        let ops = patch::parse(&body)?;
        let mut d = canonicalize(kind, doc)?;
        patch::apply(kind, &mut d, &ops, ID)?;
        canonicalize(kind, &Value::Object(d))
    };
    go().map(Value::Object).map_err(|e| {
        (
            e.to_json()["scimType"].as_str().unwrap_or("").to_string(),
            e.detail().to_string(),
        )
    })
}

/// Applies `f` to a copy of the base user and returns it canonicalized.
fn user_with(f: impl FnOnce(&mut Value)) -> Value {
    let mut u = base_user();
    f(&mut u);
    Value::Object(canonicalize(ResourceKind::User, &u).unwrap())
}

struct Ok1 {
    name: &'static str,
    ops: Value,
    want: Value,
}

#[test]
fn user_patches_that_apply() {
    let cases = vec![
        Ok1 {
            name: "okta deactivate",
            ops: json!([{"op": "replace", "value": {"active": false}}]),
            want: user_with(|u| u["active"] = json!(false)),
        },
        Ok1 {
            name: "capitalised op",
            ops: json!([{"op": "Replace", "value": {"active": false}}]),
            want: user_with(|u| u["active"] = json!(false)),
        },
        Ok1 {
            name: "upper-case op",
            ops: json!([{"op": "REPLACE", "path": "active", "value": false}]),
            want: user_with(|u| u["active"] = json!(false)),
        },
        Ok1 {
            name: "entra string boolean",
            ops: json!([{"op": "Replace", "path": "active", "value": "False"}]),
            want: user_with(|u| u["active"] = json!(false)),
        },
        Ok1 {
            name: "string boolean in value object",
            ops: json!([{"op": "replace", "value": {"active": "true"}}]),
            want: base_user_canon(),
        },
        Ok1 {
            name: "replace simple attribute",
            ops: json!([{"op": "replace", "path": "displayName", "value": "Ann L"}]),
            want: user_with(|u| u["displayName"] = json!("Ann L")),
        },
        Ok1 {
            name: "add simple attribute",
            ops: json!([{"op": "add", "path": "title", "value": "CTO"}]),
            want: user_with(|u| u["title"] = json!("CTO")),
        },
        Ok1 {
            name: "attribute names are case-insensitive",
            ops: json!([{"op": "add", "path": "NICKNAME", "value": "Annie"}]),
            want: user_with(|u| u["nickName"] = json!("Annie")),
        },
        Ok1 {
            name: "sub-attribute path",
            ops: json!([{"op": "replace", "path": "name.givenName", "value": "Anna"}]),
            want: user_with(|u| u["name"]["givenName"] = json!("Anna")),
        },
        Ok1 {
            name: "sub-attribute add creates the parent",
            ops: json!([{"op": "add", "path": "name.middleName", "value": "M"}]),
            want: user_with(|u| u["name"]["middleName"] = json!("M")),
        },
        Ok1 {
            name: "replace complex merges",
            ops: json!([{"op": "replace", "path": "name", "value": {"familyName": "Li"}}]),
            want: user_with(|u| u["name"]["familyName"] = json!("Li")),
        },
        Ok1 {
            name: "path-less replace merges complex",
            ops: json!([{"op": "replace", "value": {"name": {"givenName": "Anne"}}}]),
            want: user_with(|u| u["name"]["givenName"] = json!("Anne")),
        },
        Ok1 {
            name: "remove simple",
            ops: json!([{"op": "remove", "path": "active"}]),
            want: user_with(|u| {
                u.as_object_mut().unwrap().remove("active");
            }),
        },
        Ok1 {
            name: "remove sub-attribute",
            ops: json!([{"op": "remove", "path": "name.familyName"}]),
            want: user_with(|u| {
                u["name"].as_object_mut().unwrap().remove("familyName");
            }),
        },
        Ok1 {
            name: "remove last sub-attribute drops the parent",
            ops: json!([{"op": "remove", "path": "name.familyName"}, {"op": "remove", "path": "name.givenName"}]),
            want: user_with(|u| {
                u.as_object_mut().unwrap().remove("name");
            }),
        },
        Ok1 {
            name: "remove absent attribute is a no-op",
            ops: json!([{"op": "remove", "path": "title"}]),
            want: base_user_canon(),
        },
        Ok1 {
            name: "replace with null removes",
            ops: json!([{"op": "replace", "path": "name", "value": null}]),
            want: user_with(|u| {
                u.as_object_mut().unwrap().remove("name");
            }),
        },
        Ok1 {
            name: "add to multi-valued appends",
            ops: json!([{"op": "add", "path": "phoneNumbers", "value": [{"value": "555-2", "type": "mobile"}]}]),
            want: user_with(|u| {
                u["phoneNumbers"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"value": "555-2", "type": "mobile"}))
            }),
        },
        Ok1 {
            name: "add identical value is idempotent",
            ops: json!([{"op": "add", "path": "phoneNumbers", "value": [{"value": "555-1", "type": "work"}]}]),
            want: base_user_canon(),
        },
        Ok1 {
            name: "add single object to multi-valued",
            ops: json!([{"op": "add", "path": "phoneNumbers", "value": {"value": "555-3"}}]),
            want: user_with(|u| {
                u["phoneNumbers"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"value": "555-3"}))
            }),
        },
        Ok1 {
            name: "replace multi-valued whole",
            ops: json!([{"op": "replace", "path": "phoneNumbers", "value": [{"value": "555-9"}]}]),
            want: user_with(|u| u["phoneNumbers"] = json!([{"value": "555-9"}])),
        },
        Ok1 {
            name: "path-less replace of multi-valued replaces",
            ops: json!([{"op": "replace", "value": {"phoneNumbers": [{"value": "555-9"}]}}]),
            want: user_with(|u| u["phoneNumbers"] = json!([{"value": "555-9"}])),
        },
        Ok1 {
            name: "path-less add of multi-valued appends",
            ops: json!([{"op": "add", "value": {"phoneNumbers": [{"value": "555-9"}]}}]),
            want: user_with(|u| {
                u["phoneNumbers"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"value": "555-9"}))
            }),
        },
        Ok1 {
            name: "filter path sub-attribute replace",
            ops: json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": "ann@new-home.io"}]),
            want: user_with(|u| u["emails"][1]["value"] = json!("ann@new-home.io")),
        },
        Ok1 {
            name: "filter path replace merges object",
            ops: json!([{"op": "replace", "path": "emails[type eq \"home\"]", "value": {"display": "Home"}}]),
            want: user_with(|u| u["emails"][1]["display"] = json!("Home")),
        },
        Ok1 {
            name: "filter path remove element",
            ops: json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
            want: user_with(|u| {
                u["emails"].as_array_mut().unwrap().remove(1);
            }),
        },
        Ok1 {
            name: "filter path remove sub-attribute",
            ops: json!([{"op": "remove", "path": "emails[type eq \"home\"].type"}]),
            want: user_with(|u| {
                u["emails"][1].as_object_mut().unwrap().remove("type");
            }),
        },
        Ok1 {
            name: "filter path remove with no match is a no-op",
            ops: json!([{"op": "remove", "path": "emails[type eq \"other\"]"}]),
            want: base_user_canon(),
        },
        Ok1 {
            name: "entra creates the element a filter names",
            ops: json!([{"op": "add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "555-7"}]),
            want: user_with(|u| {
                u["phoneNumbers"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "mobile", "value": "555-7"}))
            }),
        },
        Ok1 {
            name: "entra replace creates too",
            ops: json!([{"op": "replace", "path": "addresses[type eq \"work\"].locality", "value": "Oslo"}]),
            want: user_with(|u| u["addresses"] = json!([{"type": "work", "locality": "Oslo"}])),
        },
        Ok1 {
            name: "new primary clears the old one",
            ops: json!([{"op": "add", "path": "emails", "value": [{"value": "ann@x2.io", "primary": true}]}]),
            want: user_with(|u| {
                u["emails"][0].as_object_mut().unwrap().remove("primary");
                u["emails"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"value": "ann@x2.io", "primary": true}));
            }),
        },
        Ok1 {
            name: "primary via filter path clears others",
            ops: json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]),
            want: user_with(|u| {
                u["emails"][0].as_object_mut().unwrap().remove("primary");
                u["emails"][1]["primary"] = json!(true);
            }),
        },
        Ok1 {
            name: "extension attribute by URN path",
            ops: json!([{"op": "add", "path": format!("{ENT}:department"), "value": "R&D"}]),
            want: user_with(|u| {
                u["schemas"].as_array_mut().unwrap().push(json!(ENT));
                u[ENT] = json!({"department": "R&D"});
            }),
        },
        Ok1 {
            name: "extension sub-attribute by URN path",
            ops: json!([{"op": "add", "path": format!("{ENT}:manager.value"), "value": "m-1"}]),
            want: user_with(|u| {
                u["schemas"].as_array_mut().unwrap().push(json!(ENT));
                u[ENT] = json!({"manager": {"value": "m-1"}});
            }),
        },
        Ok1 {
            name: "entra manager as a bare id",
            ops: json!([{"op": "Replace", "path": format!("{ENT}:manager"), "value": "m-2"}]),
            want: user_with(|u| {
                u["schemas"].as_array_mut().unwrap().push(json!(ENT));
                u[ENT] = json!({"manager": {"value": "m-2"}});
            }),
        },
        Ok1 {
            name: "manager as an object",
            ops: json!([{"op": "replace", "path": format!("{ENT}:manager"), "value": {"value": "m-3"}}]),
            want: user_with(|u| {
                u["schemas"].as_array_mut().unwrap().push(json!(ENT));
                u[ENT] = json!({"manager": {"value": "m-3"}});
            }),
        },
        Ok1 {
            name: "extension object in path-less value",
            ops: json!([{"op": "add", "value": {ENT: {"costCenter": "42"}}}]),
            want: user_with(|u| {
                u["schemas"].as_array_mut().unwrap().push(json!(ENT));
                u[ENT] = json!({"costCenter": "42"});
            }),
        },
        Ok1 {
            name: "entra full-path key in path-less value",
            ops: json!([{"op": "replace", "value": {format!("{ENT}:employeeNumber"): "7"}}]),
            want: user_with(|u| {
                u["schemas"].as_array_mut().unwrap().push(json!(ENT));
                u[ENT] = json!({"employeeNumber": "7"});
            }),
        },
        Ok1 {
            name: "core URN prefixed path",
            ops: json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:displayName", "value": "A"}]),
            want: user_with(|u| u["displayName"] = json!("A")),
        },
        Ok1 {
            name: "remove extension attribute drops empty extension",
            ops: json!([{"op": "add", "path": format!("{ENT}:division"), "value": "D"}, {"op": "remove", "path": format!("{ENT}:division")}]),
            want: base_user_canon(),
        },
        Ok1 {
            name: "entra remove with value on multi-valued",
            ops: json!([{"op": "remove", "path": "phoneNumbers", "value": [{"value": "555-1"}]}]),
            want: user_with(|u| {
                u.as_object_mut().unwrap().remove("phoneNumbers");
            }),
        },
        Ok1 {
            name: "several operations in order",
            ops: json!([{"op": "add", "path": "title", "value": "A"}, {"op": "replace", "path": "title", "value": "B"}, {"op": "add", "path": "userType", "value": "Employee"}]),
            want: user_with(|u| {
                u["title"] = json!("B");
                u["userType"] = json!("Employee");
            }),
        },
        Ok1 {
            name: "path with surrounding spaces",
            ops: json!([{"op": "replace", "path": " title ", "value": "T"}]),
            want: user_with(|u| u["title"] = json!("T")),
        },
        Ok1 {
            name: "empty path means path-less",
            ops: json!([{"op": "replace", "path": "", "value": {"title": "T"}}]),
            want: user_with(|u| u["title"] = json!("T")),
        },
        Ok1 {
            name: "password is accepted and not stored",
            ops: json!([{"op": "replace", "path": "password", "value": "s3cret"}]),
            want: base_user_canon(),
        },
        Ok1 {
            name: "id repeated in value is accepted",
            ops: json!([{"op": "replace", "value": {"id": ID, "title": "T"}}]),
            want: user_with(|u| u["title"] = json!("T")),
        },
        Ok1 {
            name: "value filter with or",
            ops: json!([{"op": "remove", "path": "emails[type eq \"home\" or type eq \"other\"]"}]),
            want: user_with(|u| {
                u["emails"].as_array_mut().unwrap().remove(1);
            }),
        },
    ];
    let n = cases.len();
    for c in cases {
        match run(ResourceKind::User, &base_user(), c.ops.clone()) {
            Ok(got) => assert_eq!(got, c.want, "{}", c.name),
            Err(e) => panic!("{}: {e:?}", c.name),
        }
    }
    assert!(n >= 45);
}

fn base_user_canon() -> Value {
    user_with(|_| {})
}

#[test]
fn patches_that_fail_with_exact_errors() {
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("no Operations", json!(null), "invalidValue", "'Operations' must be a non-empty array"),
        ("empty Operations", json!([]), "invalidValue", "'Operations' must be a non-empty array"),
        ("unknown op", json!([{"op": "merge", "path": "title", "value": "x"}]), "invalidSyntax", "Operation 1 has an unknown op 'merge' (expected add, remove or replace)"),
        ("missing op", json!([{"path": "title", "value": "x"}]), "invalidSyntax", "Operation 1 has no 'op'"),
        ("operation not an object", json!(["add"]), "invalidSyntax", "Operation 1 must be a JSON object"),
        ("unknown member", json!([{"op": "add", "path": "title", "value": "x", "from": "y"}]), "invalidValue", "Operation 1 has an unknown member 'from'"),
        ("remove without path", json!([{"op": "remove"}]), "noTarget", "Operation 1 (remove) needs a 'path'"),
        ("add without value", json!([{"op": "add", "path": "title"}]), "invalidValue", "Operation 1 (add) needs a 'value'"),
        ("add to a filtered path without value", json!([{"op": "add", "path": "emails[type eq \"work\"]"}]), "invalidValue", "Adding to 'emails' needs a 'value'"),
        ("path-less non-object", json!([{"op": "replace", "value": false}]), "invalidValue", "Operation 1 has no 'path', so its 'value' must be an object of attributes"),
        ("unknown attribute", json!([{"op": "add", "path": "shoeSize", "value": "9"}]), "invalidPath", "Unknown attribute 'shoeSize'"),
        ("unknown sub-attribute", json!([{"op": "add", "path": "name.nick", "value": "9"}]), "invalidPath", "Unknown attribute 'name.nick'"),
        ("unknown attribute in value", json!([{"op": "add", "value": {"shoeSize": 9}}]), "invalidPath", "Unknown attribute 'shoeSize'"),
        ("malformed path", json!([{"op": "add", "path": "emails[type eq", "value": "x"}]), "invalidPath", "Expected a value after 'eq' but found end of path at position 15"),
        ("path with junk", json!([{"op": "add", "path": "title x", "value": "x"}]), "invalidPath", "Unexpected 'x' at position 7 in the path"),
        ("path not a string", json!([{"op": "add", "path": 3, "value": "x"}]), "invalidPath", "Operation 1 has a 'path' that is not a string"),
        ("wrong type", json!([{"op": "replace", "path": "active", "value": "maybe"}]), "invalidValue", "Attribute 'active' must be a boolean"),
        ("complex attribute without a value sub-attribute as a string", json!([{"op": "replace", "path": "name", "value": "Ann"}]), "invalidValue", "Attribute 'name' must be an object"),
        ("wrong type in sub-attribute", json!([{"op": "replace", "path": "name.givenName", "value": 5}]), "invalidValue", "Attribute 'name.givenName' must be a string"),
        ("read-only id", json!([{"op": "replace", "path": "id", "value": "x"}]), "mutability", "Attribute 'id' is read-only"),
        ("different id in value", json!([{"op": "replace", "value": {"id": "other"}}]), "mutability", "Attribute 'id' is read-only"),
        ("read-only meta", json!([{"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"}]), "mutability", "Attribute 'meta.created' is read-only"),
        ("read-only groups", json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]), "mutability", "Attribute 'groups' is read-only"),
        ("required attribute removed", json!([{"op": "remove", "path": "userName"}]), "invalidValue", "Attribute 'userName' is required"),
        ("filter on a singular attribute", json!([{"op": "replace", "path": "name[givenName eq \"Ann\"]", "value": {}}]), "invalidPath", "'name' is not multi-valued and cannot take a value filter"),
        ("replace with unmatched complex filter", json!([{"op": "replace", "path": "emails[value co \"nowhere\"].type", "value": "work"}]), "noTarget", "No 'emails' value matches the filter 'value co \"nowhere\"'"),
        ("sub-attribute of every value", json!([{"op": "replace", "path": "emails.type", "value": "work"}]), "invalidPath", "'emails.type' names a sub-attribute of every value; select values with a filter, e.g. emails[type eq \"work\"].type"),
        ("two primaries in one add", json!([{"op": "add", "path": "emails", "value": [{"value": "a@b.c", "primary": true}, {"value": "d@e.f", "primary": true}]}]), "invalidValue", "Only one 'emails' value may be primary"),
        ("second op fails: nothing applies", json!([{"op": "replace", "path": "title", "value": "ok"}, {"op": "replace", "path": "nope", "value": 1}]), "invalidPath", "Unknown attribute 'nope'"),
        ("unknown extension attribute", json!([{"op": "add", "value": {ENT: {"badge": "1"}}}]), "invalidPath", "Unknown attribute 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:badge'"),
    ];
    let n = cases.len();
    for (name, ops, scim_type, detail) in cases {
        let body_ops = if ops.is_null() { Value::Null } else { ops };
        let res = if body_ops.is_null() {
            let e = patch::parse(&json!({"schemas": [patch::PATCH_URN]})).unwrap_err();
            Err((
                e.to_json()["scimType"].as_str().unwrap_or("").to_string(),
                e.detail().to_string(),
            ))
        } else {
            run(ResourceKind::User, &base_user(), body_ops)
        };
        assert_eq!(
            res,
            Err((scim_type.to_string(), detail.to_string())),
            "{name}"
        );
    }
    assert!(n >= 25);
    let e = patch::parse(&json!({"schemas": ["urn:x"], "Operations": [{"op": "add", "path": "title", "value": "t"}]})).unwrap_err();
    assert_eq!(
        e.detail(),
        "'schemas' must contain 'urn:ietf:params:scim:api:messages:2.0:PatchOp'"
    );
}

#[test]
fn group_document_patches() {
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "okta rename",
            json!([{"op": "replace", "value": {"id": ID, "displayName": "Ops 2"}}]),
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Ops 2"}),
        ),
        (
            "rename by path",
            json!([{"op": "replace", "path": "displayName", "value": "Ops 3"}]),
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Ops 3"}),
        ),
        (
            "externalId",
            json!([{"op": "add", "path": "externalId", "value": "e-1"}]),
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Ops", "externalId": "e-1"}),
        ),
    ];
    for (name, ops, want) in cases {
        assert_eq!(
            run(ResourceKind::Group, &base_group(), ops),
            Ok(want),
            "{name}"
        );
    }
    assert_eq!(
        run(
            ResourceKind::Group,
            &base_group(),
            json!([{"op": "remove", "path": "displayName"}])
        ),
        Err((
            "invalidValue".into(),
            "Attribute 'displayName' is required".into()
        ))
    );
}
