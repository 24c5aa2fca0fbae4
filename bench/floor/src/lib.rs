//! One key-value get per request and a small JSON answer: what any component pays to
//! be served by the host and reach the store, against which scim-edge's GET is compared.

use spin_sdk::http::{Request, Response};
use spin_sdk::key_value::Store;

#[spin_sdk::http_component]
fn handle(req: Request) -> Response {
    let value = Store::open_default().ok().and_then(|s| s.get(req.path()).ok().flatten());
    let body = format!("{{\"found\":{}}}", value.is_some());
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body)
        .build()
}
