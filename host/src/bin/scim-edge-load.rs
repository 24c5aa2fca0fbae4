//! `scim-edge-load --base <url> --key <bearer> --users N [--threads T] [--ops N]`
//! drives an Okta-like workload over HTTP against any SCIM server and prints one
//! Markdown row per operation: requests/s, p50 and p99 latency (of the requests answered
//! as expected) and errors (requests answered otherwise, or not at all, as when the
//! server cannot be reached); it exits with status 1 when there were any. With
//! `--floor`, it only GETs a path (for the host's one-get floor component).
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
/// A request counts as an error when its status is not in `expect` or when it gets no
/// answer at all (the server cannot be reached, or drops the connection twice); only
/// answered, expected requests count towards latency. Returns the bodies by index and
/// the first failure, to explain the errors.
fn run(
    t: &Target,
    name: &str,
    n: usize,
    threads: usize,
    expect: &[u16],
    f: &(dyn Fn(usize) -> (String, String, Option<String>) + Sync),
) -> (Stat, Vec<Vec<u8>>, Option<String>) {
    let next = AtomicUsize::new(0);
    let lat = Mutex::new(Vec::with_capacity(n));
    let bodies = Mutex::new(vec![Vec::new(); n]);
    let errors = AtomicUsize::new(0);
    let first_error = Mutex::new(None::<String>);
    let fail = |what: String| {
        errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut e) = first_error.lock() {
            e.get_or_insert(what);
        }
    };
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut conn: Option<Conn> = None;
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
                    // A kept-alive connection the server closed gets one retry on a fresh
                    // one; a server that cannot be reached is this request's error.
                    let mut r = Err(std::io::Error::other("not sent"));
                    for attempt in 0..2 {
                        let c = match conn.take() {
                            Some(c) => c,
                            None => match Conn::open(t.addr) {
                                Ok(c) => c,
                                Err(e) => {
                                    r = Err(std::io::Error::new(
                                        e.kind(),
                                        format!("cannot connect to {}: {e}", t.addr),
                                    ));
                                    break;
                                }
                            },
                        };
                        let mut c = c;
                        r = c.send(&method, &target, &headers, payload);
                        let keep = r.as_ref().is_ok_and(|r| {
                            !r.header("connection")
                                .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                        });
                        if keep {
                            conn = Some(c);
                        }
                        if r.is_ok() || attempt == 1 {
                            break;
                        }
                    }
                    match r {
                        Ok(r) if expect.contains(&r.status) => {
                            mine.push(t0.elapsed());
                            if let Ok(mut b) = bodies.lock() {
                                if let Some(slot) = b.get_mut(i) {
                                    *slot = r.body;
                                }
                            }
                        }
                        Ok(r) => fail(format!(
                            "{method} {target}: status {}, expected {expect:?}",
                            r.status
                        )),
                        Err(e) => fail(format!("{method} {target}: {e}")),
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
        first_error.into_inner().unwrap_or_default(),
    )
}

/// The `id` of a SCIM resource in a response body.
fn id_of(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(v.get("id")?.as_str()?.to_string())
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
        let (s, _, e) = run(&t, "GET (one KV get)", ops, threads, &[200], &|i| {
            ("GET".into(), format!("/k{}", i % 100), None)
        });
        stats.push((s, e));
    } else {
        let tag = std::process::id();
        let user = move |i: usize| format!("load{tag}u{i}@bench.io");
        let (s, bodies, e) = run(&t, "create user", users, threads, &[201], &|i| {
            let u = user(i);
            (
                "POST".into(),
                "/Users".into(),
                Some(format!(
                    r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"{u}","name":{{"givenName":"Load","familyName":"User{i}"}},"emails":[{{"primary":true,"value":"{u}","type":"work"}}],"displayName":"Load User","active":true}}"#
                )),
            )
        });
        stats.push((s, e));
        let ids: Vec<String> = bodies.iter().filter_map(|b| id_of(b)).collect();
        if ids.is_empty() {
            report(&label, &stats);
            eprintln!("scim-edge-load: no user was created, so the other operations were not run");
            return ExitCode::FAILURE;
        }
        let pick = |i: usize| i.wrapping_mul(7919) % ids.len();
        stats.push(pair(run(
            &t,
            "lookup by userName",
            ops,
            threads,
            &[200],
            &|i| {
                (
                    "GET".into(),
                    format!(
                        "/Users?filter=userName%20eq%20%22{}%22&startIndex=1&count=100",
                        user(pick(i)).replace('@', "%40")
                    ),
                    None,
                )
            },
        )));
        stats.push(pair(run(
            &t,
            "GET user by id",
            ops,
            threads,
            &[200],
            &|i| ("GET".into(), format!("/Users/{}", ids[pick(i)]), None),
        )));
        stats.push(pair(run(&t, "deactivate PATCH", ops.min(ids.len()), threads, &[200, 204], &|i| ("PATCH".into(), format!("/Users/{}", ids[i]), Some(r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}"#.into())))));
        let groups = 10;
        let (s, gbodies, e) = run(
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
        stats.push((s, e));
        let gids: Vec<String> = gbodies.iter().filter_map(|b| id_of(b)).collect();
        if !gids.is_empty() {
            stats.push(pair(run(&t, "member add PATCH", ops.min(ids.len()), threads, &[200, 204], &|i| ("PATCH".into(), format!("/Groups/{}", gids[i % gids.len()]), Some(format!(r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{{"op":"add","path":"members","value":[{{"value":"{}"}}]}}]}}"#, ids[i]))))));
        }
        stats.push(pair(run(
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
        )));
    }
    if report(&label, &stats) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn pair((s, _, e): (Stat, Vec<Vec<u8>>, Option<String>)) -> (Stat, Option<String>) {
    (s, e)
}

/// Prints one Markdown row per operation (req/s counts only answered, expected requests)
/// and, on stderr, what went wrong where there were errors; false if there were any.
fn report(label: &str, stats: &[(Stat, Option<String>)]) -> bool {
    let mut clean = true;
    for (s, first_error) in stats {
        let ok = s.count.saturating_sub(s.errors);
        let rps = ok as f64 / s.elapsed.as_secs_f64();
        println!(
            "| {label} | {} | {} | {rps:.0} | {:.2} | {:.2} | {} |",
            s.name,
            s.count,
            percentile(&s.lat, 0.5).as_secs_f64() * 1000.0,
            percentile(&s.lat, 0.99).as_secs_f64() * 1000.0,
            s.errors
        );
        if s.errors > 0 {
            clean = false;
            eprintln!(
                "scim-edge-load: {}: {} of {} requests failed; the first: {}",
                s.name,
                s.errors,
                s.count,
                first_error.as_deref().unwrap_or("?")
            );
        }
    }
    clean
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_from_the_json() {
        assert_eq!(id_of(br#"{"schemas":[],"id":"u1"}"#).as_deref(), Some("u1"));
        // Not the first "id" in the text: a nested one, or one in a string value.
        assert_eq!(
            id_of(br#"{"members":[{"id":"m1"}],"note":"\"id\": \"x\"","id":"g1"}"#).as_deref(),
            Some("g1")
        );
        assert_eq!(id_of(br#"{ "id" : "a\"b" }"#).as_deref(), Some("a\"b"));
        assert_eq!(id_of(br#"{"members":[{"id":"m1"}]}"#), None);
        assert_eq!(id_of(br#"{"id":7}"#), None);
        assert_eq!(id_of(b"not json \"id\":\"x\""), None);
    }

    #[test]
    fn a_server_that_cannot_be_reached_is_all_errors() {
        // A port nothing listens on.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        let t = Target {
            addr,
            prefix: String::new(),
            auth: "Bearer x".into(),
        };
        let (s, bodies, first) = run(&t, "get", 50, 4, &[200], &|i| {
            ("GET".into(), format!("/k{i}"), None)
        });
        assert_eq!(s.errors, 50);
        assert!(s.lat.is_empty());
        assert!(bodies.iter().all(Vec::is_empty));
        let first = first.unwrap_or_default();
        assert!(first.contains("cannot connect to"), "{first}");
        assert!(!report("closed", &[(s, Some(first))]));
    }
}
