//! The edge gate's overhead, in one run: Okta's user POST sent straight to an upstream
//! and through the gate component (on the test host, as `spin.gate.toml` serves it) in
//! front of it, for two upstreams: one that answers 201 at once (the gate's whole cost
//! shows) and the scim-edge Spin component on the test host. Rows and ratios are taken
//! as in the Envoy bench (`common`).
//!
//! `bench/gate.sh` builds what it needs and runs this. Env: THREADS (4), REQUESTS per
//! round (2000; half of that against the Spin component), ROUNDS (15).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use common::{env, print_table, ratio, run_rows};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use support::SpinHost;

/// The gate component, built into its own target directory by bench/gate.sh.
fn gate_wasm() -> PathBuf {
    let t = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(t)
        .join("components/wasm32-wasip2/release/scim_edge_gate.wasm");
    assert!(p.exists(), "{}: run bench/gate.sh", p.display());
    p
}

/// The gate with `config` in front of `upstream`, granted that origin alone.
fn gate(config: &str, upstream: SocketAddr) -> SpinHost {
    let origin = format!("http://{upstream}");
    SpinHost::serve(
        &gate_wasm(),
        "spin",
        &[
            ("SPIN_VARIABLE_GATE", config),
            ("SPIN_VARIABLE_UPSTREAM", &origin),
        ],
        &[&origin],
        Stdio::null(),
    )
}

fn main() {
    let (threads, n, rounds) = (env("THREADS", 4), env("REQUESTS", 2000), env("ROUNDS", 15));
    let common::Upstreams {
        instant: upstream,
        spin,
        config,
    } = common::upstreams();
    let gated = gate(&config, upstream.addr);
    let gated_spin = gate(&config, spin.addr);
    let names = [
        "instant upstream, direct",
        "instant upstream, through the gate",
        "Spin component, direct",
        "Spin component, through the gate",
    ];
    let rows = [
        (upstream.addr, false, n),
        (gated.addr, false, n),
        (spin.addr, false, n / 2),
        (gated_spin.addr, false, n / 2),
    ];
    let results = run_rows(&rows, threads, rounds);
    let size = std::fs::metadata(gate_wasm()).map_or(0, |m| m.len());
    println!("edge gate on the test host (2 workers), {threads} client threads, {rounds} rounds per row; gate {size} bytes");
    println!();
    print_table(&names, &results);
    println!();
    println!("throughput through the gate / direct, median of per-round ratios:");
    println!("  instant upstream: {}", ratio(&results, 1, 0));
    println!("  Spin component: {}", ratio(&results, 3, 2));
}
