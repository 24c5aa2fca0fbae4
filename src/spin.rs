//! The Spin adapter: Spin's HTTP request in, the core router, Spin's response out; the
//! `default` key-value store behind [`Store`]; configuration from Spin variables. The
//! wasi:http plumbing is [`crate::spin_http`]'s, shared with the edge gate.
//! Every outcome, failures included, is a SCIM response: an `Err` would reach the client
//! as an empty 500.

use crate::access_log::{request_id, RequestLine};
use crate::config::{parse_organizations, Config};
use crate::error::ScimError;
use crate::health;
use crate::http::Response;
use crate::ids::{format_uuid, Clock, Ids};
use crate::router::{describe, Router};
use crate::spin_http::{read_request, respond, SpinOutbound};
use crate::store::{Store, StoreError};
use crate::vault::net::{NetError, OutRequest, OutResponse, Outbound};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};
// The wasi:keyvalue bindings: the store and batch interfaces every Spin host has, and
// the atomic increment only in the build for hosts that have it.
#[cfg(feature = "atomics")]
use spin_sdk::wit::wasi::keyvalue::atomics;
use spin_sdk::wit::wasi::keyvalue::{batch, store as wasi_store};
use std::cell::Cell;

/// Spin variable holding the organizations: JSON
/// `{"<org uuid>": {"keys": ["<sha256 hex>", ...], "policy": "strict"}}`.
pub const ORGANIZATIONS_VAR: &str = "organizations";
/// Spin variable holding optional limits: JSON `{"max_payload": .., "max_count": ..}`.
pub const LIMITS_VAR: &str = "limits";

struct SpinStore {
    bucket: wasi_store::Bucket,
    /// Host calls made (a batch is one), for the request's log line.
    calls: Cell<u64>,
}

impl SpinStore {
    fn count(&self) {
        self.calls.set(self.calls.get() + 1);
    }
}

fn kv_err(e: impl std::fmt::Debug) -> StoreError {
    StoreError(format!("{e:?}"))
}

impl Store for SpinStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.count();
        self.bucket.get(key).map_err(kv_err)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.count();
        self.bucket.set(key, value).map_err(kv_err)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.count();
        self.bucket.delete(key).map_err(kv_err)
    }
    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.count();
        self.bucket.exists(key).map_err(kv_err)
    }
    #[cfg(feature = "atomics")]
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.count();
        atomics::increment(&self.bucket, key, delta).map_err(kv_err)
    }
    #[cfg(not(feature = "atomics"))]
    fn increment(&self, _key: &str, _delta: i64) -> Result<i64, StoreError> {
        Err(StoreError("this build has no atomics".into()))
    }
    fn atomic(&self) -> bool {
        cfg!(feature = "atomics")
    }
    /// Spin's SQLite backend leaves missing keys out of the answer; others return them
    /// as `none`: both read as absent.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.count();
        let found = batch::get_many(&self.bucket, keys).map_err(kv_err)?;
        let mut by_key: std::collections::HashMap<String, Vec<u8>> = found
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        Ok(keys.iter().map(|k| by_key.remove(k)).collect())
    }
    fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        self.count();
        batch::set_many(&self.bucket, pairs).map_err(kv_err)
    }
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        self.count();
        batch::delete_many(&self.bucket, keys).map_err(kv_err)
    }
    fn list_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            self.count();
            let page = self.bucket.list_keys(cursor.as_deref()).map_err(kv_err)?;
            out.extend(page.keys.into_iter().filter(|k| k.starts_with(prefix)));
            match page.cursor {
                Some(c) if Some(&c) != cursor.as_ref() => cursor = Some(c),
                _ => return Ok(out),
            }
        }
    }
}

/// Outbound HTTP through [`SpinOutbound`], counting its calls for the request's log line
/// and writing the vault calls' lines.
struct Counted {
    calls: Cell<u32>,
}

impl Outbound for Counted {
    fn send(&self, req: OutRequest) -> Result<OutResponse, NetError> {
        self.calls.set(self.calls.get() + 1);
        SpinOutbound.send(req)
    }

    fn pause(&self, ms: i64) {
        SpinOutbound.pause(ms);
    }

    fn log(&self, line: &str) {
        log(line);
    }
}

/// Writes one log line in one write, so lines from concurrent instances never mix.
fn log(line: &str) {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

struct RandomIds;

impl Ids for RandomIds {
    fn new_id(&self) -> String {
        let mut b = [0u8; 16];
        // Without randomness the clock still gives distinct ids, so a failure here does
        // not stop the request.
        if getrandom::fill(&mut b).is_err() {
            let t = SystemClock.now_ms().to_be_bytes();
            b[..8].copy_from_slice(&t);
        }
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        format_uuid(&b)
    }
}

/// Reads and checks the configuration; the error names the variable.
fn load_config() -> Result<Config, String> {
    let orgs_text = spin_sdk::variables::get(ORGANIZATIONS_VAR)
        .map_err(|e| format!("variable '{ORGANIZATIONS_VAR}': {e:?}"))?;
    let orgs = parse_organizations(&orgs_text, &format!("variable '{ORGANIZATIONS_VAR}'"))?;
    let limits = match spin_sdk::variables::get(LIMITS_VAR) {
        Ok(text) if !text.trim().is_empty() => crate::config::parse_limits(&text)
            .map_err(|e| format!("variable '{LIMITS_VAR}': {e}"))?,
        _ => crate::service::Limits::default(),
    };
    Ok(Config { orgs, limits })
}

fn unconfigured(path: &str, e: &str) -> Response {
    log(&format!("scim-edge: configuration error: {e}\n"));
    if health::is_health(path) {
        return health::unhealthy("the configuration does not load");
    }
    Response::error(&ScimError::new(
        crate::error::ErrorKind::Internal,
        "scim-edge is not configured correctly; see the server log",
    ))
}

#[spin_sdk::http_component]
fn serve(req: IncomingRequest, out: ResponseOutparam) {
    let started = SystemClock.now_ms();
    let core = read_request(&req, usize::MAX);
    let rid = request_id(core.header_value("x-request-id"), || RandomIds.new_id());
    let config = match load_config() {
        Ok(c) => c,
        Err(e) => return respond(out, unconfigured(&core.path, &e)),
    };
    let store = match wasi_store::open("default") {
        Ok(bucket) => SpinStore {
            bucket,
            calls: Cell::new(0),
        },
        Err(err) => {
            let e = ScimError::unavailable(format!("open store: {err:?}"));
            log(&format!(
                "scim-edge: {}\n",
                e.log_cause().unwrap_or("the store does not open")
            ));
            if health::is_health(&core.path) {
                return respond(out, health::unhealthy("the store does not open"));
            }
            return respond(out, Response::error(&e));
        }
    };
    let outbound = Counted {
        calls: Cell::new(0),
    };
    let router = Router::new(&config, &store, &SystemClock, &RandomIds).with_outbound(&outbound);
    let mut resp = router.handle(&core);
    resp.headers.push(("x-request-id".into(), rid.clone()));
    let status = resp.status;
    let cause = resp.cause.clone();
    let ms = SystemClock.now_ms() - started;
    let summary = Response {
        status,
        ..Response::default()
    };
    respond(out, resp);
    // The answer is out: the vault's share of this request runs now.
    let drained = router.after(&core, &summary);
    let problems: Vec<String> = match drained {
        Some(Err(e)) => vec![e],
        // Log forms only: the vault's own words may quote an address.
        Some(Ok(r)) => r.errors.iter().map(|p| p.log_form()).collect(),
        None => Vec::new(),
    };
    let (org, route) = describe(&core);
    log(&RequestLine {
        at: started,
        org: org.as_ref().map(|o| o.as_str()),
        method: &core.method,
        route,
        status,
        ms,
        kv: store.calls.get(),
        vault_calls: outbound.calls.get(),
        request_id: &rid,
        cause: cause.as_deref(),
        problems: &problems,
    }
    .render());
}
