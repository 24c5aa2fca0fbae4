//! Filter and PATCH-path parsing: a filter that parses prints to text that, within the
//! parser's length limit, parses to the same filter and prints the same way again (the
//! printed form spaces and quotes what the input may not, so it can outgrow the limit);
//! every refusal (by the parser or the schema check) is `invalidFilter`, a PATCH path's is
//! `invalidPath`; evaluation never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_edge::error::{ErrorKind, ScimError};
use scim_edge::filter::{parse_patch_path, Filter, MAX_LEN};
use scim_edge::schema::ResourceKind;
use serde_json::{json, Value};
use std::sync::LazyLock;

static USER: LazyLock<Value> = LazyLock::new(|| {
    json!({"userName": "Ann@x.io", "name": {"givenName": "Ann", "familyName": "Ärger"},
        "active": true, "emails": [{"value": "ann@x.io", "type": "work", "primary": true}],
        "meta": {"lastModified": "2024-05-01T10:00:00Z"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops"}})
});

fn assert_kind(e: &ScimError, kind: ErrorKind, src: &str) {
    assert_eq!(e.kind(), kind, "{src:?}: {}", e.detail());
}

fn round_trip(f: &Filter) {
    let printed = f.to_string();
    if printed.len() > MAX_LEN {
        return;
    }
    match Filter::parse(&printed) {
        Ok(again) => {
            assert_eq!(&again, f, "{printed}");
            assert_eq!(again.to_string(), printed);
        }
        Err(e) => panic!("printed filter does not parse: {printed}: {}", e.detail()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match Filter::parse(s) {
        Ok(f) => {
            for kind in [ResourceKind::User, ResourceKind::Group] {
                if let Err(e) = f.check(kind) {
                    assert_kind(&e, ErrorKind::InvalidFilter, s);
                }
            }
            f.matches(ResourceKind::User, &USER);
            round_trip(&f);
        }
        Err(e) => assert_kind(&e, ErrorKind::InvalidFilter, s),
    }
    match parse_patch_path(s) {
        Ok(p) => {
            if let Some(f) = &p.filter {
                round_trip(f);
            }
        }
        Err(e) => assert_kind(&e, ErrorKind::InvalidPath, s),
    }
});
