//! The address checks a drain makes before sending (`scim_edge::vault::address`) never
//! refuse what the vault would take: each is compared with the fake vault's, which for
//! Vaultwarden is Vaultwarden's own check (the `email_address` and `url` crates).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scim_edge::vault::address::refusal;
use scim_edge::vault::config::VaultKind;
use scim_edge_fakevault::{bitwarden_accepts, vaultwarden_accepts};

/// Ordinary addresses, what identity providers let through under policy `off`, and the
/// corners of both checks.
const ADDRESSES: &[&str] = &[
    "ann@example.com",
    "Ann.Lee+tag@Example.COM",
    "o'brien@example.ie",
    "a@localhost",
    "a@b.c1",
    "ann@münchen.de",
    "jörg@example.de",
    "\"a b\"@example.com",
    "Ann <ann@example.com>",
    "ann@ex#ample.com",
    "ann@ex_ample.com",
    "ann@ab--cd.com",
    "ann@ex%41mple.com",
    "ann@xn--a.com",
    "ann@אa.com",
    "not an email",
    "",
    "ann",
    "@example.com",
    "ann@",
    " ann@example.com",
    "ann@example.com ",
    "ann@@example.com",
    "ann@example..com",
    "ann@.example.com",
    "ann@example.",
    "ann@-example.com",
    "ann@[127.0.0.1]",
    "ann@[::1]",
    "ann@127.0.0.1",
    "ann@example.123",
    "ann@example.0x1F",
    "ann@ex/ample.com",
    "ann@ex?ample.com",
    "ann@ex%zzmple.com",
    "ann@ex%2Fmple.com",
    "ann@ex|ample.com",
    "ann@ex^ample.com",
    "a b@example.com",
    "ann@example.c1",
];

#[test]
fn what_is_refused_before_sending_the_vault_refuses_too() {
    let mut refused = [0, 0];
    for a in ADDRESSES {
        if let Some(why) = refusal(VaultKind::Vaultwarden, a) {
            assert!(
                !vaultwarden_accepts(a),
                "{a:?}: refused ({why}) but Vaultwarden takes it"
            );
            refused[0] += 1;
        }
        if let Some(why) = refusal(VaultKind::Bitwarden, a) {
            assert!(
                !bitwarden_accepts(a),
                "{a:?}: refused ({why}) but Bitwarden takes it"
            );
            refused[1] += 1;
        }
    }
    // The checks are not empty: most of the bad addresses are caught before sending.
    assert!(refused[0] >= 20 && refused[1] >= 20, "{refused:?}");
}

#[test]
fn vaultwarden_still_refuses_some_addresses_the_check_lets_through() {
    // Punycode that does not decode: only the vault's URL parser sees it; the drain finds
    // it from the vault's answer instead (host/tests/vault.rs).
    let a = "ann@xn--a.com";
    assert_eq!(refusal(VaultKind::Vaultwarden, a), None);
    assert!(!vaultwarden_accepts(a));
}
