//! The vault as an administrator's client sees it (vault-crypto.md §2, §3): the personal
//! API key login, the keys it unlocks with the master password, the member list, the
//! members' public keys and the confirmations. A token that expires (or that the vault
//! forgets) is replaced by logging in again, once per call; the keys stay unlocked.

use crate::args::Args;
use crate::crypto::{self, Kdf, SymmetricKey};
use crate::http::{Answer, Body, Http};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

// The client version the component also sends: Vaultwarden logs an error for each token
// and sync call without one.
use scim_edge::vault::net::CLIENT_VERSION;
/// Bitwarden's `DeviceType.SDK`.
const DEVICE_TYPE: &str = "21";
/// A token this close to its expiry is replaced before use.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);

/// Why a call failed: `Login` (wrong key, wrong password, not an administrator of the
/// organization) ends the program with status 2; `Vault` fails the pass.
#[derive(Debug)]
pub enum VaultError {
    Login(String),
    Vault(String),
}

impl std::fmt::Display for VaultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VaultError::Login(m) | VaultError::Vault(m) => f.write_str(m),
        }
    }
}

/// A member as the member list shows it.
#[derive(Debug, Clone)]
pub struct Member {
    /// The membership id.
    pub id: String,
    /// The account id (none while only invited).
    pub user_id: Option<String>,
    pub email: String,
    /// Revoked -1, Invited 0, Accepted 1, Confirmed 2.
    pub status: i64,
    /// Owner 0, Admin 1, User 2, Manager 3, Custom 4.
    pub type_: i64,
}

/// A member's public key as the vault serves it.
pub struct PublicKey {
    pub user_id: Option<String>,
    /// SubjectPublicKeyInfo DER; none for an account without keys.
    pub spki: Option<Vec<u8>>,
}

/// A logged-in, unlocked administrator.
pub struct Vault<'a> {
    http: &'a Http,
    args: &'a Args,
    device: String,
    token: Zeroizing<String>,
    expires: Instant,
    org_key: SymmetricKey,
}

/// A stable device id for this API key (each new one is a new device in the vault, and
/// a "new device" mail): a UUID-shaped digest of the client id.
fn device_id(client_id: &str) -> String {
    let d = Sha256::digest(format!("scim-edge-confirm device {client_id}").as_bytes());
    let h: String = d.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// A field of the token answer, which Bitwarden spells in PascalCase and clients read
/// without regard to case.
fn field<'v>(v: &'v Value, name: &str) -> Option<&'v Value> {
    v.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn str_field<'v>(v: &'v Value, name: &str) -> Option<&'v str> {
    field(v, name).and_then(Value::as_str)
}

fn num_field(v: &Value, name: &str) -> Option<u32> {
    field(v, name)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
}

fn kdf_of(t: &Value) -> Result<Kdf, VaultError> {
    let bad = |what: &str| VaultError::Login(format!("the login answer has no usable {what}"));
    let iterations = num_field(t, "KdfIterations").ok_or_else(|| bad("KdfIterations"))?;
    match num_field(t, "Kdf") {
        Some(0) => Ok(Kdf::Pbkdf2 { iterations }),
        Some(1) => Ok(Kdf::Argon2id {
            iterations,
            memory_mib: num_field(t, "KdfMemory").ok_or_else(|| bad("KdfMemory"))?,
            parallelism: num_field(t, "KdfParallelism").ok_or_else(|| bad("KdfParallelism"))?,
        }),
        _ => Err(bad("Kdf")),
    }
}

/// The salt: the email the account's keys were made with.
fn salt_of(t: &Value) -> Option<&str> {
    let opts = field(t, "UserDecryptionOptions")?;
    str_field(field(opts, "MasterPasswordUnlock")?, "Salt")
}

/// Logs in with the personal API key: the token, its lifetime, and the answer.
fn login(
    http: &Http,
    args: &Args,
    device: &str,
) -> Result<(Zeroizing<String>, Instant, Value), VaultError> {
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "api"),
        ("client_id", args.client_id.as_str()),
        ("client_secret", args.client_secret.expose()),
        ("deviceType", DEVICE_TYPE),
        ("deviceIdentifier", device),
        ("deviceName", "scim-edge-confirm"),
    ];
    let url = format!("{}/connect/token", args.identity_url);
    let a = http
        .send(
            "POST",
            &url,
            &[
                ("Bitwarden-Client-Version", CLIENT_VERSION),
                ("Device-Type", DEVICE_TYPE),
            ],
            &[],
            Body::Form(&form),
        )
        .map_err(VaultError::Vault)?;
    match a.status {
        200 => {}
        400 | 401 => {
            return Err(VaultError::Login(format!(
                "the vault refused the personal API key: {}",
                a.message()
            )))
        }
        _ => return Err(VaultError::Vault(format!("login: {}", a.message()))),
    }
    let token = str_field(&a.body, "access_token")
        .ok_or_else(|| VaultError::Vault("the login answer has no access_token".into()))?;
    let life = field(&a.body, "expires_in")
        .and_then(Value::as_u64)
        .unwrap_or(3600);
    let expires = Instant::now() + Duration::from_secs(life);
    Ok((Zeroizing::new(token.to_string()), expires, a.body))
}

impl<'a> Vault<'a> {
    /// Logs in and unlocks the organization key: master key from the password, stretched,
    /// opens the user key; the user key opens the private key; the private key opens the
    /// administrator's copy of the organization key (from `sync`). A wrong password fails
    /// at the first MAC check, before anything but the login and nothing is sent.
    pub fn unlock(http: &'a Http, args: &'a Args) -> Result<Vault<'a>, VaultError> {
        let device = device_id(&args.client_id);
        let (token, expires, t) = login(http, args, &device)?;
        let kdf = kdf_of(&t)?;
        let protected = |name: &str| {
            str_field(&t, name)
                .map(str::to_string)
                .ok_or_else(|| VaultError::Login(format!("the login answer has no {name}")))
        };
        let (user_key_enc, private_enc) = (protected("Key")?, protected("PrivateKey")?);
        let mut v = Vault {
            http,
            args,
            device,
            token,
            expires,
            org_key: SymmetricKey::from_slice(&[0u8; 64]).map_err(|e| VaultError::Vault(e.0))?,
        };
        let sync = v.call("GET", "sync", &[("excludeDomains", "true")], Body::None)?;
        if !sync.ok() {
            return Err(VaultError::Vault(format!("sync: {}", sync.message())));
        }
        let profile = field(&sync.body, "profile").cloned().unwrap_or(Value::Null);
        let salt = match salt_of(&t) {
            Some(s) => s.to_string(),
            None => str_field(&profile, "email")
                .ok_or_else(|| {
                    VaultError::Login("neither the login nor sync names the account's email".into())
                })?
                .to_string(),
        };
        let wrong = |e: crypto::CryptoError| {
            VaultError::Login(format!(
                "the master password does not unlock this account ({e})"
            ))
        };
        let master = crypto::master_key(args.password.expose().as_bytes(), &salt, kdf)
            .map_err(|e| VaultError::Login(e.0))?;
        let stretched = crypto::stretch(&master).map_err(|e| VaultError::Login(e.0))?;
        let user_key = crypto::decrypt_type2(&user_key_enc, &stretched).map_err(wrong)?;
        let user_key = SymmetricKey::from_slice(&user_key).map_err(wrong)?;
        let private_der = crypto::decrypt_type2(&private_enc, &user_key).map_err(wrong)?;
        let private = crypto::private_key(&private_der).map_err(wrong)?;
        let org = field(&profile, "organizations")
            .and_then(Value::as_array)
            .and_then(|orgs| {
                orgs.iter().find(|o| {
                    str_field(o, "id").is_some_and(|id| id.eq_ignore_ascii_case(&args.org))
                })
            })
            .ok_or_else(|| {
                VaultError::Login(format!(
                    "this account is not a confirmed member of organization {}",
                    args.org
                ))
            })?;
        let org_key_enc = str_field(org, "key").ok_or_else(|| {
            VaultError::Login(format!(
                "this account holds no key of organization {} (not confirmed there)",
                args.org
            ))
        })?;
        let org_key = crypto::decrypt_rsa(org_key_enc, &private)
            .map_err(|e| VaultError::Login(format!("the organization key does not open: {e}")))?;
        v.org_key = SymmetricKey::from_slice(&org_key).map_err(|e| VaultError::Login(e.0))?;
        Ok(v)
    }

    pub fn org_key(&self) -> &SymmetricKey {
        &self.org_key
    }

    /// Sends a call under the API base with the token, logging in again first when the
    /// token is near its end, and once more when the vault answers 401.
    fn call(
        &mut self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<Answer, VaultError> {
        if Instant::now() + TOKEN_MARGIN >= self.expires {
            self.relogin()?;
        }
        let url = format!("{}/{path}", self.args.api_url);
        for attempt in 0..2 {
            let auth = format!("Bearer {}", self.token.as_str());
            let auth = Zeroizing::new(auth);
            let headers = [
                ("Authorization", auth.as_str()),
                ("Bitwarden-Client-Version", CLIENT_VERSION),
                ("Device-Type", DEVICE_TYPE),
            ];
            let body = match &body {
                Body::None => Body::None,
                Body::Json(v) => Body::Json(v),
                Body::Form(f) => Body::Form(f),
            };
            let a = self
                .http
                .send(method, &url, &headers, query, body)
                .map_err(VaultError::Vault)?;
            if a.status == 401 && attempt == 0 {
                self.relogin()?;
                continue;
            }
            return Ok(a);
        }
        Err(VaultError::Vault(format!(
            "{method} {path}: 401 after logging in again"
        )))
    }

    fn relogin(&mut self) -> Result<(), VaultError> {
        let (token, expires, _) = login(self.http, self.args, &self.device)?;
        self.token = token;
        self.expires = expires;
        Ok(())
    }

    /// Every member of the organization.
    pub fn members(&mut self) -> Result<Vec<Member>, VaultError> {
        let path = format!("organizations/{}/users", self.args.org);
        let a = self.call("GET", &path, &[], Body::None)?;
        match a.status {
            200 => {}
            401 | 403 | 404 => {
                return Err(VaultError::Login(format!(
                    "this account may not list the members of organization {} (an Owner, Admin or Manager may): {}",
                    self.args.org,
                    a.message()
                )))
            }
            _ => return Err(VaultError::Vault(format!("listing members: {}", a.message()))),
        }
        let data = a.data();
        Ok(data
            .iter()
            .filter_map(|m| {
                Some(Member {
                    id: m.get("id")?.as_str()?.to_string(),
                    user_id: m.get("userId").and_then(Value::as_str).map(str::to_string),
                    email: m.get("email")?.as_str()?.to_string(),
                    status: m.get("status")?.as_i64()?,
                    type_: m.get("type")?.as_i64()?,
                })
            })
            .collect())
    }

    /// The public keys of these members, by membership id: the bulk route, else one call
    /// per account where the vault has no bulk route.
    pub fn public_keys(
        &mut self,
        members: &[&Member],
    ) -> Result<Vec<(String, PublicKey)>, VaultError> {
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let path = format!("organizations/{}/users/public-keys", self.args.org);
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        let body = json!({ "ids": ids });
        let a = self.call("POST", &path, &[], Body::Json(&body))?;
        if a.ok() {
            let data = a.data();
            return Ok(data
                .iter()
                .filter_map(|e| {
                    let id = e.get("id")?.as_str()?.to_string();
                    let key = e.get("key").and_then(Value::as_str);
                    Some((
                        id,
                        PublicKey {
                            user_id: e.get("userId").and_then(Value::as_str).map(str::to_string),
                            spki: key.and_then(|k| crypto::public_key_der(k).ok()),
                        },
                    ))
                })
                .collect());
        }
        if !matches!(a.status, 404 | 405) {
            return Err(VaultError::Vault(format!(
                "reading public keys: {}",
                a.message()
            )));
        }
        let mut out = Vec::new();
        for m in members {
            let Some(uid) = &m.user_id else {
                out.push((
                    m.id.clone(),
                    PublicKey {
                        user_id: None,
                        spki: None,
                    },
                ));
                continue;
            };
            let a = self.call("GET", &format!("users/{uid}/public-key"), &[], Body::None)?;
            let spki = if a.ok() {
                a.body
                    .get("publicKey")
                    .and_then(Value::as_str)
                    .and_then(|k| crypto::public_key_der(k).ok())
            } else if a.status == 404 {
                None
            } else {
                return Err(VaultError::Vault(format!(
                    "reading a public key: {}",
                    a.message()
                )));
            };
            out.push((
                m.id.clone(),
                PublicKey {
                    user_id: Some(uid.clone()),
                    spki,
                },
            ));
        }
        Ok(out)
    }

    /// Confirms members with their wrapped keys: the bulk route, whose answer is 200 even
    /// when an entry fails, so each entry's error is read (an entry it does not mention
    /// failed); one call per member where the vault has no bulk route. For each
    /// membership id, `None` when confirmed, else the vault's reason.
    pub fn confirm(
        &mut self,
        keys: &[(String, String)],
    ) -> Result<Vec<(String, Option<String>)>, VaultError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let path = format!("organizations/{}/users/confirm", self.args.org);
        let entries: Vec<Value> = keys
            .iter()
            .map(|(id, key)| json!({"id": id, "key": key}))
            .collect();
        let body = json!({ "keys": entries });
        let a = self.call("POST", &path, &[], Body::Json(&body))?;
        if a.ok() {
            let data = a.data();
            return Ok(keys
                .iter()
                .map(|(id, _)| {
                    let entry = data
                        .iter()
                        .find(|e| e.get("id").and_then(Value::as_str) == Some(id));
                    let error = match entry {
                        None => Some("the vault's answer does not mention this member".to_string()),
                        Some(e) => e
                            .get("error")
                            .and_then(Value::as_str)
                            .filter(|s| !s.is_empty())
                            .map(str::to_string),
                    };
                    (id.clone(), error)
                })
                .collect());
        }
        if !matches!(a.status, 404 | 405) {
            return Err(VaultError::Vault(format!("confirming: {}", a.message())));
        }
        let mut out = Vec::new();
        for (id, key) in keys {
            let body = json!({ "key": key });
            let path = format!("organizations/{}/users/{id}/confirm", self.args.org);
            let a = self.call("POST", &path, &[], Body::Json(&body))?;
            out.push((id.clone(), (!a.ok()).then(|| a.message())));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_id_is_stable_and_uuid_shaped() {
        let a = device_id("user.5f1e");
        assert_eq!(a, device_id("user.5f1e"));
        assert_ne!(a, device_id("user.5f1f"));
        let parts: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
    }

    #[test]
    fn the_token_answer_is_read_in_any_case() {
        let t = json!({"Kdf": 1, "kdfIterations": 3, "KdfMemory": 64, "KDFPARALLELISM": 4,
            "UserDecryptionOptions": {"MasterPasswordUnlock": {"Salt": "a@b.c"}}});
        assert_eq!(
            kdf_of(&t).unwrap(),
            Kdf::Argon2id {
                iterations: 3,
                memory_mib: 64,
                parallelism: 4
            }
        );
        assert_eq!(salt_of(&t), Some("a@b.c"));
        assert!(kdf_of(&json!({"Kdf": 7, "KdfIterations": 1})).is_err());
    }
}
