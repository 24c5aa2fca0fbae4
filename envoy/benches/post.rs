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

#[path = "../tests/support/mod.rs"]
mod support;

use scim_edge::auth::KeyHash;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Conn, Envoy, Listener, Reply, SpinHost, Upstream};

const ORG: &str = "3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d";
const KEY: &str = "bench-key";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Okta's create-user body; `padded` adds whitespace the filter trims (a rewrite).
fn body(i: usize, padded: bool) -> Vec<u8> {
    let name = format!("Runscope{i}.Abcdefgh{i}@atko.com");
    let user_name = if padded {
        format!(" {name} ")
    } else {
        name.clone()
    };
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": {"givenName": format!("Runscope{i}"), "familyName": "Abcdefgh"},
        "emails": [{"primary": true, "value": name, "type": "work"}],
        "displayName": format!("Runscope{i} Abcdefgh"),
        "active": true
    })
    .to_string()
    .into_bytes()
}

struct Round {
    per_sec: f64,
    lat: Vec<Duration>,
    errors: usize,
}

/// Numbers users across rounds: the Spin component refuses a second user of a name.
static SERIAL: AtomicUsize = AtomicUsize::new(0);

fn round(addr: SocketAddr, n: usize, threads: usize, padded: bool) -> Round {
    let base = SERIAL.fetch_add(n, Ordering::Relaxed);
    let next = AtomicUsize::new(0);
    let lat = Mutex::new(Vec::with_capacity(n));
    let errors = AtomicUsize::new(0);
    let auth = format!("Bearer {KEY}");
    let path = format!("/scim/v2/{ORG}/Users");
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut c = Conn::open(addr).unwrap();
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let b = body(base + i, padded);
                    let t = Instant::now();
                    let r = c.send(
                        "POST",
                        &path,
                        &[
                            ("authorization", auth.as_str()),
                            ("content-type", "application/scim+json"),
                        ],
                        &b,
                    );
                    mine.push(t.elapsed());
                    match r {
                        Ok(r) if r.status == 201 => {}
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            c = Conn::open(addr).unwrap();
                        }
                    }
                }
                lat.lock().unwrap().extend(mine);
            });
        }
    });
    let elapsed = start.elapsed();
    Round {
        per_sec: n as f64 / elapsed.as_secs_f64(),
        lat: lat.into_inner().unwrap(),
        errors: errors.into_inner(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len().saturating_sub(1)) as f64 * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn main() {
    let (threads, n, rounds) = (env("THREADS", 4), env("REQUESTS", 2000), env("ROUNDS", 15));
    let upstream = Upstream::start(
        false,
        Arc::new(|r: &support::Recorded| Reply {
            status: 201,
            headers: vec![("content-type".into(), "application/scim+json".into())],
            body: r.body.clone(),
            chunked: false,
        }),
    );
    let orgs = json!({ORG: {"keys": [KeyHash::of(KEY).to_hex()], "policy": "strict"}});
    let spin = SpinHost::start(&orgs.to_string());
    let config = json!({ "organizations": orgs }).to_string();
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
    // (row, listener, padded body, requests per round)
    let modes = [
        ("instant upstream, without filter", "direct", false, n),
        ("instant upstream, with filter", "filtered", false, n),
        (
            "instant upstream, with filter, body rewritten",
            "filtered",
            true,
            n,
        ),
        (
            "Spin component, without filter",
            "spin-direct",
            false,
            n / 2,
        ),
        ("Spin component, with filter", "spin-filtered", false, n / 2),
    ];
    for (_, l, padded, n) in modes {
        round(envoy.addr(l), n / 4, threads, padded);
    }
    let mut results: Vec<Vec<Round>> = modes.iter().map(|_| Vec::new()).collect();
    for r in 0..rounds {
        // Every other round runs the rows in reverse, so no row always goes first.
        let mut order: Vec<usize> = (0..modes.len()).collect();
        if r % 2 == 1 {
            order.reverse();
        }
        for m in order {
            let (_, l, padded, n) = modes[m];
            results[m].push(round(envoy.addr(l), n, threads, padded));
        }
    }
    let size = std::fs::metadata(support::filter_wasm()).map_or(0, |m| m.len());
    println!("Envoy 1.40, {threads} client threads, 2 Envoy workers, {rounds} rounds per row; filter {size} bytes");
    println!();
    println!("| upstream, path | requests | req/s (median round) | p50 ms | p99 ms | errors |");
    println!("|---|---:|---:|---:|---:|---:|");
    for ((name, _, _, _), rs) in modes.iter().zip(&results) {
        let mut rates: Vec<f64> = rs.iter().map(|r| r.per_sec).collect();
        rates.sort_by(f64::total_cmp);
        let median = rates[rates.len() / 2];
        let mut lat: Vec<Duration> = rs.iter().flat_map(|r| r.lat.iter().copied()).collect();
        lat.sort();
        let errors: usize = rs.iter().map(|r| r.errors).sum();
        println!(
            "| {name} | {} | {median:.0} | {:.3} | {:.3} | {errors} |",
            lat.len(),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99)
        );
    }
    // A ratio per round, from rows measured seconds apart, cancels the machine's slower
    // and faster phases; the median of those is the figure.
    let ratio = |with: usize, without: usize| {
        let mut rs: Vec<f64> = results[with]
            .iter()
            .zip(&results[without])
            .map(|(a, b)| a.per_sec / b.per_sec)
            .collect();
        rs.sort_by(f64::total_cmp);
        let (lo, hi) = (rs[0], rs[rs.len() - 1]);
        format!("{:.2} (rounds {lo:.2}-{hi:.2})", rs[rs.len() / 2])
    };
    println!();
    println!("throughput with filter / without, median of per-round ratios (target >= 0.90):");
    println!("  instant upstream: {}", ratio(1, 0));
    println!("  instant upstream, body rewritten: {}", ratio(2, 0));
    println!("  Spin component: {}", ratio(4, 3));
}
