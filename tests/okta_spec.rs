//! Okta's published SCIM 2.0 spec test, replayed step by step through the router.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::runscope::{initial_variables, load_spec, replay, Reply};
use common::{key, H, STRICT};
use scim_edge::http::Request;

#[test]
fn every_required_step_passes() {
    let Some(spec) = load_spec("okta_spec::every_required_step_passes") else {
        return;
    };
    let h = H::new();
    // The spec test assumes the application already holds a user.
    h.user(STRICT, "existing.user@atko.com");
    let mut vars = initial_variables(
        &format!("/scim/v2/{STRICT}"),
        &format!("Bearer {}", key(STRICT)),
        7,
    );
    let results = replay(&spec, &mut vars, &mut |call| {
        let mut req = Request::new(&call.method, &call.url);
        for (k, v) in &call.headers {
            req = req.header(k, v);
        }
        if let Some(b) = &call.body {
            req.body = b.clone().into_bytes();
        }
        let r = h.router().handle(&req);
        Reply {
            status: r.status,
            body: r.body,
        }
    });
    assert!(
        results.iter().filter(|r| r.required).count() >= 11,
        "{results:?}"
    );
    let failed: Vec<_> = results.iter().filter(|r| !r.failures.is_empty()).collect();
    assert!(failed.is_empty(), "failed steps: {failed:#?}");
}
