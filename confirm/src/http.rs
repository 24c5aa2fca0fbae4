//! One HTTP client for the vault and scim-edge: TLS with the platform's trust store (a
//! self-hosted vault behind an internal CA works as it does in the administrator's
//! browser), a global timeout, statuses as answers rather than errors, and bodies read
//! as JSON.

use serde_json::Value;
use std::time::Duration;

/// The largest answer read (a member list of tens of thousands fits).
const MAX_BODY: u64 = 64 << 20;

/// A status and its JSON body (`Null` when empty or not JSON).
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `data` list of a list answer (empty when there is none).
    pub fn data(&self) -> &[Value] {
        self.body
            .get("data")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// The server's words for a refusal: Bitwarden's and Vaultwarden's `message`, an
    /// OAuth `error_description`, a SCIM `detail`; else the status.
    pub fn message(&self) -> String {
        let b = &self.body;
        let pick = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        pick(b, "message")
            .or_else(|| pick(b, "Message"))
            .or_else(|| b.get("ErrorModel").and_then(|m| pick(m, "Message")))
            .or_else(|| pick(b, "error_description"))
            .or_else(|| pick(b, "detail"))
            .or_else(|| pick(b, "error"))
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| format!("HTTP {}", self.status))
    }
}

/// The client.
pub struct Http {
    agent: ureq::Agent,
}

/// A request to send.
pub enum Body<'a> {
    None,
    Json(&'a Value),
    Form(&'a [(&'a str, &'a str)]),
}

impl Http {
    pub fn new() -> Http {
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .user_agent(format!("scim-edge-confirm/{}", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build()
            .into();
        Http { agent }
    }

    /// Sends one request; a transport failure (no connection, a timeout) is the error.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        query: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<Answer, String> {
        let mut resp = match method {
            "GET" => {
                let mut r = self.agent.get(url);
                for (k, v) in headers {
                    r = r.header(*k, *v);
                }
                for (k, v) in query {
                    r = r.query(*k, *v);
                }
                r.call()
            }
            _ => {
                let mut r = self.agent.post(url);
                for (k, v) in headers {
                    r = r.header(*k, *v);
                }
                for (k, v) in query {
                    r = r.query(*k, *v);
                }
                match body {
                    Body::None => r.send_empty(),
                    Body::Json(v) => r.send_json(v),
                    Body::Form(pairs) => r.send_form(pairs.iter().copied()),
                }
            }
        }
        .map_err(|e| format!("{method} {}: {e}", without_query(url)))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| format!("{method} {}: reading the answer: {e}", without_query(url)))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }
}

fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}
