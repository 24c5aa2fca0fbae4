//! What the console reads and does, natively against the fake vault: the overview, the
//! recent problems, the last token request, the confirm queue, and retrying a parked
//! entry. The page itself runs in a real browser in host/tests/console.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "vault/support.rs"]
mod support;

use scim_edge::http::{Request, Response};
use scim_edge::router::Router;
use scim_edge::store::Store;
use scim_edge_fakevault::{Fault, Mode, ACCEPTED};
use serde_json::{json, Value};
use support::{Provisioned, Wall, ORG};

fn call(t: &Provisioned, method: &str, path: &str, body: Option<Value>) -> Response {
    t.send(method, path, body).0
}

fn user(t: &Provisioned, address: &str) -> String {
    let u = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": address,
        "emails": [{"primary": true, "value": address}], "active": true});
    let r = call(t, "POST", "/Users", Some(u));
    assert_eq!(r.status, 201);
    r.body_json()["id"].as_str().unwrap().to_string()
}

fn sync(t: &Provisioned) -> Value {
    let r = call(t, "POST", "/_vault/sync", None);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.body_json()
}

fn status(t: &Provisioned) -> Value {
    call(t, "GET", "/_vault/status", None).body_json()
}

#[test]
fn a_parked_entry_is_a_problem_and_retry_delivers_it_once_the_vault_takes_it() {
    let t = Provisioned::new(
        Mode::Bitwarden,
        &[&json!({"max_attempts": 2, "timeout_ms": 2000})],
    );
    user(&t, "first@example.com");
    sync(&t);
    // Clean drains leave no problem behind, and no key for them.
    assert_eq!(status(&t)["problems"], json!([]));
    let problems_key = format!("{ORG}/V/problems");
    assert_eq!(t.store.get(&problems_key).unwrap(), None);
    assert_eq!(status(&t)["token"]["ok"], true);

    t.vault.fault(Fault::Status(400, 1000));
    let id = user(&t, "late@example.com");
    for _ in 0..4 {
        sync(&t);
        std::thread::sleep(std::time::Duration::from_millis(60));
    }
    let s = status(&t);
    let entry = format!("u:{id}");
    assert_eq!(s["parked"][0]["entry"], entry.as_str(), "{s}");
    assert_eq!(s["parked"][0]["name"], "late@example.com", "{s}");
    let p = &s["problems"][0];
    assert_eq!(
        (p["kind"].as_str(), p["id"].as_str()),
        (Some("refused"), Some(id.as_str())),
        "{s}"
    );
    assert!(p["at"].is_string());

    // Refused while the vault still refuses: it stays parked.
    let r = call(&t, "POST", "/_vault/retry", Some(json!({"entry": entry})));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.body_json()["sync"]["parked"], 1);
    t.vault.clear_faults();
    let r = call(&t, "POST", "/_vault/retry", Some(json!({"entry": entry})));
    assert_eq!(r.status, 200);
    let b = r.body_json();
    assert_eq!(
        (b["retried"].as_str(), &b["sync"]["parked"]),
        (Some(entry.as_str()), &json!(0)),
        "{b}"
    );
    assert_eq!(t.vault.members().len(), 2);
    assert_eq!(t.vault.stats().max_invites(), 1);

    let r = call(&t, "POST", "/_vault/retry", Some(json!({"entry": entry})));
    assert_eq!(r.status, 404);
    for bad in [
        json!({}),
        json!({"entry": 1}),
        json!({"entry": "u:x", "more": 1}),
        json!("u:x"),
    ] {
        let r = call(&t, "POST", "/_vault/retry", Some(bad.clone()));
        assert_eq!(
            (r.status, r.body_json()["scimType"].as_str()),
            (400, Some("invalidSyntax")),
            "{bad}"
        );
    }
}

#[test]
fn a_refused_token_shows_and_the_queue_lists_accepted_members() {
    let t = Provisioned::new(Mode::Bitwarden, &[&json!({"timeout_ms": 2000})]);
    // The first drain's token request is refused.
    t.vault.fault(Fault::Status(400, 1));
    let id = user(&t, "ann@example.com");
    let s = status(&t);
    assert_eq!(s["token"]["ok"], false, "{s}");
    assert!(
        s["token"]["error"].as_str().unwrap().contains("refused"),
        "{s}"
    );
    assert!(
        s["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "token"),
        "{s}"
    );

    sync(&t);
    let ann = t
        .vault
        .members()
        .into_iter()
        .find(|m| m.email == "ann@example.com")
        .unwrap();
    t.vault.set_status(&ann.id, ACCEPTED);
    let r = call(&t, "POST", "/_vault/sync?reconcile=1", None);
    assert_eq!(r.status, 200);
    let s = status(&t);
    assert_eq!(s["token"]["ok"], true, "{s}");
    assert_eq!(
        s["confirmQueue"],
        json!([{"id": id, "email": "ann@example.com", "since": s["confirmQueue"][0]["since"]}]),
        "{s}"
    );
    assert!(s["confirmQueue"][0]["since"].is_string());
}

#[test]
fn the_overview_and_the_console_routes() {
    let t = Provisioned::new(Mode::Bitwarden, &[&json!({"timeout_ms": 2000})]);
    let id = user(&t, "ann@example.com");
    user(&t, "bob@example.com");
    let off = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": false}}]});
    assert_eq!(
        call(&t, "PATCH", &format!("/Users/{id}"), Some(off)).status,
        200
    );
    let g =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Eng"});
    assert_eq!(call(&t, "POST", "/Groups", Some(g)).status, 201);
    let o = call(&t, "GET", "/_console/overview", None);
    assert_eq!(o.header_value("cache-control"), Some("no-store"));
    let o = o.body_json();
    assert_eq!(o["policy"], "strict");
    assert_eq!(o["users"], json!({"active": 1, "inactive": 1}));
    assert_eq!(o["groups"], 1);
    assert_eq!(o["vault"]["kind"], "bitwarden");

    // The page and its assets answer without a key; the overview does not.
    let router = Router::new(&t.config, &t.store, &Wall, &t.ids);
    for (path, ty) in [
        ("/_console", "text/html"),
        ("/_console/console.js", "text/javascript"),
        ("/_console/console.css", "text/css"),
    ] {
        let r = router.handle(&Request::new("GET", &format!("/v2/{ORG}{path}")));
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.header_value("content-type").unwrap().starts_with(ty),
            "{path}"
        );
        let csp = r.header_value("content-security-policy").unwrap();
        for part in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert_eq!(r.header_value("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header_value("referrer-policy"), Some("no-referrer"));
    }
    let r = router.handle(&Request::new(
        "GET",
        &format!("/v2/{ORG}/_console/overview"),
    ));
    assert_eq!(r.status, 401);
    // With a trailing slash the page's relative assets would miss: it is redirected.
    let r = router.handle(&Request::new("GET", &format!("/scim/v2/{ORG}/_console/")));
    assert_eq!(r.status, 308);
    let to = format!("/scim/v2/{ORG}/_console");
    assert_eq!(r.header_value("location"), Some(to.as_str()));
    // The icon a browser asks for on its own is answered with nothing.
    assert_eq!(
        router.handle(&Request::new("GET", "/favicon.ico")).status,
        204
    );
}
