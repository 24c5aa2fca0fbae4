//! A vault's answers, whatever they are, through a real drain over the in-memory store:
//! the token answer, member and group lists, created members and groups, errors in each
//! vault's shape, `Retry-After`, Vaultwarden's import refusals, timeouts and broken
//! connections.
//!
//! The input is the vault's answers in the order the drain asks, separated by lines `@@`;
//! each starts with a line `STATUS` (optionally `|name: value` headers after it), or
//! `!timeout` or `!fail`, and the rest is the body. When they run out, every call fails.
//! The first byte picks the vault (Bitwarden or Vaultwarden) and whether groups are
//! pushed. Users and a group are written through the router, each write followed by the
//! drain a host runs after its answer, then `_vault/sync`, a reconcile and
//! `_vault/status` are asked. What must hold:
//! - no panic, and every answer of the router a SCIM response (JSON error bodies);
//! - the drain sends only to the configured vault's two origins, with the configured
//!   timeout, and never waits past its budget (whatever `Retry-After` says);
//! - what the drain reports and keeps is bounded: every text in the sync report and
//!   the status is short (the vault's words are shortened), every error a non-empty text;
//! - the drain stops: a sync makes at most as many calls as its budget allows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_edge::auth::KeyHash;
use scim_edge::config::Config;
use scim_edge::http::{Request, Response};
use scim_edge::ids::{ManualClock, SeqIds};
use scim_edge::router::Router;
use scim_edge::store::MemStore;
use scim_edge::vault::net::{NetError, OutRequest, OutResponse, Outbound};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};

const ORG: &str = "3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d";
const API: &str = "http://vault.test/api";
const IDENTITY: &str = "http://vault.test/identity";
const TIMEOUT_MS: i64 = 1_000;
const BUDGET_MS: i64 = 500;
/// What one vault call costs on the fuzz clock.
const CALL_MS: i64 = 7;
/// The longest text the report or the status may hold.
const MAX_TEXT: usize = 2_000;

/// Answers from the input, one per call; the clock moves with every call and pause.
struct Answers<'a> {
    chunks: RefCell<std::vec::IntoIter<&'a str>>,
    clock: &'a ManualClock,
    calls: Cell<usize>,
}

fn answer(chunk: &str) -> Result<OutResponse, NetError> {
    let (first, body) = chunk.split_once('\n').unwrap_or((chunk, ""));
    let mut parts = first.split('|');
    let status = match parts.next().map(str::trim) {
        Some("!timeout") => return Err(NetError::Timeout),
        // The host's transport error texts are its own, never the vault's bytes.
        Some(s) => s
            .parse::<u16>()
            .map_err(|_| NetError::Failed("connection reset".into()))?,
        None => return Err(NetError::Failed("connection reset".into())),
    };
    let headers = parts
        .filter_map(|h| h.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(OutResponse {
        status,
        headers,
        body: body.as_bytes().to_vec(),
    })
}

impl Outbound for Answers<'_> {
    fn send(&self, req: OutRequest) -> Result<OutResponse, NetError> {
        assert!(
            req.url.starts_with(&format!("{API}/"))
                || req.url == format!("{IDENTITY}/connect/token"),
            "sent to {}",
            req.url
        );
        assert_eq!(req.timeout_ms, TIMEOUT_MS);
        self.calls.set(self.calls.get() + 1);
        self.clock.advance(CALL_MS);
        match self.chunks.borrow_mut().next() {
            Some(chunk) => answer(chunk),
            None => Err(NetError::Failed("no more answers".into())),
        }
    }

    fn pause(&self, ms: i64) {
        assert!((0..=BUDGET_MS).contains(&ms), "paused {ms} ms");
        self.clock.advance(ms.max(1));
    }
}

/// Every string in `v` is short; `errors` holds non-empty texts.
fn check_texts(v: &Value) {
    match v {
        Value::String(s) => assert!(s.len() <= MAX_TEXT, "a text of {} bytes", s.len()),
        Value::Array(a) => a.iter().for_each(check_texts),
        Value::Object(o) => {
            if let Some(Value::Array(errors)) = o.get("errors") {
                for e in errors {
                    assert!(e.as_str().is_some_and(|t| !t.trim().is_empty()), "{e}");
                }
            }
            o.values().for_each(check_texts);
        }
        _ => {}
    }
}

fn check_scim(r: &Response) -> Value {
    assert!((200..600).contains(&r.status), "{}", r.status);
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    if r.status >= 400 {
        assert_eq!(v["status"], r.status.to_string(), "{v}");
    }
    v
}

fn config(flags: u8) -> Option<Config> {
    let vaultwarden = flags & 1 == 1;
    let cfg = json!({"organizations": {ORG: {
        "keys": [KeyHash::of("k").to_hex()],
        "vault": {
            "kind": if vaultwarden { "vaultwarden" } else { "bitwarden" },
            "api_url": API, "identity_url": IDENTITY,
            "client_id": "organization.9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
            "client_secret": "fuzz-secret",
            "groups": flags & 2 == 2,
            "timeout_ms": TIMEOUT_MS, "sync_budget_ms": BUDGET_MS,
            "retry_ms": 50, "debounce_ms": 1, "max_attempts": 2,
            "rate": {"second_ms": 10, "window_ms": 600}
        }
    }}});
    Config::from_json(&cfg.to_string()).ok()
}

fn user(n: usize) -> Value {
    let email = format!("u{n}@example.com");
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": email,
        "externalId": format!("ext{n}"), "emails": [{"value": email, "primary": true}], "active": true})
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let chunks: Vec<&str> = text.split("\n@@\n").collect();
    let Some(config) = config(flags) else {
        panic!("the fixed configuration is refused");
    };
    let (store, clock, ids) = (
        MemStore::new(),
        ManualClock::at(1_700_000_000_000),
        SeqIds::default(),
    );
    let out = Answers {
        chunks: RefCell::new(chunks.into_iter()),
        clock: &clock,
        calls: Cell::new(0),
    };
    let router = Router::new(&config, &store, &clock, &ids).with_outbound(&out);
    let send = |method: &str, path: &str, body: Option<Value>| {
        let mut req =
            Request::new(method, &format!("/v2/{ORG}{path}")).header("authorization", "Bearer k");
        if let Some(b) = body {
            req = req.header("content-type", "application/scim+json").json(&b);
        }
        let before = out.calls.get();
        let r = router.handle(&req);
        let v = check_scim(&r);
        let summary = Response {
            status: r.status,
            ..Response::default()
        };
        if let Some(Err(e)) = router.after(&req, &summary) {
            assert!(!e.trim().is_empty());
        }
        // The budget bounds the calls of one request and the drain after it.
        let made = out.calls.get() - before;
        assert!(made as i64 <= 2 * (BUDGET_MS / CALL_MS) + 8, "{made} calls");
        v
    };
    let mut ids_made = Vec::new();
    for n in 0..3 {
        let v = send("POST", "/Users", Some(user(n)));
        ids_made.extend(v["id"].as_str().map(str::to_string));
    }
    if let Some(id) = ids_made.first() {
        let off = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": false}}]});
        send("PATCH", &format!("/Users/{id}"), Some(off));
    }
    let members: Vec<Value> = ids_made
        .iter()
        .skip(1)
        .map(|id| json!({"value": id}))
        .collect();
    send(
        "POST",
        "/Groups",
        Some(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Ops", "externalId": "g1", "members": members}),
        ),
    );
    clock.advance(100);
    check_texts(&send("POST", "/_vault/sync", None));
    clock.advance(100);
    check_texts(&send("POST", "/_vault/sync?reconcile=1", None));
    check_texts(&send("GET", "/_vault/status", None));
});
