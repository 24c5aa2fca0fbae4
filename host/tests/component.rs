//! The built component: what it imports, and basic service over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;

#[test]
fn imports_only_what_spin_provides_and_the_manifest_grants() {
    let imports = scim_edge_host::component_imports(wasm()).unwrap();
    let allowed_prefixes = [
        // Spin's platform world: WASI 0.2 CLI interfaces and wasi:http types.
        "wasi:cli/",
        "wasi:io/",
        "wasi:clocks/",
        "wasi:random/",
        "wasi:filesystem/",
        "wasi:http/types@",
        // spin.toml grants key_value_stores = ["default"]; variables are declared.
        "fermyon:spin/key-value@2.0.0",
        "fermyon:spin/variables@2.0.0",
        "wasi:keyvalue/store@0.2.0-draft2",
        "wasi:keyvalue/atomics@0.2.0-draft2",
    ];
    for i in &imports {
        assert!(
            allowed_prefixes.iter().any(|p| i.starts_with(p)),
            "unexpected import {i} (all: {imports:?})"
        );
    }
    // No outbound HTTP (allowed_outbound_hosts = []), no sockets.
    assert!(!imports
        .iter()
        .any(|i| i.starts_with("wasi:http/outgoing-handler") || i.starts_with("wasi:sockets/")));
    assert!(imports
        .iter()
        .any(|i| i.starts_with("fermyon:spin/key-value@2.0.0")));
    eprintln!(
        "component imports: {imports:?}; size {} bytes",
        wasm().len()
    );
}

#[test]
fn serves_scim_over_http() {
    let s = server();
    let r = call(
        &s,
        "GET",
        &format!("/v2/{STRICT}/ServiceProviderConfig"),
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    let body = json!({"userName": "e2e@x.io", "emails": [{"primary": true, "value": "e2e@x.io"}], "name": {"givenName": "E", "familyName": "Two"}});
    let r = call(&s, "POST", &format!("/scim/v2/{STRICT}/Users"), Some(&body));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let id = json(&r)["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.header("location"),
        Some(format!("/scim/v2/{STRICT}/Users/{id}").as_str())
    );
    assert!(r.header("etag").is_some());
    let r = call(&s, "GET", &format!("/v2/{STRICT}/Users/{id}"), None);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/{STRICT}/Users/{id}").as_str())
    );
    let r = call(
        &s,
        "GET",
        &format!("/v2/{STRICT}/Users?filter=userName%20eq%20%22E2E%40X.IO%22"),
        None,
    );
    assert_eq!(json(&r)["Resources"][0]["id"], id.as_str());
    let r = scim_edge_host::client::request(
        s.addr,
        "GET",
        &format!("/v2/{STRICT}/Users"),
        &[("authorization", "non-token")],
        b"",
    )
    .unwrap();
    assert_eq!((r.status, json(&r)["status"].as_str()), (401, Some("401")));
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"scim\""));
}

#[test]
fn missing_configuration_is_a_scim_error_on_every_request() {
    let s = server_with(Default::default());
    for path in [format!("/v2/{STRICT}/Users"), "/".to_string()] {
        let r = call(&s, "GET", &path, None);
        assert_eq!(r.status, 500);
        let b = json(&r);
        assert_eq!(
            b["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
        assert_eq!(
            b["detail"],
            "scim-edge is not configured correctly; see the server log"
        );
    }
    let s = server_with(
        [(
            "organizations".to_string(),
            "{\"not-a-uuid\": {\"keys\": []}}".to_string(),
        )]
        .into(),
    );
    assert_eq!(
        call(&s, "GET", &format!("/v2/{STRICT}/Users"), None).status,
        500
    );
}

#[test]
fn health_route_over_http() {
    let s = server();
    let r = call(&s, "GET", "/healthz", None);
    assert_eq!((r.status, json(&r)), (200, json!({"status": "ok"})));
    s.host.backend().set_down(true);
    let r = call(&s, "GET", "/healthz", None);
    assert_eq!(
        (r.status, json(&r)),
        (
            503,
            json!({"status": "unavailable", "reason": "the store does not answer a read"})
        )
    );
    s.host.backend().set_down(false);
    assert_eq!(call(&s, "GET", "/healthz", None).status, 200);
    // A configuration that does not load: 503, naming neither the organization nor its key.
    let secret = format!("{{\"{STRICT}\": {{\"keys\": [\"+{}\"]}}}}", "a".repeat(63));
    let s = server_with([("organizations".to_string(), secret)].into());
    let r = call(&s, "GET", "/healthz", None);
    assert_eq!(
        (r.status, json(&r)),
        (
            503,
            json!({"status": "unavailable", "reason": "the configuration does not load"})
        )
    );
    assert!(!String::from_utf8_lossy(&r.body).contains(STRICT));
}
