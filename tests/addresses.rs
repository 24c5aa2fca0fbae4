//! The address checks a drain makes before sending (`scim_edge::vault::address`): what
//! each refuses, and that it never refuses what its vault would take. The vault's answer
//! is the fake vault's check, which for Vaultwarden is Vaultwarden's own (the
//! `email_address` and `url` crates).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scim_edge::config::vault::VaultKind;
use scim_edge::vault::address::refusal;
use scim_edge_fakevault::{bitwarden_accepts, vaultwarden_accepts};

/// An address, and whether the check before sending refuses it for Vaultwarden and for
/// Bitwarden: ordinary addresses, what identity providers let through under policy `off`,
/// and the corners of both checks.
const ADDRESSES: &[(&str, bool, bool)] = &[
    ("ann@example.com", false, false),
    ("Ann.Lee+tag@Example.COM", false, false),
    ("o'brien@example.ie", false, false),
    ("a.b+c@sub.example.org", false, false),
    ("ann@münchen.de", false, false),
    ("a@localhost", false, true),
    ("a@b.c1", false, true),
    ("jörg@example.de", false, true),
    ("\"a b\"@example.com", false, true),
    ("Ann <ann@example.com>", false, true),
    ("ann@ex#ample.com", false, false),
    ("ann@ex_ample.com", false, false),
    ("ann@ab--cd.com", false, false),
    ("ann@ex%41mple.com", false, false),
    // Punycode that does not decode, or a label mixing directions: only the vault's URL
    // parser sees it; the drain finds it from the vault's answer (host/tests/vault.rs).
    ("ann@xn--a.com", false, false),
    ("ann@אa.com", false, false),
    ("not an email", true, true),
    ("", true, true),
    ("ann", true, true),
    ("@example.com", true, true),
    ("ann@", true, true),
    (" ann@example.com", true, true),
    ("ann@example.com ", true, true),
    ("ann@@example.com", true, true),
    ("a b@example.com", true, true),
    ("ann@example..com", true, true),
    ("ann@.example.com", true, true),
    ("ann@example.", true, true),
    ("ann@-example.com", true, false),
    ("ann@[127.0.0.1]", true, true),
    ("ann@[::1]", true, true),
    ("ann@127.0.0.1", true, true),
    ("ann@example.123", true, true),
    ("ann@example.0x1F", true, true),
    ("ann@example.c1", false, true),
    ("ann@ex/ample.com", true, false),
    ("ann@ex?ample.com", true, false),
    ("ann@ex%zzmple.com", true, false),
    ("ann@ex%2Fmple.com", false, false),
    ("ann@ex|ample.com", true, false),
    ("ann@ex^ample.com", true, false),
];

/// A vault's own answer: whether it takes an address.
type Accepts = fn(&str) -> bool;

#[test]
fn each_check_refuses_what_it_should_and_only_what_its_vault_refuses() {
    let checks: [(VaultKind, Accepts); 2] = [
        (VaultKind::Vaultwarden, vaultwarden_accepts),
        (VaultKind::Bitwarden, bitwarden_accepts),
    ];
    for &(a, vw, bw) in ADDRESSES {
        for ((kind, vault_accepts), refused) in checks.iter().zip([vw, bw]) {
            let why = refusal(*kind, a);
            assert_eq!(why.is_some(), refused, "{kind:?} {a:?}: {why:?}");
            if let Some(why) = why {
                assert!(
                    !vault_accepts(a),
                    "{kind:?} {a:?}: refused ({why}) but the vault takes it"
                );
            }
        }
    }
}

#[test]
fn vaultwarden_still_refuses_some_addresses_the_check_lets_through() {
    for a in ["ann@xn--a.com", "ann@אa.com", "ann@ex%2Fmple.com"] {
        assert_eq!(refusal(VaultKind::Vaultwarden, a), None, "{a}");
        assert!(!vaultwarden_accepts(a), "{a}");
    }
}
