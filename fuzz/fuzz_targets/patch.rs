//! PATCH bodies: a body refused by the parser gets a 400 (invalidSyntax, invalidValue,
//! invalidPath or noTarget); the parsed operations applied to a User and to a Group never
//! panic and either fail with a 400 or leave a document that canonicalization refuses
//! with a 400 or accepts as a fixed point (what is stored re-validates to itself).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_edge::error::{ErrorKind, ScimError};
use scim_edge::patch::{self, PATCH_URN};
use scim_edge::resource::canonicalize;
use scim_edge::schema::ResourceKind;
use serde_json::{json, Map, Value};
use std::sync::LazyLock;

static BASES: LazyLock<[(ResourceKind, Map<String, Value>); 2]> = LazyLock::new(|| {
    let user = json!({"userName": "ann@x.io", "name": {"givenName": "Ann"},
        "emails": [{"value": "ann@x.io", "type": "work", "primary": true}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
            {"department": "Ops", "manager": {"value": "m1"}}});
    let group = json!({"displayName": "Ops", "externalId": "g1"});
    [(ResourceKind::User, user), (ResourceKind::Group, group)].map(|(kind, doc)| {
        let canonical = canonicalize(kind, &doc);
        (
            kind,
            canonical.unwrap_or_else(|e| panic!("base {kind:?}: {}", e.detail())),
        )
    })
});

/// The input when it is JSON; otherwise one operation per line, `op<TAB>path<TAB>value`
/// (the value read as JSON, or else taken as a string), because the fuzzer seldom
/// writes a whole PatchOp document by chance.
fn body(text: &str) -> Value {
    if let Ok(v) = serde_json::from_str(text) {
        return v;
    }
    let ops: Vec<Value> = text
        .lines()
        .map(|line| {
            let mut fields = line.splitn(3, '\t');
            let mut op = Map::new();
            op.insert("op".into(), fields.next().unwrap_or_default().into());
            if let Some(path) = fields.next().filter(|p| !p.is_empty()) {
                op.insert("path".into(), path.into());
            }
            if let Some(v) = fields.next() {
                let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.into()));
                op.insert("value".into(), value);
            }
            Value::Object(op)
        })
        .collect();
    json!({"schemas": [PATCH_URN], "Operations": ops})
}

fn assert_client_error(e: &ScimError, what: &str) {
    assert_eq!(e.status(), 400, "{what}: {:?} {}", e.kind(), e.detail());
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ops = match patch::parse(&body(text)) {
        Ok(ops) => ops,
        Err(e) => {
            let kinds = [
                ErrorKind::InvalidSyntax,
                ErrorKind::InvalidValue,
                ErrorKind::InvalidPath,
                ErrorKind::NoTarget,
            ];
            assert!(
                kinds.contains(&e.kind()),
                "parse: {:?} {}",
                e.kind(),
                e.detail()
            );
            return;
        }
    };
    for (kind, base) in BASES.iter() {
        let (kind, mut doc) = (*kind, base.clone());
        if let Err(e) = patch::apply(kind, &mut doc, &ops, "id") {
            assert_client_error(&e, "apply");
            continue;
        }
        match canonicalize(kind, &Value::Object(doc)) {
            Ok(c) => {
                let again = canonicalize(kind, &Value::Object(c.clone()));
                assert_eq!(
                    again.as_ref(),
                    Ok(&c),
                    "canonical form is not a fixed point"
                );
            }
            Err(e) => assert_client_error(&e, "canonicalize"),
        }
    }
});
