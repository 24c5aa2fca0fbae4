//! The built component served over HTTP by the test host, the way Okta reaches it:
//! recorded Okta interactions, Okta's spec test, isolation, and concurrency with many
//! requests in flight on separate instances.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../tests/common/case_pairs.rs"]
mod case_pairs;
mod common;
#[path = "../../tests/common/fixtures.rs"]
mod fixtures;
#[path = "../../tests/common/runscope.rs"]
mod runscope;

use common::*;
use scim_edge_host::client::{request, Conn};
use scim_edge_host::Running;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Organization ids for tests that need a fresh one: `...-4000-8000-0000000000NN`.
fn org(n: u32, _policy: &str) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

const POLICIES: [(u32, &str); 40] = {
    let mut a = [(0u32, "strict"); 40];
    let mut i = 0;
    while i < 40 {
        a[i] = (
            i as u32 + 1,
            if i % 10 == 9 {
                "off"
            } else if i % 10 == 8 {
                "lenient"
            } else {
                "strict"
            },
        );
        i += 1;
    }
    a
};

fn shared() -> &'static Running {
    static S: OnceLock<Running> = OnceLock::new();
    S.get_or_init(|| {
        let entries: Vec<String> = POLICIES
            .iter()
            .map(|(n, p)| org_entry(&org(*n, p), p))
            .collect();
        server_with(HashMap::from([(
            "organizations".to_string(),
            organizations_with(&entries),
        )]))
    })
}

/// A fresh organization of the given policy, for one test.
fn fresh(policy: &str) -> String {
    static NEXT: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());
    let mut used = NEXT.lock().unwrap();
    let (n, p) = POLICIES
        .iter()
        .find(|(n, p)| *p == policy && !used.contains(n))
        .copied()
        .unwrap();
    used.push(n);
    org(n, p)
}

fn send(
    s: &Running,
    method: &str,
    path: &str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> fixtures::Exchange {
    let hs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = as_org(s, method, path, &hs, &body);
    (r.status, r.headers, r.body)
}

#[test]
fn okta_fixtures_over_http() {
    let s = shared();
    for f in fixtures::files() {
        fixtures::replay(&f, &|policy| fresh(policy), &mut |m, p, h, b| {
            send(s, m, p, h, b)
        });
    }
}

#[test]
fn okta_spec_test_over_http() {
    let s = shared();
    let o = fresh("strict");
    let (st, _, _) = send(s, "POST", &format!("/v2/{o}/Users"), vec![("content-type".into(), "application/json".into())],
        json!({"userName": "existing@atko.com", "name": {"givenName": "Ex", "familyName": "Isting"}, "emails": [{"primary": true, "value": "existing@atko.com"}], "active": true}).to_string().into_bytes());
    assert_eq!(st, 201);
    runscope::assert_passes_over_http(
        "e2e::okta_spec_test_over_http",
        &format!("/scim/v2/{o}"),
        &format!("Bearer {}", key(&o)),
        11,
        &mut |m, t, h, b| {
            let r = request(s.addr, m, t, h, b).unwrap();
            (r.status, r.body)
        },
    );
}

#[test]
fn organizations_are_isolated_over_http() {
    let s = shared();
    let (a, b) = (fresh("strict"), fresh("strict"));
    let body = json!({"userName": "iso@x.io", "emails": [{"primary": true, "value": "iso@x.io"}]});
    let r = call(s, "POST", &format!("/v2/{a}/Users"), Some(&body));
    let id = json(&r)["id"].as_str().unwrap().to_string();
    assert_eq!(
        call(s, "GET", &format!("/v2/{b}/Users/{id}"), None).status,
        404
    );
    assert_eq!(
        json(&call(s, "GET", &format!("/v2/{b}/Users"), None))["totalResults"],
        0
    );
    // A's key on B's paths.
    for (method, path) in [
        ("GET", format!("/v2/{b}/Users")),
        ("DELETE", format!("/v2/{b}/Users/{id}")),
    ] {
        let auth = format!("Bearer {}", key(&a));
        let r = request(s.addr, method, &path, &[("authorization", &auth)], b"").unwrap();
        assert_eq!(r.status, 401, "{method} {path}");
    }
    assert_eq!(
        call(s, "GET", &format!("/v2/{a}/Users/{id}"), None).status,
        200
    );
}

#[test]
fn keep_alive_connection_serves_many_requests() {
    let s = shared();
    let o = fresh("strict");
    let mut c = Conn::open(s.addr).unwrap();
    let auth = format!("Bearer {}", key(&o));
    for i in 0..20 {
        let body = json!({"userName": format!("ka{i}@x.io"), "emails": [{"primary": true, "value": format!("ka{i}@x.io")}]}).to_string();
        let r = c
            .send(
                "POST",
                &format!("/v2/{o}/Users"),
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                body.as_bytes(),
            )
            .unwrap();
        assert_eq!(r.status, 201);
        let r = c
            .send(
                "GET",
                &format!("/v2/{o}/Users?count=1"),
                &[("authorization", &auth)],
                b"",
            )
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&r.body).unwrap()["totalResults"],
            i + 1
        );
    }
}

fn in_flight<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let (f, barrier) = (&f, &barrier);
                sc.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// After concurrent writers: where the host has atomics nothing was lost and the repair
/// route finds nothing to do; on the edge (no atomics) concurrent writers can overwrite
/// one another's log slots, and the repair route brings every list back to exact.
fn settle(s: &Running, o: &str) {
    let r = call(s, "POST", &format!("/v2/{o}/_repair"), None);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let done = json(&r);
    if profile() == scim_edge_host::Profile::Spin {
        for k in [
            "membersAdded",
            "membersRemoved",
            "userGroupsAdded",
            "userGroupsRemoved",
            "staleMarkersRemoved",
        ] {
            assert_eq!(done[k], 0, "{k}: {done}");
        }
        assert_eq!(done["rebuiltListings"], json!([]), "{done}");
    } else {
        eprintln!("repair on the edge profile: {done}");
    }
}

#[test]
fn concurrent_posts_of_one_user_name_leave_one_user() {
    let s = shared();
    let o = fresh("strict");
    let body =
        json!({"userName": "race@x.io", "emails": [{"primary": true, "value": "race@x.io"}]});
    let statuses = in_flight(48, |_| {
        call(s, "POST", &format!("/v2/{o}/Users"), Some(&body)).status
    });
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&201));
    settle(s, &o);
    let list = json(&call(s, "GET", &format!("/v2/{o}/Users"), None));
    assert_eq!(list["totalResults"], 1, "{list}");
    let found = json(&call(
        s,
        "GET",
        &format!("/v2/{o}/Users?filter=userName%20eq%20%22race%40x.io%22"),
        None,
    ));
    assert_eq!(found["totalResults"], 1);
}

#[test]
fn concurrent_member_adds_and_removes_lose_none() {
    let s = shared();
    let o = fresh("strict");
    let ids: Vec<String> = (0..48).map(|i| {
        let b = json!({"userName": format!("m{i}@x.io"), "emails": [{"primary": true, "value": format!("m{i}@x.io")}]});
        json(&call(s, "POST", &format!("/v2/{o}/Users"), Some(&b)))["id"].as_str().unwrap().to_string()
    }).collect();
    let g = json(&call(
        s,
        "POST",
        &format!("/v2/{o}/Groups"),
        Some(
            &json!({"displayName": "Busy", "members": ids[..16].iter().map(|i| json!({"value": i})).collect::<Vec<_>>()}),
        ),
    ));
    let gid = g["id"].as_str().unwrap().to_string();
    // 32 adds (16..48) and 8 removes (0..8) at once.
    let statuses = in_flight(40, |i| {
        let op = if i < 32 {
            json!({"op": "add", "path": "members", "value": [{"value": ids[16 + i]}]})
        } else {
            json!({"op": "remove", "path": format!("members[value eq \"{}\"]", ids[i - 32])})
        };
        call(s, "PATCH", &format!("/v2/{o}/Groups/{gid}?excludedAttributes=members"), Some(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [op]}))).status
    });
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    settle(s, &o);
    let g = json(&call(s, "GET", &format!("/v2/{o}/Groups/{gid}"), None));
    let mut got: Vec<&str> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    got.sort();
    let mut want: Vec<&str> = ids[8..].iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(got, want);
    for id in &ids[8..] {
        let u = json(&call(s, "GET", &format!("/v2/{o}/Users/{id}"), None));
        assert_eq!(u["groups"][0]["value"], gid.as_str(), "{u}");
    }
}

#[test]
fn concurrent_creates_never_leave_an_index_pointing_at_nothing() {
    let s = shared();
    let o = fresh("strict");
    let statuses = in_flight(64, |i| {
        let b = json!({"userName": format!("c{i}@x.io"), "externalId": format!("ext-{i}"), "emails": [{"primary": true, "value": format!("c{i}@x.io")}]});
        call(s, "POST", &format!("/v2/{o}/Users"), Some(&b)).status
    });
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let groups = in_flight(32, |i| {
        call(
            s,
            "POST",
            &format!("/v2/{o}/Groups"),
            Some(&json!({"displayName": format!("g{i}"), "externalId": format!("gx-{i}")})),
        )
        .status
    });
    assert!(groups.iter().all(|s| *s == 201));
    settle(s, &o);
    let entries = s.host.backend().entries();
    let records: std::collections::HashSet<&str> =
        entries.iter().map(|(k, _)| k.as_str()).collect();
    let mut indexes = 0;
    for (k, v) in &entries {
        if let Some(rest) = k.strip_prefix(&format!("{o}/x/")) {
            indexes += 1;
            let kind = if rest.starts_with('u') { "u" } else { "g" };
            let target = format!("{o}/{kind}/{}", String::from_utf8_lossy(v));
            assert!(
                records.contains(target.as_str()),
                "index {k} points at missing {target}"
            );
        }
    }
    // Users found by their name's derived id need no userName index entry.
    assert_eq!(indexes, 64 + 32 * 2);
    assert_eq!(
        json(&call(s, "GET", &format!("/v2/{o}/Users"), None))["totalResults"],
        64
    );
    assert_eq!(
        json(&call(s, "GET", &format!("/v2/{o}/Groups?count=0"), None))["totalResults"],
        32
    );
    for i in [0, 31, 63] {
        let r = json(&call(
            s,
            "GET",
            &format!("/v2/{o}/Users?filter=externalId%20eq%20%22ext-{i}%22"),
            None,
        ));
        assert_eq!(r["totalResults"], 1);
    }
}

/// Full Unicode case folding decides uniqueness and `userName eq` over HTTP too.
#[test]
fn identity_values_compare_by_unicode_case_folding() {
    let s = shared();
    let o = fresh("strict");
    let user = |name: &str| json!({"userName": name, "emails": [{"primary": true, "value": name, "type": "work"}]});
    for (i, (a, b, same)) in case_pairs::CASE_PAIRS.iter().enumerate() {
        let (a, b) = (format!("p{i}.{a}"), format!("p{i}.{b}"));
        let r = call(s, "POST", &format!("/v2/{o}/Users"), Some(&user(&a)));
        assert_eq!(r.status, 201, "{a}");
        let id = json(&r)["id"].as_str().unwrap().to_string();
        let r = call(s, "POST", &format!("/v2/{o}/Users"), Some(&user(&b)));
        assert_eq!(r.status, if *same { 409 } else { 201 }, "{a} / {b}");
        let filter: String = format!("userName eq \"{b}\"")
            .bytes()
            .map(|c| format!("%{c:02X}"))
            .collect();
        let r = call(s, "GET", &format!("/v2/{o}/Users?filter={filter}"), None);
        let found = json(&r)["Resources"][0]["id"].as_str().map(str::to_string);
        assert_eq!(found == Some(id), *same, "{a} / {b}");
    }
}
