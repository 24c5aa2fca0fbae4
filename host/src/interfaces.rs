//! What a component instance is given: WASI, wasi:http with outbound requests checked
//! against the component's allowed hosts ([`OutboundHooks`]), and the Spin interfaces
//! (`fermyon:spin/key-value`, `fermyon:spin/variables`, `wasi:keyvalue` store, atomics
//! and batch), each adapted to its request's [`Kv`].

use crate::backend::{GetMany, Kv};
use crate::memory::MemoryPeak;
use crate::outbound::OutboundHooks;
use crate::Profile;
use std::collections::HashMap;
use std::sync::Arc;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime::Engine;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

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

/// An open store: every label the host knows is one shared `default` store.
pub struct StoreHandle;

/// One instance's store data: it lives as long as the component's handler runs for its
/// request, post-response work included.
pub(crate) struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: OutboundHooks,
    kv: Kv,
    variables: Arc<HashMap<String, String>>,
    pub(crate) memory: MemoryPeak,
}

impl State {
    /// The component's stderr goes to the host's, or is appended to the file named by
    /// `SCIM_EDGE_COMPONENT_LOG` (where scripts/test collects every suite's log lines to
    /// scan them); it is given no files, environment or arguments.
    pub(crate) fn new(
        kv: Kv,
        variables: Arc<HashMap<String, String>>,
        hooks: OutboundHooks,
        memory: MemoryPeak,
    ) -> Self {
        let mut wasi = WasiCtx::builder();
        match log_file() {
            Some(f) => wasi.stderr(f),
            None => wasi.inherit_stderr(),
        };
        State {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks,
            kv,
            variables,
            memory,
        }
    }
}

/// The log file, opened once per process for appending: each of the component's lines
/// is one write, so lines from concurrent instances and test processes never mix.
fn log_file() -> Option<wasmtime_wasi::cli::OutputFile> {
    static FILE: std::sync::OnceLock<Option<wasmtime_wasi::cli::OutputFile>> =
        std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        // Empty: the host's own stderr (a test that reads the component's log there).
        let path = std::env::var_os("SCIM_EDGE_COMPONENT_LOG").filter(|p| !p.is_empty())?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()
            .map(wasmtime_wasi::cli::OutputFile::new)
    })
    .clone()
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

/// Lets the generated `add_to_linker` functions hand the Spin interfaces a [`State`].
struct HasState;

impl wasmtime::component::HasData for HasState {
    type Data<'a> = &'a mut State;
}

/// A linker with WASI, wasi:http and the Spin interfaces the profile's host provides
/// (atomics only on Spin); linking a component that imports anything else fails.
pub(crate) fn linker(engine: &Engine, profile: Profile) -> wasmtime::Result<Linker<State>> {
    let mut linker: Linker<State> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    key_value::add_to_linker::<State, HasState>(&mut linker, |s| s)?;
    variables::add_to_linker::<State, HasState>(&mut linker, |s| s)?;
    wasi_store::add_to_linker::<State, HasState>(&mut linker, |s| s)?;
    batch::add_to_linker::<State, HasState>(&mut linker, |s| s)?;
    if profile == Profile::Spin {
        atomics::add_to_linker::<State, HasState>(&mut linker, |s| s)?;
    }
    Ok(linker)
}
