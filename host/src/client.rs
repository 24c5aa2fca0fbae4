//! A minimal blocking HTTP/1.1 client for tests and benchmarks (one request per call,
//! or several on one kept-alive connection), so tests need no HTTP client crate.
//!
//! Every read and write waits at most [`TIMEOUT`], so a server that stops answering
//! fails the caller with an error naming it rather than hanging it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Response header: key-value calls the request made.
pub const KV_CALLS: &str = "x-kv-calls";
/// Response header: keys the request read (`get`, `exists`, each key of a `get-many`).
pub const KV_READS: &str = "x-kv-reads";
/// Response header: keys the request wrote (`set`, `delete`, `increment`, each key of a
/// `set-many` or `delete-many`).
pub const KV_WRITES: &str = "x-kv-writes";

/// Response header: outbound HTTP requests the request made (allowed or refused).
pub const OUTBOUND_CALLS: &str = "x-outbound-calls";

/// One request's key-value traffic, as its response reports it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KvCounts {
    /// Host calls, whatever their outcome (a batch is one).
    pub calls: u64,
    /// Keys read.
    pub reads: u64,
    /// Keys written or deleted.
    pub writes: u64,
}

/// The longest a connect, read or write may wait: generous for a debug build under
/// load, short enough that a stuck server fails a test instead of hanging CI.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Gives a stream [`TIMEOUT`] on reads and writes.
pub fn set_timeouts(s: &TcpStream) -> std::io::Result<()> {
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))
}

/// Turns a timed-out socket operation into an error that says what happened.
fn explain(e: std::io::Error, s: &TcpStream, doing: &str) -> std::io::Error {
    if matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ) {
        let peer = s
            .peer_addr()
            .map_or_else(|_| "the server".to_string(), |a| a.to_string());
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "{peer} stalled: nothing for {} s while {doing}",
                TIMEOUT.as_secs()
            ),
        )
    } else {
        e
    }
}

/// A response as received.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The key-value traffic the test host reports for the request, when all three
    /// `x-kv-*` headers are present and decimal.
    pub fn kv_counts(&self) -> Option<KvCounts> {
        let n = |name| self.header(name).and_then(|v| v.parse().ok());
        Some(KvCounts {
            calls: n(KV_CALLS)?,
            reads: n(KV_READS)?,
            writes: n(KV_WRITES)?,
        })
    }

    /// The outbound HTTP requests the test host reports for the request
    /// ([`OUTBOUND_CALLS`]), when present and decimal.
    pub fn outbound_calls(&self) -> Option<u64> {
        self.header(OUTBOUND_CALLS).and_then(|v| v.parse().ok())
    }
}

/// A kept-alive connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    /// Connects.
    pub fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let s = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        s.set_nodelay(true)?;
        set_timeouts(&s)?;
        Ok(Conn {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        })
    }

    /// Sends one request and reads its response.
    pub fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Reply> {
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        self.writer
            .write_all(head.as_bytes())
            .and_then(|()| self.writer.write_all(body))
            .map_err(|e| explain(e, &self.writer, "sending the request"))?;
        read_reply(&mut self.reader)
    }
}

/// Reads one response (a content-length or chunked body) off a connection, for callers
/// that write their own requests. A stream with no read timeout gets [`TIMEOUT`].
pub fn read_reply(reader: &mut BufReader<TcpStream>) -> std::io::Result<Reply> {
    if reader.get_ref().read_timeout()?.is_none() {
        reader.get_ref().set_read_timeout(Some(TIMEOUT))?;
    }
    read_reply_inner(reader).map_err(|e| explain(e, reader.get_ref(), "reading the response"))
}

fn read_reply_inner(reader: &mut BufReader<TcpStream>) -> std::io::Result<Reply> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(&line))?;
    let headers = read_headers(reader)?;
    let body = read_body(reader, &headers)?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Reads the header lines after a start line, up to the blank line; names lower-cased.
pub fn read_headers(reader: &mut BufReader<TcpStream>) -> std::io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            return Ok(headers);
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
}

/// Whether headers (as [`read_headers`] gives them) frame a chunked body.
pub fn is_chunked(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
}

/// Reads the body its headers frame: chunked, or `content-length` bytes, else none.
pub fn read_body(
    reader: &mut BufReader<TcpStream>,
    headers: &[(String, String)],
) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if is_chunked(headers) {
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim(), 16).map_err(|_| bad(&line))?;
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                return Ok(body);
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    if let Some(n) = length {
        body.resize(n, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(body)
}

fn bad(line: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("malformed HTTP line: {line:?}"),
    )
}

/// One request on a fresh connection.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Reply> {
    Conn::open(addr)?.send(method, target, headers, body)
}
