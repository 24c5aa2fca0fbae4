//! Serving the built scim-edge component through the test host.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scim_edge::auth::KeyHash;
use scim_edge_host::client::{request, Reply};
use scim_edge_host::{serve, Backend, Host, KvCounts, Profile, Running};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

#[path = "../../../tests/common/built.rs"]
mod built;
#[path = "../../../tests/common/orgs.rs"]
pub mod orgs;
pub use orgs::{key, OFF, OTHER, STRICT};

/// The profile the end-to-end suites run on: `SCIM_EDGE_PROFILE` (`spin`, the default,
/// or `edge`), so CI can run each suite once per host.
pub fn profile() -> Profile {
    match std::env::var("SCIM_EDGE_PROFILE") {
        Ok(p) => p
            .parse()
            .unwrap_or_else(|e| panic!("SCIM_EDGE_PROFILE: {e}")),
        Err(_) => Profile::Spin,
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The command that builds a profile's artifact (the test script builds both first).
fn build_command(profile: Profile) -> String {
    let t = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_string());
    match profile {
        Profile::Spin => {
            "cargo build --lib --target wasm32-wasip2 --release --features atomics".to_string()
        }
        Profile::Edge => format!(
            "cargo build --lib --target wasm32-wasip2 --release --features spin --target-dir {t}/edge"
        ),
    }
}

/// The Spin artifact, or `SCIM_EDGE_WASM` when set.
pub fn wasm_path() -> PathBuf {
    match std::env::var_os("SCIM_EDGE_WASM") {
        Some(p) => p.into(),
        None => built::built(&repo(), "wasm32-wasip2/release/scim_edge.wasm"),
    }
}

/// A path in the target directory (a binary of the workspace, say).
pub fn built_path(rel: &str) -> PathBuf {
    built::built(&repo(), rel)
}

/// The edge artifact (no atomics), built in its own target directory.
pub fn edge_wasm_path() -> PathBuf {
    built::built(&repo(), "edge/wasm32-wasip2/release/scim_edge.wasm")
}

/// A profile's artifact, read once.
pub fn artifact(profile: Profile) -> &'static [u8] {
    static SPIN: OnceLock<Vec<u8>> = OnceLock::new();
    static EDGE: OnceLock<Vec<u8>> = OnceLock::new();
    let (cell, path) = match profile {
        Profile::Spin => (&SPIN, wasm_path()),
        Profile::Edge => (&EDGE, edge_wasm_path()),
    };
    cell.get_or_init(|| {
        std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; build it with `{}`",
                path.display(),
                build_command(profile)
            )
        })
    })
}

/// The artifact of the profile the suites run on.
pub fn wasm() -> &'static [u8] {
    artifact(profile())
}

/// The `x-kv-*` counts of a reply from the test host.
pub fn kv(r: &Reply) -> KvCounts {
    r.kv_counts()
        .unwrap_or_else(|| panic!("no x-kv-* headers in {:?}", r.headers))
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

/// A fresh server with an empty store, on the [`profile`] the suites run on.
pub fn server_with(vars: HashMap<String, String>) -> Running {
    let host = Host::with_profile(wasm(), vars, Arc::new(Backend::default()), profile())
        .unwrap_or_else(|e| {
            panic!(
                "the {} artifact on the {} profile: {e:#}",
                profile(),
                profile()
            )
        });
    serve(host, "127.0.0.1:0".parse().unwrap(), 2).unwrap()
}

/// A fresh server over these organization entries, granted outbound HTTP to loopback
/// (where the fake vault listens) as `vault_origin`.
pub fn vault_server(entries: &[String]) -> Running {
    let vars = HashMap::from([
        (
            "organizations".to_string(),
            format!("{{{}}}", entries.join(", ")),
        ),
        ("vault_origin".to_string(), "http://127.0.0.1:*".to_string()),
    ]);
    let host = Host::with_profile(wasm(), vars, Arc::new(Backend::default()), profile())
        .unwrap()
        .allow_outbound(&["{{ vault_origin }}"])
        .unwrap();
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

/// [`call`] under `/v2/{org}`, with that organization's key.
pub fn org_call(
    s: &Running,
    org: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> Reply {
    call(s, method, &format!("/v2/{org}{path}"), body.as_ref())
}

pub fn json(r: &Reply) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null)
}
