//! Key-value round trips per SCIM operation stay within the budgets the README states,
//! on a store with atomics (Spin hosts) and one without (the edge), and cost the same at
//! 1,000 users as at 10,000. Counts are averaged over enough operations to include the
//! log compactions every 32nd write runs. The core bench prints the same figures at
//! 100,000 users (BENCH.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{H, STRICT};
use scim_edge::collection::COMPACT_EVERY;
use scim_edge::store::{decode_counter, Counts, Store};
use serde_json::json;

const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Average work per operation.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cost {
    calls: f64,
    write_calls: f64,
}

fn cost(h: &H, n: usize, mut f: impl FnMut(usize)) -> Cost {
    let before = h.store.counts();
    for i in 0..n {
        f(i);
    }
    let used: Counts = h.store.counts() - before;
    Cost {
        calls: used.calls as f64 / n as f64,
        write_calls: used.write_calls as f64 / n as f64,
    }
}

fn okta_user(name: &str) -> serde_json::Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
        "externalId": format!("ext-{name}"),
        "name": {"givenName": "Given", "familyName": "Family"},
        "emails": [{"primary": true, "value": name, "type": "work"}], "active": true})
}

/// Every budgeted operation's cost in an organization of `users` users, each a member
/// of one group.
fn costs(h: &H, users: usize) -> Vec<(&'static str, Cost)> {
    let base = format!("/v2/{STRICT}");
    let ids: Vec<String> = (0..users)
        .map(|i| h.user(STRICT, &format!("u{i:06}@x.io")))
        .collect();
    let gid = h.group(STRICT, "Everyone");
    for batch in ids.chunks(500) {
        let value: Vec<_> = batch.iter().map(|id| json!({"value": id})).collect();
        let (s, _) = h.call("PATCH", &format!("{base}/Groups/{gid}?excludedAttributes=members"), Some(json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": value}]})));
        assert_eq!(s, 200);
    }
    let newcomers: Vec<String> = (0..64)
        .map(|i| h.user(STRICT, &format!("n{i:06}@x.io")))
        .collect();
    let pick = |i: usize| &ids[(i * 7919) % users];
    let mut out = vec![(
        "create",
        cost(h, 64, |i| {
            let (s, _) = h.call(
                "POST",
                &format!("{base}/Users"),
                Some(okta_user(&format!("c{i:06}@x.io"))),
            );
            assert_eq!(s, 201);
        }),
    )];
    out.push((
        "GET by id",
        cost(h, 64, |i| {
            let (s, b) = h.call("GET", &format!("{base}/Users/{}", pick(i)), None);
            assert_eq!(
                (s, b["groups"][0]["value"].as_str()),
                (200, Some(gid.as_str()))
            );
        }),
    ));
    out.push((
        "userName eq",
        cost(h, 64, |i| {
            let (s, b) = h.call(
                "GET",
                &format!(
                    "{base}/Users?filter=userName%20eq%20%22u{:06}%40x.io%22",
                    (i * 7919) % users
                ),
                None,
            );
            assert_eq!((s, b["totalResults"].as_u64()), (200, Some(1)));
        }),
    ));
    out.push((
        "deactivate PATCH",
        cost(h, 64, |i| {
            let (s, b) = h.call("PATCH", &format!("{base}/Users/{}", ids[i]), Some(json!({"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": false}}]})));
            assert_eq!((s, b["active"].as_bool()), (200, Some(false)));
        }),
    ));
    out.push((
        "member add",
        cost(h, 64, |i| {
            let (s, _) = h.call("PATCH", &format!("{base}/Groups/{gid}?excludedAttributes=members"), Some(json!({"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": newcomers[i]}]}]})));
            assert_eq!(s, 200);
        }),
    ));
    let page = |i: usize| {
        let start = 1 + (i * 7919) % (users - 100);
        let (s, b) = h.call(
            "GET",
            &format!("{base}/Users?startIndex={start}&count=100"),
            None,
        );
        assert_eq!((s, b["itemsPerPage"].as_u64()), (200, Some(100)));
    };
    out.push(("page of 100", cost(h, 16, page)));
    // Pages without batch reads cost a call per key: measured, as the bench does, right
    // after a compaction, when the tail they also read is empty.
    let counter = format!("{STRICT}/L/u/n");
    let mut i = 0;
    while h
        .store
        .get(&counter)
        .unwrap()
        .and_then(|b| decode_counter(&b))
        .unwrap()
        % COMPACT_EVERY
        != 0
    {
        h.user(STRICT, &format!("s{i:06}@x.io"));
        i += 1;
    }
    h.store.set_batch(false);
    out.push(("page of 100, no batch reads", cost(h, 16, page)));
    h.store.set_batch(true);
    out
}

/// The budget of each operation in host calls, and in calls that write.
fn budget(op: &str) -> (f64, Option<f64>) {
    match op {
        "create" => (6.0, Some(4.0)),
        "GET by id" | "userName eq" => (2.0, None),
        "deactivate PATCH" => (3.0, None),
        // Two atomic increments (one per log) no host batches, the batch of reads and the
        // batch of writes: 4, plus the compaction every 32nd add runs, amortized.
        "member add" => (4.25, None),
        "page of 100" => (4.0, None),
        // The head, the chunk (two where the page spans a boundary), then the records:
        // one call each.
        "page of 100, no batch reads" => (105.0, None),
        other => panic!("no budget for {other}"),
    }
}

fn check(h_of: impl Fn() -> H, profile: &str) {
    let small = costs(&h_of(), 1_000);
    let large = costs(&h_of(), 10_000);
    for ((op, s), (_, l)) in small.iter().zip(&large) {
        eprintln!(
            "{profile} {op}: {:.2} calls ({:.2} writing) at 1,000, {:.2} at 10,000",
            s.calls, s.write_calls, l.calls
        );
        let (calls, writes) = budget(op);
        for c in [s, l] {
            assert!(c.calls <= calls, "{profile} {op}: {c:?} over {calls} calls");
            if let Some(w) = writes {
                assert!(
                    c.write_calls <= w,
                    "{profile} {op}: {c:?} over {w} writing calls"
                );
            }
        }
        // The same work at ten times the users, but for compactions and pages that
        // span two snapshot chunks (a thousand entries each).
        assert!(
            (s.calls - l.calls).abs() <= 1.0,
            "{profile} {op}: {s:?} at 1,000 but {l:?} at 10,000"
        );
    }
}

#[test]
fn round_trips_stay_within_budget_where_the_host_has_atomics() {
    check(H::new, "spin");
}

#[test]
fn round_trips_stay_within_budget_on_the_edge() {
    check(H::without_atomics, "edge");
}
