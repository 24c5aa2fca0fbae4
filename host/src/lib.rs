//! A small host for Spin HTTP components, built on wasmtime: it serves a component on
//! 127.0.0.1 and provides the Spin interfaces the scim-edge component imports
//! (`fermyon:spin/key-value`, `fermyon:spin/variables`, `wasi:keyvalue` store and
//! atomics) with Spin's semantics:
//! - every key-value call is one atomic operation on one key; there are no transactions;
//! - `increment` is atomic; counters are not meant to be read with `get`;
//! - each request runs in its own instance, and requests run concurrently.
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
use bindings::wasi::keyvalue::{atomics, store as wasi_store};

pub mod client;

/// An open store: every label the host knows is one shared `default` store.
pub struct StoreHandle;

#[derive(Debug, Clone)]
enum Slot {
    Bytes(Vec<u8>),
    Counter(i64),
}

/// The key-value data shared by all requests.
#[derive(Debug, Default)]
pub struct Backend {
    data: Mutex<HashMap<String, Slot>>,
    ops: AtomicU64,
    down: AtomicBool,
}

impl Backend {
    /// Key-value operations served so far.
    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::Relaxed)
    }

    /// Makes every operation fail, as a backend that stopped answering does.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
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
        self.ops.fetch_add(1, Ordering::Relaxed);
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
        self.with(|d| match d.get(key) {
            None => None,
            Some(Slot::Bytes(b)) => Some(b.clone()),
            // Spin backends encode counters their own way; this is this host's.
            Some(Slot::Counter(n)) => Some(n.to_le_bytes().to_vec()),
        })
    }

    fn set(&self, key: &str, value: Vec<u8>) -> Result<(), String> {
        self.with(|d| {
            d.insert(key.to_string(), Slot::Bytes(value));
        })
    }

    fn delete(&self, key: &str) -> Result<(), String> {
        self.with(|d| {
            d.remove(key);
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
    backend: Arc<Backend>,
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
        self.backend.get(&key).map_err(key_value::Error::Other)
    }
    fn set(
        &mut self,
        _s: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), key_value::Error> {
        self.backend
            .set(&key, value)
            .map_err(key_value::Error::Other)
    }
    fn delete(&mut self, _s: Resource<StoreHandle>, key: String) -> Result<(), key_value::Error> {
        self.backend.delete(&key).map_err(key_value::Error::Other)
    }
    fn exists(&mut self, _s: Resource<StoreHandle>, key: String) -> Result<bool, key_value::Error> {
        self.backend.exists(&key).map_err(key_value::Error::Other)
    }
    fn get_keys(&mut self, _s: Resource<StoreHandle>) -> Result<Vec<String>, key_value::Error> {
        self.backend.keys().map_err(key_value::Error::Other)
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
        self.backend.get(&key).map_err(wasi_store::Error::Other)
    }
    fn set(
        &mut self,
        _b: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), wasi_store::Error> {
        self.backend
            .set(&key, value)
            .map_err(wasi_store::Error::Other)
    }
    fn delete(&mut self, _b: Resource<StoreHandle>, key: String) -> Result<(), wasi_store::Error> {
        self.backend.delete(&key).map_err(wasi_store::Error::Other)
    }
    fn exists(
        &mut self,
        _b: Resource<StoreHandle>,
        key: String,
    ) -> Result<bool, wasi_store::Error> {
        self.backend.exists(&key).map_err(wasi_store::Error::Other)
    }
    fn list_keys(
        &mut self,
        _b: Resource<StoreHandle>,
        _cursor: Option<String>,
    ) -> Result<wasi_store::KeyResponse, wasi_store::Error> {
        let keys = self.backend.keys().map_err(wasi_store::Error::Other)?;
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
        self.backend
            .increment(&key, delta)
            .map_err(wasi_store::Error::Other)
    }
}

struct HasState;

impl wasmtime::component::HasData for HasState {
    type Data<'a> = &'a mut State;
}

/// A compiled component ready to serve.
pub struct Host {
    pre: ProxyPre<State>,
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
    /// Compiles a component and links it against WASI, wasi:http and the Spin interfaces.
    pub fn new(
        wasm: &[u8],
        variables: HashMap<String, String>,
        backend: Arc<Backend>,
    ) -> wasmtime::Result<Self> {
        let engine = engine()?;
        let component = Component::from_binary(&engine, wasm)?;
        let mut linker: Linker<State> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        key_value::add_to_linker::<State, HasState>(&mut linker, |s| s)?;
        variables::add_to_linker::<State, HasState>(&mut linker, |s| s)?;
        wasi_store::add_to_linker::<State, HasState>(&mut linker, |s| s)?;
        atomics::add_to_linker::<State, HasState>(&mut linker, |s| s)?;
        let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Host {
            pre,
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
        let mut store = Store::new(
            self.pre.engine(),
            State {
                wasi: WasiCtx::builder().inherit_stderr().build(),
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
                hooks: NoOutbound,
                backend: self.backend.clone(),
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
            Ok(Ok(resp)) => Ok(resp),
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
