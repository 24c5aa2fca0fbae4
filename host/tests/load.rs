//! The load driver (`scim-edge-load`) as the benchmarks run it: every request against the
//! built component succeeds and the ids it reads from the answers work; against a server
//! it cannot reach, every request is an error and it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::process::Command;

/// Runs the driver; its exit status, table rows (split into cells) and stderr.
fn load(base: &str, args: &[&str]) -> (bool, Vec<Vec<String>>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_scim-edge-load"))
        .args(["--base", base])
        .args(args)
        .output()
        .unwrap();
    let rows = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect();
    (
        out.status.success(),
        rows,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

#[test]
fn an_unreachable_server_is_reported_as_errors() {
    let base = closed_port();
    let (ok, rows, err) = load(
        &base,
        &["--key", "k", "--floor", "--ops", "40", "--threads", "4"],
    );
    assert!(!ok, "{rows:?}");
    // | label | operation | requests | req/s | p50 | p99 | errors |
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][2], "40", "{rows:?}");
    assert_eq!(rows[0][3], "0", "no request was answered: {rows:?}");
    assert_eq!(rows[0][6], "40", "{rows:?}");
    assert!(err.contains("cannot connect to"), "{err}");

    let (ok, rows, err) = load(
        &format!("{base}/v2/{STRICT}"),
        &["--key", "k", "--users", "5", "--ops", "5", "--threads", "2"],
    );
    assert!(!ok, "{rows:?}");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][1], "create user", "{rows:?}");
    assert_eq!(rows[0][6], "5", "{rows:?}");
    assert!(err.contains("no user was created"), "{err}");
}

#[test]
fn the_whole_workload_runs_without_errors_against_the_component() {
    let s = server();
    let (ok, rows, err) = load(
        &format!("http://{}/v2/{STRICT}", s.addr),
        &[
            "--key",
            &key(STRICT),
            "--users",
            "30",
            "--ops",
            "30",
            "--threads",
            "2",
        ],
    );
    assert!(ok, "{rows:?}\n{err}");
    let ops: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(
        ops,
        [
            "create user",
            "lookup by userName",
            "GET user by id",
            "deactivate PATCH",
            "group create",
            "member add PATCH",
            "list page of 100"
        ],
        "{rows:?}"
    );
    for r in &rows {
        assert_eq!(r[6], "0", "{rows:?}\n{err}");
    }
}
