//! A small host for Spin HTTP components, built on wasmtime: it serves a component on
//! 127.0.0.1 and provides the Spin interfaces the scim-edge component imports
//! (`fermyon:spin/key-value`, `fermyon:spin/variables`, `wasi:keyvalue` store, atomics
//! and batch) with Spin's semantics:
//! - every key-value call is one atomic operation on one key; there are no transactions;
//! - `increment` is atomic; counters are not meant to be read with `get`;
//! - each request runs in its own instance, and requests run concurrently.
//!
//! A [`Profile`] picks the host imitated: `spin up`, or Akamai Functions (no atomics, the
//! edge store's size limits). Every response carries the key-value traffic of its request
//! in the [`KV_CALLS`], [`KV_READS`] and [`KV_WRITES`] headers.
//!
//! Outbound HTTP is refused (the component is granted no outbound hosts).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use wasmtime::component::{Component, Linker, Resource, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "spin-imports",
        with: {
            "fermyon:spin/key-value.store": super::StoreHandle,
            "wasi:keyvalue/store.bucket": super::StoreHandle,
        },
    });
}

use bindings::fermyon::spin::{key_value, variables};
use bindings::wasi::keyvalue::{atomics, batch, store as wasi_store};

pub mod client;

/// The host a component is served as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `spin up` with its default SQLite store: every interface Spin implements;
    /// `get-many` leaves missing keys out of its answer.
    Spin,
    /// Akamai Functions: no `wasi:keyvalue/atomics`, `get-many` pairs a missing key with
    /// `none`, and keys over [`EDGE_MAX_KEY`] or values over [`EDGE_MAX_VALUE`] bytes are
    /// refused.
    Edge,
}

impl Profile {
    /// The name `--profile` and `SCIM_EDGE_PROFILE` take.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Spin => "spin",
            Profile::Edge => "edge",
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "spin" => Ok(Profile::Spin),
            "edge" => Ok(Profile::Edge),
            other => Err(format!("unknown profile {other:?} (spin or edge)")),
        }
    }
}

/// The longest key the edge store takes, in bytes.
pub const EDGE_MAX_KEY: usize = 8192;
/// The largest value the edge store takes, in bytes.
pub const EDGE_MAX_VALUE: usize = 1_048_576;

pub use client::{KvCounts, KV_CALLS, KV_READS, KV_WRITES};

/// The counts of one request, shared by its instance and the code that answers it.
#[derive(Debug, Default)]
struct Tally {
    calls: AtomicU64,
    reads: AtomicU64,
    writes: AtomicU64,
}

impl Tally {
    fn counts(&self) -> KvCounts {
        KvCounts {
            calls: self.calls.load(Ordering::Relaxed),
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }

    fn stamp(&self, headers: &mut hyper::HeaderMap) {
        let c = self.counts();
        for (name, n) in [
            (KV_CALLS, c.calls),
            (KV_READS, c.reads),
            (KV_WRITES, c.writes),
        ] {
            headers.insert(name, hyper::header::HeaderValue::from(n));
        }
    }
}

/// An open store: every label the host knows is one shared `default` store.
pub struct StoreHandle;

#[derive(Debug, Clone)]
enum Slot {
    Bytes(Vec<u8>),
    Counter(i64),
}

impl Slot {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Slot::Bytes(b) => b.clone(),
            // Spin's SQLite backend keeps a counter as 8 little-endian bytes.
            Slot::Counter(n) => n.to_le_bytes().to_vec(),
        }
    }
}

/// The key-value data shared by all requests.
#[derive(Debug, Default)]
pub struct Backend {
    data: Mutex<HashMap<String, Slot>>,
    ops: AtomicU64,
    down: AtomicBool,
    no_batch: AtomicBool,
}

impl Backend {
    /// Key-value calls served so far, over all requests (refused ones included).
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }

    /// Makes every operation fail, as a backend that stopped answering does.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }

    /// Makes every `get-many` fail, as on Spin's Redis backend (it sends `KEYS`);
    /// `set-many` and `delete-many` still work there.
    pub fn set_no_batch(&self, no_batch: bool) {
        self.no_batch.store(no_batch, Ordering::Relaxed);
    }

    /// Every entry holding bytes (counters excluded), for tests that inspect the data.
    pub fn entries(&self) -> Vec<(String, Vec<u8>)> {
        self.data
            .lock()
            .map(|d| {
                d.iter()
                    .filter_map(|(k, v)| match v {
                        Slot::Bytes(b) => Some((k.clone(), b.clone())),
                        Slot::Counter(_) => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Slot>) -> R) -> Result<R, String> {
        if self.down.load(Ordering::Relaxed) {
            return Err("the store is down".to_string());
        }
        let mut d = self
            .data
            .lock()
            .map_err(|_| "store lock poisoned".to_string())?;
        Ok(f(&mut d))
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.with(|d| d.get(key).map(Slot::bytes))
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, String> {
        if self.no_batch.load(Ordering::Relaxed) {
            return Err("this store does not support get-many".to_string());
        }
        self.with(|d| keys.iter().map(|k| d.get(k).map(Slot::bytes)).collect())
    }

    fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), String> {
        self.with(|d| {
            for (k, v) in pairs {
                d.insert(k, Slot::Bytes(v));
            }
        })
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), String> {
        self.with(|d| {
            for k in keys {
                d.remove(k);
            }
        })
    }

    fn exists(&self, key: &str) -> Result<bool, String> {
        self.with(|d| d.contains_key(key))
    }

    fn keys(&self) -> Result<Vec<String>, String> {
        self.with(|d| d.keys().cloned().collect())
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, String> {
        self.with(|d| match d.get_mut(key) {
            None => {
                d.insert(key.to_string(), Slot::Counter(delta));
                Ok(delta)
            }
            Some(Slot::Counter(n)) => {
                *n += delta;
                Ok(*n)
            }
            Some(Slot::Bytes(_)) => Err(format!("key '{key}' holds a value, not a counter")),
        })?
    }
}

/// A `get-many` answer: keys with their values (or `none`, as the profile answers).
type GetMany = Vec<(String, Option<Vec<u8>>)>;

/// One request's view of the store: it counts each call and applies the profile's
/// limits and batch semantics before the shared [`Backend`] sees it.
struct Kv {
    backend: Arc<Backend>,
    profile: Profile,
    tally: Arc<Tally>,
}

impl Kv {
    fn count(&self, reads: usize, writes: usize) {
        self.backend.ops.fetch_add(1, Ordering::Relaxed);
        self.tally.calls.fetch_add(1, Ordering::Relaxed);
        self.tally.reads.fetch_add(reads as u64, Ordering::Relaxed);
        self.tally
            .writes
            .fetch_add(writes as u64, Ordering::Relaxed);
    }

    fn key_fits(&self, key: &str) -> Result<(), String> {
        if self.profile == Profile::Edge && key.len() > EDGE_MAX_KEY {
            return Err(format!(
                "a key of {} bytes is over the store's limit of {EDGE_MAX_KEY}",
                key.len()
            ));
        }
        Ok(())
    }

    fn value_fits(&self, value: &[u8]) -> Result<(), String> {
        if self.profile == Profile::Edge && value.len() > EDGE_MAX_VALUE {
            return Err(format!(
                "a value of {} bytes is over the store's limit of {EDGE_MAX_VALUE}",
                value.len()
            ));
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.count(1, 0);
        self.key_fits(key)?;
        self.backend.get(key)
    }

    fn set(&self, key: &str, value: Vec<u8>) -> Result<(), String> {
        self.count(0, 1);
        self.key_fits(key)?;
        self.value_fits(&value)?;
        self.backend.set_many(vec![(key.to_string(), value)])
    }

    fn delete(&self, key: &str) -> Result<(), String> {
        self.count(0, 1);
        self.key_fits(key)?;
        self.backend.delete_many(&[key.to_string()])
    }

    fn exists(&self, key: &str) -> Result<bool, String> {
        self.count(1, 0);
        self.key_fits(key)?;
        self.backend.exists(key)
    }

    fn keys(&self) -> Result<Vec<String>, String> {
        self.count(0, 0);
        self.backend.keys()
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, String> {
        self.count(0, 1);
        self.key_fits(key)?;
        self.backend.increment(key, delta)
    }

    fn get_many(&self, keys: Vec<String>) -> Result<GetMany, String> {
        self.count(keys.len(), 0);
        keys.iter().try_for_each(|k| self.key_fits(k))?;
        let values = self.backend.get_many(&keys)?;
        let pairs = keys.into_iter().zip(values);
        Ok(match self.profile {
            Profile::Spin => pairs.filter(|(_, v)| v.is_some()).collect(),
            Profile::Edge => pairs.collect(),
        })
    }

    fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), String> {
        self.count(0, pairs.len());
        // The whole batch is checked first, so a refused one writes nothing.
        pairs
            .iter()
            .try_for_each(|(k, v)| self.key_fits(k).and_then(|()| self.value_fits(v)))?;
        self.backend.set_many(pairs)
    }

    fn delete_many(&self, keys: Vec<String>) -> Result<(), String> {
        self.count(0, keys.len());
        keys.iter().try_for_each(|k| self.key_fits(k))?;
        self.backend.delete_many(&keys)
    }
}

/// Refuses every outbound request.
struct NoOutbound;

impl WasiHttpHooks for NoOutbound {
    fn send_request(
        &mut self,
        _request: http_types::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn std::future::Future<
                Output = Result<
                    (
                        http_types::Response<wasmtime_wasi_http::WasiBody>,
                        Box<
                            dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>>
                                + Send,
                        >,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

use hyper::http as http_types;

struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: NoOutbound,
    kv: Kv,
    variables: Arc<HashMap<String, String>>,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

fn open_label(label: &str) -> bool {
    label == "default"
}

impl key_value::Host for State {}

impl key_value::HostStore for State {
    fn open(&mut self, label: String) -> Result<Resource<StoreHandle>, key_value::Error> {
        if !open_label(&label) {
            return Err(key_value::Error::NoSuchStore);
        }
        self.table
            .push(StoreHandle)
            .map_err(|e| key_value::Error::Other(e.to_string()))
    }
    fn get(
        &mut self,
        _s: Resource<StoreHandle>,
        key: String,
    ) -> Result<Option<Vec<u8>>, key_value::Error> {
        self.kv.get(&key).map_err(key_value::Error::Other)
    }
    fn set(
        &mut self,
        _s: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), key_value::Error> {
        self.kv.set(&key, value).map_err(key_value::Error::Other)
    }
    fn delete(&mut self, _s: Resource<StoreHandle>, key: String) -> Result<(), key_value::Error> {
        self.kv.delete(&key).map_err(key_value::Error::Other)
    }
    fn exists(&mut self, _s: Resource<StoreHandle>, key: String) -> Result<bool, key_value::Error> {
        self.kv.exists(&key).map_err(key_value::Error::Other)
    }
    fn get_keys(&mut self, _s: Resource<StoreHandle>) -> Result<Vec<String>, key_value::Error> {
        self.kv.keys().map_err(key_value::Error::Other)
    }
    fn drop(&mut self, s: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(s)?;
        Ok(())
    }
}

impl variables::Host for State {
    fn get(&mut self, name: String) -> Result<String, variables::Error> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(variables::Error::InvalidName(name));
        }
        self.variables
            .get(&name)
            .cloned()
            .ok_or(variables::Error::Undefined(name))
    }
}

impl wasi_store::Host for State {
    fn open(&mut self, identifier: String) -> Result<Resource<StoreHandle>, wasi_store::Error> {
        if !open_label(&identifier) {
            return Err(wasi_store::Error::NoSuchStore);
        }
        self.table
            .push(StoreHandle)
            .map_err(|e| wasi_store::Error::Other(e.to_string()))
    }
}

impl wasi_store::HostBucket for State {
    fn get(
        &mut self,
        _b: Resource<StoreHandle>,
        key: String,
    ) -> Result<Option<Vec<u8>>, wasi_store::Error> {
        self.kv.get(&key).map_err(wasi_store::Error::Other)
    }
    fn set(
        &mut self,
        _b: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), wasi_store::Error> {
        self.kv.set(&key, value).map_err(wasi_store::Error::Other)
    }
    fn delete(&mut self, _b: Resource<StoreHandle>, key: String) -> Result<(), wasi_store::Error> {
        self.kv.delete(&key).map_err(wasi_store::Error::Other)
    }
    fn exists(
        &mut self,
        _b: Resource<StoreHandle>,
        key: String,
    ) -> Result<bool, wasi_store::Error> {
        self.kv.exists(&key).map_err(wasi_store::Error::Other)
    }
    fn list_keys(
        &mut self,
        _b: Resource<StoreHandle>,
        _cursor: Option<String>,
    ) -> Result<wasi_store::KeyResponse, wasi_store::Error> {
        let keys = self.kv.keys().map_err(wasi_store::Error::Other)?;
        Ok(wasi_store::KeyResponse { keys, cursor: None })
    }
    fn drop(&mut self, b: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(b)?;
        Ok(())
    }
}

impl atomics::Host for State {
    fn increment(
        &mut self,
        _b: Resource<StoreHandle>,
        key: String,
        delta: i64,
    ) -> Result<i64, wasi_store::Error> {
        self.kv
            .increment(&key, delta)
            .map_err(wasi_store::Error::Other)
    }
}

impl batch::Host for State {
    fn get_many(
        &mut self,
        _b: Resource<StoreHandle>,
        keys: Vec<String>,
    ) -> Result<GetMany, wasi_store::Error> {
        self.kv.get_many(keys).map_err(wasi_store::Error::Other)
    }
    fn set_many(
        &mut self,
        _b: Resource<StoreHandle>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), wasi_store::Error> {
        self.kv
            .set_many(key_values)
            .map_err(wasi_store::Error::Other)
    }
    fn delete_many(
        &mut self,
        _b: Resource<StoreHandle>,
        keys: Vec<String>,
    ) -> Result<(), wasi_store::Error> {
        self.kv.delete_many(keys).map_err(wasi_store::Error::Other)
    }
}

struct HasState;

impl wasmtime::component::HasData for HasState {
    type Data<'a> = &'a mut State;
}

/// A compiled component ready to serve.
pub struct Host {
    pre: ProxyPre<State>,
    profile: Profile,
    backend: Arc<Backend>,
    variables: Arc<HashMap<String, String>>,
}

/// What an import check found: the component's imports by name.
pub fn component_imports(wasm: &[u8]) -> wasmtime::Result<Vec<String>> {
    let engine = engine()?;
    let component = Component::from_binary(&engine, wasm)?;
    let ty = component.component_type();
    Ok(ty
        .imports(&engine)
        .map(|(name, _)| name.to_string())
        .collect())
}

fn engine() -> wasmtime::Result<Engine> {
    Engine::new(&wasmtime::Config::new())
}

impl Host {
    /// Compiles a component and links it as `spin up` would ([`Profile::Spin`]).
    pub fn new(
        wasm: &[u8],
        variables: HashMap<String, String>,
        backend: Arc<Backend>,
    ) -> wasmtime::Result<Self> {
        Self::with_profile(wasm, variables, backend, Profile::Spin)
    }

    /// Compiles a component and links it against WASI, wasi:http and the Spin interfaces
    /// the profile's host provides. A component importing anything else is refused, with
    /// an error naming the import, as that host refuses it at deploy time.
    pub fn with_profile(
        wasm: &[u8],
        variables: HashMap<String, String>,
        backend: Arc<Backend>,
        profile: Profile,
    ) -> wasmtime::Result<Self> {
        let engine = engine()?;
        let component = Component::from_binary(&engine, wasm)?;
        let mut linker: Linker<State> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        key_value::add_to_linker::<State, HasState>(&mut linker, |s| s)?;
        variables::add_to_linker::<State, HasState>(&mut linker, |s| s)?;
        wasi_store::add_to_linker::<State, HasState>(&mut linker, |s| s)?;
        batch::add_to_linker::<State, HasState>(&mut linker, |s| s)?;
        if profile == Profile::Spin {
            atomics::add_to_linker::<State, HasState>(&mut linker, |s| s)?;
        }
        let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Host {
            pre,
            profile,
            backend,
            variables: Arc::new(variables),
        })
    }

    /// The shared key-value data.
    pub fn backend(&self) -> &Arc<Backend> {
        &self.backend
    }

    async fn handle(
        self: Arc<Self>,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> wasmtime::Result<hyper::Response<HyperOutgoingBody>> {
        let tally = Arc::new(Tally::default());
        let mut store = Store::new(
            self.pre.engine(),
            State {
                wasi: WasiCtx::builder().inherit_stderr().build(),
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
                hooks: NoOutbound,
                kv: Kv {
                    backend: self.backend.clone(),
                    profile: self.profile,
                    tally: tally.clone(),
                },
                variables: self.variables.clone(),
            },
        );
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = self.pre.clone();
        let task = tokio::task::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await
        });
        match receiver.await {
            // Calls made after the response head is set (while the body streams) are not
            // counted; a handler that returns a whole response makes none.
            Ok(Ok(mut resp)) => {
                tally.stamp(resp.headers_mut());
                Ok(resp)
            }
            Ok(Err(e)) => Err(e.into()),
            Err(_) => match task.await {
                Ok(Ok(())) => Err(wasmtime::format_err!("the component never set a response")),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(e.into()),
            },
        }
    }
}

/// A running server; dropping it stops accepting connections.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The host (for its store).
    pub host: Arc<Host>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves the host on `bind` (use port 0 for any free port) on a background runtime.
pub fn serve(host: Host, bind: SocketAddr, workers: usize) -> std::io::Result<Running> {
    let host = Arc::new(host);
    let std_listener = std::net::TcpListener::bind(bind)?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()?;
    let served = host.clone();
    let thread = std::thread::spawn(move || {
        rt.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = &mut stop_rx => return,
                    accepted = listener.accept() => {
                        let Ok((conn, _)) = accepted else { continue };
                        let host = served.clone();
                        tokio::task::spawn(async move {
                            let svc = hyper::service::service_fn(move |req| host.clone().handle(req));
                            let _ = hyper::server::conn::http1::Builder::new()
                                .keep_alive(true)
                                .serve_connection(wasmtime_wasi_http::io::TokioIo::new(conn), svc)
                                .await;
                        });
                    }
                }
            }
        });
    });
    Ok(Running {
        addr,
        host,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(profile: Profile) -> Kv {
        Kv {
            backend: Arc::new(Backend::default()),
            profile,
            tally: Arc::new(Tally::default()),
        }
    }

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn get_many_omits_missing_keys_on_spin_and_answers_none_on_the_edge() {
        for (profile, want) in [
            (Profile::Spin, vec![("a".to_string(), Some(b"1".to_vec()))]),
            (
                Profile::Edge,
                vec![
                    ("a".to_string(), Some(b"1".to_vec())),
                    ("b".to_string(), None),
                ],
            ),
        ] {
            let kv = kv(profile);
            kv.set("a", b"1".to_vec()).unwrap();
            assert_eq!(kv.get_many(keys(&["a", "b"])).unwrap(), want, "{profile}");
        }
    }

    #[test]
    fn batches_write_and_delete_every_key() {
        let kv = kv(Profile::Edge);
        kv.set_many(vec![
            ("a".into(), b"1".to_vec()),
            ("b".into(), b"2".to_vec()),
        ])
        .unwrap();
        assert_eq!(kv.get("b").unwrap(), Some(b"2".to_vec()));
        kv.delete_many(keys(&["a", "b", "never"])).unwrap();
        assert_eq!(
            kv.get_many(keys(&["a", "b"])).unwrap(),
            vec![("a".into(), None), ("b".into(), None)]
        );
    }

    #[test]
    fn counters_read_back_as_eight_little_endian_bytes() {
        let kv = kv(Profile::Spin);
        assert_eq!(kv.increment("n", 5).unwrap(), 5);
        assert_eq!(kv.increment("n", -2).unwrap(), 3);
        assert_eq!(kv.get("n").unwrap(), Some(3i64.to_le_bytes().to_vec()));
        assert_eq!(
            kv.get_many(keys(&["n"])).unwrap(),
            vec![("n".into(), Some(3i64.to_le_bytes().to_vec()))]
        );
    }

    #[test]
    fn the_edge_refuses_oversized_keys_and_values_on_every_operation() {
        let long = "k".repeat(EDGE_MAX_KEY + 1);
        let big = vec![0u8; EDGE_MAX_VALUE + 1];
        let edge = kv(Profile::Edge);
        let refusals = [
            edge.get(&long).err(),
            edge.set(&long, vec![]).err(),
            edge.set("k", big.clone()).err(),
            edge.delete(&long).err(),
            edge.exists(&long).err(),
            edge.increment(&long, 1).err(),
            edge.get_many(vec!["k".into(), long.clone()]).err(),
            edge.set_many(vec![("k".into(), vec![]), (long.clone(), vec![])])
                .err(),
            edge.set_many(vec![("k".into(), big.clone())]).err(),
            edge.delete_many(vec![long.clone()]).err(),
        ];
        for (i, r) in refusals.iter().enumerate() {
            let e = r
                .as_deref()
                .unwrap_or_else(|| panic!("operation {i} was allowed"));
            assert!(e.contains("over the store's limit"), "{e}");
        }
        // A refused batch writes none of its keys.
        assert_eq!(edge.get("k").unwrap(), None);
        // The limits themselves are allowed; Spin enforces none.
        let at = "k".repeat(EDGE_MAX_KEY);
        edge.set(&at, vec![0u8; EDGE_MAX_VALUE]).unwrap();
        let spin = kv(Profile::Spin);
        spin.set(&long, big).unwrap();
        assert!(spin.exists(&long).unwrap());
    }

    #[test]
    fn without_batch_only_get_many_fails() {
        let kv = kv(Profile::Spin);
        kv.backend.set_no_batch(true);
        assert!(kv.get_many(keys(&["a"])).is_err());
        kv.set_many(vec![("a".into(), b"1".to_vec())]).unwrap();
        assert_eq!(kv.get("a").unwrap(), Some(b"1".to_vec()));
        kv.delete_many(keys(&["a"])).unwrap();
        assert!(!kv.exists("a").unwrap());
    }

    #[test]
    fn every_call_counts_with_the_keys_it_reads_and_writes() {
        let kv = kv(Profile::Spin);
        kv.get("a").unwrap();
        kv.exists("a").unwrap();
        kv.set("a", vec![]).unwrap();
        kv.delete("a").unwrap();
        kv.increment("n", 1).unwrap();
        kv.keys().unwrap();
        kv.get_many(keys(&["a", "b", "c"])).unwrap();
        kv.set_many(vec![("a".into(), vec![]), ("b".into(), vec![])])
            .unwrap();
        kv.delete_many(keys(&["a", "b"])).unwrap();
        // A refused call is still a call.
        kv.backend.set_down(true);
        assert!(kv.get("a").is_err());
        assert_eq!(
            kv.tally.counts(),
            KvCounts {
                calls: 10,
                reads: 1 + 1 + 3 + 1,
                writes: 1 + 1 + 1 + 2 + 2,
            }
        );
        assert_eq!(kv.backend.ops(), 10);
    }
}
