//! Request bodies: `http::parse_body` gives exactly the value serde_json reads, written
//! nested no deeper than the limit; or a 413 for a body over the size limit; or
//! `invalidSyntax` for one that is empty, nests too deep or is not JSON. Sent to the write
//! endpoints, every body gets a client answer (below 500) with a JSON body; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_edge::auth::KeyHash;
use scim_edge::config::{Config, OrgConfig};
use scim_edge::error::ErrorKind;
use scim_edge::http::{json_depth, parse_body, Request};
use scim_edge::ids::{ManualClock, OrgId, SeqIds};
use scim_edge::okta::Policy;
use scim_edge::router::Router;
use scim_edge::store::MemStore;
use serde_json::Value;

const ORG: &str = "3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d";

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The limits come from the first byte so that both sides of each are reached.
fn check_parse_body(first: u8, body: &[u8]) {
    let (max_payload, max_depth) = (usize::from(first) * 4, usize::from(first % 40));
    let serde = serde_json::from_slice::<Value>(body);
    match parse_body(body, max_payload, max_depth) {
        Ok(v) => {
            assert_eq!(serde.as_ref().ok(), Some(&v));
            // Not equal: a repeated member's last value wins, and an earlier one may
            // nest deeper.
            assert!(depth(&v) <= json_depth(body) && json_depth(body) <= max_depth);
        }
        Err(e) if body.len() > max_payload => assert_eq!(e.kind(), ErrorKind::PayloadTooLarge),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidSyntax, "{}", e.detail());
            assert!(
                serde.is_err() || json_depth(body) > max_depth,
                "{}",
                e.detail()
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    check_parse_body(first, body);
    let mut config = Config::default();
    let Some(org) = OrgId::parse(ORG) else { return };
    config.orgs.insert(
        org,
        OrgConfig {
            keys: vec![KeyHash::of("k")],
            policy: Policy::Strict,
            vault: None,
        },
    );
    let (store, clock, ids) = (MemStore::new(), ManualClock::at(0), SeqIds::default());
    let router = Router::new(&config, &store, &clock, &ids);
    let (method, path) = match first % 5 {
        0 => ("POST", "/Users"),
        1 => ("POST", "/Groups"),
        2 => ("POST", "/Bulk"),
        3 => ("POST", "/.search"),
        _ => ("PATCH", "/Users/00000000-0000-4000-8000-000000000001"),
    };
    let mut req =
        Request::new(method, &format!("/v2/{ORG}{path}")).header("Authorization", "Bearer k");
    req.body = body.to_vec();
    let r = router.handle(&req);
    assert!(
        (200..500).contains(&r.status),
        "{} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    assert!(r.status == 204 || serde_json::from_slice::<Value>(&r.body).is_ok());
});
