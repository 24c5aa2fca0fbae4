//! What the load benches share: Okta's create-user POST sent by client threads in
//! rounds, with each round's rate and latencies, and the table and ratios printed from
//! them. A row's req/s is its median round; a ratio is the median of per-round ratios,
//! which cancels the machine's slower and faster phases.
#![allow(dead_code)]

use scim_edge::auth::KeyHash;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::support::{Conn, Recorded, Reply, SpinHost, Upstream};

pub const ORG: &str = "3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d";
pub const KEY: &str = "bench-key";

/// The two upstreams a bench compares against, and the configuration (the organization
/// with [`KEY`], strict) that the Spin component and the gate in front share.
pub struct Upstreams {
    /// Answers 201 with the request's body at once.
    pub instant: Upstream,
    /// The scim-edge Spin component on the test host.
    pub spin: SpinHost,
    /// `{"organizations": ...}`: the filter's and the gate's configuration.
    pub config: String,
}

pub fn upstreams() -> Upstreams {
    let instant = Upstream::start(
        false,
        Arc::new(|r: &Recorded| Reply {
            status: 201,
            headers: vec![("content-type".into(), "application/scim+json".into())],
            body: r.body.clone(),
            chunked: false,
        }),
    );
    let orgs = json!({ORG: {"keys": [KeyHash::of(KEY).to_hex()], "policy": "strict"}});
    let spin = SpinHost::start(&orgs.to_string());
    let config = json!({ "organizations": orgs }).to_string();
    Upstreams {
        instant,
        spin,
        config,
    }
}

pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Okta's create-user body; `padded` adds whitespace the filter trims (a rewrite).
pub fn body(i: usize, padded: bool) -> Vec<u8> {
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

pub struct Round {
    pub per_sec: f64,
    pub lat: Vec<Duration>,
    pub errors: usize,
}

/// Numbers users across rounds: the Spin component refuses a second user of a name.
static SERIAL: AtomicUsize = AtomicUsize::new(0);

pub fn round(addr: SocketAddr, n: usize, threads: usize, padded: bool) -> Round {
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

pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len().saturating_sub(1)) as f64 * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Runs every row `rounds` times (every other round in reverse order, so no row always
/// goes first), after a warm-up of a quarter round each. A row: (address, padded body,
/// requests per round).
pub fn run_rows(
    rows: &[(SocketAddr, bool, usize)],
    threads: usize,
    rounds: usize,
) -> Vec<Vec<Round>> {
    for &(addr, padded, n) in rows {
        round(addr, n / 4, threads, padded);
    }
    let mut results: Vec<Vec<Round>> = rows.iter().map(|_| Vec::new()).collect();
    for r in 0..rounds {
        let mut order: Vec<usize> = (0..rows.len()).collect();
        if r % 2 == 1 {
            order.reverse();
        }
        for m in order {
            let (addr, padded, n) = rows[m];
            results[m].push(round(addr, n, threads, padded));
        }
    }
    results
}

/// The Markdown table: one line per named row.
pub fn print_table(names: &[&str], results: &[Vec<Round>]) {
    println!("| upstream, path | requests | req/s (median round) | p50 ms | p99 ms | errors |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, rs) in names.iter().zip(results) {
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
}

/// Row `with`'s throughput over row `without`'s: the median of the per-round ratios,
/// with the range of rounds.
pub fn ratio(results: &[Vec<Round>], with: usize, without: usize) -> String {
    let mut rs: Vec<f64> = results[with]
        .iter()
        .zip(&results[without])
        .map(|(a, b)| a.per_sec / b.per_sec)
        .collect();
    rs.sort_by(f64::total_cmp);
    let (lo, hi) = (rs[0], rs[rs.len() - 1]);
    format!("{:.2} (rounds {lo:.2}-{hi:.2})", rs[rs.len() / 2])
}
