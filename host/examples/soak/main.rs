//! The soak: the built component on the test host, provisioning a fake Bitwarden (or
//! Vaultwarden) under an Okta-like load while faults come and go on the vault and on the
//! store; then, with the faults off and the outbox drained, the invariants checked. Exit
//! status 1 when one fails.
//!
//! `cargo run --release -p scim-edge-host --example soak -- [--seconds N] [--clients N]
//! [--seed N] [--vault bitwarden|vaultwarden] [--wasm PATH]` (`SOAK_SECONDS` gives the
//! default length, 60 s). The load:
//! each client creates users in bursts, deactivates and reactivates them, pushes groups
//! (created with members, renamed with Okta's `{"id", "displayName"}` PATCH, members added
//! and removed), deletes users; a cron thread calls `_vault/sync` every second. Faults at
//! random intervals: the vault answers 500, answers slower than the component's timeout,
//! drops connections, applies a write and drops its answer, refuses the token for a while,
//! or is down; the store is down for seconds at a time. With Bitwarden, 429s with
//! `Retry-After` come from the vault's own limit, set below the component's configured rate
//! so bursts meet it; Vaultwarden limits only its token endpoint, and takes the whole
//! organization in each import.
//!
//! A write is acknowledged when answered 2xx; a resource with a write answered otherwise is
//! uncertain (it may or may not have landed) and is held to the vault check only.

mod check;
mod load;

use load::{Client, Counters, Rng};
use scim_edge::auth::KeyHash;
use scim_edge_fakevault::{FakeVault, Fault, Limits, Mode, Options};
use scim_edge_host::{serve, Backend, Host, Profile, Running};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ORG: &str = "5d1c2b3a-4f5e-4d6c-8b7a-9f8e7d6c5b4a";
/// The component's per-call timeout; a slow fault sleeps longer.
const TIMEOUT_MS: u64 = 500;
/// Akamai Functions' memory limit per request, the smallest of the hosts'.
const EDGE_MEMORY: usize = 128 << 20;

struct Args {
    seconds: u64,
    clients: usize,
    seed: u64,
    vault: Mode,
    wasm: String,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        seconds: std::env::var("SOAK_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
        clients: 4,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 | 1),
        vault: Mode::Bitwarden,
        wasm: concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/wasm32-wasip2/release/scim_edge.wasm"
        )
        .to_string(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag}: needs a value"))?;
        let n = || {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--seconds" => a.seconds = n()?,
            "--clients" => a.clients = n()? as usize,
            "--seed" => a.seed = n()? | 1,
            "--vault" => {
                a.vault = match v.as_str() {
                    "bitwarden" => Mode::Bitwarden,
                    "vaultwarden" => Mode::Vaultwarden,
                    _ => return Err(format!("--vault: bitwarden or vaultwarden, not {v}")),
                }
            }
            "--wasm" => a.wasm = v,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

fn start_vault(mode: Mode) -> FakeVault {
    FakeVault::start(Options {
        mode,
        // Bitwarden's shape on a clock ten times faster, with 50 writes a window where the
        // component is told 60: bursts meet 429s with Retry-After.
        limits: Limits {
            per_second: 5,
            per_window: 50,
            second_ms: 100,
            window_ms: 6_000,
            reads_per_window: 0,
            retry_after: true,
        },
        token_per_window: 10,
        groups_enabled: true,
        ..Options::default()
    })
}

fn start_host(wasm: &[u8], v: &FakeVault, key: &str) -> Result<Running, String> {
    let o = v.options();
    let kind = match o.mode {
        Mode::Bitwarden => "bitwarden",
        Mode::Vaultwarden => "vaultwarden",
    };
    // Vaultwarden imports at the default debounce (2 s): each carries the whole organization.
    let vault = json!({
        "kind": kind, "api_url": v.api_url(), "identity_url": v.identity_url(),
        "client_id": o.client_id(), "client_secret": o.client_secret, "groups": true,
        "rate": {"per_second": 5, "per_window": 60, "second_ms": 100, "window_ms": 6_000},
        "timeout_ms": TIMEOUT_MS, "retry_ms": 100, "sync_budget_ms": 3_000, "max_attempts": 6
    });
    let orgs =
        json!({ORG: {"keys": [KeyHash::of(key).to_hex()], "policy": "strict", "vault": vault}});
    let vars = HashMap::from([
        ("organizations".to_string(), orgs.to_string()),
        ("vault_origin".to_string(), "http://127.0.0.1:*".to_string()),
    ]);
    let host = Host::with_profile(wasm, vars, Arc::new(Backend::default()), Profile::Spin)
        .and_then(|h| h.allow_outbound(&["{{ vault_origin }}"]))
        .map_err(|e| format!("loading the component: {e}"))?;
    let bind = "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?;
    serve(host, bind, 2).map_err(|e| format!("serving: {e}"))
}

/// Faults at random intervals until `stop`; returns how many of each kind, and when the
/// last one ended.
fn faults(
    v: &FakeVault,
    backend: &Backend,
    stop: &AtomicBool,
    mut rng: Rng,
) -> (BTreeMap<&'static str, u64>, Instant) {
    let mut kinds = BTreeMap::new();
    let mut last = Instant::now();
    let nap = |ms: u64| {
        let end = Instant::now() + Duration::from_millis(ms);
        while Instant::now() < end && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    loop {
        nap(1_500 + rng.below(3_500));
        if stop.load(Ordering::Relaxed) {
            return (kinds, last);
        }
        let n = 1 + rng.below(4) as usize;
        let kind = match rng.below(7) {
            0 => {
                v.fault(Fault::Status(500, n));
                "vault 500"
            }
            1 => {
                v.fault(Fault::Slow(Duration::from_millis(TIMEOUT_MS + 300), n));
                "vault slower than the timeout"
            }
            2 => {
                v.fault(Fault::Drop(n));
                "vault drops the connection"
            }
            3 => {
                v.fault(Fault::Lost(1));
                "vault applies a write, answer lost"
            }
            4 => {
                // The cached token stops working and the token endpoint refuses for a while.
                v.expire_tokens();
                v.fault(Fault::Status(401, 2 + n));
                "token refused"
            }
            5 => {
                v.set_down(true);
                nap(1_000 + rng.below(3_000));
                v.set_down(false);
                "vault down"
            }
            _ => {
                backend.set_down(true);
                nap(500 + rng.below(2_500));
                backend.set_down(false);
                "store down"
            }
        };
        *kinds.entry(kind).or_insert(0) += 1;
        last = Instant::now();
    }
}

/// Resident memory of this process (the host, its store, its instances and the fake
/// vault all live in it), kB.
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn store_size(b: &Backend) -> (usize, usize) {
    let e = b.entries();
    (e.len(), e.iter().map(|(k, v)| k.len() + v.len()).sum())
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool, String> {
    let a = args()?;
    let wasm = std::fs::read(&a.wasm).map_err(|e| format!("{}: {e} (build it first)", a.wasm))?;
    let key = format!("soak-key-{}", a.seed);
    let vault = start_vault(a.vault);
    let server = start_host(&wasm, &vault, &key)?;
    let backend = server.host.backend().clone();
    println!(
        "soak: {} s, {} clients, seed {}, vault {:?}, component {}",
        a.seconds, a.clients, a.seed, a.vault, a.wasm
    );
    let counters = Counters::default();
    let stop = AtomicBool::new(false);
    let mut warm = None::<(u64, usize, usize)>;
    let mut middle = None::<usize>;
    let start = Instant::now();
    let load_for = Duration::from_secs(a.seconds);
    let mut rng = Rng(a.seed);
    let (models, (kinds, last_fault)) = std::thread::scope(|s| {
        let clients: Vec<_> = (0..a.clients)
            .map(|i| {
                let mut c = Client::new(i, server.addr, ORG, &key, Rng(rng.next() | 1));
                let (stop, counters) = (&stop, &counters);
                s.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        c.step(counters);
                    }
                    c
                })
            })
            .collect();
        let cron = {
            let (stop, counters, key) = (&stop, &counters, &key);
            let addr = server.addr;
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_secs(1));
                    load::sync(addr, ORG, key, false, counters);
                }
            })
        };
        let fault = {
            let (vault, backend, stop, fr) = (&vault, &backend, &stop, Rng(rng.next() | 1));
            s.spawn(move || faults(vault, backend, stop, fr))
        };
        // The first quarter warms up; instances' memory is compared between the middle
        // half and the last quarter.
        while start.elapsed() < load_for {
            std::thread::sleep(Duration::from_millis(200));
            if warm.is_none() && start.elapsed() >= load_for / 4 {
                let (keys, bytes) = store_size(&backend);
                warm = Some((rss_kb(), keys, bytes));
                server.host.take_memory_peak();
            }
            if middle.is_none() && start.elapsed() >= load_for * 3 / 4 {
                middle = Some(server.host.take_memory_peak());
            }
        }
        stop.store(true, Ordering::Relaxed);
        let _ = cron.join();
        let faults = fault
            .join()
            .unwrap_or_else(|_| (BTreeMap::new(), Instant::now()));
        let models: Vec<Client> = clients.into_iter().filter_map(|c| c.join().ok()).collect();
        (models, faults)
    });
    let last = server.host.take_memory_peak();
    let middle = middle.unwrap_or_default();
    // Faults off, queued ones dropped; then drain until the vault matches.
    vault.clear_faults();
    vault.set_down(false);
    backend.set_down(false);
    let stopped = Instant::now();
    let settled = check::settle(
        &server,
        &vault,
        ORG,
        &key,
        &counters,
        Duration::from_secs(120),
    );
    let since_fault = stopped.saturating_duration_since(last_fault);
    let verdicts = check::verdicts(&server, &vault, ORG, &key, &models, &settled);
    let (w_rss, w_keys, w_bytes) = warm.unwrap_or_default();
    let (keys, bytes) = store_size(&backend);
    let rss = rss_kb();
    let st = vault.stats();
    println!("requests: {}", counters.report());
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "faults injected: {}",
        if kinds.is_empty() {
            "none".into()
        } else {
            kinds.join(", ")
        }
    );
    println!(
        "vault calls: {} (tokens issued {}), 429s sent by the vault: {}, 429s seen by syncs: {}",
        st.requests.values().sum::<u64>(),
        st.tokens_issued,
        st.rate_limited,
        counters.limited()
    );
    println!(
        "largest backlog (pending in a sync's report): {}",
        counters.max_pending()
    );
    match settled.matched {
        Some(t) => println!(
            "vault matched SCIM {:.1} s after the last fault ({:.1} s after the load stopped)",
            (since_fault + t).as_secs_f64(),
            t.as_secs_f64()
        ),
        None => println!(
            "vault never matched SCIM: the backlog stopped shrinking ({} s of syncs in all)",
            settled.waited.as_secs()
        ),
    }
    let kib = |b: usize| b >> 10;
    println!(
        "component memory: largest instance {} KiB in the middle half of the load, {} KiB in the last quarter",
        kib(middle),
        kib(last)
    );
    // The host's store and the fake vault live in this process and grow with the data:
    // reported, not judged.
    println!(
        "process: resident {} kB after warm-up, {} kB at the end; store {} keys / {} bytes after warm-up, {} keys / {} bytes at the end",
        w_rss, rss, w_keys, w_bytes, keys, bytes
    );
    let mut ok = true;
    let grown = middle + middle / 4 + (1 << 20);
    let memory = (
        "the component's memory did not grow: the last quarter's largest instance is within a quarter (and 1 MiB) of the middle half's, and under 128 MiB".to_string(),
        (last <= grown && last <= EDGE_MEMORY)
            .then_some(())
            .ok_or(format!("{} KiB, then {} KiB", kib(middle), kib(last))),
    );
    for (name, verdict) in verdicts.into_iter().chain([memory]) {
        match verdict {
            Ok(()) => println!("PASS {name}"),
            Err(why) => {
                ok = false;
                println!("FAIL {name}: {why}");
            }
        }
    }
    Ok(ok)
}
