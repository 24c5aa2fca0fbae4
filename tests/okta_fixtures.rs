//! Recorded Okta interactions (`tests/fixtures/okta/*.json`) replayed through the router.
//! Each file is one interaction: requests in order, the status and the parts of the
//! body and headers that must come back, ids saved for later steps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{subset, H, LENIENT, OFF, STRICT};
use scim_edge::http::Request;
use serde_json::Value;
use std::collections::HashMap;

fn fill(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = text.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    out
}

fn run(path: &std::path::Path) {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let fx: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let org = match fx["org"].as_str().unwrap_or("strict") {
        "strict" => STRICT,
        "lenient" => LENIENT,
        "off" => OFF,
        other => panic!("{name}: unknown org {other}"),
    };
    let h = H::new();
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("org".into(), org.into());
    for (i, step) in fx["steps"].as_array().unwrap().iter().enumerate() {
        let at = format!("{name} step {}", i + 1);
        let r = &step["request"];
        let path = fill(r["path"].as_str().unwrap(), &vars);
        let mut req = Request::new(r["method"].as_str().unwrap(), &format!("/v2/{org}{path}"))
            .header("User-Agent", "Okta SCIM Client 1.0.0");
        let mut has_ct = false;
        for (k, v) in r["headers"].as_object().into_iter().flatten() {
            has_ct |= k.eq_ignore_ascii_case("content-type");
            req = req.header(k, &fill(v.as_str().unwrap(), &vars));
        }
        if let Some(b) = r.get("body") {
            if !has_ct {
                req = req.header("Content-Type", "application/scim+json; charset=utf-8");
            }
            req.body = fill(&b.to_string(), &vars).into_bytes();
        }
        let resp = h.send(req);
        let body = resp.body_json();
        assert_eq!(
            resp.status,
            step["status"].as_u64().unwrap() as u16,
            "{at}: {body}"
        );
        if resp.status != 204 {
            assert_eq!(
                resp.header_value("content-type"),
                Some("application/scim+json"),
                "{at}"
            );
        }
        for (k, v) in step["save"].as_object().into_iter().flatten() {
            let val = body
                .pointer(v.as_str().unwrap())
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{at}: nothing at {v}"));
            vars.insert(k.clone(), val.to_string());
        }
        if let Some(want) = step.get("body") {
            let want: Value = serde_json::from_str(&fill(&want.to_string(), &vars)).unwrap();
            if let Err(e) = subset(&want, &body, "") {
                panic!("{at}: {e}\nbody: {body}");
            }
        }
        for (k, v) in step["headers"].as_object().into_iter().flatten() {
            assert_eq!(
                resp.header_value(k),
                Some(fill(v.as_str().unwrap(), &vars).as_str()),
                "{at}: header {k}"
            );
        }
        for p in step["absent"].as_array().into_iter().flatten() {
            assert!(
                body.pointer(p.as_str().unwrap()).is_none(),
                "{at}: {p} should be absent in {body}"
            );
        }
    }
}

#[test]
fn okta_fixtures_replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/okta");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "fixtures missing in {}", dir.display());
    for f in files {
        run(&f);
    }
}
