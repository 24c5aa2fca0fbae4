//! The edge gate's exchange: a request passes the gate, what is admitted goes on to the
//! vault over outbound HTTP, and the vault's answer comes back repaired. The Spin
//! adapter (`gate/`) only moves bytes; everything decided about them is here.

use super::{Admitted, GateConfig};
use crate::error::{error_body, ScimError};
use crate::http::{Request, Response, SCIM_JSON};
use crate::vault::net::{NetError, OutRequest, OutResponse, Outbound};

/// The largest body passed on unscreened (requests the gate reads no body for). Akamai
/// Functions and Fermyon Cloud take 10 MiB; a bigger one is refused before it is held.
pub const UNSCREENED_MAX: usize = 10 * 1024 * 1024;

/// How long the vault has to answer. Edge hosts stop a request after 30 s: the gate
/// gives up first, so the client gets a SCIM 504 rather than nothing.
pub const UPSTREAM_TIMEOUT_MS: i64 = 20_000;

/// Headers that belong to one connection (RFC 9110 7.6.1), and those the host sets
/// itself for the new request or response (`host`, `content-length`).
const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// The vault's origin, from the `upstream` variable: `http(s)://host[:port]`, no path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream(String);

impl Upstream {
    /// Checks an origin such as `https://vault.example.com`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Upstream, String> {
        let t = text.trim().trim_end_matches('/');
        let authority = t
            .strip_prefix("https://")
            .or_else(|| t.strip_prefix("http://"))
            .ok_or_else(|| {
                format!("'{t}' is not an http or https origin such as https://vault.example.com")
            })?;
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(format!(
                "'{t}' is not an origin: give the scheme and host only, such as https://vault.example.com (the request's path is kept)"
            ));
        }
        Ok(Upstream(t.to_string()))
    }

    /// The origin, without a trailing slash.
    pub fn origin(&self) -> &str {
        &self.0
    }
}

/// The headers passed on from one side to the other: hop-by-hop ones are dropped, and
/// `content-length` is set for `body` when `length`. (Spin hosts remove `Connection`
/// before the component sees it, so the headers it names cannot be known here.)
fn pass_on(headers: &[(String, String)], body: usize, length: bool) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            !HOP_BY_HOP.contains(&k.as_str()) && k != "content-length"
        })
        .cloned()
        .collect();
    if length {
        out.push(("content-length".into(), body.to_string()));
    }
    out
}

/// The SCIM error for a vault that gave no answer: 504 when it did not answer in time,
/// 502 otherwise. The detail names no address; the cause is for the log.
pub fn unreachable(e: &NetError) -> Response {
    let (status, detail) = match e {
        NetError::Timeout => (504, "The vault did not answer in time".to_string()),
        NetError::Denied(_) => (
            502,
            "The gate may not reach the vault: its origin is not an allowed outbound host"
                .to_string(),
        ),
        NetError::Failed(_) => (502, "The vault could not be reached".to_string()),
    };
    Response {
        status,
        headers: vec![("content-type".into(), SCIM_JSON.into())],
        body: error_body(status, &detail, None).to_string().into_bytes(),
        cause: Some(e.to_string()),
    }
}

/// Whether a response of this status carries a body and so a `content-length`.
fn has_body(method: &str, status: u16) -> bool {
    !method.eq_ignore_ascii_case("HEAD") && status >= 200 && status != 204 && status != 304
}

/// A response with its `content-length` set for its body.
fn with_length(method: &str, mut r: Response) -> Response {
    r.headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case("content-length"));
    if has_body(method, r.status) {
        r.headers
            .push(("content-length".into(), r.body.len().to_string()));
    }
    r
}

/// A request admitted on its head, waiting for its body.
#[derive(Debug)]
pub struct Pending<'g> {
    gate: &'g GateConfig,
    admitted: Admitted,
    head: Request,
    url: String,
}

/// Decides on a request from its head (method, target, headers; its body unread), so a
/// refusal goes out before the body is waited for. `Err` is the gate's answer.
pub fn admit<'g>(
    gate: &'g GateConfig,
    upstream: &Upstream,
    head: Request,
) -> Result<Pending<'g>, Response> {
    let target = if head.query.is_empty() {
        head.path.clone()
    } else {
        format!("{}?{}", head.path, head.query)
    };
    match gate.admit(&head.method, &target, &head.headers) {
        Ok(admitted) => Ok(Pending {
            gate,
            admitted,
            url: format!("{}{target}", upstream.origin()),
            head,
        }),
        Err(e) => Err(with_length(&head.method, Response::error(&e))),
    }
}

impl Pending<'_> {
    /// How much of the body to read: past this the request is refused (413).
    pub fn body_limit(&self) -> usize {
        if self.admitted.reads_body() {
            self.gate.max_body
        } else {
            UNSCREENED_MAX
        }
    }

    /// Screens the body and sends the request on with `out`; the answer is the vault's,
    /// repaired, or the gate's SCIM error.
    pub fn send(self, body: &[u8], out: &dyn Outbound) -> Response {
        let method = self.head.method.clone();
        let r = match self.request(body) {
            Err(e) => Response::error(&e),
            Ok(request) => match out.send(request) {
                Ok(got) => answer(&self.admitted, got),
                Err(e) => unreachable(&e),
            },
        };
        with_length(&method, r)
    }

    fn request(&self, body: &[u8]) -> Result<OutRequest, ScimError> {
        if body.len() > self.body_limit() {
            return Err(crate::http::too_large(body.len(), self.body_limit()));
        }
        let rewritten = self.admitted.screen_body(self.gate, body)?;
        let declared = crate::http::header(&self.head.headers, "content-length").is_some();
        let length = declared || rewritten.is_some() || !body.is_empty();
        let body = rewritten.unwrap_or_else(|| body.to_vec());
        Ok(OutRequest {
            method: self.head.method.clone(),
            url: self.url.clone(),
            headers: pass_on(&self.head.headers, body.len(), length),
            body,
            timeout_ms: UPSTREAM_TIMEOUT_MS,
        })
    }
}

/// The vault's answer as the client gets it: repaired where the gate repairs it.
fn answer(a: &Admitted, got: OutResponse) -> Response {
    match a.repair(got.status, &got.headers, &got.body) {
        Some(fixed) => fixed,
        None => forwarded(got),
    }
}

fn forwarded(got: OutResponse) -> Response {
    Response {
        status: got.status,
        headers: pass_on(&got.headers, 0, false),
        body: got.body,
        cause: None,
    }
}
