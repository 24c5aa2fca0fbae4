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
use std::sync::Arc;
use wasmtime::component::Component;
use wasmtime::{Engine, Store};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

mod backend;
pub mod client;
mod interfaces;
mod profile;

use backend::{Kv, Tally};
use interfaces::State;

pub use backend::{Backend, EDGE_MAX_KEY, EDGE_MAX_VALUE};
pub use client::{KvCounts, KV_CALLS, KV_READS, KV_WRITES};
pub use interfaces::StoreHandle;
pub use profile::Profile;

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
        let linker = interfaces::linker(&engine, profile)?;
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
            State::new(
                Kv::new(self.backend.clone(), self.profile, tally.clone()),
                self.variables.clone(),
            ),
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
