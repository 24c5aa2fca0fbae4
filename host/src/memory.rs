//! The largest linear memory any instance asked for: a soak compares it over time, and
//! edge hosts cap it (Akamai Functions: 128 MiB per request).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A store's resource limiter that refuses nothing and records every memory's size.
pub(crate) struct MemoryPeak(pub(crate) Arc<AtomicUsize>);

impl wasmtime::ResourceLimiter for MemoryPeak {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.0.fetch_max(desired, Ordering::Relaxed);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}
