//! The organizations every test suite uses (the core's `tests/`, the test host's
//! `host/tests/` and the Envoy filter's `envoy/tests/`), one per policy and a fourth for
//! isolation checks, and the bearer key each test gives an organization. The only copy:
//! `host/tests` and `envoy/tests` include this file with `#[path]`.
#![allow(dead_code)]

pub const STRICT: &str = "3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d";
pub const LENIENT: &str = "5b9e0c1a-2d3f-4e5a-9b6c-7d8e9f0a1b2c";
pub const OFF: &str = "8c7d6e5f-4a3b-4c2d-8e1f-0a9b8c7d6e5f";
pub const OTHER: &str = "1a2b3c4d-0000-4000-8000-000000000001";

/// The key of an organization in these tests.
pub fn key(org: &str) -> String {
    format!("key-of-{org}")
}
