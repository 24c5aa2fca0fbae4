//! Outbound HTTP as Spin grants it: a component may reach exactly what its
//! `allowed_outbound_hosts` entries allow, and every other request fails with
//! `HttpRequestDenied` before anything leaves the host.
//!
//! The entries and their matching follow Spin's `AllowedHostConfig`
//! (`crates/outbound-networking-config/src/allowed_hosts.rs` in `spinframework/spin`) and
//! its request check (`crates/factor-outbound-http/src/wasi.rs`):
//! - an entry is `<scheme>://<host>[:<port>]`, optionally with a trailing `/`; no path;
//!   `{{ name }}` templates are replaced by the application variable `name` first;
//! - scheme: a name, or `*` for any;
//! - host: a name or IP address (exact), `*` (any host), `*.suffix` (any name ending in
//!   `.suffix`, not `suffix` itself), `self` or `self.alt` (the app itself, reached as
//!   `http://self.alt/...`), or a CIDR range such as `127.0.0.0/8`;
//! - port: a number, `*`, a range `start..end` (`end` excluded, as Spin's `Range`), or,
//!   when left out, the scheme's well-known port (`http` 80, `https` 443; also
//!   `postgres`, `mysql`, `redis`, `mqtt`): an entry with no port whose scheme has none
//!   (`*://host`) is an error;
//! - a request matches when one entry allows its scheme, host and port; a request with
//!   no port has its scheme's default.
//!
//! Hosts compare case-insensitively (Spin's URL parser lower-cases the request's host;
//! here entries are lower-cased too).

use crate::backend::Tally;
use hyper::http as http_types;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// The host name a component uses to call its own app (Spin's `self.alt`).
pub const SELF_HOST: &str = "self.alt";

/// A component's parsed `allowed_outbound_hosts`; empty (the default) allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    entries: Vec<Entry>,
}

/// Outbound requests over a host's lifetime.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct OutboundCounts {
    /// Requests the allow list let through and the host sent (whatever came of them).
    pub sent: u64,
    /// Requests refused (not allowed, or a call to the app itself with no address).
    pub refused: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    scheme: SchemeRule,
    host: HostRule,
    port: PortRule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SchemeRule {
    Any,
    Is(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostRule {
    Any,
    /// `*.example.com`, kept as `.example.com`.
    Subdomain(String),
    /// `self` or `self.alt`: only calls to the app itself.
    ToSelf,
    Exact(String),
    /// An address range: the network address (host bits cleared) and its prefix length.
    Cidr(IpAddr, u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortRule {
    Any,
    Port(u16),
    /// `start..end`, `end` excluded.
    Range(u16, u16),
}

fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// A variable name as Spin takes it: lower-case letters, digits and single underscores,
/// starting with a letter and ending with a letter or digit.
fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
        && !name.contains("__")
}

/// Replaces every `{{ name }}` with the variable's value.
fn resolve_template(entry: &str, variables: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(entry.len());
    let mut rest = entry;
    while let Some(at) = rest.find("{{") {
        out.push_str(&rest[..at]);
        let (expr, tail) = rest[at + 2..]
            .split_once("}}")
            .ok_or("unmatched `{{` in template")?;
        let name = expr.trim();
        if !valid_name(name) {
            return Err(format!("invalid variable name {name:?}"));
        }
        let value = variables
            .get(name)
            .ok_or_else(|| format!("undefined variable {name:?}"))?;
        out.push_str(value);
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

impl SchemeRule {
    fn parse(scheme: &str) -> Result<Self, String> {
        if scheme == "*" {
            return Ok(SchemeRule::Any);
        }
        if scheme.starts_with('{') {
            return Err("scheme lists are not supported".into());
        }
        if scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(format!("scheme {scheme:?} is not a name"));
        }
        Ok(SchemeRule::Is(scheme.to_ascii_lowercase()))
    }

    fn allows(&self, scheme: &str) -> bool {
        match self {
            SchemeRule::Any => true,
            SchemeRule::Is(s) => s == scheme,
        }
    }
}

/// An address with all but its first `prefix` bits cleared, or `None` when the prefix
/// is longer than the address.
fn mask(addr: IpAddr, prefix: u8) -> Option<IpAddr> {
    match addr {
        IpAddr::V4(a) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            Some(IpAddr::V4((u32::from(a) & mask).into()))
        }
        IpAddr::V6(a) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            Some(IpAddr::V6((u128::from(a) & mask).into()))
        }
        _ => None,
    }
}

/// `addr/prefix`, host bits cleared, or `None` when `host` is not one.
fn parse_cidr(host: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = host.split_once('/')?;
    let prefix: u8 = prefix.parse().ok()?;
    Some((mask(addr.parse().ok()?, prefix)?, prefix))
}

impl HostRule {
    fn parse(host: &str) -> Result<Self, String> {
        let host = host.trim();
        if host == "*" {
            return Ok(HostRule::Any);
        }
        if host == "self" || host == SELF_HOST {
            return Ok(HostRule::ToSelf);
        }
        if host.starts_with('{') {
            return Err("host lists are not supported".into());
        }
        if let Some((net, prefix)) = parse_cidr(host) {
            return Ok(HostRule::Cidr(net, prefix));
        }
        if matches!(host.split('/').nth(1), Some(path) if !path.is_empty()) {
            return Err("a host must not have a path".into());
        }
        if let Some(domain) = host.strip_prefix("*.") {
            if domain.contains('*') {
                return Err(format!(
                    "host {host:?}: a wildcard is allowed only as the first label"
                ));
            }
            let domain = domain.trim_end_matches('/');
            return Ok(HostRule::Subdomain(format!(
                ".{}",
                domain.to_ascii_lowercase()
            )));
        }
        if host.contains('*') {
            return Err(format!(
                "host {host:?}: a wildcard is allowed only as the first label"
            ));
        }
        let host = host.trim_end_matches('/');
        if host.is_empty() {
            return Err("no host".into());
        }
        Ok(HostRule::Exact(host.to_ascii_lowercase()))
    }

    /// Whether an absolute URL's host (lower-cased; IPv6 in brackets) is allowed.
    fn allows(&self, host: &str) -> bool {
        match self {
            HostRule::Any => true,
            HostRule::Subdomain(suffix) => host.ends_with(suffix.as_str()),
            HostRule::Exact(h) => h == host,
            HostRule::ToSelf => false,
            HostRule::Cidr(net, prefix) => {
                let bare = host.trim_start_matches('[').trim_end_matches(']');
                bare.parse::<IpAddr>()
                    .ok()
                    .and_then(|ip| mask(ip, *prefix))
                    .is_some_and(|masked| masked == *net)
            }
        }
    }
}

impl PortRule {
    fn parse(port: &str, scheme: &str) -> Result<Self, String> {
        if port.is_empty() {
            return well_known_port(&scheme.to_ascii_lowercase())
                .map(PortRule::Port)
                .ok_or_else(|| {
                    format!(
                        "no port, and the scheme {scheme:?} has no well-known port (name one, or `*`)"
                    )
                });
        }
        if port == "*" {
            return Ok(PortRule::Any);
        }
        if port.starts_with('{') {
            return Err("port lists are not supported".into());
        }
        let number = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| format!("port {port:?} is not a number"))
        };
        match port.split_once("..") {
            Some((start, end)) => Ok(PortRule::Range(number(start)?, number(end)?)),
            None => Ok(PortRule::Port(number(port)?)),
        }
    }

    fn allows(&self, port: u16) -> bool {
        match self {
            PortRule::Any => true,
            PortRule::Port(p) => *p == port,
            PortRule::Range(start, end) => (*start..*end).contains(&port),
        }
    }
}

impl Entry {
    /// Parses a resolved entry, as Spin's `AllowedHostConfig::parse`.
    fn parse(entry: &str) -> Result<Self, String> {
        let url = entry.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(match url {
                "*" | ":" | "" | "?" => "not an allowed outbound host: hosts take the form \
                    <scheme>://<host>[:<port>], with `*` wildcards for each (`*://*:*` allows \
                    everything)"
                    .to_string(),
                _ => "no scheme (such as `http://` or `*://`)".to_string(),
            });
        };
        let (host, rest) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match rest.split_once('/') {
            Some((_, path)) if !path.is_empty() => return Err("a path is not allowed".into()),
            Some((port, _)) => port,
            None => rest,
        };
        Ok(Entry {
            scheme: SchemeRule::parse(scheme)?,
            host: HostRule::parse(host)?,
            port: PortRule::parse(port, scheme)?,
        })
    }

    fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        self.scheme.allows(scheme)
            && self.host.allows(host)
            && port
                .or_else(|| well_known_port(scheme))
                .is_some_and(|p| self.port.allows(p))
    }
}

impl AllowedHosts {
    /// Parses `allowed_outbound_hosts` entries, each `{{ name }}` template replaced first
    /// by the variable `name` (Spin resolves them from the application's variables when
    /// the app loads). An entry naming an undefined variable, or that is not
    /// `<scheme>://<host>[:<port>]`, is an error naming the entry.
    pub fn parse<S: AsRef<str>>(
        entries: &[S],
        variables: &HashMap<String, String>,
    ) -> wasmtime::Result<Self> {
        if let [only] = entries {
            if only.as_ref().trim() == "insecure:allow-all" {
                wasmtime::bail!(
                    "allowed_outbound_hosts entry \"insecure:allow-all\" is not allowed: use \
                     \"*://*:*\" to allow all outbound traffic"
                );
            }
        }
        let entries = entries
            .iter()
            .map(|e| {
                let e = e.as_ref();
                resolve_template(e, variables)
                    .and_then(|resolved| Entry::parse(&resolved))
                    .map_err(|why| {
                        wasmtime::format_err!("allowed_outbound_hosts entry {e:?}: {why}")
                    })
            })
            .collect::<wasmtime::Result<_>>()?;
        Ok(AllowedHosts { entries })
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a request to an absolute URL (`scheme://authority[/...]`) is allowed.
    /// A URL to [`SELF_HOST`] asks [`allows_self`](Self::allows_self) instead; anything
    /// without a scheme and an authority is not allowed.
    pub fn allows(&self, url: &str) -> bool {
        url.parse::<http_types::Uri>()
            .is_ok_and(|uri| self.check(&uri) != Check::Denied)
    }

    /// Whether the component may call its own app (`http://self.alt/...`): an entry
    /// allowing `http` or `https` whose host is `self`, `self.alt` or `*`. Ports do not
    /// matter here, as in Spin.
    pub fn allows_self(&self) -> bool {
        self.entries.iter().any(|e| {
            (e.scheme.allows("http") || e.scheme.allows("https"))
                && matches!(e.host, HostRule::Any | HostRule::ToSelf)
        })
    }

    fn check(&self, uri: &http_types::Uri) -> Check {
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Check::Denied;
        };
        let host = authority.host().to_ascii_lowercase();
        if host == SELF_HOST {
            return if self.allows_self() {
                Check::ToSelf
            } else {
                Check::Denied
            };
        }
        let scheme = scheme.to_ascii_lowercase();
        if self
            .entries
            .iter()
            .any(|e| e.allows(&scheme, &host, authority.port_u16()))
        {
            Check::Allowed
        } else {
            Check::Denied
        }
    }

    fn extend(&mut self, other: AllowedHosts) {
        self.entries.extend(other.entries);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Allowed,
    ToSelf,
    Denied,
}

/// What all the requests of one host share: its allow list, where it listens (for calls
/// to the app itself) and its outbound counts.
#[derive(Debug, Default)]
pub(crate) struct Outbound {
    allowed: AllowedHosts,
    origin: OnceLock<SocketAddr>,
    sent: AtomicU64,
    refused: AtomicU64,
}

impl Outbound {
    pub(crate) fn new(allowed: AllowedHosts) -> Self {
        Outbound {
            allowed,
            ..Outbound::default()
        }
    }

    /// The allow list with more entries, the counts and origin kept.
    pub(crate) fn with_more(&self, more: AllowedHosts) -> Self {
        let mut allowed = self.allowed.clone();
        allowed.extend(more);
        let out = Outbound {
            allowed,
            origin: OnceLock::new(),
            sent: AtomicU64::new(self.sent.load(Ordering::Relaxed)),
            refused: AtomicU64::new(self.refused.load(Ordering::Relaxed)),
        };
        if let Some(origin) = self.origin.get() {
            let _ = out.origin.set(*origin);
        }
        out
    }

    pub(crate) fn allowed(&self) -> &AllowedHosts {
        &self.allowed
    }

    /// Records where the app listens, for calls to `self.alt` (the first address wins).
    pub(crate) fn set_origin(&self, addr: SocketAddr) {
        let _ = self.origin.set(addr);
    }

    pub(crate) fn counts(&self) -> OutboundCounts {
        OutboundCounts {
            sent: self.sent.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    /// Checks a request against the allow list, pointing a call to the app itself at
    /// where it listens.
    fn admit(&self, request: &mut http_types::Request<WasiBody>) -> Result<(), HttpError> {
        match self.allowed.check(request.uri()) {
            Check::Allowed => Ok(()),
            Check::Denied => Err(HttpError::HttpRequestDenied),
            Check::ToSelf => {
                let origin = self.origin.get().ok_or(HttpError::HttpRequestUriInvalid)?;
                let path = request
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_string();
                *request.uri_mut() = format!("http://{origin}{path}")
                    .parse()
                    .map_err(|_| HttpError::HttpRequestUriInvalid)?;
                let host = http_types::HeaderValue::from_str(&origin.to_string())
                    .map_err(|_| HttpError::HttpRequestUriInvalid)?;
                request.headers_mut().insert(http_types::header::HOST, host);
                Ok(())
            }
        }
    }
}

type IoFuture = Box<dyn std::future::Future<Output = Result<(), HttpError>> + Send>;
type SendFuture = Box<
    dyn std::future::Future<Output = Result<(http_types::Response<WasiBody>, IoFuture), HttpError>>
        + Send,
>;

/// One instance's `wasi:http` hooks: every outbound request is counted for its incoming
/// request's [`OUTBOUND_CALLS`](crate::OUTBOUND_CALLS) header, checked against the allow
/// list, and, when allowed, sent by wasmtime-wasi-http's default sender with the
/// request options' timeouts (connect, first byte, between bytes; 600 s each when the
/// guest sets none), over plain TCP for `http` and rustls with the web PKI roots for
/// `https`.
///
/// The hooks live in the instance's store, so requests the component makes after its
/// response was sent (post-response work) go through the same check.
pub(crate) struct OutboundHooks {
    outbound: Arc<Outbound>,
    tally: Arc<Tally>,
}

impl OutboundHooks {
    pub(crate) fn new(outbound: Arc<Outbound>, tally: Arc<Tally>) -> Self {
        OutboundHooks { outbound, tally }
    }
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        mut request: http_types::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: IoFuture,
    ) -> SendFuture {
        self.tally.outbound_call();
        match self.outbound.admit(&mut request) {
            Ok(()) => {
                self.outbound.sent.fetch_add(1, Ordering::Relaxed);
                wasmtime_wasi_http::default_hooks().send_request(request, options, fut)
            }
            Err(e) => {
                self.outbound.refused.fetch_add(1, Ordering::Relaxed);
                Box::new(async move { Err(e) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use std::io::{BufRead, BufReader, Write};
    use std::pin::Pin;
    use std::time::Duration;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn allowed(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(entries, &HashMap::new()).unwrap()
    }

    fn parse_err(entry: &str) -> String {
        format!(
            "{:#}",
            AllowedHosts::parse(&[entry], &HashMap::new()).unwrap_err()
        )
    }

    #[test]
    fn an_empty_list_refuses_everything() {
        let none = AllowedHosts::default();
        assert!(none.is_empty());
        for url in [
            "http://127.0.0.1/",
            "https://vault.example.com/",
            "http://self.alt/x",
        ] {
            assert!(!none.allows(url), "{url}");
        }
        assert!(!none.allows_self());
    }

    #[test]
    fn a_missing_port_is_the_schemes_default() {
        let a = allowed(&["https://vault.example.com", "http://plain.example.com/"]);
        assert!(a.allows("https://vault.example.com/api/x"));
        assert!(a.allows("https://vault.example.com:443/"));
        assert!(!a.allows("https://vault.example.com:8443/"));
        assert!(!a.allows("http://vault.example.com/"), "scheme differs");
        assert!(a.allows("http://plain.example.com"));
        assert!(a.allows("http://plain.example.com:80/"));
        assert!(!a.allows("http://plain.example.com:8080/"));
        assert!(!a.allows("https://plain.example.com/"));
        assert!(!a.allows("https://other.example.com/"));
    }

    #[test]
    fn explicit_ports_and_ranges() {
        let a = allowed(&["http://127.0.0.1:8080", "http://localhost:8000..8003"]);
        assert!(a.allows("http://127.0.0.1:8080/v"));
        assert!(!a.allows("http://127.0.0.1/v"));
        assert!(!a.allows("http://127.0.0.1:8081/v"));
        assert!(!a.allows("http://127.0.0.2:8080/v"));
        assert!(a.allows("http://localhost:8000/"));
        assert!(a.allows("http://localhost:8002/"));
        // Spin's range excludes its end.
        assert!(!a.allows("http://localhost:8003/"));
        assert!(!a.allows("http://localhost:7999/"));
    }

    #[test]
    fn wildcards_for_scheme_host_and_port() {
        let a = allowed(&["http://localhost:*", "*://*.example.com:443"]);
        assert!(a.allows("http://localhost:1/"));
        assert!(a.allows("http://localhost/"));
        assert!(a.allows("http://localhost:65535/"));
        assert!(!a.allows("https://localhost:3000/"));
        assert!(a.allows("https://a.example.com/"));
        assert!(a.allows("http://a.b.example.com:443/"));
        assert!(
            !a.allows("https://example.com/"),
            "the bare domain is no subdomain"
        );
        assert!(!a.allows("https://myexample.com/"));
        assert!(!a.allows("http://a.example.com/"), "port 80");
        let all = allowed(&["*://*:*"]);
        assert!(all.allows("http://anything:1/"));
        assert!(all.allows("https://x.y/"));
        assert!(all.allows_self());
    }

    #[test]
    fn hosts_compare_case_insensitively() {
        let a = allowed(&["HTTPS://Vault.Example.COM", "http://*.Example.ORG"]);
        assert!(a.allows("https://vault.example.com/"));
        assert!(a.allows("https://VAULT.example.com/"));
        assert!(a.allows("http://A.example.org/"));
    }

    #[test]
    fn ip_addresses_and_cidr_ranges() {
        let a = allowed(&["http://[::1]:8001", "*://10.1.0.0/16:80"]);
        assert!(a.allows("http://[::1]:8001/"));
        assert!(!a.allows("http://[::1]:8002/"));
        assert!(a.allows("http://10.1.200.3/"));
        assert!(a.allows("https://10.1.0.1:80/"));
        assert!(!a.allows("http://10.2.0.1/"));
        assert!(!a.allows("http://10.1.0.1:81/"));
        assert!(!a.allows("http://ten.example/"));
        let v6 = allowed(&["*://ff00::/8:80"]);
        assert!(v6.allows("http://[ff12::1]:80/"));
        assert!(!v6.allows("http://[fe80::1]:80/"));
    }

    #[test]
    fn self_allows_only_calls_to_the_app() {
        let a = allowed(&["http://self"]);
        assert!(a.allows_self());
        assert!(a.allows("http://self.alt/x"));
        assert!(!a.allows("http://self/x"));
        assert!(!a.allows("http://127.0.0.1/"));
        assert!(allowed(&["https://self.alt"]).allows_self());
        assert!(!allowed(&["redis://self"]).allows_self());
        assert!(!allowed(&["http://localhost:*"]).allows_self());
    }

    #[test]
    fn malformed_entries_are_errors_naming_them() {
        for (entry, why) in [
            ("vault.example.com", "no scheme"),
            ("vault.example.com:443", "no scheme"),
            ("*", "not an allowed outbound host"),
            ("", "not an allowed outbound host"),
            ("http://vault.example.com/api", "path"),
            ("http://vault.example.com:80/api", "path"),
            ("*://vault.example.com", "no well-known port"),
            ("http://vault.example.com:http", "not a number"),
            ("http://vault.example.com:1..x", "not a number"),
            ("http://a.*.example.com", "wildcard"),
            ("http://*foo.com", "wildcard"),
            ("ht-tp://x", "not a name"),
            ("{http,https}://x", "not supported"),
            ("http://[::1]", "not a number"),
            ("http://", "no host"),
            ("insecure:allow-all", "*://*:*"),
        ] {
            let e = parse_err(entry);
            assert!(e.contains(why), "{entry:?}: {e}");
            if !entry.is_empty() {
                assert!(e.contains(&format!("{entry:?}")), "{entry:?}: {e}");
            }
        }
    }

    #[test]
    fn templates_resolve_against_the_variables() {
        let v = vars(&[
            ("vault_host", "Vault.Example.com"),
            ("vault_port", "8443"),
            ("vault_origin", "http://127.0.0.1:9000"),
        ]);
        let a = AllowedHosts::parse(
            &[
                "https://{{ vault_host }}:{{vault_port}}",
                "{{ vault_origin }}",
            ],
            &v,
        )
        .unwrap();
        assert!(a.allows("https://vault.example.com:8443/x"));
        assert!(!a.allows("https://vault.example.com/x"));
        assert!(a.allows("http://127.0.0.1:9000/"));
        assert!(!a.allows("http://127.0.0.1:9001/"));
    }

    #[test]
    fn a_template_naming_an_undefined_or_invalid_variable_is_an_error() {
        let v = vars(&[("vault_host", "vault.example.com")]);
        for (entry, why) in [
            (
                "https://{{ vault_hots }}",
                "undefined variable \"vault_hots\"",
            ),
            ("https://{{ Vault_Host }}", "invalid variable name"),
            ("https://{{ vault__host }}", "invalid variable name"),
            ("https://{{ vault_host", "unmatched"),
        ] {
            let e = format!("{:#}", AllowedHosts::parse(&[entry], &v).unwrap_err());
            assert!(e.contains(why), "{entry}: {e}");
            assert!(e.contains(entry), "{entry}: {e}");
        }
        // A value that is no entry is an error too, naming the entry as written.
        let v = vars(&[("origin", "vault.example.com")]);
        let e = format!(
            "{:#}",
            AllowedHosts::parse(&["{{ origin }}"], &v).unwrap_err()
        );
        assert!(e.contains("{{ origin }}") && e.contains("no scheme"), "{e}");
    }

    // The hook, against a one-shot HTTP server on 127.0.0.1.

    /// Serves `n` connections: answers each request with `reply` (or never, when
    /// `None`), and hands back the request heads it read.
    fn fake_server(
        n: usize,
        reply: Option<&'static str>,
    ) -> (SocketAddr, std::thread::JoinHandle<Vec<String>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut heads = Vec::new();
            for _ in 0..n {
                let (conn, _) = listener.accept().unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                heads.push(head);
                match reply {
                    Some(r) => {
                        let mut conn = conn;
                        let _ = conn.write_all(r.as_bytes());
                    }
                    // Hold the connection without answering until the client gives up.
                    None => {
                        let _ = reader.read_line(&mut String::new());
                    }
                }
            }
            heads
        });
        (addr, t)
    }

    fn get(url: &str) -> http_types::Request<WasiBody> {
        let uri: http_types::Uri = url.parse().unwrap();
        let host = uri.authority().unwrap().to_string();
        http_types::Request::builder()
            .uri(uri)
            .header(http_types::header::HOST, host)
            .body(
                Empty::<Bytes>::new()
                    .map_err(|_| unreachable!())
                    .boxed_unsync(),
            )
            .unwrap()
    }

    fn hooks(entries: &[&str]) -> (OutboundHooks, Arc<Outbound>, Arc<Tally>) {
        let outbound = Arc::new(Outbound::new(allowed(entries)));
        let tally = Arc::new(Tally::default());
        (
            OutboundHooks::new(outbound.clone(), tally.clone()),
            outbound,
            tally,
        )
    }

    /// Sends one request through the hook; the status and body, or the error.
    async fn send(
        hooks: &mut OutboundHooks,
        request: http_types::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(u16, Vec<u8>), HttpError> {
        let fut = hooks.send_request(request, options, Box::new(async { Ok(()) }));
        let (resp, io) = Pin::from(fut).await?;
        let io = tokio::spawn(Pin::from(io));
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes().to_vec();
        let _ = io.await;
        Ok((status, body))
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello";

    #[test]
    fn an_allowed_request_is_sent_and_a_refused_one_never_leaves() {
        let (addr, server) = fake_server(1, Some(OK));
        let (mut h, outbound, tally) = hooks(&[&format!("http://127.0.0.1:{}", addr.port())]);
        let rt = runtime();
        let (status, body) = rt
            .block_on(send(
                &mut h,
                get(&format!("http://{addr}/deliver?x=1")),
                None,
            ))
            .unwrap();
        assert_eq!((status, body.as_slice()), (200, b"hello".as_slice()));
        let heads = server.join().unwrap();
        assert!(
            heads[0].starts_with("GET /deliver?x=1 HTTP/1.1\r\n"),
            "{heads:?}"
        );
        // Another port of the same address, or another address, is refused.
        for url in [
            format!("http://127.0.0.1:{}/", addr.port() + 1),
            format!("https://127.0.0.1:{}/", addr.port()),
            format!("http://localhost:{}/", addr.port()),
        ] {
            let e = rt.block_on(send(&mut h, get(&url), None)).unwrap_err();
            assert!(matches!(e, HttpError::HttpRequestDenied), "{url}: {e:?}");
        }
        assert_eq!(
            outbound.counts(),
            OutboundCounts {
                sent: 1,
                refused: 3
            }
        );
        let mut headers = hyper::HeaderMap::new();
        tally.stamp(&mut headers);
        assert_eq!(headers[crate::OUTBOUND_CALLS], "4");
    }

    #[test]
    fn the_guests_first_byte_timeout_is_honoured() {
        let (addr, server) = fake_server(1, None);
        let (mut h, outbound, _) = hooks(&["http://127.0.0.1:*"]);
        let options = RequestOptions {
            first_byte_timeout: Some(Duration::from_millis(200)),
            ..RequestOptions::default()
        };
        let started = std::time::Instant::now();
        let e = runtime()
            .block_on(send(&mut h, get(&format!("http://{addr}/")), Some(options)))
            .unwrap_err();
        assert!(
            matches!(e, HttpError::ConnectionReadTimeout),
            "{e:?} after {:?}",
            started.elapsed()
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(outbound.counts().sent, 1);
        drop(h);
        server.join().unwrap();
    }

    #[test]
    fn a_call_to_the_app_itself_goes_where_it_listens() {
        let (addr, server) = fake_server(1, Some(OK));
        let (mut h, outbound, _) = hooks(&["http://self"]);
        let rt = runtime();
        // No address yet: refused as a malformed URL, as Spin does without an origin.
        let e = rt
            .block_on(send(&mut h, get("http://self.alt/x"), None))
            .unwrap_err();
        assert!(matches!(e, HttpError::HttpRequestUriInvalid), "{e:?}");
        outbound.set_origin(addr);
        let (status, _) = rt
            .block_on(send(&mut h, get("http://self.alt/internal"), None))
            .unwrap();
        assert_eq!(status, 200);
        let heads = server.join().unwrap();
        assert!(
            heads[0].starts_with("GET /internal HTTP/1.1\r\n"),
            "{heads:?}"
        );
        assert!(
            heads[0]
                .to_ascii_lowercase()
                .contains(&format!("host: {addr}\r\n")),
            "{heads:?}"
        );
        assert_eq!(
            outbound.counts(),
            OutboundCounts {
                sent: 1,
                refused: 1
            }
        );
    }
}
