//! Replays the recorded Okta interactions (`tests/fixtures/okta/*.json`) through any
//! transport. Each file is one interaction: requests in order, the status and the parts
//! of the body and headers that must come back, ids saved for later steps.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;

/// What a transport returns: status, headers, body.
pub type Exchange = (u16, Vec<(String, String)>, Vec<u8>);

/// A transport: `(method, path, headers, body)` in, an [`Exchange`] out.
pub type Send<'a> = dyn FnMut(&str, &str, Vec<(String, String)>, Vec<u8>) -> Exchange + 'a;

fn fill(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = text.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    out
}

/// Whether `want` is contained in `got`: objects by key (recursively), arrays element
/// by element with equal length, scalars equal. Returns the first difference.
pub fn subset(want: &Value, got: &Value, at: &str) -> Result<(), String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                let Some(gv) = g.get(k) else {
                    return Err(format!("{at}/{k}: missing"));
                };
                subset(wv, gv, &format!("{at}/{k}"))?;
            }
            Ok(())
        }
        (Value::Array(w), Value::Array(g)) => {
            if w.len() != g.len() {
                return Err(format!("{at}: {} elements, expected {}", g.len(), w.len()));
            }
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                subset(wv, gv, &format!("{at}/{i}"))?;
            }
            Ok(())
        }
        _ if want == got => Ok(()),
        _ => Err(format!("{at}: got {got}, expected {want}")),
    }
}

/// The fixture files, sorted.
pub fn files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
        if env!("CARGO_MANIFEST_DIR").ends_with("host") {
            "../tests/fixtures/okta"
        } else {
            "tests/fixtures/okta"
        },
    );
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "fixtures missing in {}", dir.display());
    files
}

/// Replays one fixture. `org_for` maps the fixture's policy to an organization id whose
/// store is fresh; `send(method, path, headers, body)` performs a request (the path
/// starts with `/v2/{org}`; the transport adds the organization's key unless the step
/// sends its own Authorization).
pub fn replay(path: &std::path::Path, org_for: &dyn Fn(&str) -> String, send: &mut Send<'_>) {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let fx: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let org = org_for(fx["org"].as_str().unwrap_or("strict"));
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("org".into(), org.clone());
    for (i, step) in fx["steps"].as_array().unwrap().iter().enumerate() {
        let at = format!("{name} step {}", i + 1);
        let r = &step["request"];
        let target = format!("/v2/{org}{}", fill(r["path"].as_str().unwrap(), &vars));
        let mut headers = vec![(
            "User-Agent".to_string(),
            "Okta SCIM Client 1.0.0".to_string(),
        )];
        let mut has_ct = false;
        for (k, v) in r["headers"].as_object().into_iter().flatten() {
            has_ct |= k.eq_ignore_ascii_case("content-type");
            headers.push((k.clone(), fill(v.as_str().unwrap(), &vars)));
        }
        let mut body = Vec::new();
        if let Some(b) = r.get("body") {
            if !has_ct {
                headers.push((
                    "Content-Type".into(),
                    "application/scim+json; charset=utf-8".into(),
                ));
            }
            body = fill(&b.to_string(), &vars).into_bytes();
        }
        let (status, resp_headers, resp_body) =
            send(r["method"].as_str().unwrap(), &target, headers, body);
        let header = |n: &str| {
            resp_headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        let json: Value = serde_json::from_slice(&resp_body).unwrap_or(Value::Null);
        assert_eq!(
            status,
            step["status"].as_u64().unwrap() as u16,
            "{at}: {json}"
        );
        if status != 204 && status != 304 {
            assert_eq!(
                header("content-type").as_deref(),
                Some("application/scim+json"),
                "{at}"
            );
        }
        for (k, v) in step["save"].as_object().into_iter().flatten() {
            let val = json
                .pointer(v.as_str().unwrap())
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{at}: nothing at {v}"));
            vars.insert(k.clone(), val.to_string());
        }
        if let Some(want) = step.get("body") {
            let want: Value = serde_json::from_str(&fill(&want.to_string(), &vars)).unwrap();
            if let Err(e) = subset(&want, &json, "") {
                panic!("{at}: {e}\nbody: {json}");
            }
        }
        for (k, v) in step["headers"].as_object().into_iter().flatten() {
            assert_eq!(
                header(k),
                Some(fill(v.as_str().unwrap(), &vars)),
                "{at}: header {k}"
            );
        }
        for p in step["absent"].as_array().into_iter().flatten() {
            assert!(
                json.pointer(p.as_str().unwrap()).is_none(),
                "{at}: {p} should be absent in {json}"
            );
        }
    }
}
