//! Envoy with and without the filter, in one run: Okta's user POST through listeners
//! of one Envoy, with and without the filter, to two upstreams: one that answers 201 at
//! once (the filter's whole cost shows) and the Spin component on the test host (a
//! SCIM service that stores the user). Each round runs every row once; a row's req/s is
//! its median round, p50/p99 are over all its requests, and a ratio is the median of the
//! per-round ratios.
//!
//! `bench/envoy.sh` builds what it needs and runs this. Env: THREADS (4), REQUESTS per
//! round (2000; half of that against the Spin component), ROUNDS (15).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use common::{env, print_table, ratio, run_rows};
use support::{Envoy, Listener};

fn main() {
    let (threads, n, rounds) = (env("THREADS", 4), env("REQUESTS", 2000), env("ROUNDS", 15));
    let common::Upstreams {
        instant: upstream,
        spin,
        config,
    } = common::upstreams();
    let listener = |name: &str, upstream, filter: bool| Listener {
        name: name.into(),
        upstream,
        filter: filter.then(|| config.clone()),
    };
    let envoy = Envoy::start(
        &[
            listener("direct", upstream.addr, false),
            listener("filtered", upstream.addr, true),
            listener("spin-direct", spin.addr, false),
            listener("spin-filtered", spin.addr, true),
        ],
        2,
    );
    let names = [
        "instant upstream, without filter",
        "instant upstream, with filter",
        "instant upstream, with filter, body rewritten",
        "Spin component, without filter",
        "Spin component, with filter",
    ];
    let rows = [
        (envoy.addr("direct"), false, n),
        (envoy.addr("filtered"), false, n),
        (envoy.addr("filtered"), true, n),
        (envoy.addr("spin-direct"), false, n / 2),
        (envoy.addr("spin-filtered"), false, n / 2),
    ];
    let results = run_rows(&rows, threads, rounds);
    let size = std::fs::metadata(support::filter_wasm()).map_or(0, |m| m.len());
    println!("Envoy 1.40, {threads} client threads, 2 Envoy workers, {rounds} rounds per row; filter {size} bytes");
    println!();
    print_table(&names, &results);
    println!();
    println!("throughput with filter / without, median of per-round ratios (target >= 0.90):");
    println!("  instant upstream: {}", ratio(&results, 1, 0));
    println!(
        "  instant upstream, body rewritten: {}",
        ratio(&results, 2, 0)
    );
    println!("  Spin component: {}", ratio(&results, 4, 3));
}
