//! Listing and membership logs at sizes that cross snapshot chunks and compactions:
//! pages stay exact, deletions are accounted for, old events and chunks are collected,
//! and a slot a dead writer never filled is skipped only once it is old.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{H, STRICT};
use scim_edge::store::Store;
use serde_json::{json, Value};

fn page_ids(h: &H, start: usize, count: usize) -> (u64, Vec<String>) {
    let (s, b) = h.call(
        "GET",
        &format!("/v2/{STRICT}/Users?startIndex={start}&count={count}&attributes=id"),
        None,
    );
    assert_eq!(s, 200, "{b}");
    let ids = b["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    (b["totalResults"].as_u64().unwrap(), ids)
}

fn all_pages(h: &H, count: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 1;
    loop {
        let (total, ids) = page_ids(h, start, count);
        assert_eq!(
            ids.len(),
            count.min(total as usize + 1 - start.min(total as usize + 1)),
            "page at {start}"
        );
        if ids.is_empty() {
            assert_eq!(out.len() as u64, total);
            return out;
        }
        start += ids.len();
        out.extend(ids);
    }
}

fn meta(h: &H, log: &str) -> Value {
    serde_json::from_slice(
        &h.store
            .get(&format!("{STRICT}/L/{log}/s"))
            .unwrap()
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn pages_stay_exact_across_chunks_and_deletions() {
    let h = H::new();
    let mut ids: Vec<String> = (0..2500)
        .map(|i| h.user(STRICT, &format!("user{i:05}@x.io")))
        .collect();
    assert_eq!(all_pages(&h, 100), ids);
    assert_eq!(all_pages(&h, 333), ids);
    let m = meta(&h, "u");
    assert!(m["chunks"].as_array().unwrap().len() >= 3, "{m}");
    for (i, id) in ids.iter().enumerate() {
        if i % 7 == 3 {
            assert_eq!(
                h.call("DELETE", &format!("/v2/{STRICT}/Users/{id}"), None)
                    .0,
                204
            );
        }
    }
    ids = ids
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % 7 != 3)
        .map(|(_, id)| id)
        .collect();
    assert_eq!(all_pages(&h, 100), ids);
    let (total, page) = page_ids(&h, 1001, 10);
    assert_eq!(
        (total as usize, page.as_slice()),
        (ids.len(), &ids[1000..1010])
    );
    // Old events and replaced chunks are collected: what remains is bounded.
    let keys = h.store.keys();
    let events = keys.iter().filter(|k| k.contains("/L/u/e/")).count();
    let chunks = keys.iter().filter(|k| k.contains("/L/u/c/")).count();
    assert!(events <= 3 * 32, "{events} events kept");
    assert!(
        chunks <= 2 * m["chunks"].as_array().unwrap().len() + 4,
        "{chunks} chunks kept"
    );
}

#[test]
fn big_group_membership() {
    let h = H::new();
    let ids: Vec<String> = (0..2100)
        .map(|i| h.user(STRICT, &format!("m{i:05}@x.io")))
        .collect();
    let gid = h.group(STRICT, "Everyone");
    let path = format!("/v2/{STRICT}/Groups/{gid}");
    for batch in ids.chunks(100) {
        let value: Vec<Value> = batch.iter().map(|id| json!({"value": id})).collect();
        let (s, _) = h.call("PATCH", &format!("{path}?excludedAttributes=members"), Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": value}]})));
        assert_eq!(s, 200);
    }
    for id in ids.iter().step_by(7) {
        let (s, _) = h.call("PATCH", &format!("{path}?excludedAttributes=members"), Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]})));
        assert_eq!(s, 200);
    }
    let (_, g) = h.call("GET", &path, None);
    let got: Vec<String> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 7 != 0)
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(got, want);
    assert!(
        meta(&h, &format!("gm/{gid}"))["chunks"]
            .as_array()
            .unwrap()
            .len()
            >= 2
    );
    let (_, u) = h.call("GET", &format!("/v2/{STRICT}/Users/{}", ids[1]), None);
    assert_eq!(u["groups"][0]["value"], gid.as_str());
    let (_, u) = h.call("GET", &format!("/v2/{STRICT}/Users/{}", ids[0]), None);
    assert_eq!(u["groups"], json!([]));
}

#[test]
fn a_slot_never_written_is_skipped_once_old() {
    let h = H::new();
    for i in 0..5 {
        h.user(STRICT, &format!("a{i}@x.io"));
    }
    // A writer takes slot 6 and dies before writing it.
    assert_eq!(h.store.increment(&format!("{STRICT}/L/u/n"), 1).unwrap(), 6);
    for i in 0..60 {
        h.user(STRICT, &format!("b{i}@x.io"));
    }
    assert_eq!(page_ids(&h, 1, 1000).0, 65);
    assert_eq!(
        meta(&h, "u")["w"],
        5,
        "compaction must not pass a slot that may still be written"
    );
    h.clock.advance(61_000);
    for i in 0..40 {
        h.user(STRICT, &format!("c{i}@x.io"));
    }
    assert!(meta(&h, "u")["w"].as_i64().unwrap() > 64);
    let (total, ids) = page_ids(&h, 1, 1000);
    assert_eq!((total, ids.len()), (105, 105));
}
