//! `POST /identity/connect/token`, `client_credentials` with the organization API key
//! (vaults.md §1.1, §4) or a personal API key (vault-crypto.md §2), and the bearer checks
//! of the API: an organization token opens `/api/public/…` only, a user token the
//! administrator's routes only.

use crate::server::{too_many, Reply, Req};
use crate::state::{Account, Grant, Owner, Shared, State};
use crate::Mode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ORG_SCOPE: &str = "api.organization";
const USER_SCOPE: &str = "api";

fn oauth_error(error: &str, description: &str) -> Reply {
    Reply::json(
        400,
        &if description.is_empty() {
            json!({ "error": error })
        } else {
            // Vaultwarden's errors carry the message; the OAuth code is kept for both modes.
            json!({ "error": error, "error_description": description, "message": description, "object": "error" })
        },
    )
}

/// The form fields, looked up case-insensitively under any of their spellings.
struct Form(Vec<(String, String)>);

impl Form {
    /// The first non-empty value under one of `names`.
    fn get(&self, names: &[&str]) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| !v.is_empty() && names.iter().any(|n| k.eq_ignore_ascii_case(n)))
            .map(|(_, v)| v.as_str())
    }
}

// Vaultwarden reads each field under its snake_case name or without the underscores,
// in any case (Rocket `uncased`); Bitwarden's clients send the device fields camelCase.
const GRANT_TYPE: &[&str] = &["grant_type", "granttype"];
const CLIENT_ID: &[&str] = &["client_id", "clientid"];
const CLIENT_SECRET: &[&str] = &["client_secret", "clientsecret"];
const SCOPE: &[&str] = &["scope"];
const DEVICE_IDENTIFIER: &[&str] = &["device_identifier", "deviceidentifier"];
const DEVICE_NAME: &[&str] = &["device_name", "devicename"];
const DEVICE_TYPE: &[&str] = &["device_type", "devicetype"];

/// Which credential a request presented.
enum Client<'a> {
    Org,
    User(&'a Account),
}

/// Issues a token, or answers 400 as Bitwarden's IdentityServer (client, then grant, then
/// scope) or Vaultwarden (grant, then blank fields incl. the device ones, then scope, then
/// client) would; 429 past [`crate::Options::token_per_window`] (both grants share it).
pub(crate) fn handle(shared: &Shared, req: &Req, now_ms: u64) -> Reply {
    let opts = &shared.opts;
    let mut st = shared.lock();
    if let Err(wait) = st.token_limit.hit(now_ms) {
        return too_many(shared, wait);
    }
    if !req
        .content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return oauth_error("invalid_request", "");
    }
    let form = Form(parse_form(&req.body));
    let client_id = form.get(CLIENT_ID);
    let secret = form.get(CLIENT_SECRET);
    let scope = form.get(SCOPE);
    let grant_ok = form.get(GRANT_TYPE) == Some("client_credentials");
    let org_ok =
        client_id == Some(opts.client_id().as_str()) && secret == Some(opts.client_secret.as_str());
    // The account a `user.<id>` client names, if it has a personal API key.
    let account = client_id
        .and_then(|c| c.strip_prefix("user."))
        .and_then(|id| st.user(id))
        .filter(|a| a.api_key.is_some());
    let user_ok = account.is_some_and(|a| a.api_key.as_deref() == secret);
    let client = match opts.mode {
        Mode::Bitwarden => {
            let client = match account {
                Some(a) if user_ok => Client::User(a),
                _ if org_ok => Client::Org,
                _ => return oauth_error("invalid_client", ""),
            };
            if !grant_ok {
                return oauth_error("unsupported_grant_type", "");
            }
            // No scope asks for every allowed one; any other scope is refused.
            let allowed = match client {
                Client::Org => ORG_SCOPE,
                Client::User(_) => USER_SCOPE,
            };
            if scope.is_some_and(|s| s.split(' ').any(|s| !s.is_empty() && s != allowed)) {
                return oauth_error("invalid_scope", "");
            }
            client
        }
        Mode::Vaultwarden => {
            if !grant_ok {
                return oauth_error("unsupported_grant_type", "Invalid type");
            }
            for names in [
                CLIENT_ID,
                CLIENT_SECRET,
                SCOPE,
                DEVICE_IDENTIFIER,
                DEVICE_NAME,
                DEVICE_TYPE,
            ] {
                if form.get(names).is_none() {
                    let name = names[0];
                    return oauth_error("invalid_request", &format!("{name} cannot be blank"));
                }
            }
            match scope {
                Some(USER_SCOPE) => {
                    let Some(id) = client_id.and_then(|c| c.strip_prefix("user.")) else {
                        return oauth_error("invalid_client", "Malformed client_id");
                    };
                    let Some(a) = account.filter(|a| a.id == id) else {
                        return oauth_error("invalid_client", "Invalid client_id");
                    };
                    if !user_ok {
                        return oauth_error("invalid_client", "Incorrect client_secret");
                    }
                    Client::User(a)
                }
                Some(ORG_SCOPE) if org_ok => Client::Org,
                Some(ORG_SCOPE) => {
                    return oauth_error("invalid_client", "Invalid client_id or client_secret")
                }
                _ => return oauth_error("invalid_scope", "Scope not supported"),
            }
        }
    };
    let mut answer = match client {
        Client::Org => json!({
            "expires_in": opts.token_lifetime_s,
            "token_type": "Bearer",
            "scope": ORG_SCOPE,
        }),
        Client::User(a) => user_answer(a, opts.user_token_lifetime_s),
    };
    let (owner, lifetime) = match client {
        Client::Org => (Owner::Org, opts.token_lifetime_s),
        Client::User(a) => (Owner::User(a.id.clone()), opts.user_token_lifetime_s),
    };
    if matches!(owner, Owner::User(_)) {
        if let Some(device) = form.get(DEVICE_IDENTIFIER) {
            st.stats.devices.insert(device.to_string());
        }
    }
    let token = st.token();
    let expiry = Instant::now() + Duration::from_secs(lifetime);
    st.tokens.insert(token.clone(), Grant { expiry, owner });
    st.stats.tokens_issued += 1;
    answer["access_token"] = Value::String(token);
    Reply::json(200, &answer)
}

/// Vaultwarden's `user_api_key_login` answer, but for its `access_token` (the caller
/// adds it): the protected keys and what unlocking them needs; no refresh token.
fn user_answer(a: &Account, lifetime_s: u64) -> Value {
    let (kdf_type, iterations, memory, parallelism) = kdf_fields(&a.kdf);
    json!({
        "expires_in": lifetime_s,
        "token_type": "Bearer",
        "Key": a.key,
        "PrivateKey": a.private_key,
        "Kdf": kdf_type,
        "KdfIterations": iterations,
        "KdfMemory": memory,
        "KdfParallelism": parallelism,
        "ResetMasterPassword": false,
        "ForcePasswordReset": false,
        "scope": USER_SCOPE,
        "AccountKeys": {
            "publicKeyEncryptionKeyPair": {
                "wrappedPrivateKey": a.private_key,
                "publicKey": a.keys.public_b64,
                "Object": "publicKeyEncryptionKeyPair"
            },
            "Object": "privateKeys"
        },
        "UserDecryptionOptions": {
            "HasMasterPassword": true,
            "MasterPasswordUnlock": {
                "Kdf": {
                    "KdfType": kdf_type,
                    "Iterations": iterations,
                    "Memory": memory,
                    "Parallelism": parallelism
                },
                "MasterKeyEncryptedUserKey": a.key,
                "MasterKeyWrappedUserKey": a.key,
                "Salt": a.email
            },
            "Object": "userDecryptionOptions"
        },
    })
}

/// `kdf` (0 PBKDF2, 1 Argon2id), iterations, memory (MiB) and parallelism as the vault
/// stores them: no memory or parallelism for PBKDF2.
pub(crate) fn kdf_fields(kdf: &crate::Kdf) -> (i32, u32, Option<u32>, Option<u32>) {
    match *kdf {
        crate::Kdf::Pbkdf2 { iterations } => (0, iterations, None, None),
        crate::Kdf::Argon2id {
            iterations,
            memory_mib,
            parallelism,
        } => (1, iterations, Some(memory_mib), Some(parallelism)),
    }
}

/// The live token of the request (`Authorization: Bearer …`), if any; an expired one is
/// forgotten.
fn bearer(st: &mut State, req: &Req) -> Option<Owner> {
    let value = req.authorization.as_deref()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    let grant = st.tokens.get(token)?;
    if Instant::now() < grant.expiry {
        return Some(grant.owner.clone());
    }
    st.tokens.remove(token);
    None
}

/// Whether the request carries a live organization token (the public API's check).
pub(crate) fn authorized(st: &mut State, req: &Req) -> bool {
    bearer(st, req) == Some(Owner::Org)
}

/// The account id of the request's live user token, if it carries one.
pub(crate) fn user(st: &mut State, req: &Req) -> Option<String> {
    match bearer(st, req)? {
        Owner::User(id) => Some(id),
        Owner::Org => None,
    }
}

/// `application/x-www-form-urlencoded` pairs, decoded.
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    body.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |b| *b == b'=');
            let k = decode(it.next().unwrap_or_default());
            let v = decode(it.next().unwrap_or_default());
            (k, v)
        })
        .collect()
}

fn decode(s: &[u8]) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let f = parse_form(b"a=b+c&client_id=organization.x%2Dy&e=%zz&f=%4");
        assert_eq!(f[0], ("a".to_string(), "b c".to_string()));
        assert_eq!(f[1].1, "organization.x-y");
        assert_eq!(f[2].1, "%zz");
        assert_eq!(f[3].1, "%4");
    }
}
