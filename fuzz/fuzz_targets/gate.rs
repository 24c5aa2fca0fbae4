//! The Envoy gate: its configuration and every decision it makes on a request and a
//! response, on arbitrary method, path, headers and bodies.
//!
//! The input is a request: `METHOD PATH` on the first line, `name: value` header lines,
//! a blank line, then the body; a first line starting with `{` is a gate configuration
//! instead. What must hold:
//! - a configuration is accepted with non-empty clean prefixes, longest first, and a
//!   positive body limit, or refused naming the setting at fault;
//! - a request is admitted only for the configured organization, right after a
//!   configured prefix, with no dot, empty or encoded-separator segment (so the upstream
//!   cannot resolve it elsewhere), with that organization's key, and with a declared
//!   length (the first: Envoy refuses conflicting ones) within the limit; a refusal is
//!   a 4xx SCIM error;
//! - a screened body is refused with a 4xx or forwarded, and a rewritten body is JSON
//!   that the same screen forwards unchanged (the repair is done in one pass);
//! - a response body with any spelling of `resources` comes back with `Resources` and no
//!   other spelling; an error without a body gets a SCIM one with its status.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_edge::auth::KeyHash;
use scim_edge::error::ScimError;
use scim_edge::gate::{GateConfig, ResponsePlan};
use scim_edge::http::Response;
use serde_json::{json, Value};
use std::sync::LazyLock;

const ORG: &str = "3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d";
const OTHER: &str = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b";
const MAX_BODY: usize = 4096;

/// Two organizations (strict and lenient), the default prefixes and one more, a small
/// body limit so that both sides of it are reached.
static GATE: LazyLock<Option<GateConfig>> = LazyLock::new(|| {
    let cfg = json!({
        "organizations": {
            ORG: {"keys": [KeyHash::of("k").to_hex()], "policy": "strict"},
            OTHER: {"keys": [KeyHash::of("kb").to_hex()], "policy": "lenient"}
        },
        "path_prefixes": ["/scim/v2", "/v2", "/api/scim/v2/"],
        "max_body_bytes": MAX_BODY
    });
    GateConfig::from_json(&cfg.to_string()).ok()
});

fn assert_scim_error(r: &Response, status: u16) {
    assert_eq!(r.status, status);
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    assert_eq!(v["status"], status.to_string(), "{v}");
    assert_eq!(
        v["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
        "{v}"
    );
}

fn assert_refusal(e: &ScimError) {
    assert!((400..500).contains(&e.status()), "{}", e.detail());
    assert_scim_error(&Response::error(e), e.status());
}

fn check_config(text: &str) {
    match GateConfig::from_json(text) {
        Ok(g) => {
            assert!(g.max_body > 0 && !g.path_prefixes.is_empty());
            for w in g.path_prefixes.windows(2) {
                assert!(w[0].len() >= w[1].len());
            }
            for p in &g.path_prefixes {
                assert!(
                    p.starts_with('/') && !p.ends_with('/') && !p.contains("//"),
                    "{p}"
                );
            }
        }
        Err(e) => {
            let named = [
                "configuration:",
                "organizations",
                "path_prefixes",
                "max_body_bytes",
            ];
            let unknown = e.contains(": unknown setting (expected ");
            assert!(unknown || named.iter().any(|n| e.starts_with(n)), "{e}");
        }
    }
}

/// The organization an admitted path names, found without the gate's code: the text
/// after one of the prefixes (case-insensitively), up to the next `/`.
fn admitted_org(g: &GateConfig, path: &str) -> Option<String> {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let lower = path.to_ascii_lowercase();
    assert!(!lower.contains("%2e") && !lower.contains("%2f") && !lower.contains("%5c"));
    assert!(!path.contains('\\'), "{path}");
    let rest = g.path_prefixes.iter().find_map(|p| {
        lower
            .strip_prefix(&p.to_ascii_lowercase())
            .and_then(|r| r.strip_prefix('/'))
    })?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    for seg in rest.split('/') {
        assert!(!seg.is_empty() && seg != "." && seg != "..", "{path}");
    }
    rest.split('/').next().map(str::to_string)
}

fn parse_request(text: &str) -> Option<(&str, &str, Vec<(String, String)>, &str)> {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let (method, path) = lines.next()?.split_once(' ')?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim_start().to_string()))
        .collect();
    Some((method, path, headers, body))
}

fn check_response(a: &scim_edge::gate::Admitted, body: &str) {
    let status = 200 + (body.len() % 400) as u16;
    let json_ct = vec![("content-type".to_string(), "application/json".to_string())];
    match a.response_plan(status, &json_ct, body.is_empty()) {
        ResponsePlan::Replace(r) => assert_scim_error(&r, status),
        ResponsePlan::Buffer => {
            if let Some(r) = a.finish_response(status, body.as_bytes()) {
                assert_eq!(r.status, status);
                let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                let keys: Vec<&String> = v
                    .as_object()
                    .map(|o| o.keys().collect())
                    .unwrap_or_default();
                assert!(keys.iter().any(|k| *k == "Resources"), "{v}");
                assert_eq!(
                    keys.iter()
                        .filter(|k| k.eq_ignore_ascii_case("resources"))
                        .count(),
                    1
                );
            }
        }
        ResponsePlan::Forward => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.starts_with('{') {
        check_config(text);
        return;
    }
    let Some(gate) = GATE.as_ref() else {
        panic!("the fixed gate configuration is refused");
    };
    let Some((method, path, headers, body)) = parse_request(text) else {
        return;
    };
    let admitted = match gate.admit(method, path, &headers) {
        Ok(a) => a,
        Err(e) => return assert_refusal(&e),
    };
    // Admitted: the right organization, its own key, a length within the limit.
    let org = admitted_org(gate, path);
    // The scheme is case-insensitive (RFC 7235), the key exact.
    let bearer = |k: &str| {
        headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("authorization")
                && v.split_once(' ')
                    .is_some_and(|(s, t)| s.eq_ignore_ascii_case("bearer") && t == k)
        })
    };
    match org.as_deref() {
        Some(ORG) => assert!(bearer("k"), "{path} admitted without its key"),
        Some(OTHER) => assert!(bearer("kb"), "{path} admitted without its key"),
        o => panic!("{path} admitted for {o:?}"),
    }
    // The first length, as the gate reads it: Envoy refuses a request with differing
    // or malformed lengths before the filter sees it.
    if let Some((_, v)) = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        let n = v.trim().parse::<usize>();
        assert!(n.is_ok_and(|n| n <= MAX_BODY), "{v}");
    }
    if admitted.reads_body() {
        match admitted.screen_body(gate, body.as_bytes()) {
            Err(e) => assert_refusal(&e),
            Ok(None) => {}
            Ok(Some(fixed)) => {
                assert!(serde_json::from_slice::<Value>(&fixed).is_ok());
                // What the gate forwards, it would forward as it is (unless the repair
                // made it grow past the body limit).
                if fixed.len() <= MAX_BODY {
                    let again = admitted.screen_body(gate, &fixed);
                    assert!(
                        matches!(again, Ok(None)),
                        "not repaired in one pass: {again:?}"
                    );
                }
            }
        }
    }
    check_response(&admitted, body);
});
