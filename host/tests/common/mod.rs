//! Serving the built scim-edge component through the test host.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scim_edge::auth::KeyHash;
use scim_edge_host::client::{request, Reply};
use scim_edge_host::{serve, Backend, Host, Running};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

#[path = "../../../tests/common/built.rs"]
mod built;
#[path = "../../../tests/common/orgs.rs"]
mod orgs;
pub use orgs::{key, OFF, OTHER, STRICT};

/// The component built by `cargo build --lib --target wasm32-wasip2 --release --features spin`
/// (the test script builds it first).
pub fn wasm_path() -> PathBuf {
    match std::env::var_os("SCIM_EDGE_WASM") {
        Some(p) => p.into(),
        None => built::built(
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."),
            "wasm32-wasip2/release/scim_edge.wasm",
        ),
    }
}

pub fn wasm() -> &'static [u8] {
    static W: OnceLock<Vec<u8>> = OnceLock::new();
    W.get_or_init(|| {
        let p = wasm_path();
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}; build it with `cargo build --lib --target wasm32-wasip2 --release --features spin`", p.display()))
    })
}

/// One organization's entry in the `organizations` variable: [`key`] and its rotation.
pub fn org_entry(org: &str, policy: &str) -> String {
    let (k, rotated) = (
        KeyHash::of(&key(org)).to_hex(),
        KeyHash::of(&format!("{}-rotated", key(org))).to_hex(),
    );
    format!("\"{org}\": {{\"keys\": [\"{k}\", \"{rotated}\"], \"policy\": \"{policy}\"}}")
}

pub fn organizations_with(extra: &[String]) -> String {
    let mut all = vec![
        org_entry(STRICT, "strict"),
        org_entry(OFF, "off"),
        org_entry(OTHER, "strict"),
    ];
    all.extend_from_slice(extra);
    format!("{{{}}}", all.join(", "))
}

pub fn organizations() -> String {
    organizations_with(&[])
}

/// A fresh server with an empty store.
pub fn server_with(vars: HashMap<String, String>) -> Running {
    let host = Host::new(wasm(), vars, Arc::new(Backend::default())).unwrap();
    serve(host, "127.0.0.1:0".parse().unwrap(), 2).unwrap()
}

pub fn server() -> Running {
    server_with(HashMap::from([(
        "organizations".to_string(),
        organizations(),
    )]))
}

/// Sends a request with the key of the organization named in the path, unless the
/// caller sends its own `authorization`.
pub fn as_org(
    s: &Running,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let org = path
        .split('/')
        .find(|p| scim_edge::ids::OrgId::parse(p).is_some())
        .unwrap_or(STRICT)
        .to_string();
    let auth = format!("Bearer {}", key(&org));
    let mut all = headers.to_vec();
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
    {
        all.push(("authorization", &auth));
    }
    request(s.addr, method, path, &all, body).unwrap()
}

pub fn call(s: &Running, method: &str, path: &str, body: Option<&serde_json::Value>) -> Reply {
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let headers: &[(&str, &str)] = if body.is_some() {
        &[("content-type", "application/scim+json")]
    } else {
        &[]
    };
    as_org(s, method, path, headers, &bytes)
}

pub fn json(r: &Reply) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null)
}
