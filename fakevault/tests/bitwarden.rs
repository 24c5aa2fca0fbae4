//! Bitwarden's Public API for members and groups, and its write rate limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use scim_edge_fakevault::{
    FakeVault, Limits, Mode, Options, CONFIRMED, INVITED, OWNER, REVOKED, USER,
};
use serde_json::{json, Value};

fn invite(v: &FakeVault, tok: &str, email: &str, ext: Option<&str>) -> Value {
    let r = api(
        v,
        tok,
        "POST",
        "/public/members",
        Some(json!({"email": email, "type": 2, "externalId": ext})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[test]
fn invite_and_duplicate() {
    let v = vault(Mode::Bitwarden);
    let tok = token(&v);
    let m = invite(&v, &tok, "Ann@Example.com", Some("okta-1"));
    assert_eq!(m["object"], "member");
    assert_eq!(m["email"], "Ann@Example.com");
    assert_eq!(m["status"], INVITED);
    assert_eq!(m["type"], USER);
    assert_eq!(m["externalId"], "okta-1");
    assert_eq!(m["userId"], Value::Null);
    assert_eq!(m["name"], Value::Null);
    assert_eq!(m["collections"], json!([]));
    let id = m["id"].as_str().unwrap();

    let r = api(
        &v,
        &tok,
        "POST",
        "/public/members",
        Some(json!({"email": "ann@example.COM", "type": 2})),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"object": "error", "message": "This user has already been invited.", "errors": null})
    );

    let got = api(&v, &tok, "GET", &format!("/public/members/{id}"), None);
    assert_eq!((got.status, got.json()), (200, m.clone()));
    let list = api(&v, &tok, "GET", "/public/members", None).json();
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"], json!([m]));

    let s = v.stats();
    assert_eq!(s.invites.get("ann@example.com"), Some(&1));
    assert_eq!(s.count("POST /api/public/members"), 2);
    assert_eq!(s.count("GET /api/public/members/{id}"), 1);
    assert_eq!(s.writes, 1);
}

#[test]
fn unknown_ids_and_invalid_models() {
    let v = vault(Mode::Bitwarden);
    let tok = token(&v);
    let nobody = "11111111-2222-4333-8444-555555555555";
    for (method, path) in [
        ("GET", format!("/public/members/{nobody}")),
        ("DELETE", format!("/public/members/{nobody}")),
        ("POST", format!("/public/members/{nobody}/revoke")),
        ("GET", format!("/public/groups/{nobody}")),
        ("GET", format!("/public/groups/{nobody}/member-ids")),
        ("GET", "/public/collections".to_string()),
    ] {
        let r = api(&v, &tok, method, &path, None);
        assert_eq!((r.status, r.body.as_str()), (404, ""), "{method} {path}");
    }
    let r = api(
        &v,
        &tok,
        "PUT",
        &format!("/public/members/{nobody}"),
        Some(json!({"type": 2})),
    );
    assert_eq!((r.status, r.body.as_str()), (404, ""));

    let r = api(
        &v,
        &tok,
        "POST",
        "/public/members",
        Some(json!({"externalId": "x"})),
    );
    assert_eq!(r.status, 400);
    let j = r.json();
    assert_eq!(j["message"], "The request's model state is invalid.");
    assert!(
        j["errors"]["Email"].is_array() && j["errors"]["Type"].is_array(),
        "{j}"
    );

    let r = api(
        &v,
        &tok,
        "POST",
        "/public/members",
        Some(json!({"email": "not-an-email", "type": 3})),
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["errors"]["Type"].is_array());

    let auth = format!("Bearer {tok}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let r = send(
        &v.url(),
        "POST",
        "/api/public/members",
        &headers,
        b"{\"email\":",
    )
    .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "The request's model state is invalid.");

    let long = "x".repeat(101);
    let r = api(
        &v,
        &tok,
        "POST",
        "/public/groups",
        Some(json!({"name": long})),
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["errors"]["Name"].is_array());
    let r = api(
        &v,
        &tok,
        "POST",
        "/public/groups",
        Some(json!({"name": "ok", "externalId": "e".repeat(301)})),
    );
    assert_eq!(r.status, 400);
    assert!(v.groups().is_empty() && v.members().is_empty());
}

#[test]
fn put_member_resets_what_it_omits() {
    let v = vault(Mode::Bitwarden);
    let tok = token(&v);
    let g = api(
        &v,
        &tok,
        "POST",
        "/public/groups",
        Some(json!({"name": "Eng"})),
    )
    .json();
    let col = json!({"id": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "readOnly": true, "hidePasswords": false, "manage": false});
    let body = json!({"email": "bob@example.com", "type": 2, "externalId": "e-bob", "collections": [col], "groups": [g["id"]]});
    let m = api(&v, &tok, "POST", "/public/members", Some(body)).json();
    assert_eq!(m["collections"], json!([col]));
    let id = m["id"].as_str().unwrap();
    assert_eq!(
        api(
            &v,
            &tok,
            "GET",
            &format!("/public/members/{id}/group-ids"),
            None
        )
        .json(),
        json!([g["id"]])
    );

    let r = api(
        &v,
        &tok,
        "PUT",
        &format!("/public/members/{id}"),
        Some(json!({"type": 1})),
    );
    assert_eq!(r.status, 200);
    let m = r.json();
    assert_eq!(
        (
            m["type"].clone(),
            m["externalId"].clone(),
            m["collections"].clone()
        ),
        (json!(1), Value::Null, json!([]))
    );
    // Groups omitted: untouched.
    assert_eq!(
        v.members()[0].group_ids,
        vec![g["id"].as_str().unwrap().to_string()]
    );

    let r = api(
        &v,
        &tok,
        "PUT",
        &format!("/public/members/{id}/group-ids"),
        Some(json!({"groupIds": []})),
    );
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert!(v.members()[0].group_ids.is_empty());

    let r = api(&v, &tok, "DELETE", &format!("/public/members/{id}"), None);
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert!(v.members().is_empty());
}

#[test]
fn revoke_restore_reinvite() {
    let v = vault(Mode::Bitwarden);
    let tok = token(&v);
    let id = invite(&v, &tok, "c@example.com", None)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let post = |what: &str| {
        api(
            &v,
            &tok,
            "POST",
            &format!("/public/members/{id}/{what}"),
            None,
        )
    };

    assert_eq!(post("restore").status, 400);
    assert_eq!(post("reinvite").status, 200);
    let r = post("revoke");
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert_eq!(v.members()[0].status, REVOKED);
    let r = post("revoke");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["object"], "error");
    assert_eq!(post("reinvite").json()["message"], "User invalid.");
    assert_eq!(post("restore").status, 200);
    assert_eq!(
        v.members()[0].status,
        INVITED,
        "never accepted: back to Invited"
    );
    assert_eq!(v.stats().invites.get("c@example.com"), Some(&2));

    v.set_status(&id, CONFIRMED);
    assert!(v.members()[0].user_id.is_some());
    assert_eq!(post("revoke").status, 200);
    assert_eq!(post("restore").status, 200);
    assert_eq!(v.members()[0].status, CONFIRMED, "prior status kept");

    // An admin's manual revoke, then a restore through the API.
    v.set_status(&id, REVOKED);
    assert_eq!(post("restore").status, 200);
    assert_eq!(v.members()[0].status, CONFIRMED);
}

#[test]
fn last_confirmed_owner_stays() {
    let v = vault(Mode::Bitwarden);
    let tok = token(&v);
    let owner = v.seed_member("boss@example.com", OWNER, CONFIRMED, None);
    assert_eq!(v.stats().max_invites(), 0);
    let r = api(
        &v,
        &tok,
        "POST",
        &format!("/public/members/{owner}/revoke"),
        None,
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["message"],
        "Organization must have at least one confirmed owner."
    );
    assert_eq!(
        api(
            &v,
            &tok,
            "DELETE",
            &format!("/public/members/{owner}"),
            None
        )
        .status,
        400
    );
    assert_eq!(v.members()[0].status, CONFIRMED);
}

#[test]
fn groups_and_member_ids() {
    let v = vault(Mode::Bitwarden);
    let tok = token(&v);
    let a = invite(&v, &tok, "a@example.com", None)["id"].clone();
    let b = invite(&v, &tok, "b@example.com", None)["id"].clone();
    let r = api(
        &v,
        &tok,
        "POST",
        "/public/groups",
        Some(json!({"name": "Ops", "externalId": "g-1"})),
    );
    assert_eq!(r.status, 200);
    let g = r.json();
    assert_eq!(g["object"], "group");
    assert_eq!(g["externalId"], "g-1");
    assert!(g.get("memberIds").is_none());
    let gid = g["id"].as_str().unwrap();
    let path = format!("/public/groups/{gid}/member-ids");

    let r = api(&v, &tok, "PUT", &path, Some(json!({"memberIds": [a, b]})));
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    assert_eq!(api(&v, &tok, "GET", &path, None).json(), json!([a, b]));
    // A full replace, idempotent.
    for _ in 0..2 {
        assert_eq!(
            api(&v, &tok, "PUT", &path, Some(json!({"memberIds": [b]}))).status,
            200
        );
    }
    assert_eq!(api(&v, &tok, "GET", &path, None).json(), json!([b]));
    assert_eq!(
        v.groups()[0].member_ids,
        vec![b.as_str().unwrap().to_string()]
    );

    // PUT without externalId clears it; collections omitted are kept.
    let col = json!({"id": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "readOnly": false});
    let r = api(
        &v,
        &tok,
        "PUT",
        &format!("/public/groups/{gid}"),
        Some(json!({"name": "Ops", "externalId": "g-1", "collections": [col]})),
    );
    assert_eq!(r.json()["collections"], json!([col]));
    let r = api(
        &v,
        &tok,
        "PUT",
        &format!("/public/groups/{gid}"),
        Some(json!({"name": "Ops 2"})),
    );
    assert_eq!(r.status, 200);
    let g = r.json();
    assert_eq!(
        (
            g["name"].clone(),
            g["externalId"].clone(),
            g["collections"].clone()
        ),
        (json!("Ops 2"), Value::Null, json!([col]))
    );
    assert_eq!(v.groups()[0].external_id, None);

    let list = api(&v, &tok, "GET", "/public/groups", None).json();
    assert_eq!(list["data"], json!([g]));
    assert_eq!(
        api(&v, &tok, "DELETE", &format!("/public/groups/{gid}"), None).status,
        200
    );
    assert!(v.groups().is_empty());
    assert!(v.members().iter().all(|m| m.group_ids.is_empty()));
}

fn limited(limits: Limits) -> (FakeVault, String) {
    let v = FakeVault::start(Options {
        limits,
        ..Options::default()
    });
    let tok = token(&v);
    (v, tok)
}

#[test]
fn sixth_write_in_a_second_is_429() {
    // A long "second" so that the six writes surely fall in one slot.
    let (v, tok) = limited(Limits {
        per_second: 5,
        second_ms: 60_000,
        per_window: 0,
        ..Limits::default()
    });
    for i in 0..5 {
        invite(&v, &tok, &format!("u{i}@example.com"), None);
    }
    let r = api(
        &v,
        &tok,
        "POST",
        "/public/members",
        Some(json!({"email": "u5@example.com", "type": 2})),
    );
    assert_eq!((r.status, r.body.as_str()), (429, ""));
    let after: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&after), "{after}");
    // Reads are not writes.
    assert_eq!(api(&v, &tok, "GET", "/public/members", None).status, 200);
    let s = v.stats();
    assert_eq!((s.writes, s.rate_limited), (5, 1));
    assert_eq!(v.members().len(), 5);
}

#[test]
fn window_limit_without_retry_after() {
    let (v, tok) = limited(Limits {
        per_second: 0,
        per_window: 2,
        window_ms: 60_000,
        retry_after: false,
        ..Limits::default()
    });
    let statuses: Vec<u16> = (0..3)
        .map(|i| {
            api(
                &v,
                &tok,
                "POST",
                "/public/groups",
                Some(json!({"name": format!("g{i}")})),
            )
            .status
        })
        .collect();
    assert_eq!(statuses, [200, 200, 429]);
    let r = api(
        &v,
        &tok,
        "DELETE",
        &format!("/public/groups/{}", v.groups()[0].id),
        None,
    );
    assert_eq!((r.status, r.header("retry-after")), (429, None));
}

#[test]
fn the_next_slot_admits_again() {
    let (v, tok) = limited(Limits {
        per_second: 0,
        per_window: 1,
        window_ms: 200,
        ..Limits::default()
    });
    let write = || {
        api(
            &v,
            &tok,
            "POST",
            "/public/groups",
            Some(json!({"name": "g"})),
        )
        .status
    };
    assert!((0..10).map(|_| write()).any(|s| s == 429));
    std::thread::sleep(std::time::Duration::from_millis(250));
    assert_eq!(write(), 200);
}

#[test]
fn writes_need_a_token_after_the_limit() {
    // The rate limit answers before authentication; a missing token is still 401.
    let (v, _tok) = limited(Limits::unlimited());
    let r = api(
        &v,
        "nope",
        "POST",
        "/public/groups",
        Some(json!({"name": "x"})),
    );
    assert_eq!((r.status, r.body.as_str()), (401, ""));
    assert_eq!(v.stats().writes, 0);
}
