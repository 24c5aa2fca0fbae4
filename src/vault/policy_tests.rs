//! The drain's policy against an in-memory vault double, on a clock that moves only when
//! told: backoff and parking of a refused member, a create claim after an answer that was
//! lost, a member removed by hand invited again. The double answers by route template,
//! as `Api` names them, and records every call.

use super::net::{NetError, OutRequest, OutResponse, Outbound};
use super::{drain, Env, Trigger};
use crate::auth::KeyHash;
use crate::config::Config;
use crate::http::Request;
use crate::ids::{ManualClock, OrgId, SeqIds};
use crate::router::Router;
use crate::service::Limits;
use crate::store::MemStore;
use serde_json::{json, Value};
use std::cell::RefCell;

const ORG: &str = "5b2c1d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e";
const KEY: &str = "policy-test-key";
const API: &str = "http://vault.test/api/";

type Answer = Box<dyn Fn(&str, &str, &Value) -> Result<OutResponse, NetError>>;

/// A vault double: the token endpoint always grants; other calls go to `answer` with the
/// method, the route under the API base and the JSON body. Its pauses move the clock.
struct Double {
    answer: RefCell<Answer>,
    calls: RefCell<Vec<String>>,
    clock: ManualClock,
}

impl Double {
    fn new(answer: Answer) -> Self {
        Double {
            answer: RefCell::new(answer),
            calls: RefCell::default(),
            clock: ManualClock::at(1_000_000_000),
        }
    }

    fn count(&self, call: &str) -> usize {
        self.calls.borrow().iter().filter(|c| *c == call).count()
    }
}

fn reply(status: u16, body: Value) -> Result<OutResponse, NetError> {
    Ok(OutResponse {
        status,
        headers: Vec::new(),
        body: body.to_string().into_bytes(),
    })
}

fn member(id: &str, status: i64) -> Value {
    json!({"object": "member", "id": id, "email": "ann@example.com", "status": status, "type": 2, "externalId": "okta-ann"})
}

impl Outbound for Double {
    fn send(&self, req: OutRequest) -> Result<OutResponse, NetError> {
        if req.url.ends_with("/connect/token") {
            return reply(200, json!({"access_token": "t", "expires_in": 3600}));
        }
        let route = req.url.strip_prefix(API).unwrap_or(&req.url).to_string();
        self.calls
            .borrow_mut()
            .push(format!("{} {route}", req.method));
        let body = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        (self.answer.borrow())(&req.method, &route, &body)
    }

    fn pause(&self, ms: i64) {
        self.clock.advance(ms.max(1));
    }
}

/// The organization, provisioned into the double, and a user ann in it.
struct World {
    config: Config,
    store: MemStore,
    ids: SeqIds,
    limits: Limits,
    out: Double,
    ann: String,
}

impl World {
    fn new(answer: Answer) -> World {
        let vault = json!({"kind": "bitwarden", "api_url": "http://vault.test/api",
            "identity_url": "http://vault.test/identity",
            "client_id": "organization.6f1e2d3c-4b5a-4c6d-8e7f-0a1b2c3d4e5f", "client_secret": "s",
            "rate": {"per_second": 1000, "per_window": 100_000}, "retry_ms": 1000, "max_attempts": 3,
            "after_request_calls": 0});
        let orgs = json!({"organizations": {ORG: {"keys": [KeyHash::of(KEY).to_hex()], "policy": "strict", "vault": vault}}});
        let mut w = World {
            config: Config::from_json(&orgs.to_string()).unwrap_or_else(|e| panic!("{e}")),
            store: MemStore::new(),
            ids: SeqIds::default(),
            limits: Limits::default(),
            out: Double::new(answer),
            ann: String::new(),
        };
        let r = w.request("POST", "/Users", Some(json!({"userName": "ann@example.com", "externalId": "okta-ann", "emails": [{"primary": true, "value": "ann@example.com"}]})));
        w.ann = r["id"].as_str().unwrap_or_default().to_string();
        w
    }

    fn request(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let mut req = Request::new(method, &format!("/v2/{ORG}{path}"))
            .header("authorization", &format!("Bearer {KEY}"));
        if let Some(b) = body {
            req = req.header("content-type", "application/scim+json").json(&b);
        }
        let router = Router::new(&self.config, &self.store, &self.out.clock, &self.ids)
            .with_outbound(&self.out);
        router.handle(&req).body_json()
    }

    /// A sync, after the first reconcile (which lists the vault).
    fn sync(&self) -> Value {
        let org = OrgId::parse(ORG).unwrap_or_else(|| panic!("org"));
        let cfg = &self.config.orgs[&org];
        let env = Env {
            store: &self.store,
            out: &self.out,
            clock: &self.out.clock,
            ids: &self.ids,
            limits: &self.limits,
        };
        let vault = cfg.vault.as_ref().unwrap_or_else(|| panic!("vault"));
        let r = drain(&env, &org, cfg, vault, Trigger::Sync { reconcile: false });
        serde_json::to_value(r.unwrap_or_else(|e| panic!("{e}"))).unwrap_or_default()
    }

    fn status(&self) -> Value {
        self.request("GET", &format!("/Users/{}", self.ann), None)
            ["urn:scim-edge:schemas:extension:vault:2.0:User"]
            .clone()
    }
}

/// The vault lists no one; what it answers to an invite is `invite`'s.
fn vault_with(invite: impl Fn() -> Result<OutResponse, NetError> + 'static) -> Answer {
    Box::new(move |method, route, _| match (method, route) {
        ("GET", "public/members" | "public/groups") => {
            reply(200, json!({"object": "list", "data": []}))
        }
        ("POST", "public/members") => invite(),
        _ => reply(404, Value::Null),
    })
}

#[test]
fn a_refused_member_backs_off_doubling_then_parks_until_it_changes() {
    let w = World::new(vault_with(|| {
        reply(
            400,
            json!({"object": "error", "message": "Seat limit has been reached."}),
        )
    }));
    let invites = || w.out.count("POST public/members");
    w.sync();
    assert_eq!(invites(), 1);
    assert_eq!(w.status()["status"], "error");
    // Not before the backoff: 1 s, then 2 s.
    w.sync();
    assert_eq!(invites(), 1);
    w.out.clock.advance(1_000);
    w.sync();
    assert_eq!(invites(), 2);
    w.out.clock.advance(1_999);
    w.sync();
    assert_eq!(invites(), 2);
    w.out.clock.advance(1);
    let r = w.sync();
    assert_eq!(invites(), 3);
    // The third refusal parks it: no more tries until the user changes (or a reconcile,
    // every 15 minutes, finds it missing from the vault).
    assert_eq!(r["parked"], 1, "{r}");
    w.out.clock.advance(600_000);
    w.sync();
    assert_eq!(invites(), 3);
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {"displayName": "Ann"}}]});
    w.request("PATCH", &format!("/Users/{}", w.ann), Some(patch));
    w.sync();
    assert_eq!(invites(), 4);
}

#[test]
fn an_invite_whose_answer_was_lost_is_looked_up_not_sent_again() {
    let w = World::new(vault_with(|| Err(NetError::Timeout)));
    w.sync();
    assert_eq!(w.out.count("POST public/members"), 1);
    // The vault did invite: it lists the member now.
    *w.out.answer.borrow_mut() = Box::new(|method, route, _| match (method, route) {
        ("GET", "public/members") => {
            reply(200, json!({"object": "list", "data": [member("m-1", 0)]}))
        }
        _ => reply(404, Value::Null),
    });
    // Within the claim's lease another drain leaves it; after it, the claim looks first.
    w.out.clock.advance(1_000);
    w.sync();
    w.out.clock.advance(60_000);
    w.sync();
    assert_eq!(w.out.count("POST public/members"), 1);
    assert_eq!(w.status()["memberId"], "m-1");
    assert_eq!(w.status()["status"], "invited");
}

#[test]
fn a_member_removed_by_hand_is_invited_again_on_restore() {
    let w = World::new(vault_with(|| reply(200, member("m-1", 0))));
    w.sync();
    assert_eq!(w.status()["memberId"], "m-1");
    let set = |on: bool| {
        let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {"active": on}}]});
        w.request("PATCH", &format!("/Users/{}", w.ann), Some(patch));
    };
    *w.out.answer.borrow_mut() = Box::new(|method, route, _| match (method, route) {
        ("POST", "public/members/m-1/revoke") => reply(200, Value::Null),
        ("GET", "public/members") => reply(200, json!({"object": "list", "data": []})),
        ("POST", "public/members") => reply(200, member("m-2", 0)),
        _ => reply(404, Value::Null),
    });
    set(false);
    w.sync();
    assert_eq!(w.status()["status"], "revoked");
    // Removed in the vault meanwhile: the restore finds nothing, so the member is looked
    // up (a second claim looks first) and invited again in the same drain, as a new id.
    set(true);
    w.sync();
    assert_eq!(w.out.count("POST public/members/m-1/restore"), 1);
    assert_eq!(w.out.count("POST public/members"), 2);
    assert_eq!(w.status()["memberId"], "m-2");
}
