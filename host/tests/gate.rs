//! The edge gate (`gate/`, the Spin component of `spin.gate.toml`) on the test host, on
//! the profile `SCIM_EDGE_PROFILE` names: the Envoy filter's suite
//! (`envoy/tests/support/suite.rs`) in front of a recording upstream and in front of the
//! scim-edge component, then what only the edge gate does (it is the one that reaches the
//! vault, so it answers for an upstream that fails) and its configuration check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../tests/common/runscope.rs"]
mod runscope;
#[path = "../../envoy/tests/support/suite.rs"]
mod suite;
// Both it and `common` locate artifacts with tests/common/built.rs.
#[allow(clippy::duplicate_mod)]
#[path = "../../envoy/tests/support/mod.rs"]
mod support;

use common::orgs::{self, key, STRICT};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use suite::{assert_scim_error, send_to};
use support::{request, SpinHost, Upstream};

fn gate_wasm() -> PathBuf {
    let p = common::built_path("components/wasm32-wasip2/release/scim_edge_gate.wasm");
    assert!(
        p.exists(),
        "{}: build it with `cargo build -p scim-edge-gate --target wasm32-wasip2 --release --target-dir target/components`",
        p.display()
    );
    p
}

/// The gate on the suites' profile with `config` in front of `upstream`, granted it as
/// `spin.gate.toml` grants it (`{{ upstream }}`); its log to `stderr`.
fn gate_host(config: &str, upstream: &str, stderr: Stdio) -> SpinHost {
    gate_granted(config, upstream, "{{ upstream }}", stderr)
}

/// The gate granted `allow` whatever `upstream` says.
fn gate_granted(config: &str, upstream: &str, allow: &str, stderr: Stdio) -> SpinHost {
    SpinHost::serve(
        &gate_wasm(),
        common::profile().name(),
        &[
            ("SPIN_VARIABLE_GATE", config),
            ("SPIN_VARIABLE_UPSTREAM", upstream),
            // The component's log on `stderr`, where the configuration tests read it.
            ("SCIM_EDGE_COMPONENT_LOG", ""),
        ],
        &[allow],
        stderr,
    )
}

struct World {
    upstream: Upstream,
    gate: SpinHost,
    spin_gate: SpinHost,
    _spin: SpinHost,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let upstream = Upstream::start(true, Arc::new(suite::script));
        let spin = suite::spin_upstream();
        let config = suite::filter_config();
        World {
            gate: gate_host(&config, &format!("http://{}", upstream.addr), Stdio::null()),
            spin_gate: gate_host(&config, &format!("http://{}", spin.addr), Stdio::null()),
            upstream,
            _spin: spin,
        }
    })
}

/// What the suite needs from the edge gate.
mod front {
    use super::world;
    use std::net::SocketAddr;

    /// The gate sees `..` as sent (no proxy resolved it) and refuses the path.
    pub const DOT_SEGMENTS_STATUS: u16 = 404;

    pub fn gate() -> SocketAddr {
        world().gate.addr
    }

    pub fn spin() -> SocketAddr {
        world().spin_gate.addr
    }

    pub fn upstream() -> &'static super::Upstream {
        &world().upstream
    }

    /// Each request has its own instance: a panic would have failed its request, which
    /// the suite's assertions catch; the gate still answers after the hostile ones.
    pub fn assert_no_panic() {}
}

/// A port nothing listens on.
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// An upstream that takes connections and never answers.
fn silent_upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    addr
}

fn get_users(at: SocketAddr) -> support::Got {
    let auth = format!("Bearer {}", key(STRICT));
    request(
        at,
        "GET",
        &format!("/v2/{STRICT}/Users"),
        &[("authorization", auth.as_str())],
        b"",
    )
    .unwrap()
}

#[test]
fn an_upstream_that_fails_gets_a_scim_502_or_504() {
    let config = suite::filter_config();
    let refused = gate_host(&config, &format!("http://{}", closed_port()), Stdio::null());
    let v = assert_scim_error(&get_users(refused.addr), 502, None);
    assert_eq!(v["detail"], "The vault could not be reached");

    let silent = gate_host(
        &config,
        &format!("http://{}", silent_upstream()),
        Stdio::null(),
    );
    let started = Instant::now();
    let v = assert_scim_error(&get_users(silent.addr), 504, None);
    assert_eq!(v["detail"], "The vault did not answer in time");
    assert!(started.elapsed() < Duration::from_secs(30));

    // A 5xx without a body gets a SCIM one, as any error without a body does.
    let r = send_to(
        front::gate(),
        "fail-503",
        STRICT,
        "GET",
        &format!("/v2/{STRICT}/Users/u1"),
        &[("x-reply", "empty-503")],
        b"",
    );
    let v = assert_scim_error(&r, 503, None);
    assert_eq!(v["detail"], "The vault answered 503 without a body");
}

#[test]
fn hop_by_hop_headers_stay_behind() {
    let auth = format!("Bearer {}", key(STRICT));
    let r = request(
        front::gate(),
        "GET",
        &format!("/v2/{STRICT}/Users/u1"),
        &[
            ("authorization", auth.as_str()),
            ("x-case", "hop"),
            ("connection", "keep-alive"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("proxy-authorization", "Basic cHJveHk6cHJveHk="),
        ],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let got = suite::arrived("hop");
    for name in ["connection", "keep-alive", "te", "proxy-authorization"] {
        assert_eq!(got.header(name), None, "{name}: {:?}", got.headers);
    }
    // The key reaches the vault as the client sent it; the host is the vault's.
    assert_eq!(got.header("authorization"), Some(auth.as_str()));
    assert_eq!(
        got.header("host"),
        Some(front::upstream().addr.to_string().as_str())
    );
}

/// Reads `path` until it holds `want` or 10 s pass.
fn wait_for(path: &std::path::Path, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(want) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_bad_configuration_is_refused_naming_the_setting() {
    let upstream = format!("http://{}", front::upstream().addr);
    let mut cases: Vec<(String, String, String)> = suite::bad_configurations()
        .into_iter()
        .map(|(config, want)| (config, upstream.clone(), format!("variable 'gate': {want}")))
        .collect();
    // Spin refuses these in allowed_outbound_hosts too; granted by name, the gate's own
    // check stops them.
    for (origin, why) in [
        ("vault.example.com", "is not an http or https origin"),
        ("https://vault.example.com/scim", "is not an origin"),
    ] {
        cases.push((
            suite::filter_config(),
            origin.to_string(),
            format!("variable 'upstream': '{origin}' {why}"),
        ));
    }
    for (n, (config, origin, want)) in cases.into_iter().enumerate() {
        let log = std::env::temp_dir().join(format!(
            "scim-edge-gate-{}-config-{n}.log",
            std::process::id()
        ));
        let file = std::fs::File::create(&log).unwrap();
        let host = gate_granted(&config, &origin, &upstream, Stdio::from(file));
        // Fail closed: nothing passes, the upstream is never called.
        let r = send_to(
            host.addr,
            &format!("config-{n}"),
            STRICT,
            "GET",
            &format!("/v2/{STRICT}/Users"),
            &[],
            b"",
        );
        assert_eq!(r.status, 500, "{want}");
        suite::nothing_arrived(&format!("config-{n}"));
        let text = wait_for(&log, &want);
        assert!(
            text.contains(&format!("scim-edge-gate: configuration error: {want}")),
            "{want}\n{text}"
        );
        drop(host);
        let _ = std::fs::remove_file(&log);
    }
}

/// The gate's imports: WASI, wasi:http and Spin's variables, nothing of a key-value store.
#[test]
fn the_gate_needs_no_key_value_store() {
    let imports = scim_edge_host::component_imports(&std::fs::read(gate_wasm()).unwrap()).unwrap();
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("fermyon:spin/variables")),
        "{imports:?}"
    );
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("wasi:http/outgoing-handler")),
        "{imports:?}"
    );
    for i in &imports {
        assert!(
            !i.contains("key-value") && !i.contains("keyvalue"),
            "{i} in {imports:?}"
        );
    }
}
