//! Arbitrary bodies sent to the write endpoints: every answer is a well-formed response
//! and nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_edge::auth::KeyHash;
use scim_edge::config::{Config, OrgConfig};
use scim_edge::http::Request;
use scim_edge::ids::{ManualClock, OrgId, SeqIds};
use scim_edge::okta::Policy;
use scim_edge::router::Router;
use scim_edge::store::MemStore;

const ORG: &str = "3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d";

fuzz_target!(|data: &[u8]| {
    let mut config = Config::default();
    let Some(org) = OrgId::parse(ORG) else { return };
    config.orgs.insert(org, OrgConfig { keys: vec![KeyHash::of("k")], policy: Policy::Strict });
    let (store, clock, ids) = (MemStore::new(), ManualClock::at(0), SeqIds::default());
    let router = Router::new(&config, &store, &clock, &ids);
    let (method, path) = match data.first().map(|b| b % 5) {
        Some(0) => ("POST", "/Users"),
        Some(1) => ("POST", "/Groups"),
        Some(2) => ("POST", "/Bulk"),
        Some(3) => ("POST", "/.search"),
        _ => ("PATCH", "/Users/00000000-0000-4000-8000-000000000001"),
    };
    let mut req = Request::new(method, &format!("/v2/{ORG}{path}")).header("Authorization", "Bearer k");
    req.body = data.get(1..).unwrap_or_default().to_vec();
    let r = router.handle(&req);
    assert!((200..600).contains(&r.status));
    assert!(r.status == 204 || serde_json::from_slice::<serde_json::Value>(&r.body).is_ok());
});
