//! Properties: filters survive print -> parse; PATCH add then remove restores the resource.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use scim_edge::filter::{AttrPath, CompValue, CompareOp, Filter};
use scim_edge::patch;
use scim_edge::resource::canonicalize;
use scim_edge::schema::ResourceKind;
use serde_json::{json, Value};

fn attr_path() -> impl Strategy<Value = AttrPath> {
    prop_oneof![
        Just(("userName", None, None)),
        Just(("name", Some("givenName"), None)),
        Just(("emails", Some("value"), None)),
        Just((
            "title",
            None,
            Some("urn:ietf:params:scim:schemas:core:2.0:User")
        )),
        Just((
            "department",
            None,
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        )),
        Just(("meta", Some("lastModified"), None)),
    ]
    .prop_map(|(n, s, u)| AttrPath {
        urn: u.map(str::to_string),
        name: n.to_string(),
        sub: s.map(str::to_string),
    })
}

fn leaf() -> impl Strategy<Value = Filter> {
    let op = prop_oneof![
        Just(CompareOp::Eq),
        Just(CompareOp::Ne),
        Just(CompareOp::Co),
        Just(CompareOp::Sw),
        Just(CompareOp::Ew),
        Just(CompareOp::Gt),
        Just(CompareOp::Ge),
        Just(CompareOp::Lt),
        Just(CompareOp::Le)
    ];
    let value = prop_oneof![
        "[ -~]{0,12}".prop_map(CompValue::Str),
        "\\PC{0,6}".prop_map(CompValue::Str),
        any::<i64>().prop_map(|n| CompValue::Num(n.into())),
        any::<bool>().prop_map(CompValue::Bool),
        Just(CompValue::Null),
    ];
    prop_oneof![
        (attr_path(), op, value).prop_map(|(p, o, v)| Filter::Compare(p, o, v)),
        attr_path().prop_map(Filter::Present),
        ("[a-z]{1,8}", "[ -~]{0,8}").prop_map(|(t, v)| Filter::ValuePath(
            AttrPath {
                urn: None,
                name: "emails".into(),
                sub: None
            },
            Box::new(Filter::Compare(
                AttrPath {
                    urn: None,
                    name: "type".into(),
                    sub: None
                },
                CompareOp::Eq,
                CompValue::Str(format!("{t}{v}"))
            ))
        )),
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    leaf().prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|a| Filter::Not(Box::new(a))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn print_then_parse_is_identity(f in filter()) {
        let printed = f.to_string();
        let parsed = Filter::parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {}", e.detail())))?;
        prop_assert_eq!(&parsed, &f, "{}", printed);
        prop_assert_eq!(parsed.to_string(), printed);
    }

    #[test]
    fn parser_never_panics(s in "\\PC{0,64}") {
        let _ = Filter::parse(&s).map(|f| f.check(ResourceKind::User));
        let _ = scim_edge::filter::parse_patch_path(&s);
    }

    #[test]
    fn add_then_remove_restores(
        which in 0usize..6,
        text in "[a-zA-Z0-9 .@-]{1,20}",
    ) {
        let base = json!({
            "userName": "ann@x.io",
            "name": {"givenName": "Ann"},
            "emails": [{"value": "ann@x.io", "type": "work", "primary": true}],
        });
        let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let (add, remove) = match which {
            0 => (json!({"op": "add", "path": "title", "value": text}), json!({"op": "remove", "path": "title"})),
            1 => (json!({"op": "add", "path": "name.middleName", "value": text}), json!({"op": "remove", "path": "name.middleName"})),
            2 => (json!({"op": "add", "value": {"nickName": text}}), json!({"op": "remove", "path": "nickName"})),
            3 => (json!({"op": "add", "path": format!("{ent}:department"), "value": text}), json!({"op": "remove", "path": format!("{ent}:department")})),
            4 => (json!({"op": "add", "path": "phoneNumbers", "value": [{"value": text, "type": "work"}]}),
                  json!({"op": "remove", "path": format!("phoneNumbers[value eq {}]", Value::String(text.clone()))})),
            _ => (json!({"op": "add", "path": "emails", "value": [{"value": format!("{text}@alt.io"), "type": "home"}]}),
                  json!({"op": "remove", "path": format!("emails[value eq {}]", Value::String(format!("{text}@alt.io")))})),
        };
        let original = canonicalize(ResourceKind::User, &base).unwrap();
        let mut doc = original.clone();
        for op in [add, remove] {
            let ops = patch::parse(&json!({"schemas": [patch::PATCH_URN], "Operations": [op]})).unwrap();
            patch::apply(ResourceKind::User, &mut doc, &ops, "id").unwrap();
            doc = canonicalize(ResourceKind::User, &Value::Object(doc)).unwrap();
        }
        prop_assert_eq!(doc, original);
    }
}
