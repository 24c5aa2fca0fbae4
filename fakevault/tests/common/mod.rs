//! A tiny blocking HTTP/1.1 client over `std::net::TcpStream` for the fake vault's tests.
#![allow(dead_code)]

use scim_edge_fakevault::{FakeVault, Limits, Mode, Options};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub const ORG: &str = "0b8f2c4e-1a3d-4e5f-8a9b-0c1d2e3f4a5b";
pub const SECRET: &str = "s3cret-api-key";

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request on a fresh connection; `None` if the server closed it unanswered.
pub fn send(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<Resp> {
    let addr = url.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    // A reset instead of a clean close also means "no answer".
    let _ = s.read_to_end(&mut raw);
    if raw.is_empty() {
        return None;
    }
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    Some(Resp {
        status,
        headers,
        body: body.to_string(),
    })
}

pub fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.replace('%', "%25").replace(' ', "+").replace('&', "%26")
            )
        })
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// A token request with these form fields.
pub fn token_request(v: &FakeVault, pairs: &[(&str, &str)]) -> Resp {
    let path = format!(
        "{}/connect/token",
        v.identity_url().trim_start_matches(&v.url())
    );
    send(
        &v.url(),
        "POST",
        &path,
        &[("content-type", "application/x-www-form-urlencoded")],
        &form(pairs),
    )
    .unwrap()
}

/// The form fields a correct client sends (device fields included, as Vaultwarden needs).
pub fn good_form(v: &FakeVault) -> Vec<(&'static str, String)> {
    let o = v.options();
    vec![
        ("grant_type", "client_credentials".to_string()),
        ("scope", "api.organization".to_string()),
        ("client_id", o.client_id()),
        ("client_secret", o.client_secret),
        (
            "device_identifier",
            "8d5f0b8e-0000-4000-8000-000000000001".to_string(),
        ),
        ("device_name", "scim-edge".to_string()),
        ("device_type", "21".to_string()),
    ]
}

pub fn token(v: &FakeVault) -> String {
    let f = good_form(v);
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = token_request(v, &pairs);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["access_token"].as_str().unwrap().to_string()
}

/// An API call under `/api` with a bearer token and an optional JSON body.
pub fn api(v: &FakeVault, tok: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
    let auth = format!("Bearer {tok}");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut headers = vec![("authorization", auth.as_str())];
    if !body.is_empty() {
        headers.push(("content-type", "application/json; charset=utf-8"));
    }
    send(
        &v.url(),
        method,
        &format!("/api{path}"),
        &headers,
        body.as_bytes(),
    )
    .unwrap()
}

pub fn vault(mode: Mode) -> FakeVault {
    FakeVault::start(Options {
        mode,
        org_id: ORG.to_string(),
        client_secret: SECRET.to_string(),
        limits: Limits::unlimited(),
        ..Options::default()
    })
}
