//! The Spin adapter: Spin's HTTP request in, the core router, Spin's response out; the
//! `default` key-value store behind [`Store`]; configuration from Spin variables.
//! Every outcome, failures included, is a SCIM response: an `Err` would reach the client
//! as an empty 500.

use crate::access_log::{request_id, RequestLine};
use crate::config::{parse_organizations, Config};
use crate::error::ScimError;
use crate::health;
use crate::http::{Request, Response};
use crate::ids::{format_uuid, Clock, Ids};
use crate::router::{describe, Router};
use crate::store::{Store, StoreError};
use crate::vault::net::{NetError, OutRequest, OutResponse, Outbound};
use spin_sdk::http::{
    ErrorCode, Fields, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};
use spin_sdk::wit::wasi::http0_2_0::{outgoing_handler, types::RequestOptions};
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
        self.count();
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

/// The request as the core sees it; the body is read whole (the router bounds it).
fn read_request(req: &IncomingRequest) -> Request {
    let method = match req.method() {
        Method::Get => "GET".to_string(),
        Method::Post => "POST".to_string(),
        Method::Put => "PUT".to_string(),
        Method::Patch => "PATCH".to_string(),
        Method::Delete => "DELETE".to_string(),
        Method::Head => "HEAD".to_string(),
        Method::Options => "OPTIONS".to_string(),
        Method::Connect => "CONNECT".to_string(),
        Method::Trace => "TRACE".to_string(),
        Method::Other(m) => m,
    };
    let target = req.path_with_query().unwrap_or_else(|| "/".into());
    let mut core = Request::new(&method, &target);
    for (name, value) in req.headers().entries() {
        if let Ok(v) = String::from_utf8(value) {
            core.headers.push((name, v));
        }
    }
    if let Ok(body) = req.consume() {
        if let Ok(stream) = body.stream() {
            core.body = read_all(&stream);
        }
        drop(body);
    }
    core
}

fn read_all(stream: &wasi::io::streams::InputStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(chunk) = stream.blocking_read(64 * 1024) {
        out.extend_from_slice(&chunk);
    }
    out
}

fn write_all(stream: &wasi::io::streams::OutputStream, mut bytes: &[u8]) -> bool {
    // blocking-write-and-flush takes at most 4096 bytes a call.
    while !bytes.is_empty() {
        let n = bytes.len().min(4096);
        if stream.blocking_write_and_flush(&bytes[..n]).is_err() {
            return false;
        }
        bytes = &bytes[n..];
    }
    true
}

fn fields(headers: &[(String, String)]) -> Fields {
    let list: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    Fields::from_list(&list).unwrap_or_else(|_| Fields::new())
}

/// Sends the whole response and ends its body, so the client has it before any work
/// done after it.
fn respond(out: ResponseOutparam, r: Response) {
    let resp = OutgoingResponse::new(fields(&r.headers));
    let _ = resp.set_status_code(r.status);
    let Ok(body) = resp.body() else {
        return;
    };
    out.set(resp);
    if let Ok(stream) = body.write() {
        write_all(&stream, &r.body);
        drop(stream);
    }
    let _ = OutgoingBody::finish(body, None);
}

/// Outbound HTTP over wasi:http's outgoing handler, blocking: the core is synchronous.
/// Outbound HTTP, counting its calls for the request's log line.
struct SpinOutbound {
    calls: Cell<u32>,
}

/// Writes one log line in one write, so lines from concurrent instances never mix.
fn log(line: &str) {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

impl Outbound for SpinOutbound {
    fn log(&self, line: &str) {
        log(line);
    }

    fn send(&self, req: OutRequest) -> Result<OutResponse, NetError> {
        self.calls.set(self.calls.get() + 1);
        let (scheme, rest) = match req.url.split_once("://") {
            Some(("https", r)) => (Scheme::Https, r),
            Some(("http", r)) => (Scheme::Http, r),
            _ => return Err(NetError::Failed("not an http(s) URL".into())),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let request = OutgoingRequest::new(fields(&req.headers));
        let method = match req.method {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            other => Method::Other(other.to_string()),
        };
        let set = request.set_method(&method).is_ok()
            && request.set_scheme(Some(&scheme)).is_ok()
            && request.set_authority(Some(authority)).is_ok()
            && request.set_path_with_query(Some(path)).is_ok();
        if !set {
            return Err(NetError::Failed("the request could not be built".into()));
        }
        let body = request
            .body()
            .map_err(|()| NetError::Failed("no request body".into()))?;
        let options = RequestOptions::new();
        let ns = u64::try_from(req.timeout_ms)
            .unwrap_or(10_000)
            .saturating_mul(1_000_000);
        let _ = options.set_connect_timeout(Some(ns));
        let _ = options.set_first_byte_timeout(Some(ns));
        let _ = options.set_between_bytes_timeout(Some(ns));
        // Sent first, the body streamed after: the host buffers only a few chunks of a
        // body whose request has not been handed over.
        let pending = outgoing_handler::handle(request, Some(options)).map_err(net_error)?;
        // A refused request closes the body's stream: its answer says why.
        let mut wrote = true;
        if let Ok(stream) = body.write() {
            wrote = write_all(&stream, &req.body);
            drop(stream);
        }
        let finished = OutgoingBody::finish(body, None);
        pending.subscribe().block();
        let resp = match pending.get() {
            Some(Ok(Ok(r))) => r,
            Some(Ok(Err(e))) => return Err(net_error(e)),
            _ => return Err(NetError::Failed("no response".into())),
        };
        finished.map_err(net_error)?;
        if !wrote {
            return Err(NetError::Failed(
                "the request body could not be sent".into(),
            ));
        }
        let status = resp.status();
        let headers = resp
            .headers()
            .entries()
            .into_iter()
            .filter_map(|(k, v)| {
                String::from_utf8(v)
                    .ok()
                    .map(|v| (k.to_ascii_lowercase(), v))
            })
            .collect();
        let mut bytes = Vec::new();
        if let Ok(b) = resp.consume() {
            if let Ok(stream) = b.stream() {
                bytes = read_all(&stream);
            }
            drop(b);
        }
        Ok(OutResponse {
            status,
            headers,
            body: bytes,
        })
    }

    fn pause(&self, ms: i64) {
        std::thread::sleep(std::time::Duration::from_millis(
            u64::try_from(ms).unwrap_or(0),
        ));
    }
}

fn net_error(e: ErrorCode) -> NetError {
    match e {
        ErrorCode::HttpRequestDenied => {
            NetError::Denied("the origin is not an allowed outbound host".into())
        }
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => NetError::Timeout,
        other => NetError::Failed(format!("{other:?}")),
    }
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
    let core = read_request(&req);
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
    let outbound = SpinOutbound {
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
