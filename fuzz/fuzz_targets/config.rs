//! The configuration: `Config::from_json` (native hosts), and `parse_organizations` with
//! `parse_limits` (the Spin adapter's two variables). Never a panic; every error starts
//! with the place at fault (`configuration:`, `organizations.`, `limits`, or the variable's
//! label); an error never quotes a string value other than the three whose value it names
//! by design (`kind`, `policy`, `on_delete`), since any other may be a client secret put in
//! the wrong field; an accepted configuration has a key per organization and
//! `default_count <= max_count`; and both ways of loading one document agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_edge::config::{parse_limits, parse_organizations, Config};
use serde_json::{Map, Value};

const LABEL: &str = "variable 'organizations'";
/// Put in place of one string value; an error that shows it has quoted that value.
const MARKER: &str = "Mk7qZ-not-in-any-message";
/// Values an error names on purpose: an unknown enumerated word.
const NAMED: [&str; 3] = ["kind", "policy", "on_delete"];

/// Replaces the `n`th string value (depth first, object keys excluded) with [`MARKER`];
/// returns whether it was one an error may name.
fn mark(v: &mut Value, parent: Option<&str>, n: &mut usize) -> Option<bool> {
    match v {
        Value::String(s) => {
            if *n == 0 {
                *s = MARKER.to_string();
                return Some(parent.is_some_and(|p| NAMED.contains(&p)));
            }
            *n -= 1;
            None
        }
        Value::Array(a) => a.iter_mut().find_map(|x| mark(x, parent, n)),
        Value::Object(o) => o.iter_mut().find_map(|(k, x)| mark(x, Some(k), n)),
        _ => None,
    }
}

fn check_accepted(c: &Config) {
    assert!(c.orgs.values().all(|o| !o.keys.is_empty()));
    assert!(c.limits.default_count <= c.limits.max_count);
}

fn check_named(e: &str, starts: &[&str]) {
    assert!(starts.iter().any(|s| e.starts_with(s)), "unnamed: {e}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let top = ["configuration: ", "organizations.", "limits."];
    match Config::from_json(text) {
        Ok(c) => check_accepted(&c),
        Err(e) => check_named(&e, &top),
    }
    match parse_organizations(text, LABEL) {
        Ok(orgs) => assert!(orgs.values().all(|o| !o.keys.is_empty())),
        Err(e) => check_named(&e, &[LABEL]),
    }
    if let Err(e) = parse_limits(text) {
        check_named(&e, &["limits"]);
    }
    let Ok(mut doc) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if text.contains(MARKER) {
        return;
    }
    // One string value, picked by the first byte, becomes the marker.
    let mut marked = doc.clone();
    if let Some(named) = mark(&mut marked, None, &mut usize::from(pick)) {
        let t = marked.to_string();
        let errors = [
            Config::from_json(&t).err(),
            parse_organizations(&t, LABEL).err(),
            marked
                .get("organizations")
                .and_then(|o| parse_organizations(&o.to_string(), LABEL).err()),
        ];
        for e in errors.into_iter().flatten() {
            assert!(named || !e.contains(MARKER), "quotes a value: {e}");
        }
    }
    // The Spin adapter's path (two variables) accepts what `from_json` accepts, alike.
    let Value::Object(ref mut m) = doc else {
        return;
    };
    if m.keys().any(|k| k != "organizations" && k != "limits") {
        return;
    }
    let orgs = m
        .remove("organizations")
        .unwrap_or(Value::Object(Map::new()));
    let whole = Config::from_json(&doc_with(&orgs, m.get("limits")));
    let split = parse_organizations(&orgs.to_string(), LABEL).and_then(|o| {
        let limits = match m.get("limits") {
            Some(l) => parse_limits(&l.to_string())?,
            None => Default::default(),
        };
        Ok((o, limits))
    });
    match (&whole, &split) {
        (Ok(c), Ok((o, l))) => {
            assert_eq!(&c.orgs, o);
            assert_eq!(format!("{:?}", c.limits), format!("{l:?}"));
        }
        (Err(_), Err(_)) => {}
        _ => panic!(
            "the two loaders disagree: {:?} vs {:?}",
            whole.err(),
            split.err()
        ),
    }
});

fn doc_with(orgs: &Value, limits: Option<&Value>) -> String {
    let mut m = Map::new();
    m.insert("organizations".into(), orgs.clone());
    if let Some(l) = limits {
        m.insert("limits".into(), l.clone());
    }
    Value::Object(m).to_string()
}
