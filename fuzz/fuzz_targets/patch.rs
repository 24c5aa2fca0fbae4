//! PATCH parsing and application to a User: never panics, and a successful result is a
//! valid User document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_edge::patch;
use scim_edge::resource::canonicalize;
use scim_edge::schema::ResourceKind;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    let Ok(ops) = patch::parse(&body) else { return };
    let base = json!({"userName": "ann@x.io", "name": {"givenName": "Ann"},
        "emails": [{"value": "ann@x.io", "type": "work", "primary": true}]});
    let Ok(mut doc) = canonicalize(ResourceKind::User, &base) else { return };
    if patch::apply(ResourceKind::User, &mut doc, &ops, "id").is_ok() {
        let _ = canonicalize(ResourceKind::User, &Value::Object(doc));
    }
});
