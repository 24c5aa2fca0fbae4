//! The token endpoint in both modes, and the API's bearer check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use scim_edge_fakevault::{FakeVault, Limits, Mode, Options};
use std::time::Duration;

fn without<'a>(f: &'a [(&'static str, String)], drop: &str) -> Vec<(&'a str, &'a str)> {
    f.iter()
        .filter(|(k, _)| *k != drop)
        .map(|(k, v)| (*k, v.as_str()))
        .collect()
}

fn with<'a>(f: &'a [(&'static str, String)], key: &str, value: &'a str) -> Vec<(&'a str, &'a str)> {
    f.iter()
        .map(|(k, v)| (*k, if *k == key { value } else { v.as_str() }))
        .collect()
}

#[test]
fn bitwarden_token_flow() {
    let v = vault(Mode::Bitwarden);
    let f = good_form(&v);
    let r = token_request(&v, &without(&f, "nothing"));
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["expires_in"], 3600);
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["scope"], "api.organization");
    let tok = j["access_token"].as_str().unwrap();
    assert_eq!(api(&v, tok, "GET", "/public/members", None).status, 200);

    // Bitwarden needs no device fields.
    let bare: Vec<(&str, &str)> = f.iter().take(4).map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(token_request(&v, &bare).status, 200);

    for (pairs, error) in [
        (with(&f, "client_secret", "wrong"), "invalid_client"),
        (
            with(
                &f,
                "client_id",
                "organization.00000000-0000-4000-8000-000000000000",
            ),
            "invalid_client",
        ),
        (without(&f, "client_secret"), "invalid_client"),
        (with(&f, "grant_type", "password"), "unsupported_grant_type"),
        (with(&f, "scope", "api"), "invalid_scope"),
    ] {
        let r = token_request(&v, &pairs);
        assert_eq!(r.status, 400, "{pairs:?}");
        assert_eq!(r.json()["error"], error, "{pairs:?}");
    }
    let s = v.stats();
    assert_eq!(s.tokens_issued, 2);
    assert_eq!(s.count("POST /identity/connect/token"), 7);
}

#[test]
fn vaultwarden_requires_device_fields() {
    let v = vault(Mode::Vaultwarden);
    let f = good_form(&v);
    for field in ["device_identifier", "device_name", "device_type"] {
        let r = token_request(&v, &without(&f, field));
        assert_eq!(r.status, 400, "{field}");
        assert!(r.json()["message"].as_str().unwrap().contains(field));
    }
    assert_eq!(
        token_request(&v, &with(&f, "client_secret", "x")).json()["error"],
        "invalid_client"
    );
    assert_eq!(
        token_request(&v, &with(&f, "scope", "api.other")).json()["error"],
        "invalid_scope"
    );
    // `api` is the personal API key's scope: the organization's client id is malformed there.
    let r = token_request(&v, &with(&f, "scope", "api"));
    assert_eq!(r.json()["error"], "invalid_client");
    assert_eq!(r.json()["message"], "Malformed client_id");
    let r = token_request(&v, &without(&f, "nothing"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["token_type"], "Bearer");
    assert_eq!(v.stats().tokens_issued, 1);
}

#[test]
fn bad_and_expired_tokens_are_401_empty() {
    let v = FakeVault::start(Options {
        token_lifetime_s: 1,
        limits: Limits::unlimited(),
        ..Options::default()
    });
    let r = send(&v.url(), "GET", "/api/public/members", &[], b"");
    let r = r.unwrap();
    assert_eq!((r.status, r.body.as_str()), (401, ""));
    assert_eq!(
        api(&v, "made-up", "GET", "/public/members", None).status,
        401
    );

    let tok = token(&v);
    assert_eq!(api(&v, &tok, "GET", "/public/groups", None).status, 200);
    std::thread::sleep(Duration::from_millis(1100));
    let r = api(&v, &tok, "GET", "/public/groups", None);
    assert_eq!((r.status, r.body.as_str()), (401, ""));

    let tok = token(&v);
    v.expire_tokens();
    assert_eq!(api(&v, &tok, "GET", "/public/groups", None).status, 401);
}

#[test]
fn token_endpoint_rate_limit() {
    let v = FakeVault::start(Options {
        token_per_window: 3,
        limits: Limits {
            window_ms: 60_000,
            ..Limits::unlimited()
        },
        ..Options::default()
    });
    for _ in 0..3 {
        token(&v);
    }
    let f = good_form(&v);
    let r = token_request(&v, &without(&f, "nothing"));
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    let s = v.stats();
    assert_eq!((s.tokens_issued, s.rate_limited), (3, 1));
}

#[test]
fn start_inside_a_tokio_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let v = vault(Mode::Bitwarden);
        let url = v.url();
        let r = tokio::task::spawn_blocking(move || {
            send(&url, "GET", "/nope", &[], b"").unwrap().status
        })
        .await
        .unwrap();
        assert_eq!(r, 404);
        drop(v);
    });
}
