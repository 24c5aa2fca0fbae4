//! The router end to end over the in-memory store: routing, auth and isolation,
//! discovery, bad input, lists, ETags, search, bulk, store failures, policies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{key, H, LENIENT, OFF, OTHER, STRICT};
use scim_edge::http::Request;
use serde_json::{json, Value};

fn u(org: &str) -> String {
    format!("/v2/{org}/Users")
}

#[test]
fn unknown_routes_are_scim_404s() {
    let h = H::new();
    for path in ["/", "/Users", "/v2", "/v2/not-a-uuid/Users", "/scim/v3/x"] {
        let r = h.router().handle(&Request::new("GET", path));
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(
            r.header_value("content-type"),
            Some("application/scim+json")
        );
        assert_eq!(
            r.body_json()["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
        assert_eq!(r.body_json()["status"], "404");
    }
    let (s, b) = h.call("GET", &format!("/v2/{STRICT}/Widgets"), None);
    assert_eq!(
        (s, b["detail"].as_str().unwrap()),
        (
            404,
            format!("No SCIM endpoint at '/v2/{STRICT}/Widgets'").as_str()
        )
    );
    let (s, _) = h.call("GET", &format!("/v2/{STRICT}/Users/a/b"), None);
    assert_eq!(s, 404);
    let (s, _) = h.call("GET", &format!("/v2/{STRICT}/Me"), None);
    assert_eq!(s, 501);
}

/// Each refusal's detail, and what is checked before it: the key, then a body where the
/// endpoints around take one, then the vault under `_vault/`.
#[test]
fn refusals_come_after_what_is_checked_first() {
    let h = H::new();
    let base = format!("/v2/{STRICT}");
    let call = |m: &str, path: &str, body: Option<Value>| {
        let (s, b) = h.call(m, &format!("{base}{path}"), body);
        (s, b["detail"].as_str().unwrap_or("").to_string())
    };
    let not_allowed = |allowed: &str| (405, format!("Method not allowed here; allowed: {allowed}"));
    for (m, path, allowed) in [
        ("DELETE", "/Users", "GET, POST"),
        ("POST", "/Groups/x", "GET, PUT, PATCH, DELETE"),
        ("GET", "/Users/.search", "POST"),
        ("GET", "/.search", "POST"),
        ("PATCH", "/Bulk", "POST"),
        ("GET", "/_repair", "POST"),
        ("DELETE", "/Schemas/x", "GET"),
    ] {
        assert_eq!(
            call(m, path, Some(json!({}))),
            not_allowed(allowed),
            "{m} {path}"
        );
    }
    let empty = (400, "The request body is empty".to_string());
    assert_eq!(call("PUT", "/Users", None), empty);
    assert_eq!(call("POST", "/Users/a/b", None), empty);
    assert_eq!(call("POST", "/Bulk/x", None), empty);
    assert_eq!(call("DELETE", "/Users", None), not_allowed("GET, POST"));
    assert_eq!(call("PUT", "/Schemas", None), not_allowed("GET"));
    let unknown = |path: &str| (404, format!("No SCIM endpoint at '{base}{path}'"));
    assert_eq!(call("GET", "/Users/a/b", None), unknown("/Users/a/b"));
    assert_eq!(call("POST", "/_vault", None), unknown("/_vault"));
    let no_vault = (
        404,
        "This organization has no vault configured (organizations.<id>.vault)".to_string(),
    );
    for (m, path) in [
        ("GET", "/_vault/sync"),
        ("POST", "/_vault/status"),
        ("GET", "/_vault/x"),
    ] {
        assert_eq!(call(m, path, None), no_vault, "{m} {path}");
    }
    for path in ["/Widgets", "/Users/a/b", "/_vault/sync"] {
        let r = h
            .router()
            .handle(&Request::new("PUT", &format!("{base}{path}")));
        assert_eq!(r.status, 401, "{path}");
    }
}

#[test]
fn both_prefixes_route_alike_in_any_case() {
    let h = H::new();
    let id = h.user(STRICT, "pre@x.io");
    for prefix in ["/v2", "/scim/v2", "/SCIM/V2", "//scim//v2/"] {
        let (s, b) = h.call("GET", &format!("{prefix}/{STRICT}/users/{id}"), None);
        assert_eq!((s, b["id"].as_str()), (200, Some(id.as_str())), "{prefix}");
    }
    let r = h.send(Request::new(
        "GET",
        &format!("/scim/v2/{STRICT}/Users/{id}"),
    ));
    assert_eq!(
        r.header_value("location"),
        Some(format!("/scim/v2/{STRICT}/Users/{id}").as_str())
    );
}

#[test]
fn health_route_needs_no_key_and_reports_the_store() {
    let h = H::new();
    let r = h.router().handle(&Request::new("GET", "/healthz"));
    assert_eq!((r.status, r.body_json()), (200, json!({"status": "ok"})));
    assert_eq!(r.header_value("content-type"), Some("application/json"));
    assert_eq!(r.header_value("cache-control"), Some("no-store"));
    let r = h.router().handle(&Request::new("POST", "/healthz"));
    assert_eq!((r.status, r.header_value("allow")), (405, Some("GET")));
    h.store.fail_keys_containing(Some(""));
    let r = h.router().handle(&Request::new("GET", "/healthz"));
    assert_eq!(
        (r.status, r.body_json()),
        (
            503,
            json!({"status": "unavailable", "reason": "the store does not answer a read"})
        )
    );
    assert!(r.cause.as_deref().unwrap().contains("injected failure"));
    for org in [STRICT, LENIENT, OFF, OTHER] {
        assert!(!String::from_utf8_lossy(&r.body).contains(org));
    }
    h.store.fail_keys_containing(None);
    for path in ["/healthz/", "/HEALTHZ", &format!("/v2/{STRICT}/healthz")] {
        assert_ne!(
            h.router().handle(&Request::new("GET", path)).status,
            200,
            "{path}"
        );
    }
}

#[test]
fn impossible_timestamps_are_refused_in_filters_and_bodies() {
    let h = H::new();
    h.user(STRICT, "t@x.io");
    let list = |f: &str| {
        let q: String = f.bytes().map(|c| format!("%{c:02X}")).collect();
        h.call("GET", &format!("/v2/{STRICT}/Users?filter={q}"), None)
    };
    let (s, b) = list("meta.lastModified gt \"2026-02-31T00:00:00Z\"");
    assert_eq!(
        (s, b["scimType"].as_str(), b["detail"].as_str()),
        (400, Some("invalidFilter"), Some("'2026-02-31T00:00:00Z' is not a date-time for 'meta.lastModified': 2026-02 has no day 31"))
    );
    let (s, b) = list("meta.created lt \"2026-01-01T00:00:00+99:99\"");
    assert_eq!(
        (s, b["scimType"].as_str()),
        (400, Some("invalidFilter")),
        "{b}"
    );
    let (s, b) = list("meta.created gt \"2000-02-29T23:59:59.999-23:59\"");
    assert_eq!((s, b["totalResults"].as_u64()), (200, Some(1)), "{b}");
    let (s, b) = h.call(
        "POST",
        &u(STRICT),
        Some(json!({"userName": "t2@x.io", "emails": [{"primary": true, "value": "t2@x.io"}], "meta": {"lastModified": "2026-02-31T00:00:00Z"}})),
    );
    assert_eq!(
        (s, b["scimType"].as_str(), b["detail"].as_str()),
        (400, Some("invalidValue"), Some("Attribute 'meta.lastModified' is not a date-time: '2026-02-31T00:00:00Z': 2026-02 has no day 31"))
    );
}

#[test]
fn onelogin_lists_a_scim_1_urn_beside_2_0() {
    let h = H::new();
    let (s, b) = h.call(
        "POST",
        &u(STRICT),
        Some(json!({"schemas": ["urn:scim:schemas:core:1.0", "urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ol@x.io", "emails": [{"primary": true, "value": "ol@x.io"}]})),
    );
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        b["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );
    let (s, b) = h.call(
        "PUT",
        &format!("{}/{}", u(STRICT), b["id"].as_str().unwrap()),
        Some(json!({"schemas": ["urn:scim:schemas:core:1.0"], "userName": "ol@x.io", "emails": [{"primary": true, "value": "ol@x.io"}], "urn:scim:schemas:core:1.0": {"x": 1}})),
    );
    assert_eq!(
        (s, b["scimType"].as_str(), b["detail"].as_str()),
        (
            400,
            Some("invalidValue"),
            Some("Unknown schema extension 'urn:scim:schemas:core:1.0' for resource type User")
        )
    );
}

#[test]
fn authentication() {
    let h = H::new();
    let path = u(STRICT);
    let cases: Vec<(Vec<(&str, String)>, u16)> = vec![
        (vec![], 401),
        (
            vec![("Authorization", format!("Bearer {}", key(STRICT)))],
            200,
        ),
        (
            vec![("authorization", format!("bearer {}", key(STRICT)))],
            200,
        ),
        (
            vec![("Authorization", format!("Bearer {}-rotated", key(STRICT)))],
            200,
        ),
        (vec![("Authorization", key(STRICT))], 401),
        (
            vec![("Authorization", format!("Bearer  {}", key(STRICT)))],
            401,
        ),
        (
            vec![("Authorization", format!("Basic {}", key(STRICT)))],
            401,
        ),
        (
            vec![("Authorization", format!("Bearer {}", key(OTHER)))],
            401,
        ),
        (vec![("Authorization", "non-token".into())], 401),
        (
            vec![
                ("Authorization", format!("Bearer {}", key(STRICT))),
                ("Authorization", format!("Bearer {}", key(STRICT))),
            ],
            401,
        ),
    ];
    for (headers, want) in cases {
        let mut req = Request::new("GET", &path);
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        let r = h.router().handle(&req);
        assert_eq!(r.status, want, "{headers:?}");
        if want == 401 {
            assert_eq!(
                r.header_value("www-authenticate"),
                Some("Bearer realm=\"scim\"")
            );
            let b = r.body_json();
            assert_eq!(b["status"], "401");
            assert!(!b["detail"].as_str().unwrap().contains(&key(STRICT)));
        }
    }
    // An organization that is not configured cannot be told apart from a bad key.
    let r = h.router().handle(
        &Request::new("GET", "/v2/99999999-9999-4999-8999-999999999999/Users")
            .header("Authorization", "Bearer x"),
    );
    assert_eq!(r.status, 401);
}

#[test]
fn organizations_are_isolated() {
    let h = H::new();
    let id = h.user(STRICT, "iso@x.io");
    let gid = h.group(STRICT, "Iso");
    assert_eq!(
        h.call("GET", &format!("/v2/{OTHER}/Users/{id}"), None).0,
        404
    );
    assert_eq!(
        h.call("GET", &format!("/v2/{OTHER}/Groups/{gid}"), None).0,
        404
    );
    assert_eq!(
        h.call(
            "GET",
            &format!("/v2/{OTHER}/Users?filter=userName%20eq%20%22iso%40x.io%22"),
            None
        )
        .1["totalResults"],
        0
    );
    assert_eq!(
        h.call("GET", &format!("/v2/{OTHER}/Users"), None).1["totalResults"],
        0
    );
    assert_eq!(
        h.call("DELETE", &format!("/v2/{OTHER}/Users/{id}"), None).0,
        404
    );
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]});
    let other_g = h.group(OTHER, "Other");
    let (s, b) = h.call(
        "PATCH",
        &format!("/v2/{OTHER}/Groups/{other_g}"),
        Some(patch),
    );
    assert_eq!(
        (s, b["members"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{b}"
    );
    // The same name in another organization is another user.
    let other = h.user(OTHER, "iso@x.io");
    assert_ne!(other, id);
    // A key of one organization used on another's path.
    let r = h.router().handle(
        &Request::new("GET", &format!("/v2/{OTHER}/Users/{other}"))
            .header("Authorization", &format!("Bearer {}", key(STRICT))),
    );
    assert_eq!(r.status, 401);
    assert!(h
        .store
        .keys()
        .iter()
        .all(|k| k.starts_with(STRICT) || k.starts_with(OTHER)));
}

#[test]
fn discovery_endpoints() {
    let h = H::new();
    for base in [format!("/v2/{STRICT}"), format!("/scim/v2/{STRICT}")] {
        let (s, spc) = h.call("GET", &format!("{base}/ServiceProviderConfig"), None);
        assert_eq!(s, 200);
        assert_eq!(spc["patch"]["supported"], true);
        assert_eq!(spc["bulk"]["maxOperations"], 100);
        assert_eq!(spc["bulk"]["maxPayloadSize"], 1048576);
        assert_eq!(spc["filter"]["maxResults"], 1000);
        assert_eq!(spc["etag"]["supported"], true);
        assert_eq!(spc["authenticationSchemes"][0]["type"], "oauthbearertoken");
        let (_, rts) = h.call("GET", &format!("{base}/ResourceTypes"), None);
        assert_eq!(rts["totalResults"], 2);
        assert_eq!(
            rts["Resources"][0]["schemaExtensions"][0]["schema"],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        );
        let (s, rt) = h.call("GET", &format!("{base}/resourcetypes/group"), None);
        assert_eq!((s, rt["endpoint"].as_str()), (200, Some("/Groups")));
        let (_, schemas) = h.call("GET", &format!("{base}/Schemas"), None);
        assert_eq!(schemas["totalResults"], 3);
        let (s, one) = h.call(
            "GET",
            &format!("{base}/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group"),
            None,
        );
        assert_eq!((s, one["name"].as_str()), (200, Some("Group")));
        assert_eq!(
            h.call("GET", &format!("{base}/Schemas/urn:nope"), None).0,
            404
        );
        assert_eq!(
            h.call("GET", &format!("{base}/ResourceTypes/Widget"), None)
                .0,
            404
        );
        for m in ["POST", "PUT", "PATCH", "DELETE"] {
            for endpoint in ["ServiceProviderConfig", "ResourceTypes", "Schemas"] {
                let (s, b) = h.call(m, &format!("{base}/{endpoint}"), Some(json!({})));
                assert_eq!(
                    (s, b["status"].as_str()),
                    (405, Some("405")),
                    "{m} {endpoint}"
                );
                let r = h.send(Request::new(m, &format!("{base}/{endpoint}")));
                assert_eq!(r.status, 405, "{m} {endpoint} without a body");
            }
        }
    }
}

#[test]
fn bad_input_is_rejected_and_writes_nothing() {
    let h = H::new();
    h.user(STRICT, "keep@x.io");
    let before = h.store.keys();
    let post = |body: &[u8], ct: &str| {
        let mut req = Request::new("POST", &u(STRICT)).header("Content-Type", ct);
        req.body = body.to_vec();
        let r = h.send(req);
        (r.status, r.body_json())
    };
    let (s, b) = post(b"{\"userName\": ", "application/scim+json");
    assert_eq!((s, b["scimType"].as_str()), (400, Some("invalidSyntax")));
    assert!(b["detail"]
        .as_str()
        .unwrap()
        .starts_with("The request body is not valid JSON: EOF while parsing"));
    let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
    let (s, b) = post(deep.as_bytes(), "application/json");
    assert_eq!(
        (s, b["detail"].as_str()),
        (400, Some("The request body nests deeper than 32 levels"))
    );
    let big = format!("{{\"userName\": \"{}\"}}", "a".repeat(1 << 20));
    let (s, b) = post(big.as_bytes(), "application/json");
    assert_eq!((s, b["status"].as_str()), (413, Some("413")));
    let (s, _) = post(b"{}", "text/plain");
    assert_eq!(s, 415);
    let (s, b) = post(b"", "application/json");
    assert_eq!(
        (s, b["detail"].as_str()),
        (400, Some("The request body is empty"))
    );
    let (s, b) = post(b"[1,2]", "application/json");
    assert_eq!(
        (s, b["detail"].as_str()),
        (400, Some("The request body must be a JSON object"))
    );
    let (s, b) = post(br#"{"userName": "a@b.c", "emails": [{"primary": true, "value": "a@b.c"}], "favouriteColour": "red"}"#, "application/json");
    assert_eq!(
        (s, b["detail"].as_str(), b["scimType"].as_str()),
        (
            400,
            Some("Unknown attribute 'favouriteColour' for resource type User"),
            Some("invalidValue")
        )
    );
    let (s, b) = post(br#"{"userName": "a@b.c", "emails": [{"primary": true, "value": "a@b.c"}], "active": "yes"}"#, "application/json");
    assert_eq!(
        (s, b["detail"].as_str()),
        (400, Some("Attribute 'active' must be a boolean"))
    );
    let (s, b) = post(
        br#"{"schemas": ["urn:example:Widget"], "userName": "a@b.c", "urn:example:Widget": {"size": 1}}"#,
        "application/json",
    );
    assert_eq!(
        (s, b["detail"].as_str(), b["scimType"].as_str()),
        (
            400,
            Some("Unknown schema extension 'urn:example:Widget' for resource type User"),
            Some("invalidValue")
        )
    );
    let (s, b) = post(
        br#"{"userName": "keep@x.io", "emails": [{"primary": true, "value": "keep@x.io"}]}"#,
        "application/json",
    );
    assert_eq!((s, b["scimType"].as_str()), (409, Some("uniqueness")));
    let (s, b) = post(
        br#"{"userName": "KEEP@X.IO", "emails": [{"primary": true, "value": "keep@x.io"}]}"#,
        "application/json",
    );
    assert_eq!((s, b["scimType"].as_str()), (409, Some("uniqueness")));
    assert_eq!(h.store.keys(), before, "a rejected request wrote something");
    // Ids that are not UUIDs are simply not found.
    let (s, b) = h.call(
        "GET",
        &format!("{}/010101001010101011001010101011", u(STRICT)),
        None,
    );
    assert_eq!(
        (s, b["detail"].as_str()),
        (404, Some("User 010101001010101011001010101011 not found"))
    );
    // A PATCH whose second operation fails changes nothing.
    let id = h.user(STRICT, "atomic@x.io");
    let before = h.call("GET", &format!("{}/{id}", u(STRICT)), None).1;
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "replace", "path": "displayName", "value": "changed"},
        {"op": "replace", "path": "active", "value": 3}]});
    assert_eq!(
        h.call("PATCH", &format!("{}/{id}", u(STRICT)), Some(patch))
            .0,
        400
    );
    assert_eq!(
        h.call("GET", &format!("{}/{id}", u(STRICT)), None).1,
        before
    );
}

#[test]
fn list_parameters() {
    let h = H::new();
    for n in ["c", "a", "d", "b"] {
        h.user(STRICT, &format!("{n}@x.io"));
    }
    let list = |q: &str| h.call("GET", &format!("{}?{q}", u(STRICT)), None);
    let names = |b: &Value| {
        b["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["userName"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    let (_, b) = list("startIndex=0&count=2");
    assert_eq!(
        (
            b["startIndex"].as_u64(),
            b["itemsPerPage"].as_u64(),
            b["totalResults"].as_u64()
        ),
        (Some(1), Some(2), Some(4))
    );
    assert_eq!(names(&b), ["c@x.io", "a@x.io"]);
    let (_, b) = list("count=-5");
    assert_eq!(
        (b["itemsPerPage"].as_u64(), b["totalResults"].as_u64()),
        (Some(0), Some(4))
    );
    let (s, b) = list("count=abc");
    assert_eq!(
        (s, b["detail"].as_str()),
        (400, Some("'count' must be an integer, not 'abc'"))
    );
    let (_, b) = list("sortBy=userName");
    assert_eq!(names(&b), ["a@x.io", "b@x.io", "c@x.io", "d@x.io"]);
    let (_, b) = list("sortBy=userName&sortOrder=descending&startIndex=2&count=2");
    assert_eq!(names(&b), ["c@x.io", "b@x.io"]);
    let (s, _) = list("sortBy=userName&sortOrder=sideways");
    assert_eq!(s, 400);
    let (s, b) = list("sortBy=shoeSize");
    assert_eq!(
        (s, b["detail"].as_str()),
        (400, Some("Unknown sortBy attribute 'shoeSize'"))
    );
    let (_, b) =
        list("filter=userName%20sw%20%22b%22%20or%20userName%20sw%20%22d%22&sortBy=userName");
    assert_eq!(names(&b), ["b@x.io", "d@x.io"]);
    let (s, b) = list("filter=userName%20eq");
    assert_eq!((s, b["scimType"].as_str()), (400, Some("invalidFilter")));
    let (_, b) = list("attributes=userName&count=1");
    let r = &b["Resources"][0];
    let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["id", "schemas", "userName"]);
    let (_, b) = list("excludedAttributes=emails,meta,name&count=1");
    assert!(
        b["Resources"][0].get("emails").is_none()
            && b["Resources"][0].get("meta").is_none()
            && b["Resources"][0]["id"].is_string()
    );
    let (_, b) = list("count=100000");
    assert_eq!(b["itemsPerPage"], 4);
}

#[test]
fn etags_and_preconditions() {
    let h = H::new();
    let id = h.user(STRICT, "etag@x.io");
    let path = format!("{}/{id}", u(STRICT));
    let r = h.send(Request::new("GET", &path));
    let etag = r.header_value("etag").unwrap().to_string();
    assert!(etag.starts_with("W/\""));
    assert_eq!(r.body_json()["meta"]["version"], etag.as_str());
    let r = h.send(Request::new("GET", &path).header("If-None-Match", &etag));
    assert_eq!((r.status, r.body.len()), (304, 0));
    let body = json!({"userName": "etag@x.io", "emails": [{"primary": true, "value": "etag@x.io"}], "title": "T"});
    let r = h.send(
        Request::new("PUT", &path)
            .header("If-Match", &etag)
            .json(&body),
    );
    assert_eq!(r.status, 200);
    let r = h.send(
        Request::new("PUT", &path)
            .header("If-Match", &etag)
            .json(&body),
    );
    assert_eq!(
        (r.status, r.body_json()["status"].as_str()),
        (412, Some("412"))
    );
    let r = h.send(Request::new("DELETE", &path).header("If-Match", "W/\"stale\""));
    assert_eq!(r.status, 412);
    let r = h.send(Request::new("DELETE", &path).header("If-Match", "*"));
    assert_eq!(r.status, 204);
    // Group versions move with membership.
    let gid = h.group(STRICT, "G");
    let gpath = format!("/v2/{STRICT}/Groups/{gid}");
    let v1 = h
        .send(Request::new("GET", &gpath))
        .header_value("etag")
        .unwrap()
        .to_string();
    let m = h.user(STRICT, "m@x.io");
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": [{"value": m}]}]});
    h.call("PATCH", &gpath, Some(patch));
    let v2 = h
        .send(Request::new("GET", &gpath))
        .header_value("etag")
        .unwrap()
        .to_string();
    assert_ne!(v1, v2);
    assert_eq!(
        h.send(Request::new("GET", &gpath).header("If-None-Match", &v1))
            .status,
        200
    );
}

#[test]
fn create_response_shape() {
    let h = H::new();
    let r = h.send(Request::new("POST", &format!("/scim/v2/{STRICT}/users")).header("Content-Type", "application/json").json(&json!({
        "userName": "Shape@X.io", "emails": [{"primary": true, "value": "shape@x.io"}], "password": "p", "name": {"givenName": "S", "familyName": "H"}})));
    assert_eq!(r.status, 201);
    let b = r.body_json();
    let id = b["id"].as_str().unwrap();
    assert_eq!(
        r.header_value("location"),
        Some(format!("/scim/v2/{STRICT}/Users/{id}").as_str())
    );
    assert_eq!(
        b["meta"]["location"],
        format!("/scim/v2/{STRICT}/Users/{id}")
    );
    assert_eq!(b["userName"], "Shape@X.io");
    assert!(b.get("password").is_none());
    assert!(!String::from_utf8_lossy(&h.store.get_raw_all()).contains("\"password\""));
    assert_eq!(b["meta"]["created"], b["meta"]["lastModified"]);
    // One resource, however it is answered, carries its Location (RFC 7644 3.4.1).
    let gid = h.group(STRICT, "Shape group");
    for (method, path, body) in [
        ("GET", format!("/scim/v2/{STRICT}/Users/{id}"), None),
        (
            "PATCH",
            format!("/scim/v2/{STRICT}/Users/{id}"),
            Some(
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "displayName", "value": "S"}]}),
            ),
        ),
        ("GET", format!("/v2/{STRICT}/Groups/{gid}"), None),
        (
            "PUT",
            format!("/v2/{STRICT}/Groups/{gid}"),
            Some(json!({"displayName": "Shape group 2"})),
        ),
    ] {
        let mut req = Request::new(method, &path);
        if let Some(b) = &body {
            req = req.header("Content-Type", "application/scim+json").json(b);
        }
        let r = h.send(req);
        assert_eq!(r.status, 200, "{method} {path}");
        assert_eq!(
            r.header_value("location"),
            Some(path.as_str()),
            "{method} {path}"
        );
        assert_eq!(r.body_json()["meta"]["location"], path.as_str());
    }
    let r = h.send(Request::new("GET", &format!("/v2/{STRICT}/Users")));
    assert_eq!(r.header_value("location"), None);
}

/// Root `.search` pages through Users then Groups as one list, past `max_count`.
#[test]
fn root_search_pages_past_the_largest_page() {
    let mut h = H::new();
    h.config.limits.max_count = 3;
    let mut all: Vec<String> = (0..5)
        .map(|i| h.user(STRICT, &format!("r{i}@x.io")))
        .collect();
    all.extend((0..4).map(|i| h.group(STRICT, &format!("R{i}"))));
    for filter in [None, Some("meta.resourceType pr")] {
        for start in 1..=11 {
            for count in 0..=4 {
                let mut body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "startIndex": start, "count": count, "attributes": ["id"]});
                if let Some(f) = filter {
                    body["filter"] = json!(f);
                }
                let (s, b) = h.call("POST", &format!("/v2/{STRICT}/.search"), Some(body));
                assert_eq!(s, 200, "{b}");
                let got: Vec<&str> = b["Resources"]
                    .as_array()
                    .map(|a| a.iter().map(|r| r["id"].as_str().unwrap()).collect())
                    .unwrap_or_default();
                let want: Vec<&str> = all
                    .iter()
                    .skip(start - 1)
                    .take(count.min(3))
                    .map(String::as_str)
                    .collect();
                assert_eq!(got, want, "filter {filter:?} start {start} count {count}");
                assert_eq!(b["totalResults"], 9);
            }
        }
    }
}

#[test]
fn search_endpoints() {
    let h = H::new();
    h.user(STRICT, "s1@x.io");
    h.user(STRICT, "s2@x.io");
    h.group(STRICT, "S group");
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName sw \"s\"", "sortBy": "userName", "startIndex": 1, "count": 1, "attributes": ["userName"]});
    let (s, b) = h.call("POST", &format!("{}/.search", u(STRICT)), Some(body));
    assert_eq!(
        (
            s,
            b["totalResults"].as_u64(),
            b["Resources"][0]["userName"].as_str()
        ),
        (200, Some(2), Some("s1@x.io"))
    );
    let (s, b) = h.call("POST", &format!("/v2/{STRICT}/.search"), Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "displayName sw \"S\""})));
    assert_eq!((s, b["totalResults"].as_u64()), (200, Some(1)));
    let (s, b) = h.call(
        "POST",
        &format!("/v2/{STRICT}/.search"),
        Some(json!({"filter": "meta.resourceType pr"})),
    );
    assert_eq!((s, b["totalResults"].as_u64()), (200, Some(3)));
    let (s, b) = h.call(
        "POST",
        &format!("/v2/{STRICT}/.search"),
        Some(json!({"filter": "nosuch pr"})),
    );
    assert_eq!((s, b["scimType"].as_str()), (400, Some("invalidFilter")));
    assert_eq!(
        h.call("GET", &format!("{}/.search", u(STRICT)), None).0,
        405
    );
}

#[test]
fn bulk_with_references() {
    let h = H::new();
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
        {"method": "POST", "path": "/Groups", "bulkId": "g1", "data": {"displayName": "Bulk", "members": [{"value": "bulkId:u1"}]}},
        {"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"userName": "bulk@x.io", "emails": [{"primary": true, "value": "bulk@x.io"}]}},
        {"method": "PATCH", "path": "/Users/bulkId:u1", "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "title", "value": "T"}]}},
        {"method": "POST", "path": "/Users", "bulkId": "bad", "data": {"userName": "nope"}},
        {"method": "DELETE", "path": "/Groups/00000000-0000-4000-8000-00000000dead"}
    ]});
    let (s, b) = h.call("POST", &format!("/v2/{STRICT}/Bulk"), Some(body));
    assert_eq!(s, 200, "{b}");
    let ops = b["Operations"].as_array().unwrap();
    let statuses: Vec<&str> = ops.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["201", "201", "200", "400", "404"], "{b}");
    assert_eq!(
        b["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
    );
    let gid = ops[0]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let uid = ops[1]["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let (_, g) = h.call("GET", &format!("/v2/{STRICT}/Groups/{gid}"), None);
    assert_eq!(g["members"][0]["value"], uid.as_str());
    assert_eq!(ops[3]["response"]["scimType"], "invalidValue");
    // failOnErrors stops after the first failure.
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "failOnErrors": 1, "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "x"}},
        {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"userName": "never@x.io", "emails": [{"primary": true, "value": "never@x.io"}]}}]});
    let (_, b) = h.call("POST", &format!("/v2/{STRICT}/Bulk"), Some(body));
    assert_eq!(b["Operations"].as_array().unwrap().len(), 1);
    assert_eq!(
        h.call(
            "GET",
            &format!("{}?filter=userName%20eq%20%22never%40x.io%22", u(STRICT)),
            None
        )
        .1["totalResults"],
        0
    );
    // Circular references are reported, not looped on.
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
        {"method": "POST", "path": "/Groups", "bulkId": "x", "data": {"displayName": "X", "members": [{"value": "bulkId:y"}]}},
        {"method": "POST", "path": "/Groups", "bulkId": "y", "data": {"displayName": "Y", "members": [{"value": "bulkId:x"}]}}]});
    let (_, b) = h.call("POST", &format!("/v2/{STRICT}/Bulk"), Some(body));
    assert!(
        b["Operations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["status"] == "409"),
        "{b}"
    );
    let ops: Vec<Value> = (0..101)
        .map(|i| json!({"method": "DELETE", "path": format!("/Users/{i}")}))
        .collect();
    let (s, _) = h.call("POST", &format!("/v2/{STRICT}/Bulk"), Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops})));
    assert_eq!(s, 413);
    let (s, _) = h.call(
        "POST",
        &format!("/v2/{STRICT}/Bulk"),
        Some(json!({"Operations": []})),
    );
    assert_eq!(s, 400);
}

#[test]
fn store_failures_are_503_and_leave_no_index_behind() {
    let h = H::new();
    h.store.fail_keys_containing(Some("/u/"));
    let body = json!({"userName": "f@x.io", "emails": [{"primary": true, "value": "f@x.io"}]});
    let r = h.send(
        Request::new("POST", &u(STRICT))
            .header("Content-Type", "application/json")
            .json(&body),
    );
    assert_eq!(r.status, 503);
    assert_eq!(
        r.body_json()["detail"],
        "The storage backend is unavailable; retry later."
    );
    assert!(r.cause.as_deref().unwrap().contains("injected failure"));
    assert!(
        h.store.keys().iter().all(|k| !k.contains("/x/")),
        "an index was written for a record that is not there"
    );
    h.store.fail_keys_containing(None);
    let (s, b) = h.call("GET", &u(STRICT), None);
    assert_eq!((s, b["totalResults"].as_u64()), (200, Some(0)));
    let (s, _) = h.call("POST", &u(STRICT), Some(body));
    assert_eq!(s, 201);
    h.store.fail_keys_containing(Some("/L/"));
    let (s, _) = h.call("GET", &u(STRICT), None);
    assert_eq!(s, 503);
}

#[test]
fn bulk_logs_the_cause_of_each_failed_operation() {
    let h = H::new();
    h.store.fail_keys_containing(Some("/g/"));
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "u", "data": {"userName": "bk@x.io", "emails": [{"primary": true, "value": "bk@x.io"}]}},
        {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "BK"}},
    ]});
    let r = h.send(
        Request::new("POST", &format!("/v2/{STRICT}/Bulk"))
            .header("Content-Type", "application/scim+json")
            .json(&body),
    );
    assert_eq!(r.status, 200);
    let ops = r.body_json()["Operations"].clone();
    assert_eq!(
        (ops[0]["status"].as_str(), ops[1]["status"].as_str()),
        (Some("201"), Some("503"))
    );
    let log = r.cause.expect("the failed operation's cause is logged");
    assert!(log.starts_with("bulk operation 2: "), "{log}");
    assert!(log.contains("injected failure"), "{log}");
    assert!(!log.contains("bulk operation 1"), "{log}");
}

#[test]
fn delete_user_removes_memberships() {
    let h = H::new();
    let a = h.user(STRICT, "a@x.io");
    let b = h.user(STRICT, "b@x.io");
    let gid = h.group(STRICT, "G");
    let add = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": [{"value": a}, {"value": b}]}]});
    h.call("PATCH", &format!("/v2/{STRICT}/Groups/{gid}"), Some(add));
    assert_eq!(h.call("DELETE", &format!("{}/{a}", u(STRICT)), None).0, 204);
    assert_eq!(h.call("DELETE", &format!("{}/{a}", u(STRICT)), None).0, 404);
    assert_eq!(h.call("GET", &format!("{}/{a}", u(STRICT)), None).0, 404);
    let (_, g) = h.call("GET", &format!("/v2/{STRICT}/Groups/{gid}"), None);
    assert_eq!(
        g["members"],
        json!([{"value": b, "$ref": format!("/v2/{STRICT}/Users/{b}"), "display": "b@x.io", "type": "User"}])
    );
    // Re-created with the same name: same id, no old memberships.
    let again = h.user(STRICT, "a@x.io");
    assert_eq!(again, a);
    assert_eq!(
        h.call("GET", &format!("{}/{a}", u(STRICT)), None).1["groups"],
        json!([])
    );
    assert_eq!(h.call("GET", &u(STRICT), None).1["totalResults"], 2);
}

#[test]
fn member_patch_forms() {
    let h = H::new();
    let ids: Vec<String> = (0..4)
        .map(|i| h.user(STRICT, &format!("m{i}@x.io")))
        .collect();
    let gid = h.group(STRICT, "Forms");
    let path = format!("/v2/{STRICT}/Groups/{gid}");
    let patch = |ops: Value| {
        h.call("PATCH", &path, Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})))
    };
    let members = |b: &Value| {
        b["members"]
            .as_array()
            .unwrap_or_else(|| panic!("{b}"))
            .iter()
            .map(|m| m["value"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let (_, b) =
        patch(json!([{"op": "add", "value": {"members": [{"value": ids[0]}, {"value": ids[1]}]}}]));
    assert_eq!(members(&b), [ids[0].clone(), ids[1].clone()]);
    let (_, b) = patch(json!([{"op": "add", "path": format!("members[value eq \"{}\"]", ids[2])}]));
    assert_eq!(members(&b).len(), 3);
    let (_, b) = patch(json!([{"op": "remove", "path": "members", "value": [{"value": ids[0]}]}]));
    assert_eq!(members(&b), [ids[1].clone(), ids[2].clone()]);
    let (_, b) = patch(json!([{"op": "remove", "path": "members[display eq \"m1@x.io\"]"}]));
    assert_eq!(members(&b), [ids[2].clone()]);
    let (_, b) = patch(
        json!([{"op": "replace", "value": {"displayName": "Forms 2", "members": [{"value": ids[3]}]}}]),
    );
    assert_eq!(
        (members(&b), b["displayName"].as_str()),
        (vec![ids[3].clone()], Some("Forms 2"))
    );
    let (_, b) = patch(
        json!([{"op": "add", "path": "members", "value": [{"value": "not-a-uuid"}, {"value": ids[3]}]}]),
    );
    assert_eq!(members(&b), [ids[3].clone()]);
    let (_, b) = patch(json!([{"op": "remove", "path": "members"}]));
    assert_eq!(members(&b), Vec::<String>::new());
    let (s, b) =
        patch(json!([{"op": "replace", "path": "members[value eq \"x\"].display", "value": "y"}]));
    assert_eq!((s, b["scimType"].as_str()), (400, Some("mutability")));
    let (s, b) = patch(json!([{"op": "add", "path": "members", "value": ["bare"]}]));
    assert_eq!(
        (s, b["detail"].as_str()),
        (
            400,
            Some("Each member must be an object with a string 'value'")
        )
    );
    // Renaming onto another group's name is refused.
    h.group(STRICT, "Taken");
    let (s, b) = patch(json!([{"op": "replace", "path": "displayName", "value": "taken"}]));
    assert_eq!((s, b["scimType"].as_str()), (409, Some("uniqueness")));
    // Entra's membership check.
    h.call("PATCH", &path, Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": [{"value": ids[0]}]}]})));
    let q = format!("/v2/{STRICT}/Groups?filter=id%20eq%20%22{gid}%22%20and%20members%5Bvalue%20eq%20%22{}%22%5D&excludedAttributes=members", ids[0]);
    let (_, b) = h.call("GET", &q, None);
    assert_eq!(b["totalResults"], 1);
    assert!(b["Resources"][0].get("members").is_none());
}

#[test]
fn policies() {
    let h = H::new();
    // off: any userName, renames allowed and found again.
    let id = h
        .call("POST", &u(OFF), Some(json!({"userName": "random 123"})))
        .1["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, b) = h.call("PATCH", &format!("{}/{id}", u(OFF)), Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "userName", "value": "renamed"}]})));
    assert_eq!((s, b["userName"].as_str()), (200, Some("renamed")));
    let (_, b) = h.call(
        "GET",
        &format!("{}?filter=userName%20eq%20%22RENAMED%22", u(OFF)),
        None,
    );
    assert_eq!(b["Resources"][0]["id"], id.as_str());
    assert_eq!(
        h.call(
            "GET",
            &format!("{}?filter=userName%20eq%20%22random%20123%22", u(OFF)),
            None
        )
        .1["totalResults"],
        0
    );
    // The old name is free again, although the renamed user holds its derived id.
    let (s, b) = h.call("POST", &u(OFF), Some(json!({"userName": "random 123"})));
    assert_eq!(s, 201);
    assert_ne!(b["id"], id.as_str());
    let (s, _) = h.call("POST", &u(OFF), Some(json!({"userName": "Renamed"})));
    assert_eq!(s, 409);
    // strict refuses what lenient repairs.
    let body = json!({"userName": "len@x.io", "emails": [{"value": "len@x.io"}]});
    assert_eq!(h.call("POST", &u(STRICT), Some(body.clone())).0, 400);
    let (s, b) = h.call("POST", &u(LENIENT), Some(body));
    assert_eq!(
        (s, &b["emails"]),
        (201, &json!([{"value": "len@x.io", "primary": true}]))
    );
    let (s, b) = h.call("POST", &u(LENIENT), Some(json!({"userName": "bare@x.io"})));
    assert_eq!((s, &b["emails"][0]["value"]), (201, &json!("bare@x.io")));
    let (s, b) = h.call("POST", &u(STRICT), Some(json!({"userName": "bare@x.io"})));
    assert_eq!(
        (s, b["detail"].as_str()),
        (
            400,
            Some("A primary email is required: 'emails' is missing")
        )
    );
}

#[test]
fn concurrent_writers_lose_nothing() {
    let h = H::new();
    let body =
        json!({"userName": "race@x.io", "emails": [{"primary": true, "value": "race@x.io"}]});
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..32)
            .map(|_| s.spawn(|| h.call("POST", &u(STRICT), Some(body.clone())).0))
            .collect();
        hs.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&201));
    let (_, b) = h.call("GET", &u(STRICT), None);
    assert_eq!(b["totalResults"], 1, "{b}");
    let ids: Vec<String> = (0..40)
        .map(|i| h.user(STRICT, &format!("c{i}@x.io")))
        .collect();
    let gid = h.group(STRICT, "Busy");
    let path = format!("/v2/{STRICT}/Groups/{gid}");
    // Members 0..20 are added first; then 20..40 are added while 0..10 are removed.
    for id in &ids[..20] {
        h.call("PATCH", &path, Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]})));
    }
    std::thread::scope(|s| {
        for (i, id) in ids
            .iter()
            .enumerate()
            .skip(20)
            .chain(ids.iter().enumerate().take(10))
        {
            let (h, path) = (&h, &path);
            s.spawn(move || {
                let op = if i >= 20 { json!({"op": "add", "path": "members", "value": [{"value": id}]}) } else { json!({"op": "remove", "path": format!("members[value eq \"{id}\"]")}) };
                let (st, _) = h.call("PATCH", path, Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [op]})));
                assert_eq!(st, 200);
            });
        }
    });
    let (_, g) = h.call("GET", &path, None);
    let mut got: Vec<String> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    let mut want: Vec<String> = ids[10..].to_vec();
    want.sort();
    assert_eq!(got, want);
}
