//! The router on arbitrary requests: method, path, query, headers and body, several
//! requests to one in-memory store so that later ones meet what earlier ones wrote.
//!
//! The input holds requests separated by lines `@@`; each is `METHOD PATH[?QUERY]` on
//! its first line, `name: value` header lines, a blank line and the body. Three
//! organizations: strict (key `k`), policy off (key `kb`), and one with a vault that no
//! outbound HTTP reaches. What must hold for every answer:
//! - its status is 200 to 599, and 5xx only on a `_vault` route (the vault unreachable);
//! - every error (4xx, 5xx) but `/healthz`'s (plain JSON) is a SCIM error: JSON with the Error schema and its status
//!   as a string; 204 and 304 have no body; a JSON content type has a JSON body;
//! - a 2xx on a route that needs a key was asked with exactly one `Authorization` that
//!   is `Bearer <that organization's key>`: no key of one organization opens another.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_edge::auth::KeyHash;
use scim_edge::config::Config;
use scim_edge::http::{Request, Response};
use scim_edge::ids::{ManualClock, OrgId, SeqIds};
use scim_edge::router::{Route, Router};
use scim_edge::store::MemStore;
use serde_json::{json, Value};
use std::sync::LazyLock;

const STRICT: &str = "3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d";
const OFF: &str = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b";
const VAULT: &str = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";
const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

static CONFIG: LazyLock<Option<Config>> = LazyLock::new(|| {
    let key = |k: &str| KeyHash::of(k).to_hex();
    let cfg = json!({"organizations": {
        STRICT: {"keys": [key("k")], "policy": "strict"},
        OFF: {"keys": [key("kb")], "policy": "off"},
        VAULT: {"keys": [key("kv")], "vault": {"kind": "bitwarden",
            "api_url": "https://vault.test/api", "identity_url": "https://vault.test/identity",
            "client_id": "organization.9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
            "client_secret": "s", "sync_budget_ms": 100, "timeout_ms": 50}}
    }, "limits": {"max_payload": 8192, "max_count": 20, "default_count": 5, "max_bulk_ops": 10}});
    Config::from_json(&cfg.to_string()).ok()
});

fn parse(text: &str) -> Option<Request> {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let (method, target) = lines.next()?.split_once(' ')?;
    let mut req = Request::new(method, target);
    for (k, v) in lines.filter_map(|l| l.split_once(':')) {
        req = req.header(k, v.trim_start());
    }
    req.body = body.as_bytes().to_vec();
    Some(req)
}

/// The organization a path names and the route after it, as the router splits them.
fn target(req: &Request) -> Option<(&'static str, Route<'_>)> {
    let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let at = match segs.as_slice() {
        [s, v, ..] if s.eq_ignore_ascii_case("scim") && v.eq_ignore_ascii_case("v2") => 2,
        [v, ..] if v.eq_ignore_ascii_case("v2") => 1,
        _ => return None,
    };
    let org = OrgId::parse(segs.get(at)?)?;
    let key = [(STRICT, "k"), (OFF, "kb"), (VAULT, "kv")]
        .into_iter()
        .find(|(o, _)| OrgId::parse(o).as_ref() == Some(&org))?
        .1;
    Some((
        key,
        Route::parse(&req.method, segs.get(at + 1..).unwrap_or(&[])),
    ))
}

fn carries_key(req: &Request, key: &str) -> bool {
    let values: Vec<&str> = req.header_values("authorization").collect();
    matches!(values.as_slice(), [v] if v.split_once(' ').is_some_and(|(s, t)| s.eq_ignore_ascii_case("bearer") && t == key))
}

fn check(req: &Request, r: &Response) {
    let what = || {
        format!(
            "{} {}?{} -> {}: {}",
            req.method,
            req.path,
            req.query,
            r.status,
            String::from_utf8_lossy(&r.body)
        )
    };
    assert!((200..600).contains(&r.status), "{}", what());
    if r.status >= 500 {
        assert!(
            req.path.to_ascii_lowercase().contains("/_vault/"),
            "{}",
            what()
        );
    }
    let ct = r.header_value("content-type").unwrap_or("");
    let body: Option<Value> = serde_json::from_slice(&r.body).ok();
    // `/healthz` is outside every organization and answers plain JSON.
    if r.status >= 400 && req.path != "/healthz" {
        let v = body.as_ref().unwrap_or(&Value::Null);
        assert_eq!(v["schemas"][0], ERROR_URN, "{}", what());
        assert_eq!(v["status"], r.status.to_string(), "{}", what());
    }
    if r.status == 204 || r.status == 304 {
        assert!(r.body.is_empty(), "{}", what());
    } else if ct.contains("json") {
        assert!(body.is_some(), "{}", what());
    }
    if (200..300).contains(&r.status) {
        if let Some((key, route)) = target(req) {
            assert!(
                !route.needs_key() || carries_key(req, key),
                "opened without its key: {}",
                what()
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(config) = CONFIG.as_ref() else {
        panic!("the fixed configuration is refused");
    };
    let (store, clock, ids) = (
        MemStore::new(),
        ManualClock::at(1_700_000_000_000),
        SeqIds::default(),
    );
    let router = Router::new(config, &store, &clock, &ids);
    for part in text.split("\n@@\n").take(12) {
        let Some(req) = parse(part) else { continue };
        let r = router.handle(&req);
        check(&req, &r);
        clock.advance(1000);
    }
});
