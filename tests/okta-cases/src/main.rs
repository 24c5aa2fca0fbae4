//! Reads a table of cases (a JSON array on stdin), answers each through the imported
//! `scim-edge:okta/rules` interface and prints the answers (a JSON array, one per case).
//! `host/tests/okta_rules.rs` runs it composed with the rules component and compares
//! the answers with the core's own.

wit_bindgen::generate!({
    inline: "
        package scim-edge:okta-cases;
        world okta-cases {
            import scim-edge:okta/rules@0.1.0;
        }
    ",
    path: "../../wit/okta",
    world: "okta-cases",
    generate_all,
});

use scim_edge::okta::rules::{self, Gate, Policy, Problem, Request, Response, Verdict};
use serde_json::{json, Value};
use std::io::Read;

fn text(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

/// `[[name, value], ..]`.
fn headers(v: &Value) -> Vec<(String, String)> {
    let s = |p: &Value, i: usize| p[i].as_str().unwrap_or_default().to_string();
    v.as_array()
        .map(|a| a.iter().map(|p| (s(p, 0), s(p, 1))).collect())
        .unwrap_or_default()
}

fn request(v: &Value) -> Request {
    Request {
        method: text(v, "method"),
        path: text(v, "path"),
        headers: headers(&v["headers"]),
        body: text(v, "body").into_bytes(),
    }
}

fn status(v: &Value) -> u16 {
    v.as_u64().and_then(|n| u16::try_from(n).ok()).unwrap_or(0)
}

fn response(r: &Response) -> Value {
    json!({"status": r.status, "headers": r.headers, "body": String::from_utf8_lossy(&r.body)})
}

fn problem(p: &Problem) -> Value {
    json!({"status": p.status, "scimType": p.scim_type, "detail": p.detail})
}

fn policy(v: &Value) -> Policy {
    match v.as_str() {
        Some("lenient") => Policy::Lenient,
        Some("off") => Policy::Off,
        _ => Policy::Strict,
    }
}

fn answer(case: &Value) -> Value {
    if let Some(c) = case.get("check") {
        return match Gate::create(&text(c, "config")) {
            Err(e) => json!({"config_error": e}),
            Ok(gate) => match gate.check(&request(c)) {
                Verdict::Pass(body) => {
                    json!({"pass": body.as_deref().map(String::from_utf8_lossy)})
                }
                Verdict::Refuse(r) => json!({"refuse": response(&r)}),
            },
        };
    }
    if let Some(c) = case.get("repair") {
        return match Gate::create(&text(c, "config")) {
            Err(e) => json!({"config_error": e}),
            Ok(gate) => {
                let got = Response {
                    status: status(&c["status"]),
                    headers: headers(&c["response_headers"]),
                    body: text(c, "response_body").into_bytes(),
                };
                json!({"repair": gate.repair(&request(c), &got).as_ref().map(response)})
            }
        };
    }
    if let Some(c) = case.get("normalize") {
        return match rules::normalize_user(&text(c, "user"), policy(&c["policy"])) {
            Ok(user) => json!({"user": user}),
            Err(p) => json!({"problem": problem(&p)}),
        };
    }
    if let Some(c) = case.get("patch") {
        return match rules::check_patch(
            &text(c, "current"),
            &text(c, "patch"),
            policy(&c["policy"]),
        ) {
            Ok(()) => json!({"unchanged": true}),
            Err(p) => json!({"problem": problem(&p)}),
        };
    }
    if let Some(c) = case.get("error") {
        let p = Problem {
            status: status(&c["status"]),
            scim_type: c["scimType"].as_str().map(str::to_string),
            detail: text(c, "detail"),
        };
        return json!({"body": rules::error_body(&p)});
    }
    json!({"unknown": case})
}

fn main() {
    let mut input = String::new();
    if std::io::stdin().read_to_string(&mut input).is_err() {
        std::process::exit(2);
    }
    let cases: Vec<Value> = serde_json::from_str(&input).unwrap_or_default();
    let answers: Vec<Value> = cases.iter().map(answer).collect();
    println!("{}", Value::Array(answers));
}
