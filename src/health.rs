//! `GET /healthz`: the unauthenticated probe for load balancers, Envoy health checks and
//! Kubernetes (SpinKube). 200 when the configuration loaded and the store answers a
//! read; 503 otherwise, with a short reason that names no organization and no key.

use crate::http::Response;
use crate::store::Store;
use serde_json::json;

/// The health route, outside every organization's prefix.
pub const PATH: &str = "/healthz";

/// A key no organization's data uses (those start with the organization id).
const PROBE_KEY: &str = "scim-edge/healthz";

/// Whether a request path is the health route.
pub fn is_health(path: &str) -> bool {
    path == PATH
}

/// The answer to the health route once the configuration has loaded.
pub fn check(method: &str, store: &dyn Store) -> Response {
    if !method.eq_ignore_ascii_case("GET") {
        let mut r = plain(Response::json(
            405,
            &json!({"status": "method not allowed"}),
        ));
        r.headers.push(("allow".into(), "GET".into()));
        return r;
    }
    match store.get(PROBE_KEY) {
        Ok(_) => plain(Response::json(200, &json!({"status": "ok"}))),
        Err(e) => {
            let mut r = unhealthy("the store does not answer a read");
            r.cause = Some(format!("health check: {}", e.0));
            r
        }
    }
}

/// A 503 health answer with a fixed, secret-free reason.
pub fn unhealthy(reason: &'static str) -> Response {
    plain(Response::json(
        503,
        &json!({"status": "unavailable", "reason": reason}),
    ))
}

// Probes are not SCIM clients: plain JSON, and never cached.
fn plain(mut r: Response) -> Response {
    r.headers = vec![
        ("content-type".into(), "application/json".into()),
        ("cache-control".into(), "no-store".into()),
    ];
    r
}
