//! Spin's wasi:http plumbing, shared by the Spin component and the edge gate: the
//! incoming request as the core's [`Request`], a core [`Response`] sent back, and
//! outbound requests over the outgoing handler (blocking: the core is synchronous).

use crate::http::{Request, Response};
use crate::vault::net::{NetError, OutRequest, OutResponse, Outbound};
use spin_sdk::http::{
    ErrorCode, Fields, IncomingRequest, Method, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam, Scheme,
};
use spin_sdk::wit::wasi::http0_2_0::{outgoing_handler, types::RequestOptions};

/// The request as the core sees it, body and all: see [`read_body`] for `limit`.
pub fn read_request(req: &IncomingRequest, limit: usize) -> Request {
    let mut core = read_head(req);
    core.body = read_body(req, limit);
    core
}

/// The request's method, target and headers, its body left unread.
pub fn read_head(req: &IncomingRequest) -> Request {
    let method = match req.method() {
        Method::Get => "GET".to_string(),
        Method::Post => "POST".to_string(),
        Method::Put => "PUT".to_string(),
        Method::Patch => "PATCH".to_string(),
        Method::Delete => "DELETE".to_string(),
        Method::Head => "HEAD".to_string(),
        Method::Options => "OPTIONS".to_string(),
        Method::Connect => "CONNECT".to_string(),
        Method::Trace => "TRACE".to_string(),
        Method::Other(m) => m,
    };
    let target = req.path_with_query().unwrap_or_else(|| "/".into());
    let mut core = Request::new(&method, &target);
    for (name, value) in req.headers().entries() {
        if let Ok(v) = String::from_utf8(value) {
            core.headers.push((name, v));
        }
    }
    core
}

/// The request's body, read up to `limit` bytes and one more, so a caller can tell a
/// body over its limit without holding all of it.
pub fn read_body(req: &IncomingRequest, limit: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Ok(body) = req.consume() {
        if let Ok(stream) = body.stream() {
            bytes = read_all(&stream, limit.saturating_add(1));
        }
        drop(body);
    }
    bytes
}

fn read_all(stream: &wasi::io::streams::InputStream, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        let want = (limit - out.len()).min(64 * 1024);
        let Ok(chunk) = stream.blocking_read(want as u64) else {
            break;
        };
        out.extend_from_slice(&chunk);
    }
    out
}

fn write_all(stream: &wasi::io::streams::OutputStream, mut bytes: &[u8]) -> bool {
    // blocking-write-and-flush takes at most 4096 bytes a call.
    while !bytes.is_empty() {
        let n = bytes.len().min(4096);
        if stream.blocking_write_and_flush(&bytes[..n]).is_err() {
            return false;
        }
        bytes = &bytes[n..];
    }
    true
}

/// The host's header fields; `None` when it refuses one (a forbidden or malformed name).
fn fields(headers: &[(String, String)]) -> Option<Fields> {
    let list: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    Fields::from_list(&list).ok()
}

/// Sends the whole response and ends its body, so the client has it before any work
/// done after it.
pub fn respond(out: ResponseOutparam, r: Response) {
    let resp = OutgoingResponse::new(fields(&r.headers).unwrap_or_else(Fields::new));
    let _ = resp.set_status_code(r.status);
    let Ok(body) = resp.body() else {
        return;
    };
    out.set(resp);
    if let Ok(stream) = body.write() {
        write_all(&stream, &r.body);
        drop(stream);
    }
    let _ = OutgoingBody::finish(body, None);
}

/// Outbound HTTP over wasi:http's outgoing handler, blocking: the core is synchronous.
pub struct SpinOutbound;

impl Outbound for SpinOutbound {
    fn send(&self, req: OutRequest) -> Result<OutResponse, NetError> {
        let (scheme, rest) = match req.url.split_once("://") {
            Some(("https", r)) => (Scheme::Https, r),
            Some(("http", r)) => (Scheme::Http, r),
            _ => return Err(NetError::Failed("not an http(s) URL".into())),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let headers = fields(&req.headers)
            .ok_or_else(|| NetError::Failed("a header could not be sent".into()))?;
        let request = OutgoingRequest::new(headers);
        let method = match req.method.as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "HEAD" => Method::Head,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_string()),
        };
        let set = request.set_method(&method).is_ok()
            && request.set_scheme(Some(&scheme)).is_ok()
            && request.set_authority(Some(authority)).is_ok()
            && request.set_path_with_query(Some(path)).is_ok();
        if !set {
            return Err(NetError::Failed("the request could not be built".into()));
        }
        let body = request
            .body()
            .map_err(|()| NetError::Failed("no request body".into()))?;
        let options = RequestOptions::new();
        let ns = u64::try_from(req.timeout_ms)
            .unwrap_or(10_000)
            .saturating_mul(1_000_000);
        let _ = options.set_connect_timeout(Some(ns));
        let _ = options.set_first_byte_timeout(Some(ns));
        let _ = options.set_between_bytes_timeout(Some(ns));
        // Sent first, the body streamed after: the host buffers only a few chunks of a
        // body whose request has not been handed over.
        let pending = outgoing_handler::handle(request, Some(options)).map_err(net_error)?;
        // A refused request closes the body's stream: its answer says why.
        let mut wrote = true;
        if let Ok(stream) = body.write() {
            wrote = write_all(&stream, &req.body);
            drop(stream);
        }
        let finished = OutgoingBody::finish(body, None);
        pending.subscribe().block();
        let resp = match pending.get() {
            Some(Ok(Ok(r))) => r,
            Some(Ok(Err(e))) => return Err(net_error(e)),
            _ => return Err(NetError::Failed("no response".into())),
        };
        finished.map_err(net_error)?;
        if !wrote {
            return Err(NetError::Failed(
                "the request body could not be sent".into(),
            ));
        }
        let status = resp.status();
        let headers = resp
            .headers()
            .entries()
            .into_iter()
            .filter_map(|(k, v)| {
                String::from_utf8(v)
                    .ok()
                    .map(|v| (k.to_ascii_lowercase(), v))
            })
            .collect();
        let mut bytes = Vec::new();
        if let Ok(b) = resp.consume() {
            if let Ok(stream) = b.stream() {
                bytes = read_all(&stream, usize::MAX);
            }
            drop(b);
        }
        Ok(OutResponse {
            status,
            headers,
            body: bytes,
        })
    }

    fn pause(&self, ms: i64) {
        std::thread::sleep(std::time::Duration::from_millis(
            u64::try_from(ms).unwrap_or(0),
        ));
    }
}

fn net_error(e: ErrorCode) -> NetError {
    match e {
        ErrorCode::HttpRequestDenied => {
            NetError::Denied("the origin is not an allowed outbound host".into())
        }
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => NetError::Timeout,
        other => NetError::Failed(format!("{other:?}")),
    }
}
