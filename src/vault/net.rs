//! Outbound HTTP as the core sees it: a request, an answer or a transport failure. The
//! host supplies the sending (Spin's wasi:http outgoing handler; a plain client in tests).

/// One outbound request.
#[derive(Debug, Clone)]
pub struct OutRequest {
    /// `GET`, `POST`, `PUT`, `DELETE` (the edge gate forwards any method).
    pub method: String,
    /// The absolute URL.
    pub url: String,
    /// Headers (the bearer token among them: never log them).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Give up after this long, ms.
    pub timeout_ms: i64,
}

/// The client version sent with token requests. Vaultwarden logs an error for every
/// token request without a `Bitwarden-Client-Version` header (and gates features on
/// it); naming a current client's version keeps its log clean and changes no answer the
/// organization routes give.
pub const CLIENT_VERSION: &str = "2025.11.0";

/// What scim-edge calls itself on every vault request, so that a vault's administrator
/// reading its log can tell scim-edge's requests apart.
pub const USER_AGENT: &str = concat!("scim-edge/", env!("CARGO_PKG_VERSION"));

impl OutRequest {
    /// A request with scim-edge's `User-Agent` and, for anything but a GET, its body's
    /// `Content-Length`: bodies are small and whole in memory, so they are sent with
    /// their length, never chunked (a server that reads only the length would see an
    /// empty body; front ends that refuse chunked requests answer 411).
    pub fn new(
        method: &str,
        url: String,
        content_type: Option<&str>,
        body: Vec<u8>,
        timeout_ms: i64,
    ) -> Self {
        let mut headers = vec![("user-agent".to_string(), USER_AGENT.to_string())];
        if let Some(ct) = content_type {
            headers.push(("content-type".into(), ct.into()));
        }
        if method != "GET" {
            headers.push(("content-length".into(), body.len().to_string()));
        }
        OutRequest {
            method: method.to_string(),
            url,
            headers,
            body,
            timeout_ms,
        }
    }

    /// The request with one more header.
    pub fn header(mut self, name: &str, value: String) -> Self {
        self.headers.push((name.to_string(), value));
        self
    }
}

/// The vault's answer.
#[derive(Debug, Clone, Default)]
pub struct OutResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl OutResponse {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The vault's error message (`{"message": ..}` or an OAuth `error`), shortened.
    pub fn message(&self) -> String {
        let v = self.json();
        let m = v
            .get("message")
            .or_else(|| v.get("error"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned());
        let m = m.trim();
        if m.is_empty() {
            return "(an empty answer)".into();
        }
        match m.char_indices().nth(200) {
            Some((i, _)) => format!("{}…", &m[..i]),
            None => m.to_string(),
        }
    }
}

/// A request that got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetError {
    /// The host refused it (the origin is not in `allowed_outbound_hosts`).
    Denied(String),
    /// No answer in time.
    Timeout,
    /// The connection failed or broke.
    Failed(String),
}

impl std::fmt::Display for NetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetError::Denied(m) => write!(f, "the host refused the request: {m}"),
            NetError::Timeout => f.write_str("the vault did not answer in time"),
            NetError::Failed(m) => write!(f, "the connection to the vault failed: {m}"),
        }
    }
}

/// Sends requests and waits.
pub trait Outbound {
    /// Sends one request and waits for the whole answer.
    fn send(&self, req: OutRequest) -> Result<OutResponse, NetError>;
    /// Waits `ms` milliseconds (the limiter's pause).
    fn pause(&self, ms: i64);
    /// Writes one of the component's log lines (see [`crate::access_log`]); hosts that
    /// keep no log drop it.
    fn log(&self, _line: &str) {}
}

/// For hosts that reach no vault: every request is refused.
pub struct NoOutbound;

impl Outbound for NoOutbound {
    fn send(&self, req: OutRequest) -> Result<OutResponse, NetError> {
        Err(NetError::Denied(format!(
            "no outbound HTTP here ({})",
            origin(&req.url)
        )))
    }
    fn pause(&self, _ms: i64) {}
}

/// `scheme://host[:port]` of a URL, for messages that must not carry paths or queries.
pub fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    match url[after..].find('/') {
        Some(i) => &url[..after + i],
        None => url,
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_and_origin() {
        assert_eq!(form_value("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
        assert_eq!(
            origin("https://v.example.com/api/public?x"),
            "https://v.example.com"
        );
        assert_eq!(origin("http://127.0.0.1:80"), "http://127.0.0.1:80");
    }
}
