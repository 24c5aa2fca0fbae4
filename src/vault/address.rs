//! Which member addresses each vault takes. A drain checks an address before sending it,
//! so that one the vault would refuse is set aside on its own instead of failing a whole
//! Vaultwarden import (which stops at the first bad member: vaults.md §4.1) or costing a
//! Bitwarden call per retry. Each check refuses only what its vault surely refuses; what
//! it lets through and the vault still refuses is found from the vault's answer.

use crate::config::vault::VaultKind;
use std::str::FromStr;

/// Why `kind` would refuse to add a member with this address, or `None`.
pub fn refusal(kind: VaultKind, email: &str) -> Option<&'static str> {
    match kind {
        VaultKind::Bitwarden => bitwarden(email),
        VaultKind::Vaultwarden => vaultwarden(email),
    }
}

/// What a user set aside before sending shows: why `kind` would refuse its address.
pub fn refused(kind: VaultKind, email: &str) -> Option<String> {
    refusal(kind, email).map(|why| format!("the vault would refuse this address: {why}"))
}

/// Vaultwarden creates a user only for an address that `email_address` (the crate it
/// uses, at its version) parses and whose domain, as `https://{domain}`, parses as a URL
/// with a host name, the path `/` and no query (`is_valid_email`).
fn vaultwarden(email: &str) -> Option<&'static str> {
    let Ok(parsed) = email_address::EmailAddress::from_str(email) else {
        return Some("not an email address (RFC 5322)");
    };
    // What follows a '#' is the URL's fragment, which the check ignores.
    let domain = parsed.domain();
    let host = domain.split('#').next().unwrap_or(domain);
    // A path or a query after the host, a literal, a forbidden or undecodable character.
    if host.is_empty()
        || host.starts_with('[')
        || host.contains(['/', '?', '^', '|'])
        || bad_escape(host)
    {
        return Some("the domain is not a host name");
    }
    if ends_in_a_number(host) {
        return Some("the domain is an IP address, not a host name");
    }
    None
}

/// A '%' a URL host cannot decode (one followed by two hex digits is decoded first).
fn bad_escape(host: &str) -> bool {
    let b = host.as_bytes();
    b.iter().enumerate().any(|(i, &c)| {
        c == b'%'
            && !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// WHATWG URL's "ends in a number": such a host is parsed as IPv4 (an address or an
/// error), never as a domain.
fn ends_in_a_number(host: &str) -> bool {
    let mut labels: Vec<&str> = host.split('.').collect();
    if labels.len() > 1 && labels.last().is_some_and(|l| l.is_empty()) {
        labels.pop();
    }
    let last = labels.last().copied().unwrap_or("");
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    let lower = last.to_ascii_lowercase();
    lower
        .strip_prefix("0x")
        .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Bitwarden's `[StrictEmailAddress]` on `POST public/members`: MimeKit must parse the
/// address back to itself, the local part is ASCII, the domain has a dot and ends in
/// letters, and there is one '@'.
fn bitwarden(email: &str) -> Option<&'static str> {
    let Some((local, domain)) = email.split_once('@') else {
        return Some("not an email address: no '@'");
    };
    let special = |c: char| c.is_whitespace() || c.is_control() || "<>()[],;:\\\"@".contains(c);
    if local.is_empty() || !local.is_ascii() || local.contains(special) {
        return Some("the part before '@' must be plain ASCII");
    }
    if domain.contains(special) || domain.starts_with('.') || domain.contains("..") {
        return Some("the domain is not a host name");
    }
    match domain.rsplit_once('.') {
        Some((sld, tld)) if !sld.is_empty() && !tld.is_empty() => {
            if tld.chars().all(char::is_alphabetic) {
                None
            } else {
                Some("the domain must end in letters")
            }
        }
        _ => Some("the domain must have a dot"),
    }
}
