//! Full Unicode case folding for `caseExact: false` values: the fold itself (checked
//! against Python's `str.casefold` for every code point), and every place the core
//! compares such a value: uniqueness, derived ids, filters, sorting, group names and
//! the Okta identity rule the Envoy gate applies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::case_pairs::CASE_PAIRS;
use common::{H, OFF, STRICT};
use scim_edge::caseless::{fold, same, UserName};
use scim_edge::okta::{check_unchanged, normalize, Policy};
use serde_json::{json, Value};
use std::process::Command;

#[test]
fn folds_the_hard_cases() {
    for (input, want) in [
        ("Zoë", "zoë"),
        ("straße", "strasse"),
        ("STRAẞE", "strasse"),
        ("ΟΔΟΣ", "οδοσ"),
        ("οδος", "οδοσ"),
        ("İ", "i\u{307}"),
        ("ı", "ı"),
        ("I", "i"),
        ("\u{212A}", "k"),
        ("ŉ", "ʼn"),
        ("ﬃ", "ffi"),
        ("ꭰ", "Ꭰ"),
        ("Ꭰ", "Ꭰ"),
        ("ǅ", "ǆ"),
        ("é", "é"),
    ] {
        assert_eq!(fold(input), want, "{input}");
    }
    for (a, b, want) in CASE_PAIRS {
        assert_eq!(same(a, b), *want, "{a} / {b}");
        assert_eq!(UserName::new(a) == UserName::new(b), *want, "{a} / {b}");
        assert_eq!(UserName::new(a).key() == UserName::new(b).key(), *want);
    }
}

/// Every code point Python's Unicode database assigns folds as `str.casefold` does.
#[test]
fn fold_equals_python_casefold_for_every_assigned_code_point() {
    let script = r#"
import sys, unicodedata
for cp in range(0x110000):
    c = chr(cp)
    if 0xD800 <= cp <= 0xDFFF or unicodedata.category(c) == "Cn":
        continue
    f = c.casefold()
    if f != c:
        sys.stdout.write("%x %s\n" % (cp, " ".join("%x" % ord(x) for x in f)))
print("unicode", unicodedata.unidata_version)
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .expect("python3 is needed to check the case fold (scripts/test needs it too)");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut checked = 0;
    for line in text.lines().filter(|l| !l.starts_with("unicode")) {
        let mut parts = line.split(' ').map(|h| u32::from_str_radix(h, 16).unwrap());
        let c = char::from_u32(parts.next().unwrap()).unwrap();
        let want: String = parts.map(|p| char::from_u32(p).unwrap()).collect();
        assert_eq!(fold(&c.to_string()), want, "U+{:04X}", c as u32);
        checked += 1;
    }
    assert!(checked > 1400, "only {checked} folding code points");
    println!(
        "{checked} folding code points agree with Python's {}",
        text.lines().last().unwrap_or("")
    );
}

fn create(h: &H, org: &str, name: &str) -> (u16, Value) {
    h.call(
        "POST",
        &format!("/v2/{org}/Users"),
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": name,
            "emails": [{"primary": true, "value": name, "type": "work"}],
        })),
    )
}

fn filter_ids(h: &H, org: &str, resource: &str, filter: &str) -> Vec<String> {
    let (s, b) = h.call(
        "GET",
        &format!(
            "/v2/{org}/{resource}?filter={}",
            filter
                .replace('%', "%25")
                .replace(' ', "%20")
                .replace('"', "%22")
        ),
        None,
    );
    assert_eq!(s, 200, "{filter}: {b}");
    b["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn user_names_are_unique_under_folding_and_found_by_any_case() {
    for (a, b, same_value) in CASE_PAIRS {
        let h = H::new();
        let (s, first) = create(&h, STRICT, a);
        assert_eq!(s, 201, "{a}: {first}");
        let id = first["id"].as_str().unwrap().to_string();
        let (s, second) = create(&h, STRICT, b);
        if *same_value {
            assert_eq!(
                (s, second["scimType"].as_str()),
                (409, Some("uniqueness")),
                "{a} / {b}"
            );
            assert_eq!(
                filter_ids(&h, STRICT, "Users", &format!("userName eq \"{b}\"")),
                [id.as_str()]
            );
            assert_eq!(
                filter_ids(&h, STRICT, "Users", &format!("emails.value eq \"{b}\"")),
                [id.as_str()]
            );
        } else {
            assert_eq!(s, 201, "{a} / {b}: {second}");
            assert_eq!(
                filter_ids(&h, STRICT, "Users", &format!("userName eq \"{b}\"")).len(),
                1
            );
        }
        // Off policy: no derived-id shortcut for renames, the index alone decides.
        let (s, _) = create(&h, OFF, a);
        assert_eq!(s, 201);
        let (s, _) = create(&h, OFF, b);
        assert_eq!(s == 409, *same_value, "off: {a} / {b}");
    }
}

#[test]
fn filter_operators_fold_both_sides() {
    let h = H::new();
    let id = h.user(STRICT, "Straße.Zoë@example.de");
    for f in [
        "userName eq \"STRASSE.ZOË@EXAMPLE.DE\"",
        "userName sw \"STRASS\"",
        "userName co \"SSE.ZOË\"",
        "userName ew \"ZOË@example.DE\"",
        "userName ne \"other@example.de\"",
        "emails[value sw \"strasse\"]",
    ] {
        assert_eq!(filter_ids(&h, STRICT, "Users", f), [id.as_str()], "{f}");
    }
    for f in [
        "userName ne \"STRASSE.zoë@example.de\"",
        "userName sw \"strase\"",
        "userName co \"zoe\"",
    ] {
        assert!(filter_ids(&h, STRICT, "Users", f).is_empty(), "{f}");
    }
}

#[test]
fn sorting_orders_by_the_fold() {
    let h = H::new();
    // Folded: "strasse@…" < "stre@…" < "ztest@…"; by raw code points "STRE" < "ZTEST" < "straße".
    for n in ["straße@example.de", "STRE@example.de", "ZTEST@example.de"] {
        h.user(STRICT, n);
    }
    let (s, b) = h.call("GET", &format!("/v2/{STRICT}/Users?sortBy=userName"), None);
    assert_eq!(s, 200);
    let names: Vec<&str> = b["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["straße@example.de", "STRE@example.de", "ZTEST@example.de"]
    );
}

#[test]
fn group_display_names_are_unique_under_folding() {
    let h = H::new();
    let id = h.group(STRICT, "Straße Team");
    let (s, b) = h.call(
        "POST",
        &format!("/v2/{STRICT}/Groups"),
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "STRASSE TEAM"})),
    );
    assert_eq!(
        (s, b["scimType"].as_str()),
        (409, Some("uniqueness")),
        "{b}"
    );
    assert_eq!(
        filter_ids(&h, STRICT, "Groups", "displayName eq \"strasse team\""),
        [id]
    );
    let (s, _) = h.call(
        "POST",
        &format!("/v2/{STRICT}/Groups"),
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Strase Team"})),
    );
    assert_eq!(s, 201);
}

/// The identity rule the service and the Envoy gate share: a change that folding calls
/// the same value is a case change, which is allowed.
#[test]
fn identity_changes_are_judged_by_the_fold() {
    let doc = |n: &str| {
        json!({"userName": n, "emails": [{"primary": true, "value": n}]})
            .as_object()
            .unwrap()
            .clone()
    };
    for (a, b, same_value) in CASE_PAIRS {
        let r = check_unchanged(&doc(a), &doc(b), Policy::Strict);
        assert_eq!(r.is_ok(), *same_value, "{a} -> {b}: {r:?}");
    }
}

/// `userName` must equal the primary email under folding (the rule the Envoy gate
/// applies to every POST and PUT of a user).
#[test]
fn user_name_equals_the_primary_email_under_folding() {
    for (a, b, same_value) in CASE_PAIRS {
        let mut doc = json!({"userName": a, "emails": [{"primary": true, "value": b}]})
            .as_object()
            .unwrap()
            .clone();
        let r = normalize(&mut doc, Policy::Strict);
        assert_eq!(r.is_ok(), *same_value, "{a} / {b}: {r:?}");
    }
}
