//! What the vault tests and bench share:
//! - the fake vault at Bitwarden's limits on a short clock, and the `vault` object that
//!   points an organization at it (the native tests, the bench, and the component's tests
//!   in host/tests/vault.rs);
//! - in place of a host, for the native tests and bench: a blocking HTTP/1.1 client over
//!   std's TCP (what the Spin adapter's wasi:http sending does, for `http://127.0.0.1`
//!   only) and the wall clock (the fake vault's limits run on it).
#![allow(dead_code)]

use scim_edge::auth::KeyHash;
use scim_edge::config::Config;
use scim_edge::http::{Request, Response};
use scim_edge::ids::{Clock, SeqIds};
use scim_edge::router::Router;
use scim_edge::store::{Counts, MemStore};
use scim_edge::vault::net::{NetError, OutRequest, OutResponse, Outbound};
use scim_edge::vault::Report;
use scim_edge_fakevault::{FakeVault, Limits, Mode, Options};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Bitwarden's proportions with the durations shortened: 5 writes per 10 ms, 60 per
/// 600 ms (the real clock is 100 times slower).
pub fn fast_limits() -> Limits {
    Limits {
        per_second: 5,
        per_window: 60,
        second_ms: 10,
        window_ms: 600,
        ..Limits::default()
    }
}

/// A fake vault at [`fast_limits`], with groups enabled.
pub fn start_vault(mode: Mode) -> FakeVault {
    FakeVault::start(Options {
        mode,
        limits: fast_limits(),
        groups_enabled: true,
        ..Options::default()
    })
}

/// The `vault` object for an organization provisioned into `v`, with the component's
/// rate on the fake's clock, short retries and debounce, and each of `extra`'s fields
/// over it in turn.
pub fn vault_config(v: &FakeVault, extra: &[&Value]) -> Value {
    let o = v.options();
    let mut cfg = json!({
        "kind": if o.mode == Mode::Bitwarden { "bitwarden" } else { "vaultwarden" },
        "api_url": v.api_url(),
        "identity_url": v.identity_url(),
        "client_id": o.client_id(),
        "client_secret": o.client_secret,
        "rate": {"second_ms": 10, "window_ms": 600},
        "retry_ms": 20,
        "debounce_ms": 1,
    });
    for e in extra {
        for (k, x) in e.as_object().into_iter().flatten() {
            cfg[k] = x.clone();
        }
    }
    cfg
}

/// The organization of the native tests and bench, and its SCIM key.
pub const ORG: &str = "6a1e5c3b-2d4f-4a8b-9c0d-1e2f3a4b5c6d";
pub const KEY: &str = "vault-test-key";

/// [`ORG`] provisioned into a fake vault of its own, served by the router over the
/// in-memory store as a host would: each request, then the drain after its answer.
pub struct Provisioned {
    pub vault: FakeVault,
    pub config: Config,
    pub store: MemStore,
    pub ids: SeqIds,
}

impl Provisioned {
    /// `extra` goes over [`vault_config`]'s fields in turn.
    pub fn new(mode: Mode, extra: &[&Value]) -> Self {
        let vault = start_vault(mode);
        let v = vault_config(&vault, extra);
        let config = Config::from_json(
            &json!({"organizations": {ORG: {"keys": [KeyHash::of(KEY).to_hex()], "policy": "strict", "vault": v}}})
                .to_string(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Provisioned {
            vault,
            config,
            store: MemStore::new(),
            ids: SeqIds::default(),
        }
    }

    /// One request under `/v2/{ORG}` with [`KEY`], and the drain after its answer: the
    /// response, the drain's outcome, and the key-value counts of each.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (Response, Option<Result<Report, String>>, Counts, Counts) {
        let mut req = Request::new(method, &format!("/v2/{ORG}{path}"))
            .header("authorization", &format!("Bearer {KEY}"));
        if let Some(b) = body {
            req = req.header("content-type", "application/scim+json").json(&b);
        }
        let router =
            Router::new(&self.config, &self.store, &Wall, &self.ids).with_outbound(&TcpOutbound);
        let c0 = self.store.counts();
        let resp = router.handle(&req);
        let c1 = self.store.counts();
        let summary = Response {
            status: resp.status,
            ..Response::default()
        };
        let drained = router.after(&req, &summary);
        let c2 = self.store.counts();
        (resp, drained, c1 - c0, c2 - c1)
    }
}

pub struct TcpOutbound;

pub struct Wall;

impl Clock for Wall {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(std::str::from_utf8(&b[..end]).unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = end + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = &b[(start + size + 2).min(b.len())..];
    }
}

impl Outbound for TcpOutbound {
    fn send(&self, req: OutRequest) -> Result<OutResponse, NetError> {
        let rest = req
            .url
            .strip_prefix("http://")
            .ok_or_else(|| NetError::Denied(req.url.clone()))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        let timeout = Duration::from_millis(req.timeout_ms as u64);
        let addr = authority
            .parse()
            .map_err(|_| NetError::Failed(format!("bad authority {authority}")))?;
        let mut s = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| NetError::Failed(e.to_string()))?;
        s.set_read_timeout(Some(timeout)).ok();
        // The request carries its own content-length (OutRequest::new).
        let mut head = format!(
            "{} {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n",
            req.method
        );
        for (k, v) in &req.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes())
            .map_err(|e| NetError::Failed(e.to_string()))?;
        s.write_all(&req.body)
            .map_err(|e| NetError::Failed(e.to_string()))?;
        let mut buf = Vec::new();
        match s.read_to_end(&mut buf) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(NetError::Timeout)
            }
            Err(e) => return Err(NetError::Failed(e.to_string())),
        }
        let split = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| NetError::Failed("connection closed without an answer".into()))?;
        let head = String::from_utf8_lossy(&buf[..split]).to_string();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| NetError::Failed("bad status line".into()))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = buf[split + 4..].to_vec();
        if headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        Ok(OutResponse {
            status,
            headers,
            body,
        })
    }

    fn pause(&self, ms: i64) {
        std::thread::sleep(Duration::from_millis(ms.max(0) as u64));
    }
}
