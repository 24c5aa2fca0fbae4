//! The gate's suite, run in front of a recording upstream (which answers like Bitwarden
//! when a request asks it to with `x-reply`) and in front of the Spin component: by
//! Envoy with the filter (`envoy/tests/envoy.rs`) and by the edge gate on the test host
//! (`host/tests/gate.rs`). The including test provides `front` (where the gate listens,
//! the upstream, what differs between the two) and the `orgs`, `runscope` and `support`
//! modules. Each test tags its requests with `x-case` and reads back exactly what
//! reached the upstream.

use crate::front::{self, gate};
use crate::orgs::{key, LENIENT, OFF, OTHER, STRICT};
use crate::runscope;
use crate::support::{request, Conn, Got, Recorded, Reply, SpinHost};
use scim_edge::auth::KeyHash;
use serde_json::{json, Value};
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

pub const MAX_BODY: usize = 65536;
const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// The gate's configuration: the filter's plugin JSON, the edge gate's `gate` variable.
pub fn filter_config() -> String {
    let org = |id: &str, policy: &str| {
        (
            id.to_string(),
            json!({"keys": [KeyHash::of(&key(id)).to_hex()], "policy": policy}),
        )
    };
    let orgs: serde_json::Map<String, Value> = [
        org(STRICT, "strict"),
        org(LENIENT, "lenient"),
        org(OFF, "off"),
        org(OTHER, "strict"),
    ]
    .into_iter()
    .collect();
    json!({"organizations": orgs, "path_prefixes": ["/scim/v2", "/v2"], "max_body_bytes": MAX_BODY})
        .to_string()
}

/// Configurations the gate refuses, each with the start of the error naming the setting.
/// The Spin component as an upstream: strict for Okta's spec test, off for scim2-tester's
/// random userNames.
pub fn spin_upstream() -> SpinHost {
    SpinHost::start(&format!(
        "{{\"{STRICT}\": {{\"keys\": [\"{}\"], \"policy\": \"strict\"}}, \"{OFF}\": {{\"keys\": [\"{}\"], \"policy\": \"off\"}}}}",
        KeyHash::of(&key(STRICT)).to_hex(),
        KeyHash::of(&key(OFF)).to_hex()
    ))
}

pub fn bad_configurations() -> Vec<(String, String)> {
    vec![
        (
            format!(r#"{{"organizations": {{"{STRICT}": {{"keys": ["abc"]}}}}}}"#),
            format!("organizations.{STRICT}.keys[0]: expected 64 hex digits"),
        ),
        (
            r#"{"organizations": {}, "max_body_bytes": 0}"#.to_string(),
            "max_body_bytes: expected a positive integer".to_string(),
        ),
        (
            r#"{"organizations": {}, "path_prefixes": ["v2"]}"#.to_string(),
            "path_prefixes[0]: 'v2' is not an absolute path".to_string(),
        ),
        (
            r#"{"organizations": {}, "fail_open": true}"#.to_string(),
            "fail_open: unknown setting".to_string(),
        ),
        (
            "not json".to_string(),
            "configuration: not valid JSON".to_string(),
        ),
    ]
}

/// Bitwarden's shapes, on request.
pub fn script(r: &Recorded) -> Reply {
    let list = json!({"schemas": [LIST_URN], "totalResults": 1, "itemsPerPage": 1, "startIndex": 1,
        "resources": [{"id": "7f1c", "userName": "a@x.io", "emails": [{"value": "a@x.io", "primary": true}]}]});
    let json_ct = vec![(
        "content-type".to_string(),
        "application/json; charset=utf-8".to_string(),
    )];
    let reply = |status, headers, body: Vec<u8>, chunked| Reply {
        status,
        headers,
        body,
        chunked,
    };
    match r.header("x-reply") {
        Some("bitwarden-list") => reply(200, json_ct, list.to_string().into_bytes(), false),
        Some("bitwarden-list-chunked") => reply(200, json_ct, list.to_string().into_bytes(), true),
        Some("empty-401") => reply(401, vec![], vec![], false),
        Some("empty-404") => reply(404, vec![], vec![], false),
        Some("empty-503") => reply(503, vec![], vec![], false),
        Some("scim-409") => reply(
            409,
            json_ct,
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": 409, "detail": "User already exists."})
                .to_string()
                .into_bytes(),
            false,
        ),
        _ => {
            let status = if r.method == "POST" { 201 } else { 200 };
            let body = if r.body.is_empty() { b"{}".to_vec() } else { r.body.clone() };
            reply(
                status,
                vec![("content-type".into(), "application/scim+json".into())],
                body,
                false,
            )
        }
    }
}

/// Sends through the gate as `org` (its key), tagged with `case`.
pub fn send(
    case: &str,
    org: &str,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Got {
    send_to(gate(), case, org, method, path, extra, body)
}

/// Sends to the gate at `at` as `org` (its key), tagged with `case`.
pub fn send_to(
    at: std::net::SocketAddr,
    case: &str,
    org: &str,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Got {
    let auth = format!("Bearer {}", key(org));
    let mut hs = vec![("authorization", auth.as_str()), ("x-case", case)];
    hs.extend_from_slice(extra);
    if !body.is_empty() && !extra.iter().any(|(k, _)| *k == "content-type") {
        hs.push(("content-type", "application/scim+json"));
    }
    request(at, method, path, &hs, body).unwrap()
}

pub fn body_json(r: &Got) -> Value {
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("{e}: {} {:?}", r.status, String::from_utf8_lossy(&r.body)))
}

/// A SCIM error from the filter: status, content type, schema, string status, scimType.
pub fn assert_scim_error(r: &Got, status: u16, scim_type: Option<&str>) -> Value {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    assert_eq!(
        r.header("content-length")
            .map(|v| v.parse::<usize>().unwrap()),
        Some(r.body.len())
    );
    let v = body_json(r);
    assert_eq!(
        v["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    assert_eq!(v["status"], json!(status.to_string()));
    assert!(!v["detail"].as_str().unwrap().is_empty());
    assert_eq!(v["scimType"].as_str(), scim_type, "{v}");
    v
}

pub fn user(name: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"primary": true, "value": name, "type": "work"}], "active": true})
}

/// The one request that reached the upstream for `case`, with its content-length
/// matching the body it carries.
pub fn arrived(case: &str) -> Recorded {
    let recs = front::upstream().records(case);
    assert_eq!(recs.len(), 1, "{case}: {recs:#?}");
    let r = recs.into_iter().next().unwrap();
    if !r.chunked {
        assert_eq!(
            r.header("content-length")
                .map(|v| v.parse::<usize>().unwrap())
                .unwrap_or(0),
            r.body.len(),
            "{case}"
        );
    }
    r
}

/// Sends a body the filter lets through (the vault echoes it: 201 for POST, else 200);
/// returns the answer and what reached the vault.
fn through(case: &str, org: &str, method: &str, path: &str, body: &str) -> (Got, Recorded) {
    let r = send(case, org, method, path, &[], body.as_bytes());
    assert_eq!(r.status, if method == "POST" { 201 } else { 200 }, "{case}");
    (r, arrived(case))
}

/// Sends a body the filter must let through as it is, and checks the vault got exactly it.
fn forwarded_as_is(case: &str, org: &str, method: &str, path: &str, body: &str) {
    assert_eq!(
        through(case, org, method, path, body).1.body,
        body.as_bytes(),
        "{case}"
    );
}

pub fn nothing_arrived(case: &str) {
    let recs = front::upstream().records(case);
    assert!(recs.is_empty(), "{case}: {recs:#?}");
}

#[test]
fn missing_wrong_and_foreign_keys_get_401() {
    let path = format!("/scim/v2/{STRICT}/Users");
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("401-missing", vec![]),
        ("401-wrong", vec![("authorization", "Bearer not-the-key")]),
        ("401-scheme", vec![("authorization", "Basic a2V5")]),
        (
            "401-raw",
            vec![(
                "authorization",
                "key-of-3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d",
            )],
        ),
        (
            "401-other-org",
            vec![(
                "authorization",
                "Bearer key-of-1a2b3c4d-0000-4000-8000-000000000001",
            )],
        ),
    ];
    for (case, mut hs) in cases {
        hs.push(("x-case", case));
        let r = request(gate(), "GET", &path, &hs, b"").unwrap();
        assert_scim_error(&r, 401, None);
        assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"scim\""));
        nothing_arrived(case);
    }
    // Two Authorization headers, even if one is right, in either order.
    let good = format!("Bearer {}", key(STRICT));
    for (case, pair) in [
        ("401-two", [good.as_str(), "Bearer x"]),
        ("401-two-reversed", ["Bearer x", good.as_str()]),
        ("401-two-same", [good.as_str(), good.as_str()]),
    ] {
        let r = request(
            gate(),
            "GET",
            &path,
            &[
                ("authorization", pair[0]),
                ("authorization", pair[1]),
                ("x-case", case),
            ],
            b"",
        )
        .unwrap();
        assert_scim_error(&r, 401, None);
        nothing_arrived(case);
    }
    // An organization the filter does not know, with a key that is valid elsewhere.
    let r = send(
        "401-unknown-org",
        STRICT,
        "GET",
        "/v2/99999999-9999-4999-8999-999999999999/Users",
        &[],
        b"",
    );
    assert_scim_error(&r, 401, None);
    nothing_arrived("401-unknown-org");
    // A POST with a bad key is refused before its body is read.
    let r = request(
        gate(),
        "POST",
        &path,
        &[
            ("authorization", "Bearer nope"),
            ("x-case", "401-post"),
            ("content-type", "application/json"),
        ],
        user("a@x.io").to_string().as_bytes(),
    )
    .unwrap();
    assert_scim_error(&r, 401, None);
    nothing_arrived("401-post");
}

#[test]
fn get_and_delete_pass_after_auth() {
    let target = format!(
        "/scim/v2/{STRICT}/Users?filter=userName%20eq%20%22a%40x.io%22&startIndex=1&count=2"
    );
    let r = send("pass-get", STRICT, "GET", &target, &[], b"");
    assert_eq!(r.status, 200);
    let got = arrived("pass-get");
    assert_eq!(
        (got.method.as_str(), got.target.as_str()),
        ("GET", target.as_str())
    );
    // The vault checks the same key again.
    assert_eq!(
        got.header("authorization"),
        Some(format!("Bearer {}", key(STRICT)).as_str())
    );

    let target = format!("/v2/{OTHER}/Users/0c6f2d8e-1111-4222-8333-944455556666");
    let r = send("pass-delete", OTHER, "DELETE", &target, &[], b"");
    assert_eq!(r.status, 200);
    let got = arrived("pass-delete");
    assert_eq!(
        (got.method.as_str(), got.target.as_str()),
        ("DELETE", target.as_str())
    );

    let r = send(
        "pass-groups",
        STRICT,
        "GET",
        &format!("/v2/{STRICT}/Groups/abc"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    arrived("pass-groups");
}

#[test]
fn clean_user_post_reaches_the_vault_byte_for_byte() {
    let body = user("ada@x.io").to_string();
    forwarded_as_is(
        "clean-post",
        STRICT,
        "POST",
        &format!("/v2/{STRICT}/Users"),
        &body,
    );
}

#[test]
fn a_body_that_shrinks_on_rewrite() {
    // Strict: whitespace is trimmed from userName and the email value.
    let mut u = user("  Ada@X.io  ");
    u["emails"][0]["value"] = json!("\tAda@X.io ");
    let (r, got) = through(
        "shrink",
        STRICT,
        "POST",
        &format!("/scim/v2/{STRICT}/Users"),
        &u.to_string(),
    );
    assert!(got.body.len() < u.to_string().len());
    let v = got.json();
    assert_eq!(v["userName"], "Ada@X.io");
    assert_eq!(v["emails"][0]["value"], "Ada@X.io");
    assert_eq!(v["name"]["givenName"], "Ada");
    // The client sees what the vault answered: the normalized user.
    assert_eq!(body_json(&r)["userName"], "Ada@X.io");
}

#[test]
fn a_body_that_grows_on_rewrite() {
    // Lenient: a userName that is an email, and no emails, gets that email as primary.
    let u = json!({"userName": "grace@x.io", "name": {"givenName": "Grace"}, "active": true});
    let (_, got) = through(
        "grow",
        LENIENT,
        "POST",
        &format!("/v2/{LENIENT}/Users"),
        &u.to_string(),
    );
    assert!(got.body.len() > u.to_string().len());
    assert_eq!(
        got.json()["emails"],
        json!([{"value": "grace@x.io", "type": "work", "primary": true}])
    );
    // Lenient: an unsupported type on the primary becomes work; on another entry it is dropped.
    let u = json!({"userName": "lin@x.io", "emails": [
        {"value": "lin@x.io", "type": "corporate", "primary": true},
        {"value": "lin@home.io", "type": "personal"}]});
    let (_, got) = through(
        "lenient-types",
        LENIENT,
        "PUT",
        &format!("/v2/{LENIENT}/Users/u1"),
        &u.to_string(),
    );
    assert_eq!(
        got.json()["emails"],
        json!([{"value": "lin@x.io", "type": "work", "primary": true}])
    );
}

/// POSTs as the strict organization with a chunked body of `parts`, on a raw connection.
fn post_chunked(case: &str, path: &str, parts: &[&[u8]]) -> Got {
    let mut s = TcpStream::connect(gate()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\nx-case: {case}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        key(STRICT)
    )
    .into_bytes();
    for part in parts {
        out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    // Envoy may answer and close before taking all of it.
    let _ = s.write_all(&out);
    read_reply(&mut BufReader::new(s))
}

#[test]
fn a_chunked_body_is_rewritten_too() {
    let mut u = user(" chunk@x.io");
    u["emails"][0]["value"] = json!("chunk@x.io");
    let body = u.to_string();
    let (a, b) = body.as_bytes().split_at(body.len() / 2);
    let r = post_chunked("chunked", &format!("/v2/{STRICT}/Users"), &[a, b]);
    assert_eq!(r.status, 201);
    let got = arrived("chunked");
    assert_eq!(got.json()["userName"], "chunk@x.io");
}

#[test]
fn bad_user_writes_get_400_and_never_reach_the_vault() {
    let cases = [
        (
            "bad-no-email",
            json!({"userName": "a@x.io"}),
            "A primary email is required: 'emails' is missing",
        ),
        (
            "bad-mismatch",
            json!({"userName": "a@x.io", "emails": [{"primary": true, "value": "b@x.io"}]}),
            "userName 'a@x.io' must equal the primary email 'b@x.io'",
        ),
        (
            "bad-type",
            json!({"userName": "a@x.io", "emails": [{"primary": true, "value": "a@x.io", "type": "corporate"}]}),
            "Email type 'corporate' is not supported (expected work, home or other)",
        ),
        (
            "bad-two-primaries",
            json!({"userName": "a@x.io", "emails": [{"primary": true, "value": "a@x.io"}, {"primary": true, "value": "c@x.io"}]}),
            "Only one email may be primary",
        ),
        (
            "bad-no-username",
            json!({"emails": [{"primary": true, "value": "a@x.io"}]}),
            "Attribute 'userName' is required",
        ),
        (
            "bad-array",
            json!([1, 2]),
            "The request body must be a JSON object",
        ),
    ];
    for (case, body, detail) in cases {
        for (method, path) in [
            ("POST", format!("/v2/{STRICT}/Users")),
            ("PUT", format!("/v2/{STRICT}/Users/u1")),
        ] {
            let case = format!("{case}-{method}");
            let r = send(
                &case,
                STRICT,
                method,
                &path,
                &[],
                body.to_string().as_bytes(),
            );
            let scim_type = if case.starts_with("bad-array") {
                "invalidSyntax"
            } else {
                "invalidValue"
            };
            let v = assert_scim_error(&r, 400, Some(scim_type));
            assert_eq!(v["detail"], detail, "{case}");
            nothing_arrived(&case);
        }
    }
    // Policy off: the same body passes as it is.
    let body = json!({"userName": "not-an-email"}).to_string();
    forwarded_as_is(
        "off-passes",
        OFF,
        "POST",
        &format!("/v2/{OFF}/Users"),
        &body,
    );
}

#[test]
fn bulk_user_operations_are_screened_like_single_ones() {
    let path = format!("/v2/{STRICT}/Bulk");
    let bulk = |ops: Value| {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops})
            .to_string()
    };
    let good =
        json!({"method": "POST", "path": "/Users", "bulkId": "u", "data": user("bulk@x.io")});
    let bad = json!({"method": "POST", "path": "/Users", "bulkId": "v",
        "data": {"userName": "a@x.io", "emails": [{"primary": true, "value": "b@x.io"}]}});
    let r = send(
        "bulk-bad",
        STRICT,
        "POST",
        &path,
        &[],
        bulk(json!([good, bad])).as_bytes(),
    );
    let v = assert_scim_error(&r, 400, Some("invalidValue"));
    assert_eq!(
        v["detail"],
        "Bulk operation 2: userName 'a@x.io' must equal the primary email 'b@x.io'"
    );
    nothing_arrived("bulk-bad");
    forwarded_as_is("bulk-good", STRICT, "POST", &path, &bulk(json!([good])));
    // Lenient: the repaired operation reaches the vault with a matching content-length.
    let bare = json!({"method": "POST", "path": "/Users", "bulkId": "w", "data": {"userName": "bare@x.io"}});
    let (_, got) = through(
        "bulk-fixed",
        LENIENT,
        "POST",
        &format!("/v2/{LENIENT}/Bulk"),
        &bulk(json!([bare])),
    );
    let sent: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        sent["Operations"][0]["data"]["emails"],
        json!([{"value": "bare@x.io", "type": "work", "primary": true}])
    );
}

#[test]
fn identity_changes_a_request_shows_get_400_mutability() {
    let path = format!("/v2/{STRICT}/Users/u1");
    let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    let rejected = [
        (
            "mut-username",
            patch(json!([{"op": "replace", "path": "userName", "value": "new@x.io"}])),
            "userName cannot change once a user is provisioned",
        ),
        (
            "mut-pathless",
            patch(json!([{"op": "replace", "value": {"userName": "new@x.io", "active": true}}])),
            "userName cannot change once a user is provisioned",
        ),
        (
            "mut-email",
            patch(
                json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@x.io"}]),
            ),
            "The primary email cannot change once a user is provisioned",
        ),
        (
            "mut-emails",
            patch(
                json!([{"op": "replace", "path": "emails", "value": [{"value": "new@x.io", "primary": true}]}]),
            ),
            "The primary email cannot change once a user is provisioned",
        ),
        (
            "mut-second-op",
            patch(
                json!([{"op": "replace", "value": {"active": false}}, {"op": "remove", "path": "userName"}]),
            ),
            "userName cannot change once a user is provisioned",
        ),
    ];
    for (case, body, detail) in rejected {
        let r = send(
            case,
            STRICT,
            "PATCH",
            &path,
            &[],
            body.to_string().as_bytes(),
        );
        let v = assert_scim_error(&r, 400, Some("mutability"));
        assert_eq!(v["detail"], detail, "{case}");
        nothing_arrived(case);
    }
    // What Okta and Entra send for other changes passes untouched.
    let passed = [
        (
            "patch-active",
            patch(json!([{"op": "replace", "value": {"active": false}}])),
        ),
        (
            "patch-name",
            patch(json!([{"op": "replace", "path": "name.givenName", "value": "Ada"}])),
        ),
        (
            "patch-home-email",
            patch(
                json!([{"op": "add", "path": "emails", "value": [{"value": "h@home.io", "type": "home"}]}]),
            ),
        ),
    ];
    for (case, body) in passed {
        forwarded_as_is(case, STRICT, "PATCH", &path, &body.to_string());
    }
    // A malformed PatchOp is the filter's to refuse.
    let r = send(
        "patch-bad-op",
        STRICT,
        "PATCH",
        &path,
        &[],
        patch(json!([{"op": "move", "path": "active"}]))
            .to_string()
            .as_bytes(),
    );
    assert_scim_error(&r, 400, Some("invalidSyntax"));
    nothing_arrived("patch-bad-op");
    // Policy off: identity changes are the vault's business.
    let body = patch(json!([{"op": "replace", "path": "userName", "value": "x"}])).to_string();
    forwarded_as_is(
        "patch-off",
        OFF,
        "PATCH",
        &format!("/v2/{OFF}/Users/u1"),
        &body,
    );
}

/// Reads one response off a raw connection.
fn read_reply(r: &mut BufReader<TcpStream>) -> Got {
    crate::support::read_reply(r).unwrap()
}

#[test]
fn oversized_bodies_get_413_from_content_length_before_buffering() {
    // Only the headers are sent: the answer cannot have waited for the body.
    let mut s = TcpStream::connect(gate()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /v2/{STRICT}/Users HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\nx-case: 413-declared\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        key(STRICT),
        MAX_BODY + 1
    )
    .unwrap();
    let r = read_reply(&mut BufReader::new(s));
    let v = assert_scim_error(&r, 413, None);
    assert_eq!(
        v["detail"],
        format!(
            "The request body is {} bytes; the maximum is {MAX_BODY}",
            MAX_BODY + 1
        )
    );
    nothing_arrived("413-declared");

    // Chunked, so no length is declared: refused once the buffered body passes the limit.
    let chunk = vec![b' '; 16384];
    let r = post_chunked(
        "413-chunked",
        &format!("/v2/{STRICT}/Groups"),
        &[chunk.as_slice(); 5],
    );
    assert_scim_error(&r, 413, None);
    nothing_arrived("413-chunked");

    // At the limit exactly, the body is read (and here refused for its content only).
    let body = format!("{{\"displayName\": \"g\"{}}}", " ".repeat(MAX_BODY - 20));
    assert_eq!(body.len(), MAX_BODY);
    let r = send(
        "413-at-limit",
        STRICT,
        "POST",
        &format!("/v2/{STRICT}/Groups"),
        &[],
        body.as_bytes(),
    );
    assert_eq!(r.status, 201);
    assert_eq!(arrived("413-at-limit").body.len(), MAX_BODY);
}

#[test]
fn malformed_json_and_wrong_types_are_refused() {
    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    let cases: [(&str, &str, String, &[u8]); 6] = [
        (
            "json-truncated",
            "POST",
            format!("/v2/{STRICT}/Users"),
            b"{\"userName\": ",
        ),
        (
            "json-groups",
            "POST",
            format!("/v2/{STRICT}/Groups"),
            b"{displayName: x}",
        ),
        (
            "json-patch",
            "PATCH",
            format!("/v2/{STRICT}/Groups/g1"),
            b"not json",
        ),
        ("json-empty", "POST", format!("/v2/{STRICT}/Users"), b""),
        (
            "json-deep",
            "POST",
            format!("/v2/{STRICT}/Users"),
            deep.as_bytes(),
        ),
        ("json-search", "POST", format!("/v2/{STRICT}/.search"), b"{"),
    ];
    for (case, method, path, body) in cases {
        let r = send(case, STRICT, method, &path, &[], body);
        assert_scim_error(&r, 400, Some("invalidSyntax"));
        nothing_arrived(case);
    }
    let r = send(
        "json-type",
        STRICT,
        "POST",
        &format!("/v2/{STRICT}/Users"),
        &[("content-type", "text/plain")],
        user("a@x.io").to_string().as_bytes(),
    );
    assert_scim_error(&r, 415, None);
    nothing_arrived("json-type");
}

#[test]
fn paths_outside_the_prefixes_are_refused() {
    let r = send("path-other", STRICT, "GET", "/admin/users", &[], b"");
    assert_scim_error(&r, 404, None);
    nothing_arrived("path-other");
    // Refused either way: Envoy resolves dot segments first and the filter checks the
    // organization that results (401); the edge gate sees them and refuses the path (404).
    let r = send(
        "path-dots",
        STRICT,
        "GET",
        &format!("/v2/{STRICT}/../{OTHER}/Users"),
        &[],
        b"",
    );
    assert_scim_error(&r, front::DOT_SEGMENTS_STATUS, None);
    nothing_arrived("path-dots");
    let r = send(
        "path-case",
        STRICT,
        "GET",
        &format!("/SCIM/V2/{}/users", STRICT.to_uppercase()),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    arrived("path-case");
}

#[test]
fn bitwarden_response_quirks_are_fixed() {
    for (case, reply) in [
        ("fix-list", "bitwarden-list"),
        ("fix-list-chunked", "bitwarden-list-chunked"),
    ] {
        let r = send(
            case,
            STRICT,
            "GET",
            &format!("/v2/{STRICT}/Users?startIndex=1&count=2"),
            &[("x-reply", reply)],
            b"",
        );
        assert_eq!(r.status, 200);
        let v = body_json(&r);
        assert!(v.get("resources").is_none(), "{v}");
        assert_eq!(v["Resources"][0]["userName"], "a@x.io");
        assert_eq!(v["totalResults"], 1);
        assert_eq!(
            r.header("content-length")
                .map(|l| l.parse::<usize>().unwrap()),
            Some(r.body.len())
        );
    }
    for (case, reply, status) in [("fix-401", "empty-401", 401), ("fix-404", "empty-404", 404)] {
        let r = send(
            case,
            STRICT,
            "GET",
            &format!("/v2/{STRICT}/Users/u1"),
            &[("x-reply", reply)],
            b"",
        );
        let v = assert_scim_error(&r, status, None);
        assert!(
            v["detail"].as_str().unwrap().contains("without a body"),
            "{v}"
        );
        arrived(case);
    }
    // A SCIM error with a body is the vault's own: forwarded untouched.
    let r = send(
        "fix-409",
        STRICT,
        "POST",
        &format!("/v2/{STRICT}/Users"),
        &[("x-reply", "scim-409")],
        user("a@x.io").to_string().as_bytes(),
    );
    assert_eq!(r.status, 409);
    assert_eq!(body_json(&r)["detail"], "User already exists.");
    // Not a list: `resources` inside a user is data, not a list key.
    let r = send(
        "fix-not-list",
        STRICT,
        "GET",
        &format!("/v2/{STRICT}/Users/u1"),
        &[("x-reply", "bitwarden-list")],
        b"",
    );
    assert!(body_json(&r).get("resources").is_some());
}

#[test]
fn one_keep_alive_connection_stays_in_step() {
    let mut c = Conn::open(gate()).unwrap();
    let auth = format!("Bearer {}", key(LENIENT));
    let users = format!("/v2/{LENIENT}/Users");
    let hs = |case: &'static str| {
        vec![
            ("authorization", auth.clone()),
            ("x-case", case.to_string()),
            ("content-type", "application/json".to_string()),
        ]
    };
    let go = |c: &mut Conn, case: &'static str, method: &str, path: &str, body: &[u8]| {
        let h = hs(case);
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        c.send(method, path, &h, body)
            .unwrap_or_else(|e| panic!("{case}: {e}"))
    };
    for round in 0..3 {
        // Grows.
        let r = go(
            &mut c,
            "ka-grow",
            "POST",
            &users,
            json!({"userName": format!("k{round}@x.io")})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(r.status, 201);
        assert_eq!(
            body_json(&r)["emails"][0]["value"],
            format!("k{round}@x.io")
        );
        // Refused by the filter, connection kept.
        let r = go(&mut c, "ka-bad", "POST", &users, b"{");
        assert_scim_error(&r, 400, Some("invalidSyntax"));
        assert_eq!(r.header("connection"), None);
        let r = c
            .send(
                "GET",
                &users,
                &[("authorization", "Bearer wrong"), ("x-case", "ka-401")],
                b"",
            )
            .unwrap();
        assert_scim_error(&r, 401, None);
        // Passes as it is.
        let r = go(&mut c, "ka-get", "GET", &format!("{users}/u{round}"), b"");
        assert_eq!(r.status, 200);
        // Shrinks.
        let r = go(
            &mut c,
            "ka-shrink",
            "PUT",
            &format!("{users}/u{round}"),
            json!({"userName": format!("  s{round}@x.io  ")})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(r.status, 200);
        assert_eq!(body_json(&r)["userName"], format!("s{round}@x.io"));
    }
    let recs = |case| front::upstream().records(case);
    assert_eq!(recs("ka-grow").len(), 3);
    assert_eq!(recs("ka-get").len(), 3);
    assert_eq!(recs("ka-shrink").len(), 3);
    assert!(recs("ka-bad").is_empty());
    assert!(recs("ka-401").is_empty());
    for r in recs("ka-grow").iter().chain(&recs("ka-shrink")) {
        assert_eq!(
            r.header("content-length")
                .unwrap()
                .parse::<usize>()
                .unwrap(),
            r.body.len()
        );
        serde_json::from_slice::<Value>(&r.body).unwrap();
    }
}

#[test]
fn hostile_input_never_breaks_the_filter() {
    let bodies: Vec<Vec<u8>> = vec![
        vec![0xff, 0xfe, 0x00],
        b"{\"userName\": \"\\ud800\"}".to_vec(),
        b"{\"userName\": 1e999}".to_vec(),
        b"{\"emails\": [null, 1, \"x\", {\"primary\": \"maybe\"}], \"userName\": []}".to_vec(),
        b"{\"Operations\": [{\"op\": \"replace\", \"path\": \"emails[type eq \\\"work\\\" and (\", \"value\": 1}]}".to_vec(),
        format!("{{\"userName\": \"{}\"}}", "a".repeat(60000)).into_bytes(),
    ];
    for (i, b) in bodies.iter().enumerate() {
        for (method, path) in [
            ("POST", format!("/v2/{STRICT}/Users")),
            ("PUT", format!("/v2/{LENIENT}/Users/x")),
            ("PATCH", format!("/v2/{STRICT}/Users/x")),
        ] {
            let org = if path.contains(LENIENT) {
                LENIENT
            } else {
                STRICT
            };
            let r = send(&format!("hostile-{i}"), org, method, &path, &[], b);
            assert!((400..500).contains(&r.status), "{i} {method}: {}", r.status);
            assert_eq!(r.header("content-type"), Some("application/scim+json"));
        }
    }
    // The VM is still the first one: no panic, no reload.
    let r = send(
        "hostile-after",
        STRICT,
        "GET",
        &format!("/v2/{STRICT}/Users"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    front::assert_no_panic();
}

#[test]
fn okta_spec_test_passes_through_the_gate_in_front_of_the_spin_component() {
    let spin = front::spin();
    let auth = format!("Bearer {}", key(STRICT));
    let existing = json!({"userName": "existing@atko.com", "name": {"givenName": "Ex", "familyName": "Isting"},
        "emails": [{"primary": true, "value": " existing@atko.com"}], "active": true});
    let r = request(
        spin,
        "POST",
        &format!("/v2/{STRICT}/Users"),
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ],
        existing.to_string().as_bytes(),
    )
    .unwrap();
    // The filter trimmed the email, so the component accepted it.
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    runscope::assert_passes_over_http(
        "envoy::okta_spec_test_passes_through_envoy_in_front_of_the_spin_component",
        &format!("/scim/v2/{STRICT}"),
        &auth,
        23,
        &mut |m, t, h, b| {
            let r = request(spin, m, t, h, b).unwrap();
            (r.status, r.body)
        },
    );
}

#[test]
fn writes_without_a_body_rule_reach_the_vault_unscreened() {
    // Discovery is GET only; a POST, PUT or PATCH there is the vault's to answer (405),
    // with or without a body, whatever its type.
    for endpoint in ["ServiceProviderConfig", "Schemas", "ResourceTypes"] {
        let path = format!("/scim/v2/{STRICT}/{endpoint}");
        for method in ["POST", "PUT", "PATCH"] {
            let case = format!("unscreened-{method}-{endpoint}");
            let r = send(&case, STRICT, method, &path, &[], b"");
            assert_eq!(r.status, if method == "POST" { 201 } else { 200 }, "{case}");
            let got = arrived(&case);
            assert_eq!(
                (
                    got.method.as_str(),
                    got.target.as_str(),
                    got.body.as_slice()
                ),
                (method, path.as_str(), &b""[..]),
                "{case}"
            );
            let case = format!("unscreened-text-{method}-{endpoint}");
            let r = send(
                &case,
                STRICT,
                method,
                &path,
                &[("content-type", "text/plain")],
                b"not json {",
            );
            assert_eq!(r.status, if method == "POST" { 201 } else { 200 }, "{case}");
            assert_eq!(arrived(&case).body, b"not json {", "{case}");
        }
    }
    // No content-length at all: a request with no body.
    let mut s = TcpStream::connect(gate()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "PATCH /v2/{STRICT}/Schemas HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\nx-case: unscreened-no-length\r\n\r\n",
        key(STRICT)
    )
    .unwrap();
    assert_eq!(read_reply(&mut BufReader::new(s)).status, 200);
    assert!(arrived("unscreened-no-length").body.is_empty());
    // Not buffered: a chunked body past the limit streams through, as the filter only
    // counts what it holds (a declared length is still checked, above).
    let chunk = vec![b' '; 16384];
    let r = post_chunked(
        "unscreened-streamed",
        &format!("/v2/{STRICT}/ResourceTypes"),
        &[chunk.as_slice(); 5],
    );
    assert_eq!(r.status, 201);
    assert_eq!(arrived("unscreened-streamed").body.len(), 5 * 16384);
    // Still authenticated and size-limited by content-length.
    let r = request(
        gate(),
        "POST",
        &format!("/v2/{STRICT}/ServiceProviderConfig"),
        &[("x-case", "unscreened-401")],
        b"",
    )
    .unwrap();
    assert_scim_error(&r, 401, None);
    nothing_arrived("unscreened-401");
    let big = vec![b'x'; MAX_BODY + 1];
    let r = send(
        "unscreened-413",
        STRICT,
        "PUT",
        &format!("/v2/{STRICT}/Schemas"),
        &[("content-type", "text/plain")],
        &big,
    );
    assert_scim_error(&r, 413, None);
    nothing_arrived("unscreened-413");

    // In front of the Spin component, the component's own 405 comes back.
    let spin = front::spin();
    let auth = format!("Bearer {}", key(STRICT));
    for endpoint in ["ServiceProviderConfig", "Schemas", "ResourceTypes"] {
        for method in ["POST", "PUT", "PATCH"] {
            let r = request(
                spin,
                method,
                &format!("/v2/{STRICT}/{endpoint}"),
                &[("authorization", auth.as_str())],
                b"",
            )
            .unwrap();
            assert_eq!(r.status, 405, "{method} {endpoint}");
            let v = body_json(&r);
            assert_eq!(v["status"], "405", "{method} {endpoint}: {v}");
            assert!(
                v["detail"].as_str().unwrap().contains("GET"),
                "{method} {endpoint}: {v}"
            );
        }
    }
}

/// scim2-tester 0.5.2's driver (`tests/scim2_tester/run.py`) with the repository's
/// `.venv` python, against `base` as the policy-off organization; returns its output
/// once every check it ran passed.
pub fn scim2_tester(base: &str) -> String {
    let python = crate::support::repo().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{}: no venv; run `python3 -m venv .venv && .venv/bin/pip install 'scim2-tester[httpx2]==0.5.2'`",
        python.display()
    );
    let out = std::process::Command::new(python)
        .arg(crate::support::repo().join("tests/scim2_tester/run.py"))
        .arg(base)
        .arg(key(OFF))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "scim2-tester against {base}:\n{text}");
    text
}

#[test]
fn scim2_tester_passes_through_the_gate_in_front_of_the_spin_component() {
    let spin = front::spin();
    let text = scim2_tester(&format!("http://{spin}/v2/{OFF}"));
    // Every check it runs directly against the component (scripts/test): 135.
    assert!(
        text.contains("scim2-tester: 135 passed, 0 failed"),
        "{text}"
    );
}
