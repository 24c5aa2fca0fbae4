//! Recorded Okta interactions (`tests/fixtures/okta/*.json`) replayed through the router.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::fixtures::{files, replay};
use common::{H, LENIENT, OFF, STRICT};
use scim_edge::http::Request;

#[test]
fn okta_fixtures_replay() {
    for f in files() {
        let h = H::new();
        let org_for = |policy: &str| match policy {
            "strict" => STRICT.to_string(),
            "lenient" => LENIENT.to_string(),
            "off" => OFF.to_string(),
            other => panic!("unknown policy {other}"),
        };
        replay(&f, &org_for, &mut |method, path, headers, body| {
            let mut req = Request::new(method, path);
            req.headers = headers;
            req.body = body;
            let r = h.send(req);
            (r.status, r.headers, r.body)
        });
    }
}
