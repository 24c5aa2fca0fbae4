//! The vault connector's figures, in one run against the fake vault on 127.0.0.1 (real
//! HTTP, the fake enforcing Bitwarden's limits on a clock 100 times faster: 5 writes per
//! 10 ms, 60 per 600 ms):
//! - delivery of 1,000 users as a ratio to the vault's own limit (vault writes achieved
//!   per window ÷ the 60 allowed), drained by `_vault/sync` alone and with the drains
//!   after each SCIM request;
//! - vault calls and key-value round trips per SCIM change.
//!
//! `cargo bench --bench vault`; `SCIM_EDGE_BENCH_USERS` sets the number of users.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/vault/support.rs"]
mod support;

use scim_edge::http::Response;
use scim_edge::store::Counts;
use scim_edge_fakevault::Mode;
use serde_json::{json, Value};
use std::time::Instant;
use support::{fast_limits, Provisioned};

/// The organization, and the calls the bench makes of it.
struct B(Provisioned);

impl std::ops::Deref for B {
    type Target = Provisioned;
    fn deref(&self) -> &Provisioned {
        &self.0
    }
}

impl B {
    fn new(mode: Mode, after_request_calls: u32) -> B {
        B(Provisioned::new(
            mode,
            &[
                &json!({"after_request_calls": after_request_calls, "groups": true, "sync_budget_ms": 60_000}),
            ],
        ))
    }

    /// One SCIM request and the drain after it: the response, and the key-value counts
    /// of each.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (Response, Counts, Counts) {
        let (resp, _, request, drain) = self.send(method, path, body);
        (resp, request, drain)
    }

    fn drain(&self) {
        for _ in 0..200 {
            let r = self.call("POST", "/_vault/sync", None).0.body_json();
            if r["pending"] == 0 {
                return;
            }
        }
        panic!("the outbox never emptied");
    }

    fn calls(&self) -> (u64, u64) {
        let s = self.vault.stats();
        (s.requests.values().sum(), s.writes)
    }
}

fn user(i: usize) -> Value {
    let name = format!("user{i}@example.com");
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "externalId": format!("okta-{i}"), "emails": [{"primary": true, "value": name}], "active": true})
}

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

/// Delivers `n` users and prints the ratio of the writes achieved per window to the
/// vault's limit.
fn delivery(n: usize, after_request_calls: u32, label: &str) {
    let b = B::new(Mode::Bitwarden, after_request_calls);
    b.drain();
    let start = Instant::now();
    for i in 0..n {
        assert_eq!(b.call("POST", "/Users", Some(user(i))).0.status, 201);
    }
    b.drain();
    let secs = start.elapsed().as_secs_f64();
    let st = b.vault.stats();
    assert_eq!(b.vault.members().len(), n);
    let limits = fast_limits();
    let windows = secs * 1000.0 / limits.window_ms as f64;
    let per_window = st.writes as f64 / windows;
    println!(
        "| {label} | {n} | {} | {:.2} | {per_window:.1} | {:.2} | {} | {} |",
        st.writes,
        windows,
        per_window / f64::from(limits.per_window),
        st.rate_limited,
        st.max_invites()
    );
}

fn per_change() {
    let b = B::new(Mode::Bitwarden, u32::MAX);
    // Warm: the first sync lists the vault (adoption) and takes a token.
    b.drain();
    let row = |what: &str, f: &mut dyn FnMut() -> (Counts, Counts)| {
        let (c0, w0) = b.calls();
        let (scim, drain) = f();
        b.drain();
        let (c1, w1) = b.calls();
        println!(
            "| {what} | {} | {} | {} | {} |",
            c1 - c0,
            w1 - w0,
            scim.calls,
            drain.calls
        );
    };
    let mut ids = Vec::new();
    row("create user", &mut || {
        let (r, s, d) = b.call("POST", "/Users", Some(user(1)));
        ids.push(r.body_json()["id"].as_str().unwrap().to_string());
        (s, d)
    });
    let (r, ..) = b.call("POST", "/Users", Some(user(2)));
    ids.push(r.body_json()["id"].as_str().unwrap().to_string());
    b.drain();
    let (a, c) = (ids[0].clone(), ids[1].clone());
    row("deactivate user", &mut || {
        let (_, s, d) = b.call(
            "PATCH",
            &format!("/Users/{a}"),
            Some(patch(
                json!([{"op": "replace", "value": {"active": false}}]),
            )),
        );
        (s, d)
    });
    row("reactivate user", &mut || {
        let (_, s, d) = b.call(
            "PATCH",
            &format!("/Users/{a}"),
            Some(patch(json!([{"op": "replace", "value": {"active": true}}]))),
        );
        (s, d)
    });
    let mut gid = String::new();
    row("create group with 1 member", &mut || {
        let (r, s, d) = b.call("POST", "/Groups", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Eng", "externalId": "okta-eng", "members": [{"value": a}]})));
        gid = r.body_json()["id"].as_str().unwrap().to_string();
        (s, d)
    });
    row("add a member (PATCH)", &mut || {
        let (_, s, d) = b.call(
            "PATCH",
            &format!("/Groups/{gid}"),
            Some(patch(
                json!([{"op": "add", "path": "members", "value": [{"value": c}]}]),
            )),
        );
        (s, d)
    });
    row("Okta's rename PATCH, nothing changed", &mut || {
        let (_, s, d) = b.call(
            "PATCH",
            &format!("/Groups/{gid}"),
            Some(patch(
                json!([{"op": "replace", "value": {"id": gid, "displayName": "Eng"}}]),
            )),
        );
        (s, d)
    });
    row("rename group", &mut || {
        let (_, s, d) = b.call(
            "PATCH",
            &format!("/Groups/{gid}"),
            Some(patch(
                json!([{"op": "replace", "value": {"id": gid, "displayName": "Engineering"}}]),
            )),
        );
        (s, d)
    });
    row("delete user (revoke)", &mut || {
        let (_, s, d) = b.call("DELETE", &format!("/Users/{c}"), None);
        (s, d)
    });
}

fn main() {
    let n: usize = std::env::var("SCIM_EDGE_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let l = fast_limits();
    println!(
        "Delivery to a vault limited to {} writes per {} ms and {} per {} ms (Bitwarden's proportions, 100x faster)\n",
        l.per_second, l.second_ms, l.per_window, l.window_ms
    );
    println!("| drained by | users | vault writes | windows elapsed | writes per window | ratio to the limit | 429s | most invites of one email |");
    println!("|---|---|---|---|---|---|---|---|");
    delivery(n, 0, "_vault/sync alone");
    delivery(n, 4, "after each request (4 calls) and _vault/sync");
    println!("\nVault calls and key-value round trips per SCIM change (Bitwarden; the drain runs after the request)\n");
    println!("| change | vault calls | vault writes | KV round trips: the request | KV round trips: the drain |");
    println!("|---|---|---|---|---|");
    per_change();
}
