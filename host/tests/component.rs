//! The built components: what each imports and which host profile loads it, basic service
//! over HTTP, and the key-value traffic each response reports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use scim_edge_host::{Backend, Host, Profile};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// What each host lets a component import (prefixes of import names).
fn provided(profile: Profile) -> Vec<&'static str> {
    let mut all = vec![
        // Spin's platform world: WASI 0.2 CLI interfaces and wasi:http types.
        "wasi:cli/",
        "wasi:io/",
        "wasi:clocks/",
        "wasi:random/",
        "wasi:filesystem/",
        "wasi:http/types@",
        // Outbound HTTP, to the vault the manifest's allowed_outbound_hosts grants.
        "wasi:http/outgoing-handler@",
        // spin.toml grants key_value_stores = ["default"]; variables are declared.
        "fermyon:spin/key-value@2.0.0",
        "fermyon:spin/variables@2.0.0",
        "wasi:keyvalue/store@0.2.0-draft2",
        "wasi:keyvalue/batch@0.2.0-draft2",
    ];
    // Akamai Functions has no wasi:keyvalue/atomics.
    if profile == Profile::Spin {
        all.push("wasi:keyvalue/atomics@0.2.0-draft2");
    }
    all
}

#[test]
fn each_artifact_imports_only_what_its_host_provides_and_the_manifest_grants() {
    for profile in [Profile::Spin, Profile::Edge] {
        let imports = scim_edge_host::component_imports(artifact(profile)).unwrap();
        eprintln!(
            "{profile} artifact imports: {imports:?}; size {} bytes",
            artifact(profile).len()
        );
        let allowed = provided(profile);
        for i in &imports {
            assert!(
                allowed.iter().any(|p| i.starts_with(p)),
                "the {profile} artifact imports {i}, which its host lacks (all: {imports:?})"
            );
        }
        // Outbound HTTP only through wasi:http (which allowed_outbound_hosts governs),
        // never raw sockets.
        assert!(!imports.iter().any(|i| i.starts_with("wasi:sockets/")));
        // The store is reached through one of Spin's two key-value interfaces.
        assert!(imports.iter().any(|i| {
            i.starts_with("wasi:keyvalue/store@") || i.starts_with("fermyon:spin/key-value@")
        }));
    }
}

#[test]
fn the_edge_host_refuses_the_spin_artifact_naming_atomics() {
    let e = Host::with_profile(
        artifact(Profile::Spin),
        HashMap::new(),
        Arc::new(Backend::default()),
        Profile::Edge,
    )
    .err()
    .expect("the edge profile has no atomics");
    let message = format!("{e:#}");
    assert!(
        message.contains("wasi:keyvalue/atomics@0.2.0-draft2"),
        "{message}"
    );
}

#[test]
fn the_edge_artifact_loads_on_both_hosts() {
    for profile in [Profile::Spin, Profile::Edge] {
        if let Err(e) = Host::with_profile(
            artifact(Profile::Edge),
            HashMap::new(),
            Arc::new(Backend::default()),
            profile,
        ) {
            panic!("the edge artifact on the {profile} profile: {e:#}");
        }
    }
}

#[test]
fn every_response_reports_its_key_value_traffic() {
    let s = server();
    let before = s.host.backend().ops();
    let body = json!({"userName": "kv@x.io", "emails": [{"primary": true, "value": "kv@x.io"}]});
    let created = call(&s, "POST", &format!("/v2/{STRICT}/Users"), Some(&body));
    assert_eq!(created.status, 201);
    let write = kv(&created);
    assert!(write.writes >= 1 && write.calls >= 1, "{write:?}");
    let id = json(&created)["id"].as_str().unwrap().to_string();
    let read = kv(&call(&s, "GET", &format!("/v2/{STRICT}/Users/{id}"), None));
    assert!(read.reads >= 1, "{read:?}");
    // Refusals carry the headers too.
    let refused = call(&s, "GET", "/v2/not-an-org/Users", None);
    let refusal = kv(&refused);
    // The headers account for every call the store served.
    assert_eq!(
        s.host.backend().ops() - before,
        write.calls + read.calls + refusal.calls
    );
}

#[test]
fn every_answer_carries_a_request_id() {
    let s = server();
    let path = format!("/v2/{STRICT}/Users?count=1");
    let header = |r: &scim_edge_host::client::Reply| {
        r.headers
            .iter()
            .find(|(k, _)| k == "x-request-id")
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let given = as_org(&s, "GET", &path, &[("x-request-id", "okta-7f3a.1")], b"");
    assert_eq!(header(&given), "okta-7f3a.1");
    // An id that is not a short safe token is replaced, not echoed.
    let unsafe_id = as_org(&s, "GET", &path, &[("x-request-id", "<b>x</b>")], b"");
    let fresh = header(&unsafe_id);
    assert!(fresh.len() == 36 && fresh != header(&as_org(&s, "GET", &path, &[], b"")));
    let refused = call(&s, "GET", "/v2/not-an-org/Users", None);
    assert_eq!(header(&refused).len(), 36);
}

#[test]
fn a_store_whose_get_many_fails_serves_the_same_answers() {
    // Spin's Redis backend fails every get-many; the component must fall back to gets.
    let answers = |no_batch: bool| {
        let s = server();
        s.host.backend().set_no_batch(no_batch);
        let mut seen = Vec::new();
        let mut ids = Vec::new();
        for i in 0..3 {
            let u = json!({"userName": format!("nb{i}@x.io"), "emails": [{"primary": true, "value": format!("nb{i}@x.io")}]});
            let r = call(&s, "POST", &format!("/v2/{STRICT}/Users"), Some(&u));
            seen.push(r.status.to_string());
            ids.push(json(&r)["id"].as_str().unwrap_or_default().to_string());
        }
        let members: Vec<_> = ids.iter().map(|id| json!({"value": id})).collect();
        let g = json!({"displayName": "nb", "members": members});
        let r = call(&s, "POST", &format!("/v2/{STRICT}/Groups"), Some(&g));
        seen.push(r.status.to_string());
        let gid = json(&r)["id"].as_str().unwrap_or_default().to_string();
        let r = call(&s, "GET", &format!("/v2/{STRICT}/Groups/{gid}"), None);
        seen.push(format!(
            "{} {}",
            r.status,
            json(&r)["members"].as_array().map_or(0, Vec::len)
        ));
        for id in &ids {
            let r = call(&s, "GET", &format!("/v2/{STRICT}/Users/{id}"), None);
            seen.push(format!(
                "{} {}",
                r.status,
                json(&r)["groups"][0]["value"] == gid.as_str()
            ));
        }
        let r = call(&s, "GET", &format!("/v2/{STRICT}/Users"), None);
        seen.push(format!("{} {}", r.status, json(&r)["totalResults"]));
        seen
    };
    let batched = answers(false);
    assert_eq!(batched[..4], ["201", "201", "201", "201"], "{batched:?}");
    assert_eq!(answers(true), batched);
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

/// Each manifest builds the artifact its host loads and points at it: `spin.toml` the
/// build with atomics, `spin.edge.toml` the one without, each naming the target directory
/// its `source` is under (a shell's `CARGO_TARGET_DIR` would send the build elsewhere).
#[test]
fn each_manifest_builds_and_serves_its_own_artifact() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (file, features, source) in [
        (
            "spin.toml",
            "--features atomics --target-dir target\"",
            "target/wasm32-wasip2/release/scim_edge.wasm",
        ),
        (
            "spin.edge.toml",
            "--features spin --target-dir target/edge\"",
            "target/edge/wasm32-wasip2/release/scim_edge.wasm",
        ),
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let line = |key: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(key))
                .unwrap_or_else(|| panic!("{file} has no {key}"))
                .to_string()
        };
        assert_eq!(line("source"), format!("source = \"{source}\""), "{file}");
        let build = line("command");
        assert!(
            build.contains("cargo build --lib --target wasm32-wasip2 --release")
                && build.ends_with(features),
            "{file}: {build}"
        );
        assert_eq!(line("key_value_stores"), "key_value_stores = [\"default\"]");
        // Outbound HTTP reaches the vault's origin alone, and nothing without a vault.
        assert_eq!(
            line("allowed_outbound_hosts"),
            "allowed_outbound_hosts = [\"{{ vault_origin }}\"]"
        );
        assert_eq!(
            line("vault_origin"),
            "vault_origin = { default = \"https://vault.invalid\" }"
        );
    }
}

/// The round-trip budgets hold through the built component on its host, as the native
/// budget test finds them in the core: averaged over 64 calls so compactions count.
#[test]
fn round_trip_budgets_hold_through_the_component() {
    let s = server();
    let base = format!("/v2/{STRICT}");
    let user = |name: &str| json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "externalId": format!("x-{name}"), "emails": [{"primary": true, "value": name}], "active": true});
    let average = |n: usize, f: &dyn Fn(usize) -> scim_edge_host::client::Reply| {
        let calls: u64 = (0..n)
            .map(|i| {
                let r = f(i);
                assert!(r.status < 300, "{}", String::from_utf8_lossy(&r.body));
                kv(&r).calls
            })
            .sum();
        calls as f64 / n as f64
    };
    let ids: Vec<String> = (0..160)
        .map(|i| {
            let r = call(
                &s,
                "POST",
                &format!("{base}/Users"),
                Some(&user(&format!("b{i}@x.io"))),
            );
            json(&r)["id"].as_str().unwrap().to_string()
        })
        .collect();
    let g = call(
        &s,
        "POST",
        &format!("{base}/Groups"),
        Some(&json!({"displayName": "B"})),
    );
    let gid = json(&g)["id"].as_str().unwrap().to_string();
    let patch = |uid: &str| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}]});
    let adds = average(64, &|i| {
        call(
            &s,
            "PATCH",
            &format!("{base}/Groups/{gid}?excludedAttributes=members"),
            Some(&patch(&ids[i])),
        )
    });
    let creates = average(64, &|i| {
        call(
            &s,
            "POST",
            &format!("{base}/Users"),
            Some(&user(&format!("c{i}@x.io"))),
        )
    });
    let gets = average(64, &|i| {
        call(&s, "GET", &format!("{base}/Users/{}", ids[i]), None)
    });
    let lookups = average(64, &|i| {
        call(
            &s,
            "GET",
            &format!("{base}/Users?filter=userName%20eq%20%22b{i}%40x.io%22"),
            None,
        )
    });
    let deactivations = average(64, &|i| {
        call(
            &s,
            "PATCH",
            &format!("{base}/Users/{}", ids[i]),
            Some(
                &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {"active": false}}]}),
            ),
        )
    });
    let pages = average(8, &|i| {
        call(
            &s,
            "GET",
            &format!("{base}/Users?startIndex={}&count=100", 1 + i * 7),
            None,
        )
    });
    eprintln!("{}: create {creates}, GET {gets}, eq {lookups}, deactivate {deactivations}, member add {adds}, page {pages}", profile());
    assert!(creates <= 6.0, "create {creates}");
    assert!(gets <= 2.0, "GET by id {gets}");
    assert!(lookups <= 2.0, "userName eq {lookups}");
    assert!(deactivations <= 3.0, "deactivate {deactivations}");
    assert!(adds <= 4.25, "member add {adds}");
    assert!(pages <= 4.0, "page of 100 {pages}");
}
