//! `scim-edge-load --base <url> --key <bearer> --users N [--threads T] [--ops N]`
//! drives an Okta-like workload over HTTP against any SCIM server and prints one
//! Markdown row per operation: requests/s, p50 and p99 latency. With `--floor`, it only
//! GETs a path (for the host's one-get floor component).
//!
//! Operations, in order: create N users; look each up by `userName`; GET by id;
//! deactivate PATCH; create groups and add members with PATCH; list pages of 100.

use scim_edge_host::client::Conn;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Target {
    addr: SocketAddr,
    prefix: String,
    auth: String,
}

struct Stat {
    name: String,
    count: usize,
    elapsed: Duration,
    lat: Vec<Duration>,
    errors: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// Runs `n` requests over `threads` kept-alive connections; `f(i)` gives method, path, body.
fn run(
    t: &Target,
    name: &str,
    n: usize,
    threads: usize,
    expect: &[u16],
    f: &(dyn Fn(usize) -> (String, String, Option<String>) + Sync),
) -> (Stat, Vec<Vec<u8>>) {
    let next = AtomicUsize::new(0);
    let lat = Mutex::new(Vec::with_capacity(n));
    let bodies = Mutex::new(vec![Vec::new(); n]);
    let errors = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let Ok(mut c) = Conn::open(t.addr) else {
                    return;
                };
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let (method, path, body) = f(i);
                    let mut headers = vec![("authorization", t.auth.as_str())];
                    if body.is_some() {
                        headers.push(("content-type", "application/scim+json"));
                    }
                    let target = format!("{}{path}", t.prefix);
                    let payload = body.as_deref().unwrap_or("").as_bytes();
                    let t0 = Instant::now();
                    // A server that closed the kept-alive connection gets one retry on a
                    // fresh one.
                    let mut r = c.send(&method, &target, &headers, payload);
                    if r.is_err() {
                        if let Ok(c2) = Conn::open(t.addr) {
                            c = c2;
                            r = c.send(&method, &target, &headers, payload);
                        }
                    }
                    mine.push(t0.elapsed());
                    let closing = r.as_ref().is_ok_and(|r| {
                        r.header("connection")
                            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                    });
                    if closing {
                        if let Ok(c2) = Conn::open(t.addr) {
                            c = c2;
                        }
                    }
                    match r {
                        Ok(r) if expect.contains(&r.status) => {
                            if let Ok(mut b) = bodies.lock() {
                                if let Some(slot) = b.get_mut(i) {
                                    *slot = r.body;
                                }
                            }
                        }
                        Ok(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            if let Ok(c2) = Conn::open(t.addr) {
                                c = c2;
                            }
                        }
                    }
                }
                if let Ok(mut l) = lat.lock() {
                    l.extend(mine);
                }
            });
        }
    });
    let elapsed = start.elapsed();
    let mut lat = lat.into_inner().unwrap_or_default();
    lat.sort();
    (
        Stat {
            name: name.into(),
            count: n,
            elapsed,
            lat,
            errors: errors.into_inner(),
        },
        bodies.into_inner().unwrap_or_default(),
    )
}

fn id_of(body: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(body).ok()?;
    let at = s.find("\"id\"")?;
    let rest = s.get(at + 4..)?;
    let start = rest.find('"')? + 1;
    let rest = rest.get(start..)?;
    Some(rest.get(..rest.find('"')?)?.to_string())
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(base), Some(key)) = (flag(&args, "--base"), flag(&args, "--key")) else {
        eprintln!("usage: scim-edge-load --base http://127.0.0.1:PORT/prefix --key KEY --users N [--threads T] [--ops N] [--label L] [--floor]");
        return ExitCode::from(2);
    };
    let users: usize = flag(&args, "--users")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let threads: usize = flag(&args, "--threads")
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let ops: usize = flag(&args, "--ops")
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let label = flag(&args, "--label").unwrap_or_default();
    let rest = base.trim_start_matches("http://");
    let (hostport, prefix) = rest
        .split_once('/')
        .map_or((rest, String::new()), |(h, p)| (h, format!("/{p}")));
    let Ok(addr) = hostport.parse::<SocketAddr>() else {
        eprintln!("--base must be http://127.0.0.1:PORT/...");
        return ExitCode::from(2);
    };
    let t = Target {
        addr,
        prefix,
        auth: format!("Bearer {key}"),
    };
    let mut stats = Vec::new();
    if args.iter().any(|a| a == "--floor") {
        let (s, _) = run(&t, "GET (one KV get)", ops, threads, &[200], &|i| {
            ("GET".into(), format!("/k{}", i % 100), None)
        });
        stats.push(s);
    } else {
        let tag = std::process::id();
        let user = move |i: usize| format!("load{tag}u{i}@bench.io");
        let (s, bodies) = run(&t, "create user", users, threads, &[201], &|i| {
            let u = user(i);
            (
                "POST".into(),
                "/Users".into(),
                Some(format!(
                    r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"{u}","name":{{"givenName":"Load","familyName":"User{i}"}},"emails":[{{"primary":true,"value":"{u}","type":"work"}}],"displayName":"Load User","active":true}}"#
                )),
            )
        });
        stats.push(s);
        let ids: Vec<String> = bodies.iter().filter_map(|b| id_of(b)).collect();
        if ids.is_empty() {
            eprintln!("no user was created");
            return ExitCode::from(1);
        }
        let pick = |i: usize| i.wrapping_mul(7919) % ids.len();
        stats.push(
            run(&t, "lookup by userName", ops, threads, &[200], &|i| {
                (
                    "GET".into(),
                    format!(
                        "/Users?filter=userName%20eq%20%22{}%22&startIndex=1&count=100",
                        user(pick(i)).replace('@', "%40")
                    ),
                    None,
                )
            })
            .0,
        );
        stats.push(
            run(&t, "GET user by id", ops, threads, &[200], &|i| {
                ("GET".into(), format!("/Users/{}", ids[pick(i)]), None)
            })
            .0,
        );
        stats.push(run(&t, "deactivate PATCH", ops.min(ids.len()), threads, &[200, 204], &|i| ("PATCH".into(), format!("/Users/{}", ids[i]), Some(r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}"#.into()))).0);
        let groups = 10;
        let (s, gbodies) = run(
            &t,
            "group create",
            groups,
            threads.min(groups),
            &[201],
            &|i| {
                (
                    "POST".into(),
                    "/Groups".into(),
                    Some(format!(
                        r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Load group {tag} {i}","members":[]}}"#
                    )),
                )
            },
        );
        stats.push(s);
        let gids: Vec<String> = gbodies.iter().filter_map(|b| id_of(b)).collect();
        if !gids.is_empty() {
            stats.push(run(&t, "member add PATCH", ops.min(ids.len()), threads, &[200, 204], &|i| ("PATCH".into(), format!("/Groups/{}", gids[i % gids.len()]), Some(format!(r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{{"op":"add","path":"members","value":[{{"value":"{}"}}]}}]}}"#, ids[i])))).0);
        }
        stats.push(
            run(
                &t,
                "list page of 100",
                (ops / 10).max(10),
                threads,
                &[200],
                &|i| {
                    (
                        "GET".into(),
                        format!(
                            "/Users?startIndex={}&count=100",
                            1 + pick(i) % ids.len().saturating_sub(100).max(1)
                        ),
                        None,
                    )
                },
            )
            .0,
        );
    }
    for s in stats {
        let rps = s.count as f64 / s.elapsed.as_secs_f64();
        println!(
            "| {label} | {} | {} | {rps:.0} | {:.2} | {:.2} | {} |",
            s.name,
            s.count,
            percentile(&s.lat, 0.5).as_secs_f64() * 1000.0,
            percentile(&s.lat, 0.99).as_secs_f64() * 1000.0,
            s.errors
        );
    }
    ExitCode::SUCCESS
}
