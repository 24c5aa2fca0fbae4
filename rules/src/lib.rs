//! The `scim-edge:okta/rules` interface (`wit/okta/okta.wit`) exported over the core: a
//! translation of WIT types to the core's and back, nothing decided here. It imports
//! nothing beyond what the Rust standard library needs on wasm32-wasip2.

wit_bindgen::generate!({
    path: "../wit/okta",
    world: "okta-rules",
});

use exports::scim_edge::okta::rules::{
    Guest, GuestGate, Policy, Problem, Request, Response, Verdict,
};
use scim_edge::error::{error_body, ScimError};
use scim_edge::gate::verdict::{self, Verdict as CoreVerdict};
use scim_edge::gate::GateConfig;
use scim_edge::http;
use scim_edge::okta::{self, Policy as CorePolicy};
use serde_json::Value;

struct Rules;

export!(Rules);

fn policy(p: Policy) -> CorePolicy {
    match p {
        Policy::Strict => CorePolicy::Strict,
        Policy::Lenient => CorePolicy::Lenient,
        Policy::Off => CorePolicy::Off,
    }
}

fn problem(e: &ScimError) -> Problem {
    Problem {
        status: e.status(),
        scim_type: e.kind().scim_type().map(str::to_string),
        detail: e.detail().to_string(),
    }
}

fn response(r: http::Response) -> Response {
    Response {
        status: r.status,
        headers: r.headers,
        body: r.body,
    }
}

fn parse(json: &str) -> Result<Value, Problem> {
    serde_json::from_str(json).map_err(|e| {
        problem(&ScimError::invalid_syntax(format!(
            "The body is not valid JSON: {e}"
        )))
    })
}

fn object(json: &str) -> Result<serde_json::Map<String, Value>, Problem> {
    match parse(json)? {
        Value::Object(m) => Ok(m),
        _ => Err(problem(&ScimError::invalid_syntax(
            "The request body must be a JSON object",
        ))),
    }
}

impl GuestGate for GateConfig {
    fn create(configuration: String) -> Result<exports::scim_edge::okta::rules::Gate, String> {
        GateConfig::from_json(&configuration).map(exports::scim_edge::okta::rules::Gate::new)
    }

    fn check(&self, r: Request) -> Verdict {
        match GateConfig::check(self, &r.method, &r.path, &r.headers, &r.body) {
            CoreVerdict::Pass(body) => Verdict::Pass(body),
            CoreVerdict::Refuse(resp) => Verdict::Refuse(response(resp)),
        }
    }

    fn repair(&self, r: Request, got: Response) -> Option<Response> {
        let got = http::Response {
            status: got.status,
            headers: got.headers,
            body: got.body,
            cause: None,
        };
        GateConfig::repair(self, &r.method, &r.path, &r.headers, &got).map(response)
    }
}

impl Guest for Rules {
    type Gate = GateConfig;

    fn normalize_user(user: String, p: Policy) -> Result<String, Problem> {
        let mut doc = object(&user)?;
        okta::normalize(&mut doc, policy(p)).map_err(|e| problem(&e))?;
        Ok(Value::Object(doc).to_string())
    }

    fn check_patch(current: String, patch: String, p: Policy) -> Result<(), Problem> {
        verdict::check_patch(&object(&current)?, &parse(&patch)?, policy(p))
            .map_err(|e| problem(&e))
    }

    fn error_body(p: Problem) -> String {
        error_body(p.status, &p.detail, p.scim_type.as_deref()).to_string()
    }
}
