//! Accounts with real keys (vault-crypto.md §1), what registering does to an address's
//! invitations (§4, mail off), and the check that a member holds the organization key.

use crate::crypto::{self, CryptoError, KeyPair, SymKey};
use crate::state::{Account, Shared, State};
use crate::{AdminLogin, Kdf, ACCEPTED, CONFIRMED, INVITED};
use rand::distr::Alphanumeric;
use rand::RngExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The KDF settings recorded for an account that registered: Vaultwarden's default.
const REGISTERED_KDF: Kdf = Kdf::Pbkdf2 {
    iterations: 600_000,
};

/// The next key pair of this vault's share of the pool.
fn next_key_pair(shared: &Shared) -> Result<Arc<KeyPair>, CryptoError> {
    crypto::key_pair(shared.next_key_pair.fetch_add(1, Ordering::Relaxed))
}

/// `Key` (a fresh user key under the stretched master key) and `PrivateKey` (the PKCS#8
/// private key under that user key).
fn protected_keys(master_key: &[u8; 32], kp: &KeyPair) -> Result<(String, String), CryptoError> {
    let user_key = SymKey::random();
    let key = crypto::encrypt_type2(&crypto::stretch(master_key)?, &user_key.0)?;
    let private_key = crypto::encrypt_type2(&user_key, &kp.pkcs8)?;
    Ok((key, private_key))
}

/// A personal API key as Vaultwarden makes one: 30 letters and digits.
fn api_key() -> String {
    let mut rng = rand::rng();
    (0..30)
        .map(|_| char::from(rng.sample(Alphanumeric)))
        .collect()
}

/// See [`crate::FakeVault::seed_admin`]. The slow parts (key pair, KDF) run before the
/// state is locked.
pub(crate) fn seed_admin(
    shared: &Shared,
    email: &str,
    password: &str,
    kdf: Kdf,
    type_: i32,
) -> Result<AdminLogin, CryptoError> {
    let kp = next_key_pair(shared)?;
    let master_key = crypto::master_key(password, email, &kdf)?;
    let (key, private_key) = protected_keys(&master_key, &kp)?;
    let org_copy = crypto::encrypt_type4(kp.private.as_public_key(), &shared.org_key.0)?;
    let secret = api_key();

    let mut st = shared.lock();
    let user_id = match st.user_id_of_email(email) {
        Some(id) => id,
        None => st.guid(),
    };
    let existing = st.member_by_email(email).map(|r| r.m.id.clone());
    let member_id = match existing {
        Some(id) => id,
        None => st.add_member(email.to_string(), type_, INVITED, None),
    };
    if let Some(r) = st.member_mut(&member_id) {
        r.m.type_ = type_;
        r.m.user_id = Some(user_id.clone());
        r.m.key = Some(org_copy);
    }
    st.set_status(&member_id, CONFIRMED);
    let normalized = email.trim().to_lowercase();
    st.put_user(Account {
        id: user_id.clone(),
        email: normalized.clone(),
        kdf,
        key,
        private_key,
        keys: kp,
        api_key: Some(secret.clone()),
    });
    Ok(AdminLogin {
        client_id: format!("user.{user_id}"),
        user_id,
        member_id,
        email: normalized,
        client_secret: secret,
    })
}

/// The id of the account with keys this address already has.
fn registered(st: &State, email: &str) -> Option<String> {
    let email = email.trim();
    st.users
        .iter()
        .find(|a| a.email.eq_ignore_ascii_case(email))
        .map(|a| a.id.clone())
}

/// See [`crate::FakeVault::register`]. The key pair is made before the state is locked;
/// if the address registered meanwhile, that account stands.
pub(crate) fn register(shared: &Shared, email: &str) -> Result<String, CryptoError> {
    {
        let mut st = shared.lock();
        if let Some(id) = registered(&st, email) {
            accept_invitations(&mut st, email, &id);
            return Ok(id);
        }
    }
    let kp = next_key_pair(shared)?;
    // The member's password is never known: its user key is wrapped under a random
    // master key, which is all a server ever sees of it anyway.
    let mut master_key = [0u8; 32];
    rand::fill(&mut master_key[..]);
    let (key, private_key) = protected_keys(&master_key, &kp)?;

    let mut st = shared.lock();
    if let Some(id) = registered(&st, email) {
        accept_invitations(&mut st, email, &id);
        return Ok(id);
    }
    let id = match st.user_id_of_email(email) {
        Some(id) => id,
        None => st.guid(),
    };
    st.put_user(Account {
        id: id.clone(),
        email: email.trim().to_lowercase(),
        kdf: REGISTERED_KDF,
        key,
        private_key,
        keys: kp,
        api_key: None,
    });
    accept_invitations(&mut st, email, &id);
    Ok(id)
}

/// Vaultwarden's `accept_user_invitations` with mail off: every Invited membership of
/// the address becomes Accepted; every membership gets the account id; revoked ones
/// stay revoked (and go back to their prior status on a restore).
fn accept_invitations(st: &mut State, email: &str, user_id: &str) {
    let email = email.trim();
    for r in st
        .members
        .iter_mut()
        .filter(|r| r.m.email.trim().eq_ignore_ascii_case(email))
    {
        if r.m.user_id.is_none() {
            r.m.user_id = Some(user_id.to_string());
        }
        if r.m.status == INVITED {
            r.m.status = ACCEPTED;
            r.prior_status = ACCEPTED;
        }
    }
}

/// See [`crate::FakeVault::holds_org_key`].
pub(crate) fn holds_org_key(shared: &Shared, member_id: &str) -> Option<bool> {
    let (stored, keys) = {
        let st = shared.lock();
        let r = st.member(member_id)?;
        let stored = r.m.key.clone()?;
        let keys =
            r.m.user_id
                .as_deref()
                .and_then(|u| st.user(u))
                .map(|a| a.keys.clone());
        (stored, keys)
    };
    let Some(keys) = keys else {
        return Some(false);
    };
    Some(crypto::decrypt_type4(&keys.private, &stored).is_some_and(|k| k == shared.org_key.0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn api_keys_are_thirty_alphanumerics() {
        let k = api_key();
        assert_eq!(k.len(), 30);
        assert!(k.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(k, api_key());
    }

    #[test]
    fn protected_keys_unlock_with_the_master_key() {
        let kp = crypto::key_pair(0).unwrap();
        let mk = [7u8; 32];
        let (key, private_key) = protected_keys(&mk, &kp).unwrap();
        let user_key = crypto::decrypt_type2(&crypto::stretch(&mk).unwrap(), &key).unwrap();
        let user_key = SymKey(user_key.try_into().unwrap());
        assert_eq!(
            crypto::decrypt_type2(&user_key, &private_key).unwrap(),
            kp.pkcs8
        );
    }
}
