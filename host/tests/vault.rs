//! Provisioning through the built component: the test host serves it with outbound HTTP
//! granted to the fake vaults on 127.0.0.1 (as `allowed_outbound_hosts` grants
//! `{{ vault_origin }}`), and `_vault/sync` drains as a cron would. Every test ends by
//! comparing the vault with the SCIM state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../tests/common/fixtures.rs"]
mod fixtures;
#[path = "../../tests/common/runscope.rs"]
mod runscope;
#[path = "../../tests/vault/support.rs"]
mod support;

use common::{json, key, org_call, org_entry, profile, vault_server, wasm};
use scim_edge_fakevault::{FakeVault, Fault, Mode, REVOKED};
use scim_edge_host::client::request;
use scim_edge_host::{serve, Backend, Host, Running};
use serde_json::{json as j, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use support::{start_vault, vault_config};

const EXT: &str = "urn:scim-edge:schemas:extension:vault:2.0:User";

fn org(n: usize) -> String {
    format!("0000000{}-0000-4000-8000-{n:012x}", n % 10)
}

/// The organization's entry with its vault: the rate matches the fake vault's clock.
fn vault_entry(org: &str, v: &FakeVault, policy: &str, extra: Value) -> String {
    let cfg = vault_config(v, &[&j!({"timeout_ms": 1000}), &extra]);
    let base = org_entry(org, policy);
    format!("{}, \"vault\": {cfg}}}", base.trim_end_matches('}'))
}

/// Syncs until the outbox is empty; the last report. The drains after earlier requests
/// finish first, so the counts a test asserts are not shared with them.
fn drain(s: &Running, org: &str) -> Value {
    for _ in 0..60 {
        assert!(s.host.wait_idle(std::time::Duration::from_secs(60)));
        let r = org_call(s, org, "POST", "/_vault/sync", None);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v = json(&r);
        if v["pending"] == 0 {
            return v;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!(
        "{org}: the outbox never emptied: {}",
        json(&org_call(s, org, "GET", "/_vault/status", None))
    );
}

fn user(name: &str) -> Value {
    j!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "externalId": format!("okta-{name}"), "emails": [{"primary": true, "value": name}], "active": true})
}

/// The vault holds exactly the organization's SCIM state: every user a member once
/// (revoked when inactive), every group with its members.
fn assert_mirrors(s: &Running, org: &str, v: &FakeVault) {
    let users = json(&org_call(s, org, "GET", "/Users?count=1000", None));
    let members = v.members();
    let mut seen = HashSet::new();
    let mut vid = HashMap::new();
    for u in users["Resources"].as_array().unwrap() {
        let email = u["emails"][0]["value"]
            .as_str()
            .or(u["userName"].as_str())
            .unwrap()
            .to_lowercase();
        let active = u["active"].as_bool().unwrap_or(true);
        let Some(m) = members.iter().find(|m| m.email.to_lowercase() == email) else {
            // A user deactivated before its first delivery is never invited.
            assert!(!active, "{org}: {email} is not in the vault");
            continue;
        };
        assert!(seen.insert(m.id.clone()));
        assert_eq!(
            m.status == REVOKED,
            !active,
            "{org}: {email} active={active}, vault status {}",
            m.status
        );
        assert_ne!(u[EXT]["status"], "error", "{u}");
        vid.insert(u["id"].as_str().unwrap().to_string(), m.id.clone());
    }
    // Every body went with its length, every request said who sent it.
    let st = v.stats();
    assert_eq!(st.chunked, 0, "{org}: chunked request bodies");
    assert!(
        st.user_agents.iter().all(|a| a.starts_with("scim-edge/")),
        "{org}: {:?}",
        st.user_agents
    );
    assert!(
        v.stats().max_invites() <= 1,
        "{org}: someone was invited twice: {:?}",
        v.stats().invites
    );
    if v.options().mode == Mode::Vaultwarden {
        return;
    }
    let groups = json(&org_call(s, org, "GET", "/Groups?count=1000", None));
    for g in groups["Resources"].as_array().unwrap() {
        let ext = g["externalId"].as_str().or(g["id"].as_str()).unwrap();
        let vg = v
            .groups()
            .into_iter()
            .find(|x| x.external_id.as_deref() == Some(ext))
            .unwrap_or_else(|| panic!("{org}: group {ext} is not in the vault"));
        assert_eq!(vg.name, g["displayName"].as_str().unwrap());
        let mut want: Vec<String> = g["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| vid.get(m["value"].as_str().unwrap()).cloned())
            .collect();
        let mut got = vg.member_ids.clone();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{org}: members of {ext}");
    }
}

#[test]
fn okta_fixtures_and_spec_test_reach_the_vault() {
    okta_flows(Mode::Bitwarden, 0);
}

#[test]
fn okta_fixtures_and_spec_test_reach_vaultwarden() {
    okta_flows(Mode::Vaultwarden, 20);
}

/// Every Okta fixture and the spec test, each against its own vault, drained and
/// mirrored; `first` numbers the organizations.
fn okta_flows(mode: Mode, first: usize) {
    let files = fixtures::files();
    let vaults: Vec<FakeVault> = (0..=files.len()).map(|_| start_vault(mode)).collect();
    let policy_of = |f: &std::path::Path| {
        let fx: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        fx["org"].as_str().unwrap_or("strict").to_string()
    };
    let mut entries: Vec<String> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            vault_entry(
                &org(first + i + 1),
                &vaults[i],
                &policy_of(f),
                j!({"groups": true}),
            )
        })
        .collect();
    let spec = org(first + files.len() + 1);
    entries.push(vault_entry(
        &spec,
        &vaults[files.len()],
        "strict",
        j!({"groups": true}),
    ));
    let s = vault_server(&entries);
    for (i, f) in files.iter().enumerate() {
        let o = org(first + i + 1);
        fixtures::replay(f, &|_| o.clone(), &mut |m, p, h, b| {
            let hs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let mut all = hs.clone();
            let auth = format!("Bearer {}", key(&o));
            if !hs
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            {
                all.push(("authorization", &auth));
            }
            let r = request(s.addr, m, p, &all, &b).unwrap();
            (r.status, r.headers, r.body)
        });
        drain(&s, &o);
        assert_mirrors(&s, &o, &vaults[i]);
    }
    let existing = j!({"userName": "existing@atko.com", "name": {"givenName": "Ex", "familyName": "Isting"}, "emails": [{"primary": true, "value": "existing@atko.com"}], "active": true});
    assert_eq!(
        org_call(&s, &spec, "POST", "/Users", Some(existing)).status,
        201
    );
    runscope::assert_passes_over_http(
        "vault::okta_spec_test",
        &format!("/scim/v2/{spec}"),
        &format!("Bearer {}", key(&spec)),
        11,
        &mut |m, t, h, b| {
            let r = request(s.addr, m, t, h, b).unwrap();
            (r.status, r.body)
        },
    );
    drain(&s, &spec);
    assert_mirrors(&s, &spec, &vaults[files.len()]);
}

#[test]
fn a_thousand_users_arrive_once_below_the_vaults_limit() {
    thousand(Mode::Bitwarden, 100);
}

#[test]
fn a_thousand_users_reach_vaultwarden_in_whole_imports() {
    thousand(Mode::Vaultwarden, 110);
}

fn thousand(mode: Mode, n: usize) {
    let v = start_vault(mode);
    let o = org(n);
    // Vaultwarden's imports carry the whole organization: at most one a second here.
    let s = vault_server(&[vault_entry(&o, &v, "strict", j!({"debounce_ms": 1000}))]);
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (s, o) = (&s, &o);
            scope.spawn(move || {
                for i in (t..1000).step_by(4) {
                    let r = org_call(
                        s,
                        o,
                        "POST",
                        "/Users",
                        Some(user(&format!("user{i}@example.com"))),
                    );
                    assert_eq!(r.status, 201);
                }
            });
        }
    });
    // Without atomics concurrent writers can lose a listing or outbox entry; the edge's
    // cron repairs the listings, and a reconcile marks what the outbox lost.
    assert_eq!(org_call(&s, &o, "POST", "/_repair", None).status, 200);
    assert_eq!(
        org_call(&s, &o, "POST", "/_vault/sync?reconcile=1", None).status,
        200
    );
    let r = drain(&s, &o);
    assert_eq!(r["parked"], 0, "{r}");
    assert_eq!(v.members().len(), 1000);
    let st = v.stats();
    assert_eq!(st.max_invites(), 1);
    // The limiter keeps below the vault's limit; a 429 is rare, never a storm.
    assert!(st.rate_limited <= 5, "{} answers of 429", st.rate_limited);
    assert_mirrors(&s, &o, &v);
}

#[test]
fn a_vault_down_for_a_while_loses_nothing() {
    down(Mode::Bitwarden, 101);
}

#[test]
fn vaultwarden_down_for_a_while_loses_nothing() {
    down(Mode::Vaultwarden, 111);
}

fn down(mode: Mode, n: usize) {
    let v = start_vault(mode);
    let o = org(n);
    let s = vault_server(&[vault_entry(&o, &v, "strict", j!({}))]);
    v.set_down(true);
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            json(&org_call(
                &s,
                &o,
                "POST",
                "/Users",
                Some(user(&format!("d{i}@example.com"))),
            ))["id"]
                .clone(),
        );
    }
    let g = org_call(
        &s,
        &o,
        "POST",
        "/Groups",
        Some(
            j!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Down", "members": ids.iter().map(|i| j!({"value": i})).collect::<Vec<_>>()}),
        ),
    );
    assert_eq!(g.status, 201);
    let r = json(&org_call(&s, &o, "POST", "/_vault/sync", None));
    assert!(r["pending"].as_u64().unwrap() >= 1, "{r}");
    assert!(!r["errors"].as_array().unwrap().is_empty());
    let st = json(&org_call(&s, &o, "GET", "/_vault/status", None));
    assert!(st["backlog"].as_u64().unwrap() >= 1, "{st}");
    assert!(st["lastError"].is_string(), "{st}");
    v.set_down(false);
    drain(&s, &o);
    assert_mirrors(&s, &o, &v);
}

#[test]
fn concurrent_syncs_and_a_drain_that_dies_invite_no_one_twice() {
    let v = start_vault(Mode::Bitwarden);
    let o = org(102);
    let s = vault_server(&[vault_entry(
        &o,
        &v,
        "strict",
        j!({"after_request_calls": 0}),
    )]);
    for i in 0..60 {
        assert_eq!(
            org_call(
                &s,
                &o,
                "POST",
                "/Users",
                Some(user(&format!("c{i}@example.com")))
            )
            .status,
            201
        );
    }
    // The vault invites, then the answer is lost: the drain never learns the member id.
    v.fault(Fault::Lost(3));
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| org_call(&s, &o, "POST", "/_vault/sync", None));
        }
    });
    // A second claim on those entries waits out the lease, then looks them up first.
    drain_after_lease(&s, &o);
    assert_eq!(v.members().len(), 60);
    assert_eq!(v.stats().max_invites(), 1, "{:?}", v.stats().invites);
    assert_mirrors(&s, &o, &v);
}

/// Drains, letting claims of entries whose drain died expire (the lease is a minute;
/// reconcile lists the vault and links what the dead drain created).
fn drain_after_lease(s: &Running, o: &str) {
    let r = json(&org_call(s, o, "POST", "/_vault/sync?reconcile=1", None));
    if r["pending"] != 0 {
        drain(s, o);
    }
}

#[test]
fn vaultwarden_gets_the_organization_by_import() {
    let (v, o, s) = one_org(Mode::Vaultwarden, 103, "strict", j!({"groups": true}));
    let a = json(&org_call(
        &s,
        &o,
        "POST",
        "/Users",
        Some(user("ann@example.com")),
    ))["id"]
        .clone();
    let b = json(&org_call(
        &s,
        &o,
        "POST",
        "/Users",
        Some(user("bob@example.com")),
    ))["id"]
        .clone();
    org_call(
        &s,
        &o,
        "POST",
        "/Groups",
        Some(
            j!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Eng", "members": [{"value": a}, {"value": b}]}),
        ),
    );
    drain(&s, &o);
    assert_mirrors(&s, &o, &v);
    let imports = v.stats().imports;
    let patch = j!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {"active": false}}]});
    org_call(
        &s,
        &o,
        "PATCH",
        &format!("/Users/{}", b.as_str().unwrap()),
        Some(patch),
    );
    drain(&s, &o);
    assert_mirrors(&s, &o, &v);
    assert_eq!(v.stats().imports, imports + 1);
    // Nothing changed: no import.
    drain(&s, &o);
    assert_eq!(v.stats().imports, imports + 1);
    let g = &v.groups()[0];
    assert_eq!(g.member_ids.len(), 2);
    // Two syncs at once: the import is whole state, so neither invites twice.
    // Enough users that the import's body runs over many 4 KiB stream writes.
    for i in 0..80 {
        org_call(
            &s,
            &o,
            "POST",
            "/Users",
            Some(user(&format!("w{i}@example.com"))),
        );
    }
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| org_call(&s, &o, "POST", "/_vault/sync", None));
        }
    });
    drain(&s, &o);
    assert_mirrors(&s, &o, &v);
}

#[test]
fn without_a_vault_nothing_goes_out() {
    let o = org(104);
    let vars = HashMap::from([(
        "organizations".to_string(),
        format!("{{{}}}", org_entry(&o, "strict")),
    )]);
    let host = Host::with_profile(wasm(), vars, Arc::new(Backend::default()), profile()).unwrap();
    let s = serve(host, "127.0.0.1:0".parse().unwrap(), 2).unwrap();
    assert_eq!(
        org_call(&s, &o, "POST", "/Users", Some(user("x@example.com"))).status,
        201
    );
    let r = org_call(&s, &o, "POST", "/_vault/sync", None);
    assert_eq!(r.status, 404);
    assert_eq!(
        s.host.outbound_counts().sent + s.host.outbound_counts().refused,
        0
    );
}

#[test]
fn a_vault_origin_not_granted_is_refused_by_the_host() {
    let v = start_vault(Mode::Bitwarden);
    let o = org(105);
    let vars = HashMap::from([
        (
            "organizations".to_string(),
            format!("{{{}}}", vault_entry(&o, &v, "strict", j!({}))),
        ),
        (
            "vault_origin".to_string(),
            "https://vault.invalid".to_string(),
        ),
    ]);
    let host = Host::with_profile(wasm(), vars, Arc::new(Backend::default()), profile())
        .unwrap()
        .allow_outbound(&["{{ vault_origin }}"])
        .unwrap();
    let s = serve(host, "127.0.0.1:0".parse().unwrap(), 2).unwrap();
    org_call(&s, &o, "POST", "/Users", Some(user("x@example.com")));
    let r = json(&org_call(&s, &o, "POST", "/_vault/sync", None));
    assert!(
        r["errors"].to_string().contains("allowed_outbound_hosts"),
        "{r}"
    );
    assert!(s.host.outbound_counts().refused > 0);
    assert_eq!(v.stats().requests.values().sum::<u64>(), 0);
    assert!(!r.to_string().contains(&v.options().client_secret));
}

/// A fake vault, organization `n` with `policy` provisioned into it with `extra`
/// settings, and the component serving it.
fn one_org(mode: Mode, n: usize, policy: &str, extra: Value) -> (FakeVault, String, Running) {
    let v = start_vault(mode);
    let o = org(n);
    let s = vault_server(&[vault_entry(&o, &v, policy, extra)]);
    (v, o, s)
}

/// A user under policy `off` with `externalId` `okta-{tag}` and this address.
fn user_at(tag: &str, address: &str) -> Value {
    j!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": address, "externalId": format!("okta-{tag}"), "emails": [{"primary": true, "value": address}], "active": true})
}

fn post(s: &Running, o: &str, path: &str, body: Value) -> String {
    let r = org_call(s, o, "POST", path, Some(body));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    json(&r)["id"].as_str().unwrap().to_string()
}

fn group_of(name: &str, ids: &[&String]) -> Value {
    j!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": ids.iter().map(|i| j!({"value": i})).collect::<Vec<_>>()})
}

/// The identity provider changes a user's address (policy `off` allows it).
fn readdress(s: &Running, o: &str, id: &str, tag: &str, address: &str) {
    let r = org_call(
        s,
        o,
        "PUT",
        &format!("/Users/{id}"),
        Some(user_at(tag, address)),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

fn set_active(s: &Running, o: &str, id: &str, on: bool) {
    let body = j!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {"active": on}}]});
    let r = org_call(s, o, "PATCH", &format!("/Users/{id}"), Some(body));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

/// The vault extension of a SCIM user.
fn vault_status(s: &Running, o: &str, id: &str) -> Value {
    json(&org_call(s, o, "GET", &format!("/Users/{id}"), None))[EXT].clone()
}

/// The parked entries `_vault/status` lists, by entry.
fn parked(s: &Running, o: &str) -> HashMap<String, String> {
    let st = json(&org_call(s, o, "GET", "/_vault/status", None));
    st["parked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["entry"].as_str().unwrap().to_string(),
                p["error"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The vault's group with this externalId.
fn vault_group(v: &FakeVault, ext: &str) -> scim_edge_fakevault::Group {
    v.groups()
        .into_iter()
        .find(|g| g.external_id.as_deref() == Some(ext))
        .unwrap_or_else(|| panic!("group {ext} is not in the vault"))
}

/// The emails of a vault group's members.
fn emails_in(v: &FakeVault, ext: &str) -> Vec<String> {
    let g = vault_group(v, ext);
    let mut e: Vec<String> = v
        .members()
        .into_iter()
        .filter(|m| g.member_ids.contains(&m.id))
        .map(|m| m.email)
        .collect();
    e.sort();
    e
}

/// How a Vaultwarden vault comes to refuse one member of an import.
#[derive(Clone, Copy, Debug)]
enum Bad {
    /// An address both checks refuse: set aside before sending.
    NotAnEmail,
    /// Punycode only the vault's URL parser refuses: the vault's message names it.
    Punycode,
    /// The mail server refuses the invitation: the vault's message names no one.
    Mail,
}

#[test]
fn one_refused_address_never_blocks_a_vaultwarden_import() {
    let cases = [
        (Bad::NotAnEmail, 0),
        (Bad::Punycode, 0),
        (Bad::Punycode, 2),
        (Bad::Punycode, 4),
        (Bad::Mail, 0),
        (Bad::Mail, 2),
        (Bad::Mail, 4),
    ];
    let vaults: Vec<FakeVault> = cases
        .iter()
        .map(|_| start_vault(Mode::Vaultwarden))
        .collect();
    let orgs: Vec<String> = (0..cases.len()).map(|i| org(120 + i)).collect();
    let entries: Vec<String> = orgs
        .iter()
        .zip(&vaults)
        .map(|(o, v)| vault_entry(o, v, "off", j!({"groups": true})))
        .collect();
    let s = vault_server(&entries);
    for ((o, v), (bad, at)) in orgs.iter().zip(&vaults).zip(cases) {
        let case = format!("{bad:?} at {at}");
        let address = |i: usize| match bad {
            _ if i != at => format!("u{i}@example.com"),
            Bad::NotAnEmail => "not an email".to_string(),
            Bad::Punycode => format!("u{i}@xn--a.com"),
            Bad::Mail => format!("u{i}@example.com"),
        };
        if let Bad::Mail = bad {
            v.refuse_mail(&address(at));
        }
        // Created one by one, each drained: the bad one blocks nothing that follows.
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(post(
                &s,
                o,
                "/Users",
                user_at(&format!("u{i}"), &address(i)),
            ));
            drain(&s, o);
        }
        let refs: Vec<&String> = ids.iter().collect();
        post(&s, o, "/Groups", group_of("All", &refs));
        let r = drain(&s, o);
        assert_eq!(r["pending"], 0, "{case}: {r}");
        let members = v.members();
        assert_eq!(members.len(), 4, "{case}: {members:?}");
        let bad_id = &ids[at];
        assert!(
            members.iter().all(|m| m.email != address(at)),
            "{case}: the refused address is a member"
        );
        let ext = vault_status(&s, o, bad_id);
        assert_eq!(ext["status"], "error", "{case}: {ext}");
        let why = match bad {
            Bad::NotAnEmail => "the vault would refuse this address",
            Bad::Punycode => "is not a valid email address",
            Bad::Mail => "Error sending invite",
        };
        assert!(
            ext["error"].as_str().unwrap().contains(why),
            "{case}: {ext}"
        );
        let p = parked(&s, o);
        assert!(p[&format!("u:{bad_id}")].contains(why), "{case}: {p:?}");
        // Every group goes out, without that member.
        let group = json(&org_call(&s, o, "GET", "/Groups", None))["Resources"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let mut want: Vec<String> = (0..5).filter(|i| *i != at).map(address).collect();
        want.sort();
        assert_eq!(emails_in(v, &group), want, "{case}");
        // The identity provider fixes the address: the user arrives, and joins the group.
        v.clear_mail_refusals();
        let fixed = format!("fixed{at}@example.com");
        readdress(&s, o, bad_id, &format!("u{at}"), &fixed);
        drain(&s, o);
        assert_eq!(vault_status(&s, o, bad_id)["status"], "invited", "{case}");
        assert!(parked(&s, o).is_empty(), "{case}");
        assert_eq!(v.members().len(), 5, "{case}");
        assert_eq!(emails_in(v, &group).len(), 5, "{case}");
        assert_mirrors(&s, o, v);
    }
}

#[test]
fn a_vault_refused_member_is_tried_again_on_a_reconcile() {
    let (v, o, s) = one_org(Mode::Vaultwarden, 130, "off", j!({"retry_ms": 600_000}));
    v.refuse_mail("late@example.com");
    let late = post(&s, &o, "/Users", user_at("late", "late@example.com"));
    post(&s, &o, "/Users", user_at("early", "early@example.com"));
    drain(&s, &o);
    assert_eq!(vault_status(&s, &o, &late)["status"], "error");
    assert_eq!(v.members().len(), 1);
    // The mail server is back; the backoff is long, so a plain sync leaves it aside.
    v.clear_mail_refusals();
    org_call(
        &s,
        &o,
        "POST",
        "/Users",
        Some(user_at("third", "third@example.com")),
    );
    drain(&s, &o);
    assert_eq!(v.members().len(), 2);
    let r = json(&org_call(&s, &o, "POST", "/_vault/sync?reconcile=1", None));
    assert_eq!(r["parked"], 0, "{r}");
    assert_eq!(vault_status(&s, &o, &late)["status"], "invited");
    assert_eq!(v.members().len(), 3);
    assert_mirrors(&s, &o, &v);
}

#[test]
fn one_refused_address_never_blocks_bitwarden() {
    let (v, o, s) = one_org(Mode::Bitwarden, 131, "off", j!({}));
    let a = post(&s, &o, "/Users", user_at("a", "a@example.com"));
    let bad = post(&s, &o, "/Users", user_at("bad", "bad@localhost"));
    let c = post(&s, &o, "/Users", user_at("c", "c@example.com"));
    let g = post(&s, &o, "/Groups", group_of("All", &[&a, &bad, &c]));
    drain(&s, &o);
    // Set aside before sending: no invitation is tried for it.
    assert_eq!(v.stats().count("POST /api/public/members"), 2);
    let ext = vault_status(&s, &o, &bad);
    assert_eq!(ext["status"], "error", "{ext}");
    assert!(
        ext["error"].as_str().unwrap().contains("would refuse"),
        "{ext}"
    );
    assert!(parked(&s, &o).contains_key(&format!("u:{bad}")));
    assert_eq!(emails_in(&v, &g), ["a@example.com", "c@example.com"]);
    readdress(&s, &o, &bad, "bad", "bad@example.com");
    drain(&s, &o);
    assert_eq!(vault_status(&s, &o, &bad)["status"], "invited");
    assert!(parked(&s, &o).is_empty());
    assert_eq!(emails_in(&v, &g).len(), 3);
    assert_mirrors(&s, &o, &v);
}

#[test]
fn a_replaced_address_keeps_no_access_in_vaultwarden() {
    let (v, o, s) = one_org(Mode::Vaultwarden, 132, "off", j!({"groups": true}));
    let id = post(&s, &o, "/Users", user_at("ann", "ann@example.com"));
    let other = post(&s, &o, "/Users", user_at("bob", "bob@example.com"));
    let g = post(&s, &o, "/Groups", group_of("Eng", &[&id, &other]));
    drain(&s, &o);
    readdress(&s, &o, &id, "ann", "ann.lee@example.com");
    drain(&s, &o);
    // Vaultwarden keys members by email: the new address is a second member; the old
    // one is revoked and no longer carries the user's externalId, so the group names
    // the new one.
    let old = v
        .members()
        .into_iter()
        .find(|m| m.email == "ann@example.com")
        .unwrap();
    let new = v
        .members()
        .into_iter()
        .find(|m| m.email == "ann.lee@example.com")
        .unwrap();
    assert_eq!(old.status, REVOKED);
    assert_eq!(old.external_id, None);
    assert_ne!(new.status, REVOKED);
    assert_eq!(new.external_id.as_deref(), Some("okta-ann"));
    assert_eq!(
        emails_in(&v, &g),
        ["ann.lee@example.com", "bob@example.com"]
    );
    // Deactivated: every address it had is revoked; deleted: they stay so.
    set_active(&s, &o, &id, false);
    drain(&s, &o);
    let revoked = |v: &FakeVault| {
        v.members()
            .iter()
            .filter(|m| m.email.starts_with("ann"))
            .all(|m| m.status == REVOKED)
    };
    assert!(revoked(&v), "{:?}", v.members());
    assert_eq!(
        org_call(&s, &o, "DELETE", &format!("/Users/{id}"), None).status,
        204
    );
    drain(&s, &o);
    org_call(
        &s,
        &o,
        "POST",
        "/Users",
        Some(user_at("cy", "cy@example.com")),
    );
    drain(&s, &o);
    assert!(revoked(&v), "{:?}", v.members());
    assert_mirrors(&s, &o, &v);
}

#[test]
fn a_replaced_address_keeps_its_member_in_bitwarden() {
    let (v, o, s) = one_org(Mode::Bitwarden, 133, "off", j!({}));
    let id = post(&s, &o, "/Users", user_at("ann", "ann@example.com"));
    drain(&s, &o);
    let before = v.members();
    readdress(&s, &o, &id, "ann", "ann.lee@example.com");
    drain(&s, &o);
    // The Public API cannot change a member's email: the member keeps its id and the
    // address it was invited with, and no one else is invited.
    assert_eq!(v.members(), before);
    assert_eq!(v.stats().max_invites(), 1);
    set_active(&s, &o, &id, false);
    drain(&s, &o);
    let m = &v.members()[0];
    assert_eq!((m.id.as_str(), m.status), (before[0].id.as_str(), REVOKED));
    assert_eq!(
        org_call(&s, &o, "DELETE", &format!("/Users/{id}"), None).status,
        204
    );
    drain(&s, &o);
    assert_eq!(v.members()[0].status, REVOKED);
}

#[test]
fn a_group_deleted_in_scim_grants_nothing_in_vaultwarden() {
    let (v, o, s) = one_org(Mode::Vaultwarden, 134, "strict", j!({"groups": true}));
    let ids: Vec<String> = (0..3)
        .map(|i| post(&s, &o, "/Users", user(&format!("g{i}@example.com"))))
        .collect();
    let refs: Vec<&String> = ids.iter().collect();
    let g = post(&s, &o, "/Groups", group_of("Gone", &refs));
    let kept = post(&s, &o, "/Groups", group_of("Kept", &refs[..1]));
    drain(&s, &o);
    assert_eq!(vault_group(&v, &g).member_ids.len(), 3);
    assert_eq!(
        org_call(&s, &o, "DELETE", &format!("/Groups/{g}"), None).status,
        204
    );
    drain(&s, &o);
    // Imports never delete a group: it stays, with no members, for an administrator.
    assert!(vault_group(&v, &g).member_ids.is_empty());
    assert_eq!(vault_group(&v, &kept).member_ids.len(), 1);
    // Later imports leave it out.
    org_call(&s, &o, "POST", "/Users", Some(user("late@example.com")));
    drain(&s, &o);
    let last = v.last_import().unwrap();
    assert!(!last.to_string().contains(&g), "{last}");
    assert!(vault_group(&v, &g).member_ids.is_empty());
    assert_mirrors(&s, &o, &v);
}
