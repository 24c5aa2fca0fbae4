//! The HTTP server: its thread and runtime, the connection loop, and the steps every
//! request goes through (counting, down, faults, routing, rate limit, authentication).

use crate::limiter::retry_after_s;
use crate::state::Shared;
use crate::{admin, bitwarden, token, vaultwarden, Fault, Mode};
use hyper::body::{Body as _, Incoming};
use hyper::{Request, Response};
use serde_json::Value;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// An answer, before it becomes a hyper response.
pub(crate) struct Reply {
    pub status: u16,
    /// JSON text, or empty for an empty body.
    pub body: String,
    pub retry_after: Option<u64>,
}

impl Reply {
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            body: String::new(),
            retry_after: None,
        }
    }

    pub fn json(status: u16, value: &Value) -> Reply {
        Reply {
            status,
            body: value.to_string(),
            retry_after: None,
        }
    }

    fn into_response(self) -> Response<String> {
        let mut b = Response::builder().status(self.status);
        if !self.body.is_empty() {
            b = b.header("content-type", "application/json; charset=utf-8");
        }
        if let Some(s) = self.retry_after {
            b = b.header("retry-after", s.to_string());
        }
        let status = self.status;
        b.body(self.body).unwrap_or_else(|_| {
            let mut r = Response::new(String::new());
            *r.status_mut() = hyper::StatusCode::from_u16(status)
                .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
            r
        })
    }
}

/// A parsed request as the handlers see it.
pub(crate) struct Req {
    pub method: String,
    /// The path without the query.
    pub path: String,
    pub content_type: String,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "DELETE" | "PATCH")
    }
}

/// Whether the client's version is recorded for this path ([`crate::Stats::client_versions`]):
/// the token endpoint and the routes under `/api/` outside the public API.
fn records_client_version(path: &str) -> bool {
    path == "/identity/connect/token"
        || (path.starts_with("/api/") && !path.starts_with("/api/public/"))
}

/// The error that makes hyper close the connection without an answer.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fault: connection dropped")
    }
}

impl std::error::Error for DropConnection {}

/// The server thread; `stop` ends it and waits for it.
pub(crate) struct Handle {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Handle {
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Binds `127.0.0.1:0` now (so the port is known and connectable on return) and serves
/// on a new thread with a current-thread runtime; dropping that runtime at the end
/// closes every connection.
pub(crate) fn spawn(shared: Arc<Shared>) -> io::Result<(SocketAddr, Handle)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (tx, rx) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("fakevault".to_string())
        .spawn(move || {
            rt.block_on(async move {
                if let Ok(listener) = TcpListener::from_std(listener) {
                    serve(listener, shared, rx).await;
                }
            });
        })?;
    Ok((
        addr,
        Handle {
            stop: Some(tx),
            thread: Some(thread),
        },
    ))
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let started = Instant::now();
    loop {
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(shared.clone(), started, req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(Io(stream), svc)
                .await;
        });
    }
}

async fn handle(
    shared: Arc<Shared>,
    started: Instant,
    req: Request<Incoming>,
) -> Result<Response<String>, DropConnection> {
    let (parts, body) = req.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let agent = header("user-agent").unwrap_or_default();
    let client_version = header("bitwarden-client-version").unwrap_or_default();
    let req = Req {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        content_type: header("content-type").unwrap_or_default(),
        authorization: header("authorization"),
        body: read_body(body).await,
    };

    let fault = {
        let mut st = shared.lock();
        let key = format!("{} {}", req.method, pattern(&req.path));
        *st.stats.requests.entry(key).or_insert(0) += 1;
        st.stats.chunked += u64::from(chunked);
        st.stats.user_agents.insert(agent);
        if records_client_version(&req.path) {
            st.stats.client_versions.insert(client_version);
        }
        // As front ends that take only bodies of a stated length do.
        if chunked {
            return Ok(Reply::empty(411).into_response());
        }
        if st.down {
            return Ok(Reply::empty(503).into_response());
        }
        next_fault(
            &mut st.faults,
            req.is_write() && req.path.starts_with("/api/"),
        )
    };
    match fault {
        Some(Fault::Status(code, _)) => return Ok(Reply::empty(code).into_response()),
        Some(Fault::Drop(_)) => return Err(DropConnection),
        Some(Fault::Slow(d, _)) => tokio::time::sleep(d).await,
        Some(Fault::Lost(_)) | None => {}
    }

    let now_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let reply = route(&shared, &req, now_ms);
    let mut st = shared.lock();
    if reply.status == 429 {
        st.stats.rate_limited += 1;
    } else if req.is_write() && req.path.starts_with("/api/") && (200..300).contains(&reply.status)
    {
        st.stats.writes += 1;
    }
    if matches!(fault, Some(Fault::Lost(_))) {
        return Err(DropConnection);
    }
    Ok(reply.into_response())
}

/// Takes one use of the first queued fault.
fn next_fault(faults: &mut std::collections::VecDeque<Fault>, api_write: bool) -> Option<Fault> {
    loop {
        let front = faults.front_mut()?;
        let n = match front {
            Fault::Lost(_) if !api_write => return None,
            Fault::Status(_, n) | Fault::Slow(_, n) | Fault::Drop(n) | Fault::Lost(n) => n,
        };
        if *n == 0 {
            faults.pop_front();
            continue;
        }
        *n -= 1;
        let done = *n == 0;
        let f = front.clone();
        if done {
            faults.pop_front();
        }
        return Some(f);
    }
}

fn route(shared: &Shared, req: &Req, now_ms: u64) -> Reply {
    if req.path == "/identity/connect/token" {
        return match req.method.as_str() {
            "POST" => token::handle(shared, req, now_ms),
            _ => Reply::empty(405),
        };
    }
    if let Some(rest) = req.path.strip_prefix("/api/public/") {
        return match shared.opts.mode {
            Mode::Bitwarden => bitwarden::handle(shared, req, rest, now_ms),
            Mode::Vaultwarden => vaultwarden::handle(shared, req, rest),
        };
    }
    match req.path.strip_prefix("/api/") {
        // The administrator's routes: the same in both modes, never rate limited.
        Some(rest) => admin::handle(shared, req, rest),
        None => Reply::empty(404),
    }
}

/// A 429 for a limiter's wait, with `Retry-After` when configured.
pub(crate) fn too_many(shared: &Shared, wait_ms: u64) -> Reply {
    let mut r = Reply::empty(429);
    if shared.opts.limits.retry_after {
        r.retry_after = Some(retry_after_s(wait_ms));
    }
    r
}

/// The path with every GUID segment written `{id}`, for [`crate::Stats::requests`].
fn pattern(path: &str) -> String {
    path.split('/')
        .map(|s| if is_guid(s) { "{id}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether `s` is a GUID in its usual 8-4-4-4-12 hex form.
pub(crate) fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

async fn read_body(mut body: Incoming) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            Err(_) => break,
        }
    }
    out
}

/// A tokio TCP stream as hyper's I/O traits.
struct Io(TcpStream);

impl hyper::rt::Read for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut tmp = [0u8; 8192];
        let n = buf.remaining().min(tmp.len());
        let mut rb = ReadBuf::new(&mut tmp[..n]);
        match Pin::new(&mut self.0).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                buf.put_slice(rb.filled());
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert_eq!(
            pattern("/api/public/members/3f6b2a5e-7c1d-4e8f-9a0b-1c2d3e4f5a6b/revoke"),
            "/api/public/members/{id}/revoke"
        );
        assert_eq!(
            pattern("/identity/connect/token"),
            "/identity/connect/token"
        );
        assert!(!is_guid("3f6b2a5e-7c1d-4e8f-9a0b-1c2d3e4f5a6"));
    }

    #[test]
    fn faults_in_order() {
        let mut q = std::collections::VecDeque::from([
            Fault::Drop(0),
            Fault::Status(500, 2),
            Fault::Drop(1),
        ]);
        assert_eq!(next_fault(&mut q, false), Some(Fault::Status(500, 1)));
        assert_eq!(next_fault(&mut q, false), Some(Fault::Status(500, 0)));
        assert_eq!(next_fault(&mut q, false), Some(Fault::Drop(0)));
        assert_eq!(next_fault(&mut q, false), None);
    }

    #[test]
    fn a_lost_answer_waits_for_a_write() {
        let mut q = std::collections::VecDeque::from([Fault::Lost(1)]);
        assert_eq!(next_fault(&mut q, false), None);
        assert_eq!(next_fault(&mut q, true), Some(Fault::Lost(0)));
        assert_eq!(next_fault(&mut q, true), None);
    }
}
