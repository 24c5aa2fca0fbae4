//! The component's log lines: one JSON object per SCIM request and one per vault call a
//! drain makes, on stderr, where Spin and its platforms collect component logs. They
//! name routes by template and resources by id only: never a key, a secret, a token, a
//! body, an email or a userName.

use serde_json::{json, Value};

/// A request's line.
pub struct RequestLine<'a> {
    /// When the request arrived (ms).
    pub at: i64,
    /// The organization, when the path names one.
    pub org: Option<&'a str>,
    /// The request's method.
    pub method: &'a str,
    /// The route as a template (`/Users/{id}`).
    pub route: &'static str,
    /// The answer's status.
    pub status: u16,
    /// Until the answer was ready (ms).
    pub ms: i64,
    /// Key-value round trips (a batch is one), the drain after the answer included.
    pub kv: u64,
    /// Vault calls made by the drain after the answer.
    pub vault_calls: u32,
    /// The request id, echoed in the answer's `x-request-id`.
    pub request_id: &'a str,
    /// Why a request failed inside (a 5xx's cause), for the operator.
    pub cause: Option<&'a str>,
    /// What the drain after the answer ran into, in log forms (which name no one).
    pub problems: &'a [String],
}

impl RequestLine<'_> {
    /// The line, with its newline.
    pub fn render(&self) -> String {
        line(json!({
            "time": crate::time::format_millis(self.at),
            "org": self.org,
            "method": self.method,
            "route": self.route,
            "status": self.status,
            "ms": self.ms,
            "kv": self.kv,
            "vaultCalls": self.vault_calls,
            "requestId": self.request_id,
            "cause": self.cause,
            "problems": self.problems,
        }))
    }
}

/// A vault call's line: `path` is made a template here.
pub fn vault_call(
    at: i64,
    org: &str,
    method: &str,
    url: &str,
    outcome: Result<u16, &str>,
    ms: i64,
    entry: Option<&str>,
) -> String {
    let (status, error) = match outcome {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(e)),
    };
    line(json!({
        "time": crate::time::format_millis(at),
        "org": org,
        "vault": {"method": method, "path": template(url), "status": status, "error": error, "ms": ms},
        "entry": entry,
    }))
}

fn line(v: Value) -> String {
    let mut s = v.to_string();
    s.push('\n');
    s
}

/// A URL's path with every segment that is not a fixed word written `{id}`: the vault's
/// GUIDs, and anything else a path might carry.
pub fn template(url: &str) -> String {
    let after = url.find("://").map_or(0, |i| i + 3);
    let path = url[after..].find('/').map_or("/", |i| &url[after + i..]);
    let path = path.split(['?', '#']).next().unwrap_or("");
    path.split('/')
        .map(|s| {
            if s.chars()
                .all(|c| c.is_ascii_alphabetic() || c == '-' || c == '_')
            {
                s
            } else {
                "{id}"
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The request id: the client's `x-request-id` when it is a short safe token (letters,
/// digits, `-`, `_`, `.`; at most 64), else `fresh`.
pub fn request_id(given: Option<&str>, fresh: impl FnOnce() -> String) -> String {
    match given {
        Some(g)
            if !g.is_empty()
                && g.len() <= 64
                && g.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) =>
        {
            g.to_string()
        }
        _ => fresh(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_templates() {
        assert_eq!(
            template("https://v.example.com/api/public/members/3f6b2a5e-7c1d-4e8f-9a0b-1c2d3e4f5a6b/revoke?x=1"),
            "/api/public/members/{id}/revoke"
        );
        assert_eq!(
            template("http://127.0.0.1:9/identity/connect/token"),
            "/identity/connect/token"
        );
        assert_eq!(
            template("http://h/api/public/organization/import"),
            "/api/public/organization/import"
        );
        assert_eq!(template("http://h/api/x/ann@example.com"), "/api/x/{id}");
    }

    #[test]
    fn only_safe_request_ids_are_kept() {
        let fresh = || "generated".to_string();
        assert_eq!(request_id(Some("abc-123_x.y"), fresh), "abc-123_x.y");
        for bad in ["", "a b", "a\nb", "<script>", &"x".repeat(65)] {
            assert_eq!(request_id(Some(bad), fresh), "generated", "{bad:?}");
        }
        assert_eq!(request_id(None, fresh), "generated");
    }

    #[test]
    fn lines_are_one_json_object_each() {
        let l = RequestLine {
            at: 0,
            org: Some("o"),
            method: "GET",
            route: "/Users/{id}",
            status: 200,
            ms: 3,
            kv: 2,
            vault_calls: 0,
            request_id: "r",
            cause: None,
            problems: &[],
        }
        .render();
        assert!(l.ends_with('\n') && l.matches('\n').count() == 1);
        let v: Value = serde_json::from_str(&l).unwrap_or(Value::Null);
        assert_eq!(v["route"], "/Users/{id}");
        let c = vault_call(
            0,
            "o",
            "POST",
            "http://h/api/public/members",
            Err("timeout"),
            5,
            Some("u:1"),
        );
        let v: Value = serde_json::from_str(&c).unwrap_or(Value::Null);
        assert_eq!(v["vault"]["error"], "timeout");
        assert_eq!(v["entry"], "u:1");
    }
}
