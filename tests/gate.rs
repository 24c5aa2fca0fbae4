//! The Envoy filter's decisions, natively: configuration, admission on headers, body
//! screening and response repair. The same cases run through real Envoy in
//! `envoy/tests/envoy.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use scim_edge::auth::KeyHash;
use scim_edge::gate::{Admitted, GateConfig, ResponsePlan};
use serde_json::{json, Value};

const A: &str = "3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d";
const B: &str = "1a2b3c4d-0000-4000-8000-000000000001";
const OFF: &str = "8c7d6e5f-4a3b-4c2d-8e1f-0a9b8c7d6e5f";

fn config() -> GateConfig {
    let h = |o: &str| KeyHash::of(&format!("key-{o}")).to_hex();
    GateConfig::from_json(
        &json!({
            "organizations": {
                A: {"keys": [h(A)], "policy": "strict"},
                B: {"keys": [h(B)], "policy": "lenient"},
                OFF: {"keys": [h(OFF)], "policy": "off"}
            },
            "max_body_bytes": 1000
        })
        .to_string(),
    )
    .unwrap()
}

fn headers(org: &str, extra: &[(&str, &str)]) -> Headers {
    let mut h = vec![("authorization".to_string(), format!("Bearer key-{org}"))];
    h.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    h
}

type Headers = Vec<(String, String)>;

fn admit(method: &str, path: &str, h: &[(String, String)]) -> Result<Admitted, (u16, String)> {
    config()
        .admit(method, path, h)
        .map_err(|e| (e.status(), e.detail().to_string()))
}

#[test]
fn configuration_defaults_and_named_errors() {
    let h = KeyHash::of("k").to_hex();
    let c = GateConfig::from_json(&format!(
        r#"{{"organizations": {{"{A}": {{"keys": ["{h}"]}}}}}}"#
    ))
    .unwrap();
    assert_eq!(c.path_prefixes, vec!["/scim/v2", "/v2"]);
    assert_eq!(c.max_body, 1_048_576);
    let c = GateConfig::from_json(
        r#"{"organizations": {}, "path_prefixes": ["/v2/", "/api/scim/v2"]}"#,
    )
    .unwrap();
    assert_eq!(c.path_prefixes, vec!["/api/scim/v2", "/v2"]);
    let cases = [
        ("[]".to_string(), "configuration: expected a JSON object"),
        ("{}".to_string(), "organizations: required"),
        (r#"{"organizations": []}"#.to_string(), "organizations: not the expected JSON object: invalid type: sequence, expected a map"),
        (format!(r#"{{"organizations": {{"{A}": {{"keys": ["{h}"], "policy": "loose"}}}}}}"#), "organizations.3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d.policy: unknown policy 'loose' (expected strict, lenient or off)"),
        (r#"{"organizations": {"x": {"keys": []}}}"#.to_string(), "organizations.x: the organization id must be a UUID"),
        (r#"{"organizations": {}, "path_prefixes": []}"#.to_string(), "path_prefixes: expected a non-empty array of paths"),
        (r#"{"organizations": {}, "path_prefixes": ["/a/../b"]}"#.to_string(), "path_prefixes[0]: '/a/../b' is not an absolute path such as /scim/v2"),
        (r#"{"organizations": {}, "path_prefixes": ["/v2", 7]}"#.to_string(), "path_prefixes[1]: expected a string"),
        (r#"{"organizations": {}, "max_body_bytes": "1mb"}"#.to_string(), "max_body_bytes: expected a positive integer"),
        (r#"{"organizations": {}, "limits": {}}"#.to_string(), "limits: unknown setting (expected organizations, path_prefixes or max_body_bytes)"),
    ];
    for (json, want) in cases {
        assert_eq!(GateConfig::from_json(&json).unwrap_err(), want, "{json}");
    }
}

#[test]
fn admission_on_headers() {
    let ok = headers(A, &[]);
    let bad: &[(&str, &str, Headers, u16, &str)] = &[
        ("GET", "/v2/3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d/Users", vec![], 401, "Authentication failed: send 'Authorization: Bearer <key>' with a key of this organization"),
        ("GET", "/v2/3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d/Users", headers(B, &[]), 401, "Authentication failed: send 'Authorization: Bearer <key>' with a key of this organization"),
        ("GET", "/v2/not-a-uuid/Users", ok.clone(), 401, "Authentication failed: send 'Authorization: Bearer <key>' with a key of this organization"),
        ("GET", "/v2/99999999-9999-4999-8999-999999999999/Users", ok.clone(), 401, "Authentication failed: send 'Authorization: Bearer <key>' with a key of this organization"),
        ("GET", "/v2/3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d/Users", [ok.clone(), headers(A, &[])].concat(), 401, "Authentication failed: send 'Authorization: Bearer <key>' with a key of this organization"),
        ("GET", "/api/Users", ok.clone(), 404, "No SCIM endpoint at '/api/Users'; use /scim/v2/{organization}/... or /v2/{organization}/..."),
        ("GET", "/v2", ok.clone(), 404, "No SCIM endpoint at '/v2'; use /scim/v2/{organization}/... or /v2/{organization}/..."),
        ("GET", "/v2x/3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d/Users", ok.clone(), 404, "No SCIM endpoint at '/v2x/3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d/Users'; use /scim/v2/{organization}/... or /v2/{organization}/..."),
        ("GET", "/v2/3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d/../1a2b3c4d-0000-4000-8000-000000000001/Users", ok.clone(), 404, "The path '/v2/3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d/../1a2b3c4d-0000-4000-8000-000000000001/Users' has empty or dot segments; send a plain path"),
        ("GET", "/v2/3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d/%2e%2e/x", ok.clone(), 404, "The path '/v2/3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d/%2e%2e/x' has encoded separators or dots; send a plain path"),
        ("GET", "/v2/3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d%2F..%2Fx", ok.clone(), 404, "The path '/v2/3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d%2F..%2Fx' has encoded separators or dots; send a plain path"),
        ("GET", "/v2//3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d/Users", ok.clone(), 404, "The path '/v2//3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d/Users' has empty or dot segments; send a plain path"),
        ("POST", "/v2/3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d/Users", headers(A, &[("content-length", "1001")]), 413, "The request body is 1001 bytes; the maximum is 1000"),
        ("POST", "/v2/3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d/Users", headers(A, &[("content-type", "text/xml")]), 415, "Content-Type 'text/xml' is not supported; send application/scim+json"),
    ];
    for (method, path, h, status, detail) in bad {
        let e = admit(method, path, h).unwrap_err();
        assert_eq!((e.0, e.1.as_str()), (*status, *detail), "{method} {path}");
    }
    // Authentication comes before the size check: strangers learn nothing of limits.
    let e = admit(
        "POST",
        &format!("/v2/{A}/Users"),
        &headers(B, &[("content-length", "99999")]),
    )
    .unwrap_err();
    assert_eq!(e.0, 401);

    let reads = |m: &str, p: &str| {
        admit(m, p, &headers(A, &[("content-length", "1000")]))
            .unwrap()
            .reads_body()
    };
    assert!(reads("POST", &format!("/scim/v2/{A}/Users")));
    assert!(reads("PUT", &format!("/scim/v2/{A}/Users/x")));
    assert!(reads("PATCH", &format!("/scim/v2/{A}/Users/x")));
    assert!(reads("POST", &format!("/scim/v2/{A}/Groups")));
    assert!(reads("POST", &format!("/scim/v2/{A}/Bulk")));
    assert!(!reads(
        "GET",
        &format!("/scim/v2/{A}/Users?filter=userName%20eq%20%22a%22")
    ));
    assert!(!reads("DELETE", &format!("/scim/v2/{A}/Users/x")));
    // Case and a trailing slash do not matter, as for the vault.
    assert!(reads(
        "post",
        &format!("/SCIM/V2/{}/users/", A.to_uppercase())
    ));
}

/// Which body rule the gate applies to `method path`, told from what it does with two
/// bodies: a valid user (refused by the PATCH rule) and a valid PatchOp that leaves
/// identity alone (refused by the user-write rule). JSON screening takes both.
fn body_rule(method: &str, path: &str) -> &'static str {
    let c = config();
    let h = headers(A, &[("content-type", "text/plain")]);
    let a = match c.admit(method, path, &h) {
        Ok(a) => a,
        // A screened route checks the content type first.
        Err(e) if e.status() == 415 => c.admit(method, path, &headers(A, &[])).unwrap(),
        Err(e) => panic!("{method} {path}: {}", e.detail()),
    };
    if !a.reads_body() {
        return "none";
    }
    let user = json!({"userName": "a@x.io", "emails": [{"value": "a@x.io", "primary": true}]});
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]});
    let takes = |v: &Value| a.screen_body(&c, v.to_string().as_bytes()).is_ok();
    match (takes(&user), takes(&patch)) {
        (true, true) => "json",
        (true, false) => "user-write",
        (false, true) => "user-patch",
        (false, false) => panic!("{method} {path}: neither body passes"),
    }
}

#[test]
fn only_requests_the_api_reads_a_body_for_are_screened() {
    let table: &[(&str, &str, &str)] = &[
        // Okta's identity rules.
        ("POST", "Users", "user-write"),
        ("PUT", "Users/u1", "user-write"),
        ("PATCH", "Users/u1", "user-patch"),
        // JSON screening where the API parses a body.
        ("POST", "Groups", "json"),
        ("PUT", "Groups/g1", "json"),
        ("PATCH", "Groups/g1", "json"),
        ("POST", "Users/.search", "json"),
        ("POST", "Groups/.search", "json"),
        ("POST", ".search", "json"),
        ("POST", "Bulk", "json"),
        // Case and a trailing slash do not matter.
        ("post", "users/", "user-write"),
        ("Patch", "USERS/u1", "user-patch"),
        ("POST", "groups/.SEARCH", "json"),
        ("POST", "bulk/", "json"),
        // Discovery is GET only: other methods go to the vault, which answers 405.
        ("POST", "ServiceProviderConfig", "none"),
        ("PUT", "ServiceProviderConfig", "none"),
        ("PATCH", "ServiceProviderConfig", "none"),
        ("POST", "Schemas", "none"),
        ("PUT", "Schemas", "none"),
        ("PATCH", "Schemas", "none"),
        ("POST", "ResourceTypes", "none"),
        ("PUT", "ResourceTypes", "none"),
        ("PATCH", "ResourceTypes", "none"),
        ("PUT", "ResourceTypes/User", "none"),
        (
            "PATCH",
            "Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
            "none",
        ),
        ("post", "serviceproviderconfig/", "none"),
        // Methods an endpoint does not take, and routes that do not exist.
        ("PUT", "Users", "none"),
        ("PATCH", "Groups", "none"),
        ("POST", "Users/u1", "none"),
        ("PUT", "Users/.search", "none"),
        ("PATCH", "Users/.search", "none"),
        ("PUT", "Groups/.search", "none"),
        ("PUT", ".search", "none"),
        ("PUT", "Bulk", "none"),
        ("PATCH", "Bulk", "none"),
        ("POST", "Users/u1/emails", "none"),
        ("POST", "Me", "none"),
        ("POST", "Unknown", "none"),
        // No body is read for other methods.
        ("GET", "Users", "none"),
        ("GET", "Users/u1", "none"),
        ("DELETE", "Users/u1", "none"),
        ("DELETE", "Groups/g1", "none"),
        ("GET", "ServiceProviderConfig", "none"),
        ("OPTIONS", "Users", "none"),
    ];
    let got: Vec<(&str, &str, &str)> = table
        .iter()
        .map(|(m, p, _)| (*m, *p, body_rule(m, &format!("/scim/v2/{A}/{p}"))))
        .collect();
    assert_eq!(got, table);
}

#[test]
fn unscreened_requests_are_still_authenticated_and_size_limited() {
    let spc = format!("/v2/{A}/ServiceProviderConfig");
    // No body rule, so no content type is required either: the vault decides.
    for ct in ["text/plain", "application/xml"] {
        let a = admit("POST", &spc, &headers(A, &[("content-type", ct)])).unwrap();
        assert!(!a.reads_body(), "{ct}");
    }
    let e = admit("PUT", &spc, &headers(B, &[])).unwrap_err();
    assert_eq!(e.0, 401);
    let e = admit("PATCH", &spc, &[]).unwrap_err();
    assert_eq!(e.0, 401);
    let e = admit("POST", &spc, &headers(A, &[("content-length", "1001")])).unwrap_err();
    assert_eq!(
        e,
        (
            413,
            "The request body is 1001 bytes; the maximum is 1000".into()
        )
    );
}

fn screen(
    org: &str,
    method: &str,
    path: &str,
    body: &Value,
) -> Result<Option<Value>, (u16, Option<String>, String)> {
    let c = config();
    let a = c.admit(method, path, &headers(org, &[])).unwrap();
    a.screen_body(&c, body.to_string().as_bytes())
        .map(|o| o.map(|b| serde_json::from_slice(&b).unwrap()))
        .map_err(|e| {
            let j = e.to_json();
            (
                e.status(),
                j["scimType"].as_str().map(str::to_string),
                e.detail().to_string(),
            )
        })
}

#[test]
fn user_writes_are_normalized_or_refused() {
    let users = format!("/v2/{A}/Users");
    let clean = json!({"userName": "a@x.io", "emails": [{"value": "a@x.io", "primary": true}]});
    assert_eq!(screen(A, "POST", &users, &clean), Ok(None));
    let padded =
        json!({"userName": " a@x.io\t", "emails": [{"value": "a@x.io ", "primary": true}]});
    assert_eq!(screen(A, "POST", &users, &padded), Ok(Some(clean.clone())));
    assert_eq!(
        screen(
            A,
            "POST",
            &users,
            &json!({"userName": "a@x.io", "emails": [{"value": "b@x.io", "primary": true}]})
        ),
        Err((
            400,
            Some("invalidValue".into()),
            "userName 'a@x.io' must equal the primary email 'b@x.io'".into()
        ))
    );
    let lenient = format!("/v2/{B}/Users/u1");
    assert_eq!(
        screen(B, "PUT", &lenient, &json!({"userName": "a@x.io"})),
        Ok(Some(
            json!({"userName": "a@x.io", "emails": [{"value": "a@x.io", "type": "work", "primary": true}]})
        ))
    );
    assert_eq!(
        screen(
            OFF,
            "POST",
            &format!("/v2/{OFF}/Users"),
            &json!({"userName": " x "})
        ),
        Ok(None)
    );
    assert_eq!(
        screen(A, "POST", &users, &json!("a string")),
        Err((
            400,
            Some("invalidSyntax".into()),
            "The request body must be a JSON object".into()
        ))
    );
    // Groups are checked for syntax only.
    assert_eq!(
        screen(
            A,
            "POST",
            &format!("/v2/{A}/Groups"),
            &json!({"displayName": " g "})
        ),
        Ok(None)
    );
}

/// Inside `/Bulk`, each user operation gets the rule it would get alone; one that breaks
/// it refuses the request, naming the operation, and repairs are made in place.
#[test]
fn bulk_user_operations_get_the_user_rules() {
    let bulk = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops});
    let path = |o: &str| format!("/v2/{o}/Bulk");
    let group =
        json!({"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "G"}});
    let good = json!({"method": "POST", "path": "/Users", "bulkId": "u", "data": {"userName": "a@x.io", "emails": [{"value": "a@x.io", "primary": true}]}});
    assert_eq!(
        screen(A, "POST", &path(A), &bulk(json!([group, good]))),
        Ok(None)
    );
    let mismatch = json!({"method": "post", "path": "users", "bulkId": "v", "data": {"userName": "b@x.io", "emails": [{"value": "c@x.io", "primary": true}]}});
    assert_eq!(
        screen(A, "POST", &path(A), &bulk(json!([group, mismatch]))),
        Err((
            400,
            Some("invalidValue".into()),
            "Bulk operation 2: userName 'b@x.io' must equal the primary email 'c@x.io'".into()
        ))
    );
    let rename = json!({"method": "PATCH", "path": "/Users/u1", "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "userName", "value": "z@x.io"}]}});
    assert_eq!(
        screen(A, "POST", &path(A), &bulk(json!([rename]))),
        Err((
            400,
            Some("mutability".into()),
            "Bulk operation 1: userName cannot change once a user is provisioned".into()
        ))
    );
    let put = json!({"method": "PUT", "path": "/Users/bulkId:u", "data": {"userName": "d@x.io"}});
    assert_eq!(
        screen(A, "POST", &path(A), &bulk(json!([put])))
            .unwrap_err()
            .2,
        "Bulk operation 1: A primary email is required: 'emails' is missing"
    );
    // Lenient: the repair lands in the operation's data, the rest is as sent.
    let fixed = screen(B, "POST", &path(B), &bulk(json!([group, put])))
        .unwrap()
        .unwrap();
    assert_eq!(fixed["Operations"][0], group);
    assert_eq!(
        fixed["Operations"][1]["data"],
        json!({"userName": "d@x.io", "emails": [{"value": "d@x.io", "type": "work", "primary": true}]})
    );
    assert_eq!(
        screen(OFF, "POST", &path(OFF), &bulk(json!([mismatch]))),
        Ok(None)
    );
}

#[test]
fn patches_may_not_touch_identity() {
    let path = format!("/v2/{A}/Users/u1");
    let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    let user_name = Err((
        400,
        Some("mutability".to_string()),
        "userName cannot change once a user is provisioned".to_string(),
    ));
    let email = Err((
        400,
        Some("mutability".to_string()),
        "The primary email cannot change once a user is provisioned".to_string(),
    ));
    let cases = [
        (
            json!([{"op": "replace", "path": "userName", "value": "b@x.io"}]),
            user_name.clone(),
        ),
        (
            json!([{"op": "Replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:userName", "value": "b@x.io"}]),
            user_name.clone(),
        ),
        (
            json!([{"op": "replace", "value": {"userName": "b@x.io"}}]),
            user_name.clone(),
        ),
        (json!([{"op": "remove", "path": "userName"}]), user_name),
        (
            json!([{"op": "replace", "path": "emails[primary eq true].value", "value": "b@x.io"}]),
            email.clone(),
        ),
        (
            json!([{"op": "add", "path": "emails", "value": [{"value": "b@x.io", "primary": true}]}]),
            email.clone(),
        ),
        (json!([{"op": "remove", "path": "emails"}]), email.clone()),
        (
            json!([{"op": "replace", "value": {"emails": [{"value": "b@x.io", "primary": true}]}}]),
            email,
        ),
        (
            json!([{"op": "replace", "value": {"active": false}}]),
            Ok(None),
        ),
        (
            json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": "h@x.io"}]),
            Ok(None),
        ),
        (
            json!([{"op": "replace", "path": "emails[type eq \"work\"].display", "value": "Work"}]),
            Ok(None),
        ),
        (
            json!([{"op": "replace", "path": "nickName", "value": "Ada"}]),
            Ok(None),
        ),
        // The vault decides what the core does not know.
        (
            json!([{"op": "replace", "path": "urn:example:custom:attr", "value": 1}]),
            Ok(None),
        ),
    ];
    for (ops, want) in cases {
        assert_eq!(
            screen(A, "PATCH", &path, &patch(ops.clone())),
            want,
            "{ops}"
        );
    }
    assert_eq!(
        screen(A, "PATCH", &path, &patch(json!([{"op": "jump"}]))),
        Err((
            400,
            Some("invalidSyntax".into()),
            "Operation 1 has an unknown op 'jump' (expected add, remove or replace)".into()
        ))
    );
    assert_eq!(
        screen(
            OFF,
            "PATCH",
            &format!("/v2/{OFF}/Users/u1"),
            &patch(json!([{"op": "replace", "path": "userName", "value": "x"}]))
        ),
        Ok(None)
    );
}

#[test]
fn responses_are_repaired_only_where_needed() {
    let c = config();
    let json_ct = vec![(
        "content-type".to_string(),
        "application/json; charset=utf-8".to_string(),
    )];
    let list = c
        .admit("GET", &format!("/v2/{A}/Users?count=2"), &headers(A, &[]))
        .unwrap();
    let one = c
        .admit("GET", &format!("/v2/{A}/Users/u1"), &headers(A, &[]))
        .unwrap();
    let search = c
        .admit("POST", &format!("/v2/{A}/Users/.search"), &headers(A, &[]))
        .unwrap();
    assert_eq!(
        list.response_plan(200, &json_ct, false),
        ResponsePlan::Buffer
    );
    assert_eq!(
        search.response_plan(200, &json_ct, false),
        ResponsePlan::Buffer
    );
    assert_eq!(
        one.response_plan(200, &json_ct, false),
        ResponsePlan::Forward
    );
    assert_eq!(
        list.response_plan(200, &[("content-type".into(), "text/html".into())], false),
        ResponsePlan::Forward
    );
    let gz = [
        json_ct.clone(),
        vec![("content-encoding".to_string(), "gzip".to_string())],
    ]
    .concat();
    assert_eq!(list.response_plan(200, &gz, false), ResponsePlan::Forward);
    assert_eq!(
        one.response_plan(404, &json_ct, false),
        ResponsePlan::Forward
    );
    assert!(list.inspects_response(false));
    assert!(!one.inspects_response(false));
    assert!(one.inspects_response(true));

    let bw = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0, "resources": []});
    let fixed = list
        .finish_response(200, bw.to_string().as_bytes())
        .unwrap();
    assert_eq!(
        String::from_utf8(fixed.body).unwrap(),
        r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"Resources":[]}"#
    );
    let rfc = json!({"totalResults": 0, "Resources": []});
    assert!(list
        .finish_response(200, rfc.to_string().as_bytes())
        .is_none());
    assert!(list.finish_response(200, b"not json").is_none());

    let ResponsePlan::Replace(r) = one.response_plan(401, &[], true) else {
        panic!("an empty 401 is replaced")
    };
    assert_eq!(r.status, 401);
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "401",
            "detail": "The vault rejected the credentials (it answered 401 without a body)"})
    );
    assert_eq!(
        r.header_value("www-authenticate"),
        Some("Bearer realm=\"scim\"")
    );
    let ResponsePlan::Replace(r) = one.response_plan(404, &[], true) else {
        panic!("an empty 404 is replaced")
    };
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap()["detail"],
        "The vault answered 404 without a body"
    );
    assert_eq!(one.response_plan(204, &[], true), ResponsePlan::Forward);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever arrives, the gate answers with a decision, never a panic.
    #[test]
    fn no_input_panics(
        method in "(GET|POST|PUT|PATCH|DELETE|[a-z]{0,6})",
        path in "(/v2|/scim/v2|/x)?(/[A-Za-z0-9%.\\-]{0,40}){0,5}(\\?[ -~]{0,20})?",
        auth in proptest::option::of("(Bearer |bearer |Basic )?[ -~]{0,40}"),
        length in proptest::option::of("[0-9a-z ]{0,8}"),
        body in proptest::collection::vec(any::<u8>(), 0..300),
        json_body in "[\\[\\]{}\":,a-zA-Z0-9 ]{0,200}",
        status in 100u16..600,
    ) {
        let c = config();
        let path = path.replace("v2/x", &format!("v2/{A}"));
        let mut h = Vec::new();
        if let Some(a) = auth {
            h.push(("authorization".to_string(), a));
        }
        if let Some(l) = length {
            h.push(("content-length".to_string(), l));
        }
        for h in [h.clone(), [h, headers(A, &[])].concat()] {
            if let Ok(a) = c.admit(&method, &path, &h) {
                let _ = a.screen_body(&c, &body);
                let _ = a.screen_body(&c, json_body.as_bytes());
                let _ = a.response_plan(status, &h, false);
                let _ = a.finish_response(status, &body);
            }
        }
    }
}
