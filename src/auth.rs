//! Bearer keys: exact `Bearer <token>` parsing, SHA-256 hashes per organization (several
//! at once, for rotation), one constant-time comparison. Keys are never logged.

use crate::error::{ErrorKind, ScimError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A SHA-256 key hash.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyHash([u8; 32]);

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyHash({})", self.to_hex())
    }
}

impl KeyHash {
    /// Hashes a presented key.
    pub fn of(key: &str) -> Self {
        KeyHash(Sha256::digest(key.as_bytes()).into())
    }

    /// Parses exactly 64 hex digits (surrounding whitespace aside): no sign, no prefix.
    pub fn from_hex(s: &str) -> Option<Self> {
        let s = s.trim().as_bytes();
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
            *byte = (crate::http::hex(pair[0])? << 4) | crate::http::hex(pair[1])?;
        }
        Some(KeyHash(out))
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Compares two byte strings in time independent of where they differ. This is the one
/// comparison used for secrets in both deployments.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Extracts the token from an `Authorization` value of exactly `Bearer <token>` (the
/// scheme case-insensitive per RFC 7235, one space, a non-empty token with no spaces).
pub fn parse_bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("Bearer") || token.is_empty() {
        return None;
    }
    if token
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return None;
    }
    Some(token)
}

/// Checks a presented token against an organization's active key hashes. Every hash is
/// compared, so timing does not reveal which (if any) matched.
pub fn key_matches(token: &str, hashes: &[KeyHash]) -> bool {
    let presented = KeyHash::of(token);
    hashes
        .iter()
        .fold(false, |acc, h| ct_eq(&presented.0, &h.0) | acc)
}

/// The 401 for any failed authentication: it does not say which check failed.
pub fn unauthorized() -> ScimError {
    ScimError::new(
        ErrorKind::Unauthorized,
        "Authentication failed: send 'Authorization: Bearer <key>' with a key of this organization",
    )
}

/// Authenticates a request's `Authorization` values against an organization's key
/// hashes: exactly one value, of exactly `Bearer <token>`, with a matching hash.
pub fn authenticate<'v>(
    mut values: impl Iterator<Item = &'v str>,
    hashes: &[KeyHash],
) -> Result<(), ScimError> {
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(unauthorized());
    };
    let token = parse_bearer(value).ok_or_else(unauthorized)?;
    if !key_matches(token, hashes) {
        return Err(unauthorized());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing_is_exact() {
        assert_eq!(parse_bearer("Bearer abc"), Some("abc"));
        assert_eq!(parse_bearer("bearer abc"), Some("abc"));
        assert_eq!(parse_bearer("Bearer  abc"), None);
        assert_eq!(parse_bearer("Bearer abc def"), None);
        assert_eq!(parse_bearer("Bearer "), None);
        assert_eq!(parse_bearer("abc"), None);
        assert_eq!(parse_bearer("Basic abc"), None);
        assert_eq!(parse_bearer("non-token"), None);
    }

    #[test]
    fn hashes_and_rotation() {
        let a = KeyHash::of("key-a");
        let b = KeyHash::of("key-b");
        assert_eq!(KeyHash::from_hex(&a.to_hex()), Some(a));
        assert_eq!(
            KeyHash::of("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(key_matches("key-b", &[a, b]));
        assert!(key_matches("key-a", &[a, b]));
        assert!(!key_matches("key-c", &[a, b]));
        assert!(!key_matches("key-a", &[]));
        assert!(KeyHash::from_hex("zz").is_none());
        let hex = a.to_hex();
        for bad in [
            format!("+{}", &hex[1..]),
            format!("{}+{}", &hex[..10], &hex[11..]),
            format!("-{}", &hex[1..]),
            format!("0x{}", &hex[2..]),
            format!("{} ", &hex[..63]),
        ] {
            assert!(KeyHash::from_hex(&bad).is_none(), "{bad}");
        }
        assert_eq!(KeyHash::from_hex(&hex.to_uppercase()), Some(a));
        assert!(!ct_eq(b"ab", b"abc"));
    }
}
