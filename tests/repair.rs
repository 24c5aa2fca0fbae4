//! `POST /v2/{org}/_repair` rebuilds every list and membership log from the resources'
//! own keys: what a lost log write (two writers in one slot, where the host has no
//! atomics) leaves wrong comes back exact, a consistent organization is left as it is,
//! and no other organization is touched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{H, OTHER, STRICT};
use scim_edge::http::Request;
use scim_edge::store::Store;
use serde_json::{json, Value};

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn repair(h: &H, org: &str) -> Value {
    let (s, b) = h.call("POST", &format!("/v2/{org}/_repair"), None);
    assert_eq!(s, 200, "{b}");
    b
}

fn listed(h: &H, org: &str, what: &str) -> Vec<String> {
    let (s, b) = h.call("GET", &format!("/v2/{org}/{what}?count=1000"), None);
    assert_eq!(s, 200);
    let mut ids: Vec<String> = b["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(b["totalResults"].as_u64(), Some(ids.len() as u64), "{b}");
    ids
}

fn members(h: &H, org: &str, gid: &str) -> Vec<String> {
    let (_, g) = h.call("GET", &format!("/v2/{org}/Groups/{gid}"), None);
    let mut ids: Vec<String> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn clean(report: &Value) -> bool {
    report["rebuiltListings"] == json!([])
        && [
            "membersAdded",
            "membersRemoved",
            "userGroupsAdded",
            "userGroupsRemoved",
            "staleMarkersRemoved",
        ]
        .iter()
        .all(|k| report[k] == 0)
}

/// Every key and value of an organization.
fn everything_of(h: &H, org: &str) -> Vec<(String, Option<Vec<u8>>)> {
    h.store
        .keys()
        .into_iter()
        .filter(|k| k.starts_with(org))
        .map(|k| (k.clone(), h.store.get(&k).unwrap()))
        .collect()
}

/// Deletes the event in `slot` of a log, as a second writer in that slot would have
/// overwritten it.
fn lose(h: &H, log: &str, slot: i64) {
    h.store.delete(&format!("{log}/e/{slot}")).unwrap();
}

#[test]
fn lost_log_writes_come_back_exact_and_a_clean_org_is_left_alone() {
    let h = H::without_atomics();
    let users: Vec<String> = (0..10)
        .map(|i| h.user(STRICT, &format!("r{i}@x.io")))
        .collect();
    let gid = h.group(STRICT, "Team");
    let value: Vec<_> = users.iter().map(|u| json!({"value": u})).collect();
    let (s, _) = h.call("PATCH", &format!("/v2/{STRICT}/Groups/{gid}"), Some(json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": value}]})));
    assert_eq!(s, 200);
    let other = h.user(OTHER, "keep@x.io");
    let before_other = everything_of(&h, OTHER);
    assert!(clean(&repair(&h, STRICT)));

    let mut want_users = users.clone();
    want_users.sort();
    // A listing add, a member add and a user's group add, each overwritten.
    lose(&h, &format!("{STRICT}/L/u"), 3);
    lose(&h, &format!("{STRICT}/L/gm/{gid}"), 5);
    lose(&h, &format!("{STRICT}/L/ug/{}", users[7]), 1);
    assert_eq!(listed(&h, STRICT, "Users").len(), 9);
    assert_eq!(members(&h, STRICT, &gid).len(), 9);
    let (_, u7) = h.call("GET", &format!("/v2/{STRICT}/Users/{}", users[7]), None);
    assert_eq!(u7["groups"], json!([]));

    let report = repair(&h, STRICT);
    assert_eq!(report["rebuiltListings"], json!(["Users"]), "{report}");
    assert_eq!(report["membersAdded"], 1, "{report}");
    assert_eq!(report["userGroupsAdded"], 1, "{report}");
    assert_eq!(listed(&h, STRICT, "Users"), want_users);
    assert_eq!(members(&h, STRICT, &gid), want_users);
    let (_, u7) = h.call("GET", &format!("/v2/{STRICT}/Users/{}", users[7]), None);
    assert_eq!(u7["groups"][0]["value"], gid.as_str());
    // Paging over the rebuilt listing agrees with the whole list.
    let (_, p) = h.call(
        "GET",
        &format!("/v2/{STRICT}/Users?startIndex=4&count=3"),
        None,
    );
    assert_eq!(p["totalResults"], 10);
    assert_eq!(p["Resources"].as_array().unwrap().len(), 3);
    assert!(clean(&repair(&h, STRICT)));

    // A deleted member whose removes were lost is dropped from both sides.
    let (s, _) = h.call("DELETE", &format!("/v2/{STRICT}/Users/{}", users[0]), None);
    assert_eq!(s, 204);
    let gm_top = format!("{STRICT}/L/gm/{gid}");
    let top =
        scim_edge::store::decode_counter(&h.store.get(&format!("{gm_top}/n")).unwrap().unwrap())
            .unwrap();
    lose(&h, &gm_top, top);
    assert!(members(&h, STRICT, &gid).contains(&users[0]));
    let report = repair(&h, STRICT);
    assert_eq!(report["membersRemoved"], 1, "{report}");
    assert!(!members(&h, STRICT, &gid).contains(&users[0]));
    assert!(clean(&repair(&h, STRICT)));

    // Nothing of the other organization changed.
    assert_eq!(before_other, everything_of(&h, OTHER));
    assert_eq!(listed(&h, OTHER, "Users"), vec![other]);
}

#[test]
fn the_repair_route_takes_the_organizations_key_and_post_only() {
    let h = H::new();
    let r = h
        .router()
        .handle(&Request::new("POST", &format!("/v2/{STRICT}/_repair")));
    assert_eq!(r.status, 401);
    let (s, b) = h.call("GET", &format!("/v2/{STRICT}/_repair"), None);
    assert_eq!((s, b["status"].as_str()), (405, Some("405")), "{b}");
    assert!(clean(&repair(&h, STRICT)));
}
