//! The transport-neutral request and response (SCIM JSON, or an asset with its own
//! content type), and the small parsing helpers both adapters rely on: query strings,
//! headers, JSON bodies with limits.

use crate::error::{ErrorKind, Result, ScimError};
use crate::filter::get_ci;
use serde_json::Value;

/// The SCIM media type.
pub const SCIM_JSON: &str = "application/scim+json";

/// A request as a host hands it over.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Raw query string, without `?`.
    pub query: String,
    /// Headers in arrival order.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Request {
    /// A request from a method and a path that may carry a query string.
    pub fn new(method: &str, path_and_query: &str) -> Self {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Request {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets a JSON body.
    pub fn json(mut self, body: &Value) -> Self {
        self.body = body.to_string().into_bytes();
        self
    }

    /// Every value of a header, case-insensitively by name.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        header_values(&self.headers, name)
    }

    /// The first value of a header.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// A response for the host to send.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// A cause for the host's log (never sent to the client).
    pub cause: Option<String>,
}

impl Response {
    /// A JSON response with the SCIM content type.
    pub fn json(status: u16, body: &Value) -> Self {
        Response {
            status,
            headers: vec![("content-type".into(), SCIM_JSON.into())],
            body: body.to_string().into_bytes(),
            cause: None,
        }
    }

    /// A response that is not SCIM (a page, a script, a style sheet): the content type
    /// is the caller's, where [`Response::json`] always says `application/scim+json`.
    pub fn asset(status: u16, content_type: &str, body: &[u8]) -> Self {
        Response {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.to_vec(),
            cause: None,
        }
    }

    /// An error response.
    pub fn error(e: &ScimError) -> Self {
        let mut r = Response::json(e.status(), &e.to_json());
        r.cause = e.log_cause().map(str::to_string);
        if e.kind() == ErrorKind::Unauthorized {
            r.headers
                .push(("www-authenticate".into(), "Bearer realm=\"scim\"".into()));
        }
        r
    }

    /// The first value of a header.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The body as JSON (`Null` when empty or not JSON).
    pub fn body_json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Every value of a header in a list of pairs, case-insensitively by name.
pub fn header_values<'h>(
    headers: &'h [(String, String)],
    name: &'h str,
) -> impl Iterator<Item = &'h str> + 'h {
    headers
        .iter()
        .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The first value of a header in a list of pairs.
pub fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The value of one hex digit.
pub(crate) fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Percent-decodes a query component (`+` is a space). Malformed escapes are kept as
/// written: clients such as Okta's test runner send raw spaces and quotes.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'+' => out.push(b' '),
            b'%' => match (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            _ => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a query string into decoded pairs.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// How deeply a JSON text nests, without parsing it (so a hostile body cannot make the
/// parser recurse).
pub fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// The 413 for a body of `size` bytes over `max`.
pub fn too_large(size: usize, max: usize) -> ScimError {
    ScimError::new(
        ErrorKind::PayloadTooLarge,
        format!("The request body is {size} bytes; the maximum is {max}"),
    )
}

/// Refuses (415) a request `Content-Type` that is not JSON; none at all is accepted.
pub fn check_json_type(content_type: Option<&str>) -> Result<()> {
    match content_type {
        Some(ct) if !is_json_type(ct) => Err(ScimError::new(
            ErrorKind::UnsupportedMediaType,
            format!("Content-Type '{ct}' is not supported; send application/scim+json"),
        )),
        _ => Ok(()),
    }
}

/// Refuses (400 `invalidValue`) a request message whose `schemas` does not list `urn`,
/// in any case. A message without `schemas` passes unless they are `required`.
pub fn check_schemas(body: &Value, urn: &str, required: bool) -> Result<()> {
    let listed = match get_ci(body, "schemas") {
        None => !required,
        Some(s) => s.as_array().is_some_and(|a| {
            a.iter()
                .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(urn)))
        }),
    };
    if listed {
        Ok(())
    } else {
        Err(ScimError::invalid_value(format!(
            "'schemas' must contain '{urn}'"
        )))
    }
}

/// Parses a request body: size, nesting and syntax checked, in that order.
pub fn parse_body(body: &[u8], max_payload: usize, max_depth: usize) -> Result<Value> {
    if body.len() > max_payload {
        return Err(too_large(body.len(), max_payload));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::invalid_syntax("The request body is empty"));
    }
    if json_depth(body) > max_depth {
        return Err(ScimError::invalid_syntax(format!(
            "The request body nests deeper than {max_depth} levels"
        )));
    }
    serde_json::from_slice(body)
        .map_err(|e| ScimError::invalid_syntax(format!("The request body is not valid JSON: {e}")))
}

/// Whether a `Content-Type` names JSON (`application/json`, `application/scim+json`, or
/// any `+json` type), parameters ignored.
pub fn is_json_type(ct: &str) -> bool {
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding_tolerates_raw_text() {
        assert_eq!(
            parse_query("filter=userName%20eq%20%22a%40b.c%22&count=2"),
            vec![
                ("filter".into(), "userName eq \"a@b.c\"".into()),
                ("count".into(), "2".into())
            ]
        );
        assert_eq!(
            parse_query("filter=userName eq \"x\"&startIndex=1"),
            vec![
                ("filter".into(), "userName eq \"x\"".into()),
                ("startIndex".into(), "1".into())
            ]
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("a+b%2Bc"), "a b+c");
    }

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(json_depth(br#"{"a":"[[[[{{{"}"#), 1);
        assert_eq!(json_depth(br#"[[[1]]]"#), 3);
        assert_eq!(json_depth(br#"{"a":"\"[["}"#), 1);
    }

    #[test]
    fn body_limits() {
        assert_eq!(parse_body(b"{}", 1, 8).unwrap_err().status(), 413);
        assert_eq!(
            parse_body(b"  ", 10, 8).unwrap_err().detail(),
            "The request body is empty"
        );
        assert_eq!(
            parse_body(b"[[[[1]]]]", 100, 3).unwrap_err().detail(),
            "The request body nests deeper than 3 levels"
        );
        let e = parse_body(b"{\"a\":", 100, 8).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidSyntax);
        assert!(is_json_type("application/scim+json; charset=utf-8"));
        assert!(is_json_type("Application/JSON"));
        assert!(!is_json_type("text/plain"));
    }

    #[test]
    fn a_message_must_list_its_schema_when_it_lists_any() {
        let urn = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
        let refused = Err(ScimError::invalid_value(format!(
            "'schemas' must contain '{urn}'"
        )));
        let listed = serde_json::json!({"Schemas": [urn.to_uppercase()]});
        assert_eq!(check_schemas(&listed, urn, true), Ok(()));
        let none = serde_json::json!({});
        assert_eq!(check_schemas(&none, urn, false), Ok(()));
        assert_eq!(check_schemas(&none, urn, true), refused);
        let other = serde_json::json!({"schemas": ["urn:x"]});
        assert_eq!(check_schemas(&other, urn, false), refused);
        let not_a_list = serde_json::json!({"schemas": urn});
        assert_eq!(check_schemas(&not_a_list, urn, false), refused);
    }

    #[test]
    fn assets_keep_their_own_content_type() {
        let page = Response::asset(200, "text/html; charset=utf-8", b"<p>hi</p>");
        assert_eq!(page.status, 200);
        assert_eq!(
            page.header_value("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(page.body, b"<p>hi</p>");
        assert_eq!(page.cause, None);
        let script = Response::asset(200, "text/javascript", b"x()");
        assert_eq!(script.header_value("Content-Type"), Some("text/javascript"));
        assert_eq!(script.headers.len(), 1);
    }
}
