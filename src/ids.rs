//! Typed identifiers and the host capabilities that make them: a clock and an id source.

use crate::caseless::UserName;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Milliseconds since the Unix epoch, from the host.
pub trait Clock {
    /// Now.
    fn now_ms(&self) -> i64;
}

/// Fresh random resource ids (UUID v4 strings), from the host.
pub trait Ids {
    /// A new id.
    fn new_id(&self) -> String;
}

/// A clock that only moves when told to: for tests and benchmarks.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock at `ms`.
    pub fn at(ms: i64) -> Self {
        ManualClock(AtomicI64::new(ms))
    }
    /// Moves the clock forward.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Sequential UUID-shaped ids: for tests and benchmarks.
#[derive(Debug, Default)]
pub struct SeqIds(AtomicU64);

impl Ids for SeqIds {
    fn new_id(&self) -> String {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        format!("00000000-0000-4000-8000-{n:012x}")
    }
}

/// Parses a UUID in its 8-4-4-4-12 hex form and returns it lower-cased.
pub fn parse_uuid(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    for (i, c) in b.iter().enumerate() {
        let dash = matches!(i, 8 | 13 | 18 | 23);
        if dash != (*c == b'-') || (!dash && !c.is_ascii_hexdigit()) {
            return None;
        }
    }
    Some(s.to_ascii_lowercase())
}

/// Formats 16 bytes as a UUID.
pub fn format_uuid(b: &[u8; 16]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        hex.get(0..8).unwrap_or(""),
        hex.get(8..12).unwrap_or(""),
        hex.get(12..16).unwrap_or(""),
        hex.get(16..20).unwrap_or(""),
        hex.get(20..32).unwrap_or("")
    )
}

/// An organization id: a lower-cased UUID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgId(String);

impl OrgId {
    /// Parses a UUID.
    pub fn parse(s: &str) -> Option<Self> {
        parse_uuid(s).map(OrgId)
    }
    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for OrgId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of the user with this `userName` in this organization: a UUID (version 8,
/// RFC 9562) derived from the organization, the case-folded name and a counter that is
/// non-zero only when a renamed user already holds an earlier derivation. Two concurrent
/// creates of one name therefore write the same record.
pub fn user_id(org: &OrgId, user_name: UserName<'_>, n: u32) -> String {
    let mut h = Sha256::new();
    h.update(b"scim-edge/user\0");
    h.update(org.as_str().as_bytes());
    h.update(b"\0");
    h.update(user_name.key().as_bytes());
    h.update(b"\0");
    h.update(n.to_be_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(d.get(..16).unwrap_or(&[0u8; 16]));
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    format_uuid(&b)
}

/// A store-key-safe digest of a user-controlled value (base64url SHA-256).
pub fn key_digest(value: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_parsing() {
        assert_eq!(
            parse_uuid("4D2C1D8E-0000-4000-8000-0000000000AB").as_deref(),
            Some("4d2c1d8e-0000-4000-8000-0000000000ab")
        );
        assert!(parse_uuid("010101001010101011001010101011").is_none());
        assert!(parse_uuid("4d2c1d8e-0000-4000-8000-0000000000a").is_none());
        assert!(parse_uuid("4d2c1d8e+0000-4000-8000-0000000000ab").is_none());
    }

    #[test]
    fn derived_ids_are_stable_case_insensitive_and_org_scoped() {
        let a = OrgId::parse("11111111-1111-4111-8111-111111111111").unwrap();
        let b = OrgId::parse("22222222-2222-4222-8222-222222222222").unwrap();
        let name = |s| UserName::new(s);
        let id = user_id(&a, name("Ann@X.io"), 0);
        assert_eq!(id, user_id(&a, name("ann@x.io"), 0));
        assert_eq!(
            user_id(&a, name("STRASSE@x.io"), 0),
            user_id(&a, name("straße@x.io"), 0)
        );
        assert_ne!(id, user_id(&b, name("ann@x.io"), 0));
        assert_ne!(id, user_id(&a, name("ann@x.io"), 1));
        assert!(parse_uuid(&id).is_some());
        assert_eq!(id.as_bytes()[14], b'8');
    }
}
