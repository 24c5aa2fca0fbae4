//! Vaultwarden's import route and its semantics (vaults.md §2, Vaultwarden column).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use scim_edge_fakevault::{
    FakeVault, Limits, Mode, Options, ACCEPTED, CONFIRMED, INVITED, OWNER, REVOKED, USER,
};
use serde_json::{json, Value};

fn vw(groups_enabled: bool, mail_enabled: bool) -> (FakeVault, String) {
    let v = FakeVault::start(Options {
        mode: Mode::Vaultwarden,
        groups_enabled,
        mail_enabled,
        limits: Limits::unlimited(),
        ..Options::default()
    });
    let tok = token(&v);
    (v, tok)
}

fn import(v: &FakeVault, tok: &str, members: Value, groups: Value, overwrite: bool) {
    let body = json!({"groups": groups, "members": members, "overwriteExisting": overwrite, "largeImport": false});
    let r = api(v, tok, "POST", "/public/organization/import", Some(body));
    assert_eq!((r.status, r.body.as_str()), (200, ""));
}

fn by_email(v: &FakeVault, email: &str) -> scim_edge_fakevault::Member {
    v.members().into_iter().find(|m| m.email == email).unwrap()
}

#[test]
fn only_the_import_route() {
    let (v, tok) = vw(false, true);
    for (method, path) in [
        ("GET", "/public/members"),
        ("POST", "/public/members"),
        ("GET", "/public/organization/import"),
    ] {
        let r = api(&v, &tok, method, path, Some(json!({})));
        assert_eq!(r.status, 404, "{method} {path}");
    }
    let r = send(
        &v.url(),
        "POST",
        "/api/public/organization/import",
        &[("content-type", "application/json")],
        b"{}",
    )
    .unwrap();
    assert_eq!(r.status, 401);
}

#[test]
fn body_must_deserialize() {
    let (v, tok) = vw(false, true);
    for body in [
        json!({"members": [], "groups": []}),
        json!({"members": [], "overwriteExisting": false}),
        json!({"groups": [], "overwriteExisting": false}),
        json!({"groups": null, "members": [], "overwriteExisting": false}),
        json!({"groups": [], "members": [{"email": "a@x.io", "externalId": "1"}], "overwriteExisting": false}),
        json!({"groups": [{"name": "g", "externalId": "g"}], "members": [], "overwriteExisting": false}),
    ] {
        let r = api(
            &v,
            &tok,
            "POST",
            "/public/organization/import",
            Some(body.clone()),
        );
        assert_eq!(r.status, 422, "{body}");
    }
    let auth = format!("Bearer {tok}");
    let r = send(
        &v.url(),
        "POST",
        "/api/public/organization/import",
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ],
        b"{nope",
    )
    .unwrap();
    assert_eq!(r.status, 400);
    assert!(v.members().is_empty());
    assert_eq!((v.stats().imports, v.last_import()), (0, None));
}

#[test]
fn members_by_email_deleted_revokes_present_restores() {
    let (v, tok) = vw(false, true);
    let members = json!([
        {"email": "Ann@Example.com", "externalId": "u-ann", "deleted": false},
        {"email": "bob@example.com", "externalId": "u-bob", "deleted": false},
        {"email": "ghost@example.com", "externalId": "u-ghost", "deleted": true},
    ]);
    import(&v, &tok, members, json!([]), false);
    let ann = by_email(&v, "ann@example.com");
    assert_eq!(
        (ann.status, ann.type_, ann.external_id.as_deref()),
        (INVITED, USER, Some("u-ann"))
    );
    assert_eq!(
        v.members().len(),
        2,
        "a deleted unknown member is not created"
    );
    let s = v.stats();
    assert_eq!((s.imports, s.max_invites(), s.invites.len()), (1, 1, 2));

    // deleted ⇒ revoked (not removed), externalId overwritten.
    v.set_status(&ann.id, CONFIRMED);
    import(
        &v,
        &tok,
        json!([{"email": "ANN@example.com", "externalId": "u-ann-2", "deleted": true}]),
        json!([]),
        false,
    );
    let ann = by_email(&v, "ann@example.com");
    assert_eq!(
        (ann.status, ann.external_id.as_deref()),
        (REVOKED, Some("u-ann-2"))
    );

    // Present again ⇒ restored to the prior status; nobody invited twice.
    let again = json!([{"email": "ann@example.com", "externalId": "u-ann", "deleted": false}]);
    import(&v, &tok, again.clone(), json!([]), false);
    let ann = by_email(&v, "ann@example.com");
    assert_eq!(
        (ann.status, ann.external_id.as_deref()),
        (CONFIRMED, Some("u-ann"))
    );
    assert_eq!(v.stats().max_invites(), 1);
    let last = v.last_import().unwrap();
    assert_eq!(last["members"], again);
    assert_eq!(v.stats().count("POST /api/public/organization/import"), 3);
}

#[test]
fn last_confirmed_owner_is_never_revoked_or_removed() {
    let (v, tok) = vw(false, true);
    let owner = v.seed_member("boss@example.com", OWNER, CONFIRMED, Some("u-boss"));
    v.seed_member("old@example.com", USER, CONFIRMED, Some("u-old"));
    v.seed_member("local@example.com", USER, CONFIRMED, None);
    import(
        &v,
        &tok,
        json!([{"email": "boss@example.com", "externalId": "u-boss", "deleted": true}]),
        json!([]),
        false,
    );
    assert_eq!(by_email(&v, "boss@example.com").status, CONFIRMED);

    // overwriteExisting removes members whose externalId is not listed, except the last
    // confirmed owner; members without an externalId stay.
    import(
        &v,
        &tok,
        json!([{"email": "new@example.com", "externalId": "u-new", "deleted": false}]),
        json!([]),
        true,
    );
    let emails: Vec<String> = v.members().into_iter().map(|m| m.email).collect();
    assert_eq!(
        emails,
        ["boss@example.com", "local@example.com", "new@example.com"]
    );
    assert_eq!(v.members()[0].id, owner);
}

#[test]
fn groups_ignored_when_disabled() {
    let (v, tok) = vw(false, true);
    let members = json!([{"email": "a@example.com", "externalId": "u-a", "deleted": false}]);
    import(
        &v,
        &tok,
        members,
        json!([{"name": "Eng", "externalId": "g-eng", "memberExternalIds": ["u-a"]}]),
        false,
    );
    assert!(v.groups().is_empty());
    assert_eq!(v.members().len(), 1);
}

#[test]
fn groups_by_external_id_name_kept_membership_replaced() {
    let (v, tok) = vw(true, true);
    let members = json!([
        {"email": "a@example.com", "externalId": "u-a", "deleted": false},
        {"email": "b@example.com", "externalId": "u-b", "deleted": false},
    ]);
    import(
        &v,
        &tok,
        members.clone(),
        json!([{"name": "Eng", "externalId": "g-eng", "memberExternalIds": ["u-a", "u-x"]}]),
        false,
    );
    let a = by_email(&v, "a@example.com").id;
    let b = by_email(&v, "b@example.com").id;
    let g = &v.groups()[0];
    assert_eq!(
        (
            g.name.as_str(),
            g.external_id.as_deref(),
            g.member_ids.clone()
        ),
        ("Eng", Some("g-eng"), vec![a.clone()])
    );

    import(
        &v,
        &tok,
        members,
        json!([{"name": "Engineering", "externalId": "g-eng", "memberExternalIds": ["u-b"]}]),
        false,
    );
    let groups = v.groups();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].name, "Eng", "Vaultwarden does not rename");
    assert_eq!(groups[0].member_ids, vec![b.clone()]);
    assert_eq!(
        by_email(&v, "b@example.com").group_ids,
        vec![groups[0].id.clone()]
    );
}

#[test]
fn mail_off_accepts_existing_accounts_only() {
    let (v, tok) = vw(false, false);
    v.seed_account("known@example.com");
    let members = json!([
        {"email": "known@example.com", "externalId": "u-k", "deleted": false},
        {"email": "fresh@example.com", "externalId": "u-f", "deleted": false},
    ]);
    import(&v, &tok, members, json!([]), false);
    let known = by_email(&v, "known@example.com");
    assert_eq!(known.status, ACCEPTED);
    assert!(known.user_id.is_some());
    assert_eq!(by_email(&v, "fresh@example.com").status, INVITED);
}
