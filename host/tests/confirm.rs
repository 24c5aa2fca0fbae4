//! The Confirm agent end to end: the built component provisions SCIM users into the fake
//! vault, the members register with real key pairs, and the built `scim-edge-confirm`
//! binary confirms them as an administrator would, for both vault kinds; then each case
//! the agent must leave alone. The fake checks every confirmation by opening the wrapped
//! key with the member's private key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../tests/vault/support.rs"]
mod support;

use common::{json, key, org_entry, profile, wasm};
use scim_edge_fakevault::{AdminLogin, FakeVault, Kdf, Mode, ADMIN, OWNER, REVOKED, USER};
use scim_edge_host::client::{request, Reply};
use scim_edge_host::{serve, Backend, Host, Running};
use serde_json::{json as j, Value};
use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use support::{start_vault, vault_config};

const EXT: &str = "urn:scim-edge:schemas:extension:vault:2.0:User";
const PASSWORD: &str = "correct horse battery staple";

/// The agent binary (scripts/test builds it before the tests).
fn agent() -> PathBuf {
    let p = common::built_path("debug/scim-edge-confirm");
    assert!(
        p.exists(),
        "{} is missing: cargo build -p scim-edge-confirm",
        p.display()
    );
    p
}

/// One organization provisioned into a fake vault, with an Owner whose personal API key
/// the agent uses, and the secret files it reads.
struct Org {
    vault: FakeVault,
    server: Running,
    org: String,
    admin: AdminLogin,
    dir: PathBuf,
}

impl Org {
    /// Drains only from `_vault/sync` (after_request_calls 0), so a test decides when the
    /// vault hears of a change.
    fn new(mode: Mode, n: usize) -> Org {
        let vault = start_vault(mode);
        let org = format!("c0f1a2b3-0000-4000-8000-{n:012x}");
        let cfg = vault_config(
            &vault,
            &[&j!({"timeout_ms": 2000, "after_request_calls": 0})],
        );
        let entry = format!(
            "{}, \"vault\": {cfg}}}",
            org_entry(&org, "strict").trim_end_matches('}')
        );
        let vars = HashMap::from([
            ("organizations".to_string(), format!("{{{entry}}}")),
            ("vault_origin".to_string(), "http://127.0.0.1:*".to_string()),
        ]);
        let host = Host::with_profile(wasm(), vars, Arc::new(Backend::default()), profile())
            .unwrap()
            .allow_outbound(&["{{ vault_origin }}"])
            .unwrap();
        let server = serve(host, "127.0.0.1:0".parse().unwrap(), 2).unwrap();
        // PBKDF2 for Bitwarden, Argon2id for Vaultwarden: each unlock path runs once.
        let kdf = match mode {
            Mode::Bitwarden => Kdf::Pbkdf2 { iterations: 5000 },
            Mode::Vaultwarden => Kdf::Argon2id {
                iterations: 3,
                memory_mib: 16,
                parallelism: 2,
            },
        };
        let admin = vault.seed_admin("it-admin@example.com", PASSWORD, kdf, OWNER);
        let dir =
            std::env::temp_dir().join(format!("scim-edge-confirm-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("client-secret"),
            format!("{}\n", admin.client_secret),
        )
        .unwrap();
        std::fs::write(dir.join("password"), format!("{PASSWORD}\n")).unwrap();
        std::fs::write(dir.join("scim-key"), key(&org)).unwrap();
        Org {
            vault,
            server,
            org,
            admin,
            dir,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let auth = format!("Bearer {}", key(&self.org));
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let mut h = vec![("authorization", auth.as_str())];
        if !bytes.is_empty() {
            h.push(("content-type", "application/scim+json"));
        }
        request(
            self.server.addr,
            method,
            &format!("/v2/{}{path}", self.org),
            &h,
            &bytes,
        )
        .unwrap()
    }

    /// A SCIM user at this address; its id.
    fn user(&self, address: &str) -> String {
        let body = j!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": address,
            "externalId": format!("okta-{address}"), "emails": [{"primary": true, "value": address}], "active": true});
        let r = self.call("POST", "/Users", Some(body));
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        json(&r)["id"].as_str().unwrap().to_string()
    }

    fn deactivate(&self, id: &str) {
        let p = j!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": false}}]});
        assert_eq!(
            self.call("PATCH", &format!("/Users/{id}"), Some(p)).status,
            200
        );
    }

    /// Syncs until the outbox is empty.
    fn sync(&self) {
        for _ in 0..60 {
            let r = self.call("POST", "/_vault/sync", None);
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            if json(&r)["pending"] == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the outbox never emptied");
    }

    fn status_of(&self, id: &str) -> Value {
        json(&self.call("GET", &format!("/Users/{id}"), None))[EXT]["status"].clone()
    }

    fn member_id(&self, email: &str) -> String {
        self.vault
            .members()
            .into_iter()
            .find(|m| m.email.eq_ignore_ascii_case(email))
            .unwrap_or_else(|| panic!("{email} is not in the vault"))
            .id
    }

    fn command(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(agent());
        let file = |n: &str| self.dir.join(n).to_str().unwrap().to_string();
        c.args([
            "--api-url",
            &self.vault.api_url(),
            "--identity-url",
            &self.vault.identity_url(),
            "--org",
            &self.vault.options().org_id,
            "--client-id",
            &self.admin.client_id,
            "--client-secret-file",
            &file("client-secret"),
            "--password-file",
            &file("password"),
            "--scim-url",
            &format!("http://{}/v2/{}", self.server.addr, self.org),
            "--scim-key-file",
            &file("scim-key"),
        ])
        .args(extra)
        .env_remove("SCIM_EDGE_CONFIRM_CLIENT_SECRET")
        .env_remove("SCIM_EDGE_CONFIRM_PASSWORD")
        .env_remove("SCIM_EDGE_CONFIRM_SCIM_KEY");
        c
    }

    /// One run of the agent: its exit code, its JSON lines, its standard error.
    fn run(&self, extra: &[&str]) -> (i32, Vec<Value>, String) {
        let out = self.command(extra).output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        let lines = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        (out.status.code().unwrap_or(-1), lines, stderr)
    }

    fn confirm_calls(&self) -> u64 {
        let st = self.vault.stats();
        st.count("POST /api/organizations/{id}/users/confirm")
            + st.count("POST /api/organizations/{id}/users/{id}/confirm")
    }
}

impl Drop for Org {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The decision line for an address.
fn line_for<'a>(lines: &'a [Value], email: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| {
            l["email"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
        .unwrap_or_else(|| panic!("no line for {email}: {lines:#?}"))
}

fn summary(lines: &[Value]) -> &Value {
    &lines.last().expect("a summary line")["summary"]
}

fn confirms_what_scim_edge_provisioned(mode: Mode, n: usize) {
    let o = Org::new(mode, n);
    let alice = o.user("alice@example.com");
    let bob = o.user("bob@example.com");
    o.sync();
    for email in ["alice@example.com", "bob@example.com"] {
        o.vault.register(email);
    }
    let mut extra = vec![];
    let words = std::env::var("SCIM_EDGE_EFF_WORDLIST").ok();
    if let Some(w) = &words {
        extra.extend(["--wordlist", w.as_str()]);
    }
    let (code, lines, stderr) = o.run(&extra);
    // The note quotes one pass's output.
    for l in &lines {
        eprintln!("{l}");
    }
    assert_eq!(code, 0, "{stderr}");
    for (email, id) in [("alice@example.com", &alice), ("bob@example.com", &bob)] {
        let l = line_for(&lines, email);
        assert_eq!(l["action"], "confirmed", "{l}");
        let mid = o.member_id(email);
        assert_eq!(l["memberId"], mid.as_str());
        assert_eq!(l["fingerprint"].as_str().unwrap().len(), 64);
        assert!(l["userId"].is_string(), "{l}");
        assert_eq!(
            l["phrase"].as_str().map(|p| p.split('-').count()),
            words.as_ref().map(|_| 5)
        );
        assert_eq!(o.vault.holds_org_key(&mid), Some(true), "{email}");
        assert_eq!(o.status_of(id), "confirmed", "{email}");
    }
    assert_eq!(summary(&lines)["confirmed"], 2);
    assert_eq!(summary(&lines)["failed"], 0);
    let st = json(&o.call("GET", "/_vault/status", None));
    assert_eq!(st["agent"]["confirmed"], 2, "{st}");
    assert_eq!(st["users"]["confirmed"], 2, "{st}");
    // The owner's membership is not scim-edge's: the report says so, and only that.
    assert_eq!(o.vault.stats().confirms, 2);
    // The agent and the component name a client version on every token request.
    assert_eq!(
        o.vault.stats().client_versions,
        [scim_edge::vault::net::CLIENT_VERSION.to_string()].into()
    );
    // A second pass finds nothing to do.
    let (code, lines, _) = o.run(&[]);
    assert_eq!(code, 0);
    assert_eq!(summary(&lines)["accepted"], 0);
    assert_eq!(o.vault.stats().confirms, 2);
    // One device for every login of this key.
    assert_eq!(o.vault.stats().devices.len(), 1);
}

#[test]
fn bitwarden_members_are_confirmed_end_to_end() {
    confirms_what_scim_edge_provisioned(Mode::Bitwarden, 1);
}

#[test]
fn vaultwarden_members_are_confirmed_end_to_end() {
    confirms_what_scim_edge_provisioned(Mode::Vaultwarden, 2);
}

/// Every accepted member the rules leave is reported with its reason and never
/// confirmed; members not Accepted get no line at all.
fn leaves_what_it_must(mode: Mode, n: usize) {
    let o = Org::new(mode, n);
    let alice = o.user("alice@example.com");
    let carol = o.user("carol@example.com");
    o.user("dave@example.com");
    o.user("erin@example.com");
    o.user("frank@partner.org");
    o.sync();
    for email in [
        "alice@example.com",
        "carol@example.com",
        "erin@example.com",
        "frank@partner.org",
    ] {
        o.vault.register(email);
    }
    // Carol leaves in the identity provider; the vault has not heard yet.
    o.deactivate(&carol);
    o.vault
        .set_status(&o.member_id("erin@example.com"), REVOKED);
    let boss = o.vault.seed_member("boss@example.com", OWNER, 0, None);
    let helper = o.vault.seed_member("helper@example.com", ADMIN, 0, None);
    let stranger = o.vault.seed_member("stranger@example.com", USER, 0, None);
    for email in [
        "boss@example.com",
        "helper@example.com",
        "stranger@example.com",
    ] {
        o.vault.register(email);
    }
    let (code, lines, stderr) = o.run(&["--allow-domain", "example.com"]);
    assert_eq!(code, 0, "{stderr}");
    let reason = |email: &str| {
        let l = line_for(&lines, email);
        assert_eq!(l["action"], "skipped", "{l}");
        l["reason"].as_str().unwrap().to_string()
    };
    assert!(reason("carol@example.com").contains("inactive"));
    assert!(reason("boss@example.com").contains("Owner"));
    assert!(reason("helper@example.com").contains("Admin"));
    assert!(reason("stranger@example.com").contains("no user"));
    assert!(reason("frank@partner.org").contains("allow-domain"));
    assert_eq!(line_for(&lines, "alice@example.com")["action"], "confirmed");
    for email in ["dave@example.com", "erin@example.com"] {
        assert!(
            !lines.iter().any(|l| l["email"] == email),
            "{email}: {lines:#?}"
        );
    }
    assert_eq!(o.vault.stats().confirms, 1);
    for (id, want) in [(&boss, 1), (&helper, 1), (&stranger, 1)] {
        let m = o.vault.members().into_iter().find(|m| m.id == *id).unwrap();
        assert_eq!(m.status, want, "{}", m.email);
        assert_eq!(o.vault.holds_org_key(id), None);
    }
    assert_eq!(o.status_of(&alice), "confirmed");
    assert_eq!(o.status_of(&carol), "accepted");
    let st = json(&o.call("GET", "/_vault/status", None));
    assert_eq!(st["agent"]["skipped"], 5, "{st}");
}

#[test]
fn bitwarden_refusals() {
    leaves_what_it_must(Mode::Bitwarden, 3);
}

#[test]
fn vaultwarden_refusals() {
    leaves_what_it_must(Mode::Vaultwarden, 4);
}

#[test]
fn a_dry_run_reads_and_sends_nothing() {
    let o = Org::new(Mode::Bitwarden, 5);
    let alice = o.user("alice@example.com");
    o.sync();
    o.vault.register("alice@example.com");
    let (code, lines, stderr) = o.run(&["--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        line_for(&lines, "alice@example.com")["action"],
        "would-confirm"
    );
    assert_eq!(o.confirm_calls(), 0);
    assert_eq!(o.vault.stats().confirms, 0);
    // Nothing reported either: scim-edge still shows what its own drains saw.
    assert_eq!(
        json(&o.call("GET", "/_vault/status", None))["agent"],
        Value::Null
    );
    assert_eq!(o.status_of(&alice), "invited");
}

#[test]
fn a_wrong_password_or_secret_exits_2_having_sent_nothing() {
    let o = Org::new(Mode::Vaultwarden, 6);
    o.user("alice@example.com");
    o.sync();
    o.vault.register("alice@example.com");
    std::fs::write(o.dir.join("password"), "not the password\n").unwrap();
    let (code, lines, stderr) = o.run(&[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(lines.is_empty(), "{lines:?}");
    assert!(stderr.contains("master password"), "{stderr}");
    assert!(!stderr.contains("not the password"), "{stderr}");
    std::fs::write(o.dir.join("password"), PASSWORD).unwrap();
    std::fs::write(o.dir.join("client-secret"), "wrong").unwrap();
    let (code, _, stderr) = o.run(&[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("personal API key"), "{stderr}");
    let st = o.vault.stats();
    assert_eq!(st.count("GET /api/organizations/{id}/users"), 0);
    assert_eq!(o.confirm_calls(), 0);
    assert_eq!(
        json(&o.call("GET", "/_vault/status", None))["agent"],
        Value::Null
    );
}

#[test]
fn a_refused_confirmation_fails_alone_and_exits_1() {
    let o = Org::new(Mode::Bitwarden, 7);
    o.user("alice@example.com");
    o.user("bob@example.com");
    o.sync();
    o.vault.register("alice@example.com");
    o.vault.register("bob@example.com");
    let bob = o.member_id("bob@example.com");
    o.vault
        .refuse_confirm(&bob, "User does not have two-step login enabled.");
    let (code, lines, stderr) = o.run(&[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(line_for(&lines, "alice@example.com")["action"], "confirmed");
    let l = line_for(&lines, "bob@example.com");
    assert_eq!(l["action"], "failed");
    assert!(l["reason"].as_str().unwrap().contains("two-step"), "{l}");
    assert_eq!(o.vault.holds_org_key(&bob), None);
    assert_eq!(summary(&lines)["failed"], 1);
    assert_eq!(
        json(&o.call("GET", "/_vault/status", None))["agent"]["failed"],
        1
    );
}

#[test]
fn every_logs_in_again_when_the_token_expires_and_stops_on_sigterm() {
    let o = Org::new(Mode::Bitwarden, 8);
    o.user("alice@example.com");
    o.user("bob@example.com");
    o.sync();
    o.vault.register("alice@example.com");
    let mut child = o
        .command(&["--every", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(serde_json::from_str(&line).unwrap_or(Value::Null));
        }
    });
    let wait_for = |pred: &dyn Fn(&Value) -> bool| loop {
        let l = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the agent went quiet");
        if pred(&l) {
            return l;
        }
    };
    wait_for(&|l| l["email"] == "alice@example.com" && l["action"] == "confirmed");
    let logins = o.vault.stats().tokens_issued;
    // The vault forgets every token; the next pass logs in again and goes on.
    o.vault.expire_tokens();
    o.vault.register("bob@example.com");
    wait_for(&|l| l["email"] == "bob@example.com" && l["action"] == "confirmed");
    assert!(o.vault.stats().tokens_issued > logins);
    assert_eq!(o.vault.stats().devices.len(), 1);
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(
        o.vault.holds_org_key(&o.member_id("bob@example.com")),
        Some(true)
    );
}
