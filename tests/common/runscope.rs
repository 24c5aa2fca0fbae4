//! Replays a Runscope/BlazeMeter export (Okta's SCIM 2.0 spec test) through any
//! transport: variables, requests, assertions and extractions as the export defines them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::collections::HashMap;

/// One request as the export describes it, with variables substituted.
pub struct Call {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

/// What came back.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The outcome of one step.
#[derive(Debug)]
pub struct StepResult {
    pub note: String,
    pub required: bool,
    pub failures: Vec<String>,
}

/// The variable that turns missing `../shared` data into a failure (CI sets it).
pub const REQUIRE_SHARED: &str = "SCIM_EDGE_REQUIRE_SHARED";

/// The one way a test reaches data kept outside the repository, in `../shared` beside
/// it (a clone of the repository alone has none): the file `override_var` names, else
/// `rel` (such as `../shared/okta/okta-spec-test.json`) from the repository or one of its
/// parents. When the file is missing, the test is skipped and says so on stderr, or,
/// with `SCIM_EDGE_REQUIRE_SHARED=1` (CI), fails.
pub fn shared_data(rel: &str, override_var: &str, test: &str) -> Option<std::path::PathBuf> {
    let p: std::path::PathBuf = match std::env::var_os(override_var) {
        Some(p) => p.into(),
        None => {
            let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            here.ancestors()
                .map(|p| p.join(rel))
                .find(|p| p.exists())
                .unwrap_or_else(|| here.join(rel))
        }
    };
    if p.is_file() {
        return Some(p);
    }
    let why = format!(
        "{test}: {} is missing (it lives outside the repository, in {rel}; or set {override_var})",
        p.display()
    );
    let required = std::env::var(REQUIRE_SHARED).is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(
        !required,
        "{why}; {REQUIRE_SHARED} is set, so it may not be skipped"
    );
    // Straight to stderr, past the test harness's capture, so the skip shows in
    // `cargo test`'s output even though the test passes.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {why}");
    None
}

/// Okta's spec test (a Runscope export), or `None` when it is absent and the test is
/// skipped (see [`shared_data`]).
pub fn load_spec(test: &str) -> Option<Value> {
    let p = shared_data(
        "../shared/okta/okta-spec-test.json",
        "SCIM_EDGE_OKTA_SPEC",
        test,
    )?;
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    Some(serde_json::from_str(&text).unwrap())
}

/// Variables the export's initial script defines, with fresh random-looking values.
pub fn initial_variables(base_url: &str, auth: &str, seed: u64) -> HashMap<String, String> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let given = format!("Runscope{:03}", next(1000));
    let letters: String = (0..8)
        .map(|_| char::from(b'a' + u8::try_from(next(26)).unwrap()))
        .collect();
    let family = format!(
        "{}{}{:03}",
        char::from(b'A' + u8::try_from(next(26)).unwrap()),
        letters,
        next(1000)
    );
    let email = format!("{given}{family}@atko.com");
    let mut v = HashMap::new();
    v.insert("SCIMBaseURL".into(), base_url.to_string());
    v.insert("auth".into(), auth.to_string());
    v.insert("randomGivenName".into(), given);
    v.insert("randomFamilyName".into(), family);
    v.insert("randomEmail".into(), email.clone());
    v.insert("randomUsername".into(), email.clone());
    v.insert("randomUsernameCaps".into(), email.to_uppercase());
    v.insert("InvalidUserEmail".into(), "abcdefgh@atko.com".into());
    v.insert(
        "UserIdThatDoesNotExist".into(),
        "010101001010101011001010101011".into(),
    );
    v.insert(
        "randomGroupName".into(),
        format!("Group{}", next(1_000_000)),
    );
    v
}

fn substitute(s: &str, vars: &HashMap<String, String>) -> String {
    let mut out = s.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    out
}

/// Follows a Runscope property path such as `Resources[0].name.familyName`.
pub fn property<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = v;
    for part in path.split('.') {
        let (name, idx) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        if let Some(i) = idx {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn not_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        _ => true,
    }
}

/// Runs every request step; `send` carries a call to the server under test.
pub fn replay(
    spec: &Value,
    vars: &mut HashMap<String, String>,
    send: &mut dyn FnMut(&Call) -> Reply,
) -> Vec<StepResult> {
    let mut results = Vec::new();
    for step in spec["steps"].as_array().unwrap() {
        if step["step_type"] != "request" || step["skipped"] == true {
            continue;
        }
        let note = step["note"].as_str().unwrap_or("").to_string();
        let headers = step["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .flat_map(|(k, vs)| {
                        vs.as_array()
                            .into_iter()
                            .flatten()
                            .map(move |v| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    })
                    .map(|(k, v)| (k, substitute(&v, vars)))
                    .collect()
            })
            .unwrap_or_default();
        let call = Call {
            method: step["method"].as_str().unwrap().to_string(),
            url: substitute(step["url"].as_str().unwrap(), vars),
            headers,
            body: step["body"]
                .as_str()
                .filter(|b| !b.is_empty())
                .map(|b| substitute(b, vars)),
        };
        let reply = send(&call);
        let json: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        let mut failures = Vec::new();
        for a in step["assertions"].as_array().into_iter().flatten() {
            let cmp = a["comparison"].as_str().unwrap_or("");
            let want = a["value"].as_str().map(|s| substitute(s, vars));
            let got: Option<Value> = match a["source"].as_str() {
                Some("response_status") => Some(Value::from(reply.status)),
                Some("response_json") => match a["property"].as_str() {
                    Some(p) if !p.is_empty() => property(&json, p).cloned(),
                    _ => Some(json.clone()),
                },
                other => panic!("unsupported assertion source {other:?}"),
            };
            let ok = match cmp {
                "equal_number" => {
                    got.as_ref().and_then(Value::as_f64)
                        == want.as_deref().and_then(|w| w.parse::<f64>().ok())
                }
                "equal" => got.as_ref().map(text_of) == want,
                "not_empty" => not_empty(got.as_ref()),
                "is_a_number" => got.as_ref().is_some_and(Value::is_number),
                "has_value" | "contains" => match &got {
                    Some(Value::Array(a)) => a.iter().any(|x| Some(text_of(x)) == want),
                    Some(Value::String(s)) => want.as_deref().is_some_and(|w| s.contains(w)),
                    _ => false,
                },
                other => panic!("unsupported comparison {other}"),
            };
            if !ok {
                failures.push(format!(
                    "{cmp} {:?} {:?}: got {:?}",
                    a["property"], want, got
                ));
            }
        }
        for v in step["variables"].as_array().into_iter().flatten() {
            if let (Some(name), Some(p)) = (v["name"].as_str(), v["property"].as_str()) {
                if let Some(val) = property(&json, p) {
                    vars.insert(name.to_string(), text_of(val));
                }
            }
        }
        results.push(StepResult {
            required: note.starts_with("Required"),
            note,
            failures,
        });
    }
    results
}

/// A transport for [`assert_passes_over_http`]: method, target, headers, body in;
/// status and body out.
pub type HttpSend<'a> = dyn FnMut(&str, &str, &[(&str, &str)], &[u8]) -> (u16, Vec<u8>) + 'a;

/// Replays the whole spec over HTTP against `base_path` with the `Authorization` value
/// `auth`, and asserts that every required step passes; `test` names the test in the
/// message when the spec is absent and the test skipped.
pub fn assert_passes_over_http(
    test: &str,
    base_path: &str,
    auth: &str,
    seed: u64,
    send: &mut HttpSend<'_>,
) {
    let Some(spec) = load_spec(test) else {
        return;
    };
    let mut vars = initial_variables(base_path, auth, seed);
    let results = replay(&spec, &mut vars, &mut |call| {
        // The export's URLs carry raw spaces and quotes; a real client encodes them.
        let target = call.url.replace(' ', "%20").replace('"', "%22");
        let hs: Vec<(&str, &str)> = call
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (status, body) = send(
            &call.method,
            &target,
            &hs,
            call.body.as_deref().unwrap_or("").as_bytes(),
        );
        Reply { status, body }
    });
    let failed: Vec<_> = results.iter().filter(|r| !r.failures.is_empty()).collect();
    assert!(results.iter().filter(|r| r.required).count() >= 11);
    assert!(failed.is_empty(), "{failed:#?}");
}
