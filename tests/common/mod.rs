//! A router over an in-memory store, a manual clock and sequential ids, with three
//! organizations (one per policy) and a fourth for isolation checks.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scim_edge::auth::KeyHash;
use scim_edge::config::{Config, OrgConfig};
use scim_edge::http::{Request, Response};
use scim_edge::ids::{ManualClock, OrgId, SeqIds};
use scim_edge::okta::Policy;
use scim_edge::router::Router;
use scim_edge::store::MemStore;
pub mod case_pairs;
pub mod fixtures;
pub mod orgs;
pub mod runscope;

pub use orgs::{key, LENIENT, OFF, OTHER, STRICT};

use serde_json::Value;

pub struct H {
    pub store: MemStore,
    pub clock: ManualClock,
    pub ids: SeqIds,
    pub config: Config,
}

impl Default for H {
    fn default() -> Self {
        Self::new()
    }
}

impl H {
    pub fn new() -> Self {
        let mut config = Config::default();
        for (org, policy) in [
            (STRICT, Policy::Strict),
            (LENIENT, Policy::Lenient),
            (OFF, Policy::Off),
            (OTHER, Policy::Strict),
        ] {
            config.orgs.insert(
                OrgId::parse(org).unwrap(),
                OrgConfig {
                    keys: vec![
                        KeyHash::of(&key(org)),
                        KeyHash::of(&format!("{}-rotated", key(org))),
                    ],
                    policy,
                    vault: None,
                },
            );
        }
        H {
            store: MemStore::new(),
            clock: ManualClock::at(1_700_000_000_000),
            ids: SeqIds::default(),
            config,
        }
    }

    /// The same organizations over a store without atomics, as on the edge.
    pub fn without_atomics() -> Self {
        H {
            store: MemStore::without_atomics(),
            ..Self::new()
        }
    }

    pub fn router(&self) -> Router<'_> {
        Router::new(&self.config, &self.store, &self.clock, &self.ids)
    }

    /// Sends a request with the key of the organization named in its path.
    pub fn send(&self, req: Request) -> Response {
        let org = req
            .path
            .split('/')
            .find(|s| OrgId::parse(s).is_some())
            .unwrap_or(STRICT)
            .to_string();
        let req = if req.header_value("authorization").is_none() {
            req.header("Authorization", &format!("Bearer {}", key(&org)))
        } else {
            req
        };
        self.clock.advance(1000);
        self.router().handle(&req)
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = Request::new(method, path);
        if let Some(b) = body {
            req = req.header("Content-Type", "application/scim+json").json(&b);
        }
        let r = self.send(req);
        (r.status, r.body_json())
    }

    pub fn user(&self, org: &str, name: &str) -> String {
        let (s, b) = self.call(
            "POST",
            &format!("/v2/{org}/Users"),
            Some(serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": name,
                "name": {"givenName": "Given", "familyName": "Family"},
                "emails": [{"primary": true, "value": name, "type": "work"}],
                "active": true
            })),
        );
        assert_eq!(s, 201, "{b}");
        b["id"].as_str().unwrap().to_string()
    }

    pub fn group(&self, org: &str, name: &str) -> String {
        let (s, b) = self.call(
            "POST",
            &format!("/v2/{org}/Groups"),
            Some(serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": []})),
        );
        assert_eq!(s, 201, "{b}");
        b["id"].as_str().unwrap().to_string()
    }
}
