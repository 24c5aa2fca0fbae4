//! Queued faults and the down switch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use scim_edge_fakevault::{Fault, Mode};
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn status_faults_apply_to_the_next_requests_then_stop() {
    let v = vault(Mode::Bitwarden);
    let tok = token(&v);
    v.fault(Fault::Status(500, 2));
    v.fault(Fault::Status(429, 1));
    let body = json!({"email": "a@example.com", "type": 2});
    let statuses: Vec<u16> = (0..4)
        .map(|_| api(&v, &tok, "POST", "/public/members", Some(body.clone())).status)
        .collect();
    assert_eq!(statuses, [500, 500, 429, 200]);
    assert_eq!(v.members().len(), 1, "a faulted request changes nothing");
    let s = v.stats();
    assert_eq!((s.count("POST /api/public/members"), s.writes), (4, 1));

    // Faults apply before routing, to any route, the token endpoint included.
    v.fault(Fault::Status(502, 1));
    let f = good_form(&v);
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = token_request(&v, &pairs);
    assert_eq!((r.status, r.body.as_str()), (502, ""));

    v.fault(Fault::Status(500, 5));
    v.clear_faults();
    assert_eq!(api(&v, &tok, "GET", "/public/members", None).status, 200);
}

#[test]
fn slow_then_normal() {
    let v = vault(Mode::Bitwarden);
    let tok = token(&v);
    v.fault(Fault::Slow(Duration::from_millis(300), 1));
    let t = Instant::now();
    assert_eq!(api(&v, &tok, "GET", "/public/members", None).status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    let t = Instant::now();
    assert_eq!(api(&v, &tok, "GET", "/public/members", None).status, 200);
    assert!(t.elapsed() < Duration::from_millis(300));
}

#[test]
fn drop_closes_without_an_answer() {
    let v = vault(Mode::Bitwarden);
    let tok = token(&v);
    v.fault(Fault::Drop(1));
    let auth = format!("Bearer {tok}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let body = br#"{"email":"d@example.com","type":2}"#;
    assert!(send(&v.url(), "POST", "/api/public/members", &headers, body).is_none());
    assert!(v.members().is_empty());
    assert_eq!(
        send(&v.url(), "POST", "/api/public/members", &headers, body)
            .unwrap()
            .status,
        200
    );
    assert_eq!(v.stats().count("POST /api/public/members"), 2);
}

#[test]
fn down_answers_503_to_everything() {
    let v = vault(Mode::Vaultwarden);
    let tok = token(&v);
    v.fault(Fault::Status(500, 1));
    v.set_down(true);
    let r = api(
        &v,
        &tok,
        "POST",
        "/public/organization/import",
        Some(json!({})),
    );
    assert_eq!((r.status, r.body.as_str()), (503, ""));
    let r = send(&v.url(), "GET", "/anything", &[], b"").unwrap();
    assert_eq!(r.status, 503);
    v.set_down(false);
    // The queued fault waited for the vault to be up.
    assert_eq!(
        send(&v.url(), "GET", "/anything", &[], b"").unwrap().status,
        500
    );
    assert_eq!(
        send(&v.url(), "GET", "/anything", &[], b"").unwrap().status,
        404
    );
}

#[test]
fn drop_stops_the_server() {
    let v = vault(Mode::Bitwarden);
    let addr = v.url().trim_start_matches("http://").to_string();
    drop(v);
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn a_chunked_body_is_refused_with_411_and_changes_nothing() {
    use std::io::{Read, Write};
    let v = vault(Mode::Bitwarden);
    let tok = token(&v);
    let addr = v.url().trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let body = r#"{"email":"a@example.com","type":2}"#;
    write!(
        s,
        "POST /api/public/members HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 411"), "{answer}");
    assert!(v.members().is_empty());
    assert_eq!(v.stats().chunked, 1);
}
