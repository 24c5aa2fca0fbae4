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
//! Outbound HTTP goes exactly where the component is granted, as Spin's
//! `allowed_outbound_hosts` grants it: [`Host::allow_outbound`] takes the entries
//! (`https://vault.example.com`, `http://127.0.0.1:8080`, `*://*.example.com:443`, with
//! `{{ variable }}` templates resolved from the host's variables), and every request they
//! do not allow fails with `HttpRequestDenied` (with no entries, every request does). An
//! allowed request is sent by wasmtime-wasi-http's default sender (`http`, and `https`
//! with rustls and the web PKI roots), with the timeouts the guest sets in its request
//! options. [`AllowedHosts`] describes the matching. Each response reports the outbound
//! requests its request made in the [`OUTBOUND_CALLS`] header, and
//! [`Host::outbound_counts`] totals those sent and refused.
//!
//! The response goes back as soon as the component sets it; the component's handler
//! keeps running after that (post-response work), to its end: neither sending the
//! response nor the client closing its connection cancels it, its outbound requests are
//! checked as any other, and [`Host::wait_idle`] waits for it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::Component;
use wasmtime::{Engine, Store};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

mod backend;
pub mod client;
mod interfaces;
mod memory;
mod outbound;
mod profile;

use backend::{Kv, Tally};
use interfaces::State;
use memory::MemoryPeak;
use outbound::{Outbound, OutboundHooks};

pub use backend::{Backend, EDGE_MAX_KEY, EDGE_MAX_VALUE};
pub use client::{KvCounts, KV_CALLS, KV_READS, KV_WRITES, OUTBOUND_CALLS};
pub use interfaces::StoreHandle;
pub use outbound::{AllowedHosts, OutboundCounts, SELF_HOST};
pub use profile::Profile;

/// How long a stopping server waits for handlers still running (post-response work).
const DRAIN: Duration = Duration::from_secs(5);

/// A compiled component ready to serve.
pub struct Host {
    pre: ProxyPre<State>,
    profile: Profile,
    backend: Arc<Backend>,
    variables: Arc<HashMap<String, String>>,
    outbound: Arc<Outbound>,
    in_flight: Arc<AtomicUsize>,
    memory_peak: Arc<AtomicUsize>,
}

/// Counts a running handler for as long as it lives.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        InFlight(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
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
    /// an error naming the import, as that host refuses it at deploy time. It is granted
    /// no outbound hosts until [`allow_outbound`](Self::allow_outbound).
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
            outbound: Arc::new(Outbound::new(AllowedHosts::default())),
            in_flight: Arc::new(AtomicUsize::new(0)),
            memory_peak: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Grants the component outbound HTTP to these `allowed_outbound_hosts` entries, in
    /// addition to any granted before, as the component's `allowed_outbound_hosts` in
    /// `spin.toml` would. `{{ name }}` templates in them are resolved from the host's
    /// variables first, as Spin resolves them from the application's variables; an entry
    /// naming an undefined variable, or malformed, is an error naming the entry (Spin
    /// refuses such an app when it loads). See [`AllowedHosts`] for the matching.
    pub fn allow_outbound<S: AsRef<str>>(mut self, entries: &[S]) -> wasmtime::Result<Self> {
        let more = AllowedHosts::parse(entries, &self.variables)?;
        self.outbound = Arc::new(self.outbound.with_more(more));
        Ok(self)
    }

    /// The outbound hosts the component is granted.
    pub fn allowed_outbound(&self) -> &AllowedHosts {
        self.outbound.allowed()
    }

    /// Outbound requests sent and refused so far, over all requests.
    pub fn outbound_counts(&self) -> OutboundCounts {
        self.outbound.counts()
    }

    /// Component handlers still running, those doing post-response work included.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Waits (blocking, so not from async code) until no handler is running, post-response
    /// work included; `false` when some still are after `timeout`.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.in_flight() == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The largest linear memory (bytes) an instance has grown to since the last call;
    /// starts again from zero.
    pub fn take_memory_peak(&self) -> usize {
        self.memory_peak.swap(0, Ordering::Relaxed)
    }

    /// The shared key-value data.
    pub fn backend(&self) -> &Arc<Backend> {
        &self.backend
    }

    /// Serves one request: the component's handler runs in a task of its own, and the
    /// response goes back as soon as the handler sets the response outparam.
    ///
    /// The handler task is detached, not awaited: it keeps running after the response
    /// is sent, until the handler returns (Spin lets post-response work, such as a vault
    /// delivery after a SCIM answer, run to its end). Neither the response nor the client
    /// closing the connection (hyper then drops this future) cancels it; only stopping the
    /// server does, after waiting [`DRAIN`] for it. Its store keeps the same hooks, so
    /// outbound requests it makes after the response are checked against the allow list
    /// and sent as any other (though the response's [`OUTBOUND_CALLS`] and `x-kv-*`
    /// headers no longer count them).
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
                OutboundHooks::new(self.outbound.clone(), tally.clone()),
                MemoryPeak(self.memory_peak.clone()),
            ),
        );
        store.limiter(|s| &mut s.memory);
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = self.pre.clone();
        let running = InFlight::enter(&self.in_flight);
        let task = tokio::task::spawn(async move {
            let _running = running;
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, req, out)
                .await
        });
        match receiver.await {
            // Calls made after the response head is set (while the body streams, or after
            // it) are not counted; a handler that returns a whole response makes none.
            // Dropping `task` here detaches it.
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
/// Calls the component makes to [`SELF_HOST`] (when granted `http://self`) go to this
/// address. Stopping (dropping the [`Running`]) waits up to 5 s for handlers still running.
pub fn serve(host: Host, bind: SocketAddr, workers: usize) -> std::io::Result<Running> {
    let host = Arc::new(host);
    let std_listener = std::net::TcpListener::bind(bind)?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    host.outbound.set_origin(addr);
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
                    _ = &mut stop_rx => {
                        // Let handlers still running (post-response work) finish.
                        let deadline = tokio::time::Instant::now() + DRAIN;
                        while served.in_flight() > 0 && tokio::time::Instant::now() < deadline {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        return;
                    }
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
