//! Outbound HTTP on the test host with the built component: granting
//! `allowed_outbound_hosts` entries (templates from the host's variables), the
//! `x-outbound-calls` header and the host-wide counts, and the command line's
//! `--allow-outbound`. (The component makes no outbound call of its own yet; the hook
//! itself is tested against a local server in the crate's unit tests.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use scim_edge_host::{serve, Backend, Host, OutboundCounts};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::time::Duration;

fn host(vars: HashMap<String, String>) -> Host {
    Host::with_profile(wasm(), vars, Arc::new(Backend::default()), profile()).unwrap()
}

fn vars() -> HashMap<String, String> {
    HashMap::from([
        ("organizations".to_string(), organizations()),
        (
            "vault_origin".to_string(),
            "http://127.0.0.1:8087".to_string(),
        ),
    ])
}

#[test]
fn a_component_is_granted_nothing_until_told() {
    let h = host(vars());
    assert!(h.allowed_outbound().is_empty());
    assert!(!h.allowed_outbound().allows("http://127.0.0.1:8087/"));
}

#[test]
fn entries_resolve_templates_from_the_hosts_variables() {
    let h = host(vars())
        .allow_outbound(&["{{ vault_origin }}".to_string()])
        .unwrap()
        .allow_outbound(&["https://*.example.com"])
        .unwrap();
    let allowed = h.allowed_outbound();
    assert!(allowed.allows("http://127.0.0.1:8087/deliver"));
    assert!(!allowed.allows("http://127.0.0.1:8088/deliver"));
    assert!(allowed.allows("https://vault.example.com/api"));
    assert!(!allowed.allows("http://vault.example.com/api"));
}

#[test]
fn an_entry_naming_an_undefined_variable_or_malformed_is_refused_at_load() {
    for (entry, why) in [
        (
            "https://{{ vault_host }}",
            "undefined variable \"vault_host\"",
        ),
        ("vault.example.com", "no scheme"),
        ("https://vault.example.com/api", "path"),
    ] {
        let e = host(vars())
            .allow_outbound(&[entry])
            .err()
            .unwrap_or_else(|| panic!("{entry} was accepted"));
        let message = format!("{e:#}");
        assert!(
            message.contains(entry) && message.contains(why),
            "{entry}: {message}"
        );
    }
}

#[test]
fn every_response_reports_its_outbound_calls() {
    let h = host(vars())
        .allow_outbound(&["{{ vault_origin }}"])
        .unwrap();
    let s = serve(h, "127.0.0.1:0".parse().unwrap(), 2).unwrap();
    for path in [
        format!("/v2/{STRICT}/ServiceProviderConfig"),
        format!("/v2/{STRICT}/Users"),
        "/v2/not-an-org/Users".to_string(),
    ] {
        let r = call(&s, "GET", &path, None);
        assert_eq!(r.outbound_calls(), Some(0), "{path}: {:?}", r.headers);
        assert!(r.kv_counts().is_some());
    }
    // Whatever the handlers do after answering has finished too.
    assert!(s.host.wait_idle(Duration::from_secs(30)));
    assert_eq!(s.host.in_flight(), 0);
    assert_eq!(s.host.outbound_counts(), OutboundCounts::default());
}

/// Runs the command line until it prints its first line or fails; that line, or the
/// exit status and standard error.
fn cli(args: &[&str]) -> Result<String, (Option<i32>, String)> {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scim-edge-host"))
        .args([
            "--wasm",
            wasm_path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .env("SPIN_VARIABLE_VAULT_ORIGIN", "http://127.0.0.1:8087")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if line.is_empty() {
        let out = child.wait_with_output().unwrap();
        return Err((
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    // It serves until stopped.
    child.kill().unwrap();
    child.wait().unwrap();
    Ok(line)
}

#[test]
fn the_command_line_grants_outbound_hosts() {
    // The SCIM component itself needs no variable to load.
    let line = cli(&[
        "--allow-outbound",
        "{{ vault_origin }}",
        "--allow-outbound",
        "https://vault.example.com",
    ])
    .unwrap();
    assert!(
        line.contains("outbound HTTP to {{ vault_origin }}, https://vault.example.com"),
        "{line}"
    );
    let (code, stderr) = cli(&["--allow-outbound", "https://{{ nope }}"]).unwrap_err();
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("https://{{ nope }}") && stderr.contains("undefined variable"),
        "{stderr}"
    );
}
