//! The console (`{base}/_console`) through the built component on the test host: its
//! routes' headers and assets checked with the host's client, then the page itself in
//! headless Chromium, driven by `tests/console/console.mjs` (playwright-core) once per
//! phase while the test changes the fake vaults between phases. Screenshots go to
//! `target/console-screenshots/`.
//!
//! Without Node's packages (`npm ci` in tests/console) or `/usr/bin/chromium` the browser
//! test passes as skipped, printing `SKIPPED`; with `SCIM_EDGE_REQUIRE_BROWSER` set (as
//! scripts/test sets it) it fails instead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../tests/vault/support.rs"]
mod support;

use common::{json, key, org_call, org_entry, vault_server, STRICT};
use scim_edge_fakevault::{FakeVault, Mode, ACCEPTED, REVOKED};
use scim_edge_host::client::{request, Reply};
use scim_edge_host::Running;
use serde_json::{json as j, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{start_vault, vault_config};

/// An organization provisioned into a Bitwarden fake vault, and one into Vaultwarden.
const BW: &str = "c0a50e1e-0000-4000-8000-00000000000b";
const VW: &str = "c0a50e1e-0000-4000-8000-00000000000f";

const CHROMIUM: &str = "/usr/bin/chromium";

/// Only same-origin script, style and fetches (src/router/console.rs).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The organization's entry with a vault: the rate matches the fake vault's clock, and
/// changes wait for `_vault/sync` (no calls after a SCIM request).
fn vault_entry(org: &str, v: &FakeVault, extra: Value) -> String {
    let cfg = vault_config(
        v,
        &[&j!({"timeout_ms": 1000, "after_request_calls": 0}), &extra],
    );
    let base = org_entry(org, "strict");
    format!("{}, \"vault\": {cfg}}}", base.trim_end_matches('}'))
}

/// A user's id, created active (or not).
fn user(s: &Running, org: &str, email: &str, active: bool) -> String {
    let body = j!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": email, "externalId": format!("okta-{email}"), "emails": [{"primary": true, "value": email}], "active": active});
    let r = org_call(s, org, "POST", "/Users", Some(body));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    json(&r)["id"].as_str().unwrap().to_string()
}

/// `_vault/sync` (with a reconcile when asked) until nothing waits; the last answer.
fn sync(s: &Running, org: &str, reconcile: bool) -> Value {
    let path = if reconcile {
        "/_vault/sync?reconcile=1"
    } else {
        "/_vault/sync"
    };
    for _ in 0..40 {
        assert!(s.host.wait_idle(Duration::from_secs(30)));
        let r = org_call(s, org, "POST", path, None);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v = json(&r);
        if v["pending"] == 0 {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{org}: the outbox never emptied");
}

fn status(s: &Running, org: &str) -> Value {
    let r = org_call(s, org, "GET", "/_vault/status", None);
    assert_eq!(r.status, 200);
    json(&r)
}

fn member(v: &FakeVault, email: &str) -> scim_edge_fakevault::Member {
    v.members()
        .into_iter()
        .find(|m| m.email.eq_ignore_ascii_case(email))
        .unwrap_or_else(|| panic!("{email} is not in the vault: {:?}", v.members()))
}

#[test]
fn console_routes_carry_their_headers_and_assets_stay_small() {
    let s = vault_server(&[org_entry(STRICT, "strict")]);
    let mut total = 0;
    for prefix in ["/v2", "/scim/v2"] {
        let base = format!("{prefix}/{STRICT}");
        for (path, ty) in [
            ("/_console", "text/html"),
            ("/_console/console.js", "text/javascript"),
            ("/_console/console.css", "text/css"),
        ] {
            // No key: the shell holds no data.
            let r = request(s.addr, "GET", &format!("{base}{path}"), &[], b"").unwrap();
            assert_eq!(r.status, 200, "{path}");
            assert!(
                r.header("content-type").unwrap_or("").starts_with(ty),
                "{path}: {:?}",
                r.header("content-type")
            );
            assert_guarded(&r, path);
            if prefix == "/v2" {
                total += r.body.len();
            }
        }
        let auth = format!("Bearer {}", key(STRICT));
        let r = request(
            s.addr,
            "GET",
            &format!("{base}/_console/overview"),
            &[("authorization", &auth)],
            b"",
        )
        .unwrap();
        assert_eq!(r.status, 200);
        assert_guarded(&r, "/_console/overview");
        assert_eq!(
            json(&r),
            j!({"organization": STRICT, "policy": "strict", "users": {"active": 0, "inactive": 0}, "groups": 0, "vault": null})
        );
    }
    assert!(total < 40 * 1024, "the console's assets are {total} bytes");
    // The overview needs the key; the 401 says why in a SCIM error.
    let r = request(
        s.addr,
        "GET",
        &format!("/v2/{STRICT}/_console/overview"),
        &[("authorization", "Bearer nope")],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 401);
    assert!(json(&r)["detail"].as_str().unwrap().contains("Bearer"));

    // What CSP would block, or a page that shows data it was not given, is absent.
    let page = String::from_utf8(
        request(s.addr, "GET", &format!("/v2/{STRICT}/_console"), &[], b"")
            .unwrap()
            .body,
    )
    .unwrap();
    assert!(page.contains(r#"href="_console/console.css""#), "{page}");
    assert!(page.contains(r#"src="_console/console.js""#), "{page}");
    assert_eq!(page.matches("<script").count(), 1, "inline script");
    assert!(
        !page.contains("<style") && !page.contains("style="),
        "inline style"
    );
    assert!(
        !page.contains("http:") && !page.contains("https:"),
        "an origin"
    );
    let script = std::fs::read_to_string(repo().join("src/console/console.js")).unwrap();
    for never in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "localStorage.set",
        "eval(",
    ] {
        assert!(!script.contains(never), "console.js uses {never}");
    }
}

/// Every console answer is kept out of frames, caches, referrers and type sniffing.
fn assert_guarded(r: &Reply, path: &str) {
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
    ] {
        assert_eq!(r.header(name), Some(value), "{path}: {name}");
    }
}

/// The browser and the driver's packages, when present.
struct Browser {
    driver: PathBuf,
    out: PathBuf,
}

impl Browser {
    /// `None` (after printing SKIPPED) when something is missing and the browser test
    /// is not required.
    fn find() -> Option<Browser> {
        let driver = repo().join("tests/console/console.mjs");
        let packages = repo().join("tests/console/node_modules/playwright-core");
        let node = Command::new("node").arg("--version").output().is_ok();
        let missing: Vec<String> = [
            (!node).then(|| "node".to_string()),
            (!packages.is_dir())
                .then(|| format!("{} (npm ci in tests/console)", packages.display())),
            (!Path::new(CHROMIUM).exists())
                .then(|| format!("{CHROMIUM} (apt-get install chromium)")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !missing.is_empty() {
            let why = format!("missing {}", missing.join(", "));
            if std::env::var_os("SCIM_EDGE_REQUIRE_BROWSER").is_some() {
                panic!("SCIM_EDGE_REQUIRE_BROWSER is set and the browser test is {why}");
            }
            println!("SKIPPED console_in_a_browser: {why}");
            return None;
        }
        let out = common::built_path("console-screenshots");
        std::fs::create_dir_all(&out).unwrap();
        // Only this run's screenshots stay.
        for f in std::fs::read_dir(&out).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "png") {
                std::fs::remove_file(p).unwrap();
            }
        }
        Some(Browser { driver, out })
    }

    /// Runs one phase of the driver against the organization's page, under `/v2`, or
    /// `/scim/v2` for the Vaultwarden organization (both bases serve the console).
    fn phase(&self, s: &Running, phase: &str, org: &str, expect: Value) {
        let prefix = if org == VW { "/scim/v2" } else { "/v2" };
        let input = j!({
            "phase": phase,
            "url": format!("http://{}{prefix}/{org}/_console", s.addr),
            "key": key(org),
            "out": self.out,
            "chromium": CHROMIUM,
            "expect": expect,
        });
        let mut child = Command::new("node")
            .arg(&self.driver)
            .current_dir(repo())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.to_string().as_bytes())
            .unwrap();
        let done = child.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&done.stdout),
            String::from_utf8_lossy(&done.stderr)
        );
        assert!(done.status.success(), "phase {phase} failed:\n{said}");
        print!("{said}");
    }
}

#[test]
fn console_in_a_browser() {
    let Some(browser) = Browser::find() else {
        return;
    };
    let bw = start_vault(Mode::Bitwarden);
    let vw = start_vault(Mode::Vaultwarden);
    let s = vault_server(&[
        org_entry(STRICT, "strict"),
        vault_entry(BW, &bw, j!({"heal": true})),
        // A refused member waits for the operator, not for its backoff.
        vault_entry(VW, &vw, j!({"retry_ms": 600_000})),
    ]);

    // The shell, a wrong key, and an organization without a vault.
    user(&s, STRICT, "solo@example.com", true);
    let wrong = request(
        s.addr,
        "GET",
        &format!("/v2/{STRICT}/_console/overview"),
        &[("authorization", "Bearer not-the-key")],
        b"",
    )
    .unwrap();
    assert_eq!(wrong.status, 401);
    browser.phase(
        &s,
        "shell",
        STRICT,
        j!({"detail": json(&wrong)["detail"], "facts": {"policy": "strict", "active": 1, "inactive": 0, "groups": 0}}),
    );

    // Bitwarden: three active users, one inactive, a group; ann accepts her invitation.
    let ann = user(&s, BW, "ann@example.com", true);
    let bob = user(&s, BW, "bob@example.com", true);
    user(&s, BW, "carol@example.com", true);
    user(&s, BW, "dan@example.com", false);
    let g = j!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineering", "members": [{"value": ann}, {"value": bob}]});
    assert_eq!(org_call(&s, BW, "POST", "/Groups", Some(g)).status, 201);
    sync(&s, BW, false);
    bw.set_status(&member(&bw, "ann@example.com").id, ACCEPTED);
    sync(&s, BW, true);
    browser.phase(
        &s,
        "overview",
        BW,
        j!({
            "facts": {"policy": "strict", "active": 3, "inactive": 1, "groups": 1, "kind": "Bitwarden", "origin": bw.url(), "token": "succeeded", "backlog": "0 waiting", "pause": "no"},
            "statuses": ["1 accepted", "2 invited"],
            "queue": ["ann@example.com"],
        }),
    );

    // A change waits for a sync: "sync now" sends it.
    user(&s, BW, "erin@example.com", true);
    assert!(s.host.wait_idle(Duration::from_secs(30)));
    assert_eq!(status(&s, BW)["backlog"], 1);
    browser.phase(&s, "sync", BW, j!({}));
    member(&bw, "erin@example.com");

    // An administrator revokes bob by hand: "reconcile now" reports it and heals it.
    let bob_member = member(&bw, "bob@example.com").id;
    bw.set_status(&bob_member, REVOKED);
    browser.phase(
        &s,
        "drift",
        BW,
        j!({"drift": "bob@example.com: revoked in the vault by hand"}),
    );
    assert_ne!(member(&bw, "bob@example.com").status, REVOKED);

    // Vaultwarden's mail server refuses one address: that member is parked with the
    // vault's words, and everyone else goes out.
    vw.refuse_mail("late@example.com");
    user(&s, VW, "early@example.com", true);
    let late = user(&s, VW, "late@example.com", true);
    sync(&s, VW, false);
    let parked = status(&s, VW)["parked"].clone();
    let entry = format!("u:{late}");
    assert_eq!(parked[0]["entry"], entry, "{parked}");
    let error = parked[0]["error"].as_str().unwrap().to_string();
    assert!(error.contains("Error sending invite"), "{error}");
    // The entry names who is stuck.
    assert_eq!(parked[0]["name"], "late@example.com", "{parked}");
    browser.phase(
        &s,
        "parked",
        VW,
        j!({"entry": entry, "error": error, "name": "late@example.com"}),
    );
    assert!(vw.members().iter().all(|m| m.email != "late@example.com"));
    // The mail server takes it now: retry clears it, then the key is forgotten.
    vw.clear_mail_refusals();
    browser.phase(&s, "retry", VW, j!({"entry": entry}));
    member(&vw, "late@example.com");
    assert_eq!(status(&s, VW)["parked"], j!([]));

    // The vault goes down: the failed import pauses delivery for `retry_ms`.
    vw.set_down(true);
    user(&s, VW, "later@example.com", true);
    let r = json(&org_call(&s, VW, "POST", "/_vault/sync", None));
    assert_eq!(r["pending"], 1, "{r}");
    let st = status(&s, VW);
    assert!(st["pausedUntil"].is_string(), "{st}");
    browser.phase(&s, "paused", VW, j!({"reason": "the vault answered 503"}));
}
