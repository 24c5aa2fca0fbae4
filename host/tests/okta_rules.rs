//! The rules component composed with a component that imports them: the test component
//! (`tests/okta-cases`, plugged with the rules by `wac plug` in scripts/test) runs here
//! under wasmtime as a WASI command, answers a table of Okta cases through
//! `scim-edge:okta/rules`, and every answer must equal the core's own, computed natively.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../tests/common/fixtures.rs"]
mod fixtures;

use common::orgs::{key, LENIENT, OFF, STRICT};
use scim_edge::auth::KeyHash;
use scim_edge::error::error_body;
use scim_edge::error::ScimError;
use scim_edge::gate::verdict::{check_patch, Verdict};
use scim_edge::gate::GateConfig;
use scim_edge::http::Response;
use scim_edge::okta::{self, Policy};
use serde_json::{json, Value};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

const POLICIES: [&str; 3] = ["strict", "lenient", "off"];

fn config() -> String {
    let org = |id: &str, policy: &str| {
        (
            id.to_string(),
            json!({"keys": [KeyHash::of(&key(id)).to_hex()], "policy": policy}),
        )
    };
    let orgs: serde_json::Map<String, Value> = [
        org(STRICT, "strict"),
        org(LENIENT, "lenient"),
        org(OFF, "off"),
    ]
    .into_iter()
    .collect();
    json!({"organizations": orgs, "max_body_bytes": 4096}).to_string()
}

fn policy(name: &str) -> Policy {
    match name {
        "lenient" => Policy::Lenient,
        "off" => Policy::Off,
        _ => Policy::Strict,
    }
}

fn user(name: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"primary": true, "value": name, "type": "work"}], "active": true})
}

/// A request as the table gives it: `[name, value]` headers, the body as text.
fn check(org: &str, method: &str, path: &str, auth: Option<&str>, ct: &str, body: &str) -> Value {
    let auth = auth.map_or_else(|| format!("Bearer {}", key(org)), str::to_string);
    json!({"check": {"config": config(), "method": method, "path": format!("/v2/{org}{path}"),
        "headers": [["authorization", auth], ["content-type", ct]], "body": body}})
}

/// The requests and user bodies of the recorded Okta interactions.
fn fixture_cases(cases: &mut Vec<Value>, users: &mut Vec<String>, patches: &mut Vec<String>) {
    for file in fixtures::files() {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let org = match v["org"].as_str() {
            Some("lenient") => LENIENT,
            Some("off") => OFF,
            _ => STRICT,
        };
        for step in v["steps"].as_array().unwrap() {
            let r = &step["request"];
            let body = r.get("body").map(Value::to_string).unwrap_or_default();
            let auth = r["headers"]["Authorization"].as_str();
            let (method, path) = (r["method"].as_str().unwrap(), r["path"].as_str().unwrap());
            cases.push(check(
                org,
                method,
                path,
                auth,
                "application/scim+json",
                &body,
            ));
            if path.starts_with("/Users") && matches!(method, "POST" | "PUT") {
                users.push(body);
            } else if path.starts_with("/Users/") && method == "PATCH" {
                patches.push(body);
            }
        }
    }
}

/// The gate's own cases (as in the filter's suite) and the rules on their own.
fn table() -> Vec<Value> {
    let mut cases = Vec::new();
    let mut users = vec![
        user("ada@x.io").to_string(),
        user("  Ada@X.io ").to_string(),
        json!({"userName": "grace@x.io"}).to_string(),
        json!({"userName": "a@x.io"}).to_string(),
        json!({"userName": "a@x.io", "emails": [{"primary": true, "value": "b@x.io"}]}).to_string(),
        json!({"userName": "a@x.io", "emails": [{"primary": true, "value": "a@x.io", "type": "corporate"}]}).to_string(),
        json!({"userName": "a@x.io", "emails": [{"primary": true, "value": "a@x.io"}, {"primary": true, "value": "c@x.io"}]}).to_string(),
        json!({"emails": [{"primary": true, "value": "a@x.io"}]}).to_string(),
        json!([1, 2]).to_string(),
        "{\"userName\": ".to_string(),
    ];
    let op = |ops: Value| {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
            .to_string()
    };
    let mut patches = vec![
        op(json!([{"op": "replace", "path": "userName", "value": "new@x.io"}])),
        op(json!([{"op": "replace", "value": {"userName": "new@x.io", "active": true}}])),
        op(
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@x.io"}]),
        ),
        op(json!([{"op": "replace", "value": {"active": false}}])),
        op(json!([{"op": "replace", "path": "name.givenName", "value": "Ada"}])),
        op(json!([{"op": "move", "path": "active"}])),
        "not json".to_string(),
    ];
    fixture_cases(&mut cases, &mut users, &mut patches);
    for org in [STRICT, LENIENT, OFF] {
        for u in &users {
            cases.push(check(org, "POST", "/Users", None, "application/json", u));
            cases.push(check(
                org,
                "PUT",
                "/Users/u1",
                None,
                "application/scim+json",
                u,
            ));
        }
        for p in &patches {
            cases.push(check(
                org,
                "PATCH",
                "/Users/u1",
                None,
                "application/scim+json",
                p,
            ));
        }
    }
    cases.push(check(STRICT, "GET", "/Users", Some("Bearer wrong"), "", ""));
    cases.push(check(
        STRICT,
        "POST",
        "/Users",
        None,
        "text/plain",
        &users[0],
    ));
    cases.push(check(
        STRICT,
        "POST",
        "/Groups",
        None,
        "application/json",
        &" ".repeat(5000),
    ));
    cases.push(
        json!({"check": {"config": "{\"organizations\": {}, \"max_body_bytes\": 0}",
        "method": "GET", "path": "/", "headers": [], "body": ""}}),
    );
    let list = json!({"totalResults": 1, "resources": [user("a@x.io")]}).to_string();
    for (method, path, status, body) in [
        ("GET", "/Users?startIndex=1", 200, list.as_str()),
        ("GET", "/Users/u1", 200, list.as_str()),
        ("GET", "/Users/u1", 401, ""),
        (
            "POST",
            "/Users",
            409,
            "{\"detail\": \"User already exists.\"}",
        ),
    ] {
        let mut c = check(STRICT, method, path, None, "application/json", "");
        let mut r = c["check"].take();
        r["status"] = json!(status);
        r["response_headers"] = json!([["content-type", "application/json; charset=utf-8"]]);
        r["response_body"] = json!(body);
        cases.push(json!({"repair": r}));
    }
    let current = json!({"id": "u1", "userName": "ada@x.io",
        "emails": [{"value": "ada@x.io", "type": "work", "primary": true}]})
    .to_string();
    for p in POLICIES {
        for u in &users {
            cases.push(json!({"normalize": {"user": u, "policy": p}}));
        }
        for patch in &patches {
            cases.push(json!({"patch": {"current": current, "patch": patch, "policy": p}}));
        }
    }
    cases.push(json!({"error": {"status": 400, "scimType": "mutability", "detail": "userName cannot change"}}));
    cases.push(json!({"error": {"status": 502, "detail": "The vault could not be reached"}}));
    cases
}

fn text(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_string(),
                p[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn response(r: &Response) -> Value {
    json!({"status": r.status, "headers": r.headers, "body": String::from_utf8_lossy(&r.body)})
}

fn problem(e: &ScimError) -> Value {
    json!({"status": e.status(), "scimType": e.kind().scim_type(), "detail": e.detail()})
}

fn parse_object(s: &str) -> Result<serde_json::Map<String, Value>, ScimError> {
    match serde_json::from_str::<Value>(s) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ScimError::invalid_syntax(
            "The request body must be a JSON object",
        )),
        Err(e) => Err(ScimError::invalid_syntax(format!(
            "The body is not valid JSON: {e}"
        ))),
    }
}

/// The core's answer to a case, natively.
fn native(case: &Value) -> Value {
    if let Some(c) = case.get("check").or_else(|| case.get("repair")) {
        let gate = match GateConfig::from_json(&text(c, "config")) {
            Ok(g) => g,
            Err(e) => return json!({"config_error": e}),
        };
        let (m, p, h) = (text(c, "method"), text(c, "path"), pairs(&c["headers"]));
        if case.get("repair").is_some() {
            let got = Response {
                status: c["status"].as_u64().unwrap() as u16,
                headers: pairs(&c["response_headers"]),
                body: text(c, "response_body").into_bytes(),
                cause: None,
            };
            return json!({"repair": gate.repair(&m, &p, &h, &got).as_ref().map(response)});
        }
        return match gate.check(&m, &p, &h, text(c, "body").as_bytes()) {
            Verdict::Pass(b) => json!({"pass": b.as_deref().map(String::from_utf8_lossy)}),
            Verdict::Refuse(r) => json!({"refuse": response(&r)}),
        };
    }
    if let Some(c) = case.get("normalize") {
        let answer = parse_object(&text(c, "user")).and_then(|mut doc| {
            okta::normalize(&mut doc, policy(&text(c, "policy")))?;
            Ok(Value::Object(doc).to_string())
        });
        return match answer {
            Ok(user) => json!({"user": user}),
            Err(e) => json!({"problem": problem(&e)}),
        };
    }
    if let Some(c) = case.get("patch") {
        let answer = parse_object(&text(c, "current")).and_then(|cur| {
            let patch = serde_json::from_str::<Value>(&text(c, "patch")).map_err(|e| {
                ScimError::invalid_syntax(format!("The body is not valid JSON: {e}"))
            })?;
            check_patch(&cur, &patch, policy(&text(c, "policy")))
        });
        return match answer {
            Ok(()) => json!({"unchanged": true}),
            Err(e) => json!({"problem": problem(&e)}),
        };
    }
    let c = &case["error"];
    json!({"body": error_body(c["status"].as_u64().unwrap() as u16, &text(c, "detail"), c["scimType"].as_str()).to_string()})
}

struct Ctx {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Runs the composed component on `input`; its stdout.
fn run_composed(input: &str) -> String {
    let path = common::built_path("components/okta-cases.composed.wasm");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!("{}: {e}; scripts/test builds it (cargo build -p scim-edge-rules -p scim-edge-okta-cases --target wasm32-wasip2 --release --target-dir target/components, then wac plug)", path.display())
    });
    let engine = Engine::default();
    let component = Component::from_binary(&engine, &bytes).unwrap();
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    let out = MemoryOutputPipe::new(16 << 20);
    let wasi = WasiCtx::builder()
        .stdin(MemoryInputPipe::new(input.to_string()))
        .stdout(out.clone())
        .inherit_stderr()
        .build();
    let mut store = Store::new(
        &engine,
        Ctx {
            wasi,
            table: ResourceTable::new(),
        },
    );
    let command = Command::instantiate(&mut store, &component, &linker).unwrap();
    let ran = command.wasi_cli_run().call_run(&mut store).unwrap();
    assert!(ran.is_ok(), "the composed component failed");
    String::from_utf8(out.contents().to_vec()).unwrap()
}

#[test]
fn the_composition_answers_every_case_as_the_core_does() {
    let cases = table();
    let composed: Vec<Value> =
        serde_json::from_str(&run_composed(&Value::from(cases.clone()).to_string())).unwrap();
    assert_eq!(composed.len(), cases.len());
    for (case, got) in cases.iter().zip(&composed) {
        assert_eq!(got, &native(case), "{case}");
    }
    // The table reaches every kind of answer.
    let count = |k: &str| composed.iter().filter(|a| a.get(k).is_some()).count();
    let rewritten = composed.iter().filter(|a| a["pass"].is_string()).count();
    let repaired = composed.iter().filter(|a| a["repair"].is_object()).count();
    assert!(count("refuse") >= 40, "{}", count("refuse"));
    assert!(
        count("pass") >= 20 && rewritten >= 3,
        "{} {rewritten}",
        count("pass")
    );
    assert!(count("problem") >= 10 && count("unchanged") >= 5);
    assert!(count("user") >= 10 && count("config_error") == 1 && repaired == 2);
}

/// The rules component imports nothing but what the Rust standard library needs.
#[test]
fn the_rules_component_imports_only_wasi() {
    let path = common::built_path("components/wasm32-wasip2/release/scim_edge_rules.wasm");
    let imports = scim_edge_host::component_imports(&std::fs::read(&path).unwrap()).unwrap();
    assert!(!imports.is_empty());
    for i in &imports {
        assert!(
            i.starts_with("wasi:cli/")
                || i.starts_with("wasi:io/")
                || i.starts_with("wasi:clocks/")
                || i.starts_with("wasi:filesystem/")
                || i.starts_with("wasi:random/"),
            "{i} in {imports:?}"
        );
    }
}
