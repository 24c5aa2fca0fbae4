//! `POST _vault/observed` natively: what the Confirm agent reports is recorded as the
//! users' vault status when the member is scim-edge's, and refused otherwise; the pass
//! shows in `_vault/status`. The agent itself runs against it in host/tests/confirm.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "vault/support.rs"]
mod support;

use scim_edge::http::Response;
use scim_edge_fakevault::Mode;
use serde_json::{json, Value};
use support::Provisioned;

const EXT: &str = "urn:scim-edge:schemas:extension:vault:2.0:User";

fn call(t: &Provisioned, method: &str, path: &str, body: Option<Value>) -> Response {
    t.send(method, path, body).0
}

fn body(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

fn user(t: &Provisioned, address: &str) -> String {
    let u = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": address,
        "emails": [{"primary": true, "value": address}], "active": true});
    let r = call(t, "POST", "/Users", Some(u));
    assert_eq!(r.status, 201);
    body(&r)["id"].as_str().unwrap().to_string()
}

fn sync(t: &Provisioned) {
    for _ in 0..50 {
        let r = call(t, "POST", "/_vault/sync", None);
        assert_eq!(r.status, 200);
        if body(&r)["pending"] == 0 {
            return;
        }
    }
    panic!("the outbox never emptied");
}

fn status(t: &Provisioned, id: &str) -> Value {
    body(&call(t, "GET", &format!("/Users/{id}"), None))[EXT]["status"].clone()
}

#[test]
fn members_are_matched_by_linked_id_or_email_and_strangers_refused() {
    for mode in [Mode::Bitwarden, Mode::Vaultwarden] {
        let t = Provisioned::new(mode, &[&json!({"timeout_ms": 2000})]);
        let alice = user(&t, "alice@example.com");
        let bob = user(&t, "Bob@Example.com");
        sync(&t);
        let mid = |email: &str| {
            t.vault
                .members()
                .into_iter()
                .find(|m| m.email.eq_ignore_ascii_case(email))
                .unwrap()
                .id
        };
        let report = json!({
            "members": [
                {"id": mid("alice@example.com"), "email": "alice@example.com", "status": 2},
                {"id": mid("bob@example.com"), "email": "bob@example.com", "status": 1},
                {"id": "9d0e8f7a-0000-4000-8000-000000000001", "email": "owner@example.com", "status": 2},
                {"id": "9d0e8f7a-0000-4000-8000-000000000002", "email": "alice@example.com", "status": 2},
                {"id": mid("alice@example.com"), "email": "alice@example.com", "status": 9},
            ],
            "pass": {"confirmed": 1, "skipped": 0, "failed": 0},
        });
        let r = call(&t, "POST", "/_vault/observed", Some(report.clone()));
        assert_eq!(
            r.status,
            200,
            "{mode:?}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let b = body(&r);
        assert_eq!(b["recorded"], 2, "{mode:?}: {b}");
        let refused: Vec<&str> = b["refused"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["reason"].as_str().unwrap())
            .collect();
        assert_eq!(refused.len(), 3, "{mode:?}: {b}");
        assert!(refused[0].contains("no user"), "{refused:?}");
        // An address whose user is linked to another member (Bitwarden links them; the
        // import leaves Vaultwarden's users unlinked, so there the address finds a user
        // this report already matched).
        if mode == Mode::Bitwarden {
            assert!(refused[1].contains("linked to member"), "{refused:?}");
        } else {
            assert!(refused[1].contains("this report"), "{refused:?}");
        }
        assert!(refused[2].contains("status 9"), "{refused:?}");
        assert_eq!(status(&t, &alice), "confirmed", "{mode:?}");
        if mode == Mode::Bitwarden {
            // The agent finds a member's user by the id scim-edge linked.
            let f = format!("{EXT}:memberId eq \"{}\"", mid("alice@example.com"));
            let q = format!(
                "/Users?filter={}",
                f.replace(' ', "%20").replace('"', "%22")
            );
            let found = body(&call(&t, "GET", &q, None));
            assert_eq!(found["totalResults"], 1, "{found}");
            assert_eq!(found["Resources"][0]["id"], alice.as_str());
        }
        assert_eq!(status(&t, &bob), "accepted", "{mode:?}");
        // The same report again changes nothing.
        let again = body(&call(&t, "POST", "/_vault/observed", Some(report)));
        assert_eq!(again["recorded"], 0, "{again}");
        let st = body(&call(&t, "GET", "/_vault/status", None));
        assert_eq!(st["agent"]["confirmed"], 1, "{st}");
        assert!(st["agent"]["at"].is_string(), "{st}");
    }
}

#[test]
fn a_malformed_report_is_a_scim_error_and_records_nothing() {
    let t = Provisioned::new(Mode::Bitwarden, &[]);
    for bad in [
        json!({"members": "all"}),
        json!({"members": [{"id": "m", "email": "a@b.c"}]}),
        json!({"members": [], "extra": 1}),
        json!({"members": [], "pass": {"at": 5}}),
        json!([]),
    ] {
        let r = call(&t, "POST", "/_vault/observed", Some(bad.clone()));
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(body(&r)["scimType"], "invalidSyntax", "{bad}");
    }
    let r = call(&t, "GET", "/_vault/observed", None);
    assert_eq!(r.status, 405);
    assert_eq!(
        body(&call(&t, "GET", "/_vault/status", None))["agent"],
        Value::Null
    );
}
