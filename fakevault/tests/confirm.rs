//! Accounts with real keys, the personal API key login, and the routes an administrator's
//! client uses to confirm members (vault-crypto.md §2–§5), driven over HTTP by a client
//! written here independently of the fake's own crypto.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use scim_edge_fakevault::{
    AdminLogin, FakeVault, Kdf, Limits, Mode, Options, ACCEPTED, ADMIN, CONFIRMED, INVITED,
    MANAGER, OWNER, REVOKED, USER,
};
use serde_json::{json, Value};

const DEVICE: &str = "5b2c7a1e-4f3d-4c2b-9a8e-7d6c5b4a3f21";
const VERSION: &str = "2025.12.0";

/// The client side of vault-crypto.md §1, from the RustCrypto crates directly.
mod client {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;
    use cbc::cipher::block_padding::Pkcs7;
    use cbc::cipher::{BlockModeDecrypt, KeyIvInit};
    use hmac::{KeyInit, Mac};
    use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
    use serde_json::Value;
    use sha2::{Digest, Sha256};

    /// The master key from a token answer's KDF fields and salt.
    pub fn master_key(password: &str, login: &Value) -> [u8; 32] {
        let unlock = &login["UserDecryptionOptions"]["MasterPasswordUnlock"];
        let salt = unlock["Salt"].as_str().unwrap().trim().to_lowercase();
        let kdf = &unlock["Kdf"];
        let t = kdf["Iterations"].as_u64().unwrap() as u32;
        let mut mk = [0u8; 32];
        match kdf["KdfType"].as_u64().unwrap() {
            0 => pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt.as_bytes(), t, &mut mk),
            1 => {
                let m = kdf["Memory"].as_u64().unwrap() as u32 * 1024;
                let p = kdf["Parallelism"].as_u64().unwrap() as u32;
                let params = argon2::Params::new(m, t, p, Some(32)).unwrap();
                argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                    .hash_password_into(
                        password.as_bytes(),
                        &Sha256::digest(salt.as_bytes()),
                        &mut mk,
                    )
                    .unwrap();
            }
            other => panic!("kdf {other}"),
        }
        mk
    }

    pub fn stretch(mk: &[u8; 32]) -> [u8; 64] {
        let hk = hkdf::Hkdf::<Sha256>::from_prk(mk).unwrap();
        let mut k = [0u8; 64];
        hk.expand(b"enc", &mut k[..32]).unwrap();
        hk.expand(b"mac", &mut k[32..]).unwrap();
        k
    }

    pub fn decrypt2(key: &[u8], enc: &str) -> Vec<u8> {
        let parts: Vec<Vec<u8>> = enc
            .strip_prefix("2.")
            .unwrap()
            .split('|')
            .map(|p| B64.decode(p).unwrap())
            .collect();
        let [iv, ct, tag] = &parts[..] else {
            panic!("{enc}")
        };
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&key[32..]).unwrap();
        mac.update(iv);
        mac.update(ct);
        mac.verify_slice(tag).unwrap();
        cbc::Decryptor::<aes::Aes256>::new_from_slices(&key[..32], iv)
            .unwrap()
            .decrypt_padded_vec::<Pkcs7>(ct)
            .unwrap()
    }

    pub fn private_key(pkcs8: &[u8]) -> rsa::PrivateKey {
        rsa::PrivateKey::from_pkcs8_der(pkcs8).unwrap()
    }

    pub fn decrypt4(private: &rsa::PrivateKey, enc: &str) -> Vec<u8> {
        let ct = B64.decode(enc.strip_prefix("4.").unwrap()).unwrap();
        assert_eq!(ct.len(), 256);
        private.oaep_decrypt::<sha1::Sha1>(&ct).unwrap()
    }

    pub fn encrypt4(spki_b64: &str, plain: &[u8]) -> String {
        let spki = B64.decode(spki_b64).unwrap();
        assert_eq!(spki.len(), 294);
        let public = rsa::PublicKey::from_public_key_der(&spki).unwrap();
        format!(
            "4.{}",
            B64.encode(public.oaep_encrypt::<sha1::Sha1>(plain).unwrap())
        )
    }
}

/// A personal API key login with camelCase device fields and a client version.
fn login_form(admin: &AdminLogin, device: bool) -> Vec<(&str, &str)> {
    let mut f = vec![
        ("grant_type", "client_credentials"),
        ("scope", "api"),
        ("client_id", admin.client_id.as_str()),
        ("client_secret", admin.client_secret.as_str()),
    ];
    if device {
        f.extend([
            ("deviceIdentifier", DEVICE),
            ("deviceName", "scim-edge-confirm"),
            ("deviceType", "8"),
        ]);
    }
    f
}

fn user_login(v: &FakeVault, pairs: &[(&str, &str)]) -> Resp {
    send(
        &v.url(),
        "POST",
        "/identity/connect/token",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("bitwarden-client-version", VERSION),
        ],
        &form(pairs),
    )
    .unwrap()
}

/// An administrator's call: bearer token, client version, optional JSON body.
fn call(v: &FakeVault, tok: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
    let auth = format!("Bearer {tok}");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    send(
        &v.url(),
        method,
        &format!("/api{path}"),
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
            ("bitwarden-client-version", VERSION),
        ],
        body.as_bytes(),
    )
    .unwrap()
}

fn users_path(rest: &str) -> String {
    format!("/organizations/{ORG}/users{rest}")
}

/// The administrator, logged in and unlocked: its token and the organization key.
struct Session {
    token: String,
    org_key: Vec<u8>,
}

fn unlock(v: &FakeVault, admin: &AdminLogin, password: &str) -> Session {
    let r = user_login(v, &login_form(admin, true));
    assert_eq!(r.status, 200, "{}", r.body);
    let login = r.json();
    let token = login["access_token"].as_str().unwrap().to_string();
    let stretched = client::stretch(&client::master_key(password, &login));
    let user_key = client::decrypt2(&stretched, login["Key"].as_str().unwrap());
    assert_eq!(user_key.len(), 64);
    let pkcs8 = client::decrypt2(&user_key, login["PrivateKey"].as_str().unwrap());
    let private = client::private_key(&pkcs8);

    let sync = call(v, &token, "GET", "/sync?excludeDomains=true", None);
    assert_eq!(sync.status, 200, "{}", sync.body);
    let sync = sync.json();
    assert_eq!(sync["object"], "sync");
    let profile = &sync["profile"];
    assert_eq!(profile["id"], admin.user_id.as_str());
    assert_eq!(profile["email"], admin.email.as_str());
    assert_eq!(profile["key"], login["Key"]);
    assert_eq!(profile["privateKey"], login["PrivateKey"]);
    let orgs = profile["organizations"].as_array().unwrap();
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0]["id"], ORG);
    assert_eq!(orgs[0]["status"], CONFIRMED);
    let org_key = client::decrypt4(&private, orgs[0]["key"].as_str().unwrap());
    assert_eq!(org_key.len(), 64);
    Session { token, org_key }
}

fn start(mode: Mode) -> FakeVault {
    FakeVault::start(Options {
        mode,
        org_id: ORG.to_string(),
        limits: Limits::unlimited(),
        token_per_window: 0,
        ..Options::default()
    })
}

fn member(v: &FakeVault, id: &str) -> scim_edge_fakevault::Member {
    v.members().into_iter().find(|m| m.id == id).unwrap()
}

/// The member's public key as the web vault fetches it (bulk route).
fn public_key_of(v: &FakeVault, s: &Session, member_id: &str) -> String {
    let r = call(
        v,
        &s.token,
        "POST",
        &users_path("/public-keys"),
        Some(json!({"ids": [member_id]})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"][0]["key"].as_str().unwrap().to_string()
}

fn confirm(v: &FakeVault, s: &Session, member_id: &str, key: &str) -> Resp {
    call(
        v,
        &s.token,
        "POST",
        &users_path(&format!("/{member_id}/confirm")),
        Some(json!({"key": key})),
    )
}

fn assert_vw_error(r: &Resp, status: u16, message: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let j = r.json();
    assert_eq!(j["message"], message);
    assert_eq!(j["errorModel"]["message"], message);
    assert_eq!(j["validationErrors"][""], json!([message]));
    assert_eq!(j["object"], "error");
}

fn full_flow(mode: Mode, kdf: Kdf) {
    let v = start(mode);
    let admin = v.seed_admin(" Admin@Example.com", "correct horse", kdf, OWNER);
    assert_eq!(admin.email, "admin@example.com");
    assert_eq!(admin.client_id, format!("user.{}", admin.user_id));
    let a = member(&v, &admin.member_id);
    assert_eq!(
        (a.status, a.type_, a.user_id.as_deref()),
        (CONFIRMED, OWNER, Some(admin.user_id.as_str()))
    );
    assert_eq!(v.holds_org_key(&admin.member_id), Some(true));

    let s = unlock(&v, &admin, "correct horse");

    // An invitation, then the address registers: Accepted with that account.
    let bob = v.seed_member("Bob@Example.com", USER, INVITED, Some("okta-bob"));
    let list = call(&v, &s.token, "GET", &users_path(""), None);
    assert_eq!(list.status, 200);
    let list = list.json();
    assert_eq!(
        (list["object"].clone(), list["continuationToken"].clone()),
        (json!("list"), Value::Null)
    );
    let entry = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == bob.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["userId"], Value::Null);
    assert_eq!(entry["status"], INVITED);
    assert_eq!(entry["type"], USER);
    assert_eq!(entry["email"], "Bob@Example.com");
    assert_eq!(entry["externalId"], "okta-bob");
    assert_eq!(entry["object"], "organizationUserUserDetails");
    // Someone only invited has no key yet.
    let keys = call(
        &v,
        &s.token,
        "POST",
        &users_path("/public-keys"),
        Some(json!({"ids": [bob]})),
    );
    assert_eq!(keys.json()["data"][0]["key"], Value::Null);

    let bob_user = v.register("bob@example.COM");
    let m = member(&v, &bob);
    assert_eq!(
        (m.status, m.user_id.as_deref()),
        (ACCEPTED, Some(bob_user.as_str()))
    );
    let list = call(&v, &s.token, "GET", &users_path(""), None).json();
    let entry = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == bob.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (entry["status"].clone(), entry["userId"].clone()),
        (json!(ACCEPTED), json!(bob_user))
    );

    // Both public key routes give the same key.
    let r = call(
        &v,
        &s.token,
        "GET",
        &format!("/users/{bob_user}/public-key"),
        None,
    );
    assert_eq!(r.status, 200);
    let pk = r.json();
    assert_eq!(
        (pk["userId"].clone(), pk["object"].clone()),
        (json!(bob_user), json!("userKey"))
    );
    let bulk = call(
        &v,
        &s.token,
        "POST",
        &users_path("/public-keys"),
        Some(json!({"ids": [bob, "00000000-0000-4000-8000-000000000000"]})),
    )
    .json();
    assert_eq!(bulk["object"], "list");
    assert_eq!(
        bulk["data"].as_array().unwrap().len(),
        1,
        "an unknown id is left out"
    );
    assert_eq!(bulk["data"][0]["id"], bob.as_str());
    assert_eq!(bulk["data"][0]["userId"], bob_user.as_str());
    assert_eq!(bulk["data"][0]["key"], pk["publicKey"]);

    // Confirm with the organization key wrapped to it.
    let wrapped = client::encrypt4(pk["publicKey"].as_str().unwrap(), &s.org_key);
    let r = confirm(&v, &s, &bob, &wrapped);
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    let m = member(&v, &bob);
    assert_eq!(
        (m.status, m.key.as_deref()),
        (CONFIRMED, Some(wrapped.as_str()))
    );
    assert_eq!(v.holds_org_key(&bob), Some(true));
    // Once more: no longer Accepted.
    assert_vw_error(
        &confirm(&v, &s, &bob, &wrapped),
        400,
        "User in invalid state",
    );

    // A key that does not open is stored all the same.
    let carol = v.seed_member("carol@example.com", USER, INVITED, None);
    v.register("carol@example.com");
    let r = confirm(&v, &s, &carol, "4.Z2FyYmFnZQ==");
    assert_eq!(r.status, 200);
    assert_eq!(member(&v, &carol).key.as_deref(), Some("4.Z2FyYmFnZQ=="));
    assert_eq!(v.holds_org_key(&carol), Some(false));

    // Not Accepted; no key; unknown member.
    let dave = v.seed_member("dave@example.com", USER, INVITED, None);
    let dave_key = client::encrypt4(pk["publicKey"].as_str().unwrap(), &s.org_key);
    assert_vw_error(
        &confirm(&v, &s, &dave, &dave_key),
        400,
        "User in invalid state",
    );
    assert_eq!(v.holds_org_key(&dave), None);
    let erin = v.seed_member("erin@example.com", USER, INVITED, None);
    v.register("erin@example.com");
    assert_vw_error(
        &confirm(&v, &s, &erin, ""),
        400,
        "Key or UserId is not set, unable to process request",
    );
    assert_vw_error(
        &confirm(&v, &s, "00000000-0000-4000-8000-000000000000", &dave_key),
        400,
        "The specified user isn't a member of the organization",
    );

    // A refusal, single and bulk.
    let fred = v.seed_member("fred@example.com", USER, INVITED, None);
    v.register("fred@example.com");
    v.refuse_confirm(&fred, "Cannot confirm this member because 2FA is required");
    let fred_key = client::encrypt4(&public_key_of(&v, &s, &fred), &s.org_key);
    assert_vw_error(
        &confirm(&v, &s, &fred, &fred_key),
        400,
        "Cannot confirm this member because 2FA is required",
    );
    let erin_key = client::encrypt4(&public_key_of(&v, &s, &erin), &s.org_key);
    let r = call(
        &v,
        &s.token,
        "POST",
        &users_path("/confirm"),
        Some(json!({"keys": [
            {"id": erin, "key": erin_key},
            {"id": fred, "key": fred_key},
            {"id": dave, "key": dave_key},
        ]})),
    );
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["object"], "list");
    let errors: Vec<(&str, &str)> = j["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e["error"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errors,
        [
            (erin.as_str(), ""),
            (
                fred.as_str(),
                "Cannot confirm this member because 2FA is required"
            ),
            (dave.as_str(), "User in invalid state"),
        ]
    );
    assert_eq!(v.holds_org_key(&erin), Some(true));
    assert_eq!(v.holds_org_key(&fred), None);
    assert_eq!(member(&v, &fred).status, ACCEPTED);

    let st = v.stats();
    assert_eq!(st.confirms, 3);
    assert!(st.devices.contains(DEVICE));
    assert_eq!(st.client_versions.iter().collect::<Vec<_>>(), [VERSION]);
    assert_eq!(
        st.count("POST /api/organizations/{id}/users/{id}/confirm"),
        7
    );
    assert_eq!(st.count("POST /api/organizations/{id}/users/confirm"), 1);
    assert_eq!(st.count("GET /api/sync"), 1);
    assert_eq!(st.rate_limited, 0);
}

#[test]
fn confirm_flow_bitwarden_pbkdf2() {
    full_flow(Mode::Bitwarden, Kdf::Pbkdf2 { iterations: 5_000 });
}

#[test]
fn confirm_flow_vaultwarden_argon2id() {
    let kdf = Kdf::Argon2id {
        iterations: 2,
        memory_mib: 16,
        parallelism: 2,
    };
    full_flow(Mode::Vaultwarden, kdf);
}

#[test]
fn user_login_answer() {
    let v = FakeVault::start(Options {
        mode: Mode::Vaultwarden,
        user_token_lifetime_s: 1234,
        limits: Limits::unlimited(),
        ..Options::default()
    });
    let kdf = Kdf::Argon2id {
        iterations: 3,
        memory_mib: 16,
        parallelism: 4,
    };
    let admin = v.seed_admin("owner@example.com", "pw", kdf, OWNER);
    let r = user_login(&v, &login_form(&admin, true));
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["expires_in"], 1234);
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["scope"], "api");
    assert!(j.get("refresh_token").is_none());
    assert_eq!(
        (j["Kdf"].clone(), j["KdfIterations"].clone()),
        (json!(1), json!(3))
    );
    assert_eq!(
        (j["KdfMemory"].clone(), j["KdfParallelism"].clone()),
        (json!(16), json!(4))
    );
    assert_eq!(j["ResetMasterPassword"], false);
    let options = &j["UserDecryptionOptions"];
    assert_eq!(options["HasMasterPassword"], true);
    let unlock = &options["MasterPasswordUnlock"];
    assert_eq!(
        unlock["Kdf"],
        json!({"KdfType": 1, "Iterations": 3, "Memory": 16, "Parallelism": 4})
    );
    assert_eq!(unlock["MasterKeyEncryptedUserKey"], j["Key"]);
    assert_eq!(unlock["Salt"], "owner@example.com");
    assert!(j["Key"].as_str().unwrap().starts_with("2."));
    assert!(j["PrivateKey"].as_str().unwrap().starts_with("2."));

    // PBKDF2 has neither memory nor parallelism.
    let pb = v.seed_admin(
        "second@example.com",
        "pw",
        Kdf::Pbkdf2 { iterations: 1000 },
        ADMIN,
    );
    let j = user_login(&v, &login_form(&pb, true)).json();
    assert_eq!(
        (j["Kdf"].clone(), j["KdfMemory"].clone()),
        (json!(0), Value::Null)
    );
    assert_eq!(
        j["UserDecryptionOptions"]["MasterPasswordUnlock"]["Kdf"]["Parallelism"],
        Value::Null
    );
    assert_eq!(v.stats().tokens_issued, 2);
}

#[test]
fn vaultwarden_user_login_refusals() {
    let v = start(Mode::Vaultwarden);
    let admin = v.seed_admin(
        "a@example.com",
        "pw",
        Kdf::Pbkdf2 { iterations: 1000 },
        OWNER,
    );
    let msg = |pairs: &[(&str, &str)]| {
        let r = user_login(&v, pairs);
        assert_eq!(r.status, 400, "{pairs:?}");
        let j = r.json();
        (
            j["error"].as_str().unwrap().to_string(),
            j["message"].as_str().unwrap().to_string(),
        )
    };
    let bare = login_form(&admin, false);
    assert_eq!(msg(&bare).1, "device_identifier cannot be blank");
    let mut no_type = login_form(&admin, true);
    no_type.pop();
    assert_eq!(msg(&no_type).1, "device_type cannot be blank");
    let mut wrong = login_form(&admin, true);
    wrong[3].1 = "not-the-key";
    assert_eq!(
        msg(&wrong),
        ("invalid_client".into(), "Incorrect client_secret".into())
    );
    let mut unknown = login_form(&admin, true);
    unknown[2].1 = "user.00000000-0000-4000-8000-000000000000";
    assert_eq!(msg(&unknown).1, "Invalid client_id");
    let mut scope = login_form(&admin, true);
    scope[1].1 = "api offline_access";
    assert_eq!(msg(&scope).0, "invalid_scope");
    assert_eq!(v.stats().tokens_issued, 0);
    assert!(v.stats().devices.is_empty());

    // The snake_case spellings work too.
    let mut snake = login_form(&admin, false);
    snake.extend([
        ("device_identifier", "dev-2"),
        ("device_name", "n"),
        ("device_type", "8"),
    ]);
    assert_eq!(user_login(&v, &snake).status, 200);
    assert!(v.stats().devices.contains("dev-2"));
}

#[test]
fn bitwarden_user_login_without_device_fields() {
    let v = start(Mode::Bitwarden);
    let admin = v.seed_admin(
        "a@example.com",
        "pw",
        Kdf::Pbkdf2 { iterations: 1000 },
        OWNER,
    );
    let r = user_login(&v, &login_form(&admin, false));
    assert_eq!(r.status, 200, "{}", r.body);
    let mut wrong = login_form(&admin, false);
    wrong[3].1 = "nope";
    let r = user_login(&v, &wrong);
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("invalid_client"))
    );
    let mut scope = login_form(&admin, false);
    scope[1].1 = "api.organization";
    assert_eq!(user_login(&v, &scope).json()["error"], "invalid_scope");
    assert!(v.stats().devices.is_empty());
}

#[test]
fn tokens_open_their_own_routes_only() {
    for mode in [Mode::Bitwarden, Mode::Vaultwarden] {
        let v = start(mode);
        let admin = v.seed_admin(
            "a@example.com",
            "pw",
            Kdf::Pbkdf2 { iterations: 1000 },
            OWNER,
        );
        let org_token = token(&v);
        let user_token = user_login(&v, &login_form(&admin, true)).json()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        for (method, path) in [
            ("GET", "/sync".to_string()),
            ("GET", users_path("")),
            ("POST", users_path("/public-keys")),
            ("POST", users_path("/confirm")),
            ("GET", format!("/users/{}/public-key", admin.user_id)),
        ] {
            let r = call(
                &v,
                &org_token,
                method,
                &path,
                Some(json!({"ids": [], "keys": []})),
            );
            assert_eq!(
                (r.status, r.body.as_str()),
                (401, ""),
                "{mode:?} {method} {path}"
            );
            let r = call(&v, "", method, &path, Some(json!({"ids": []})));
            assert_eq!(r.status, 401, "{mode:?} {method} {path}");
            let r = call(
                &v,
                &user_token,
                method,
                &path,
                Some(json!({"ids": [], "keys": []})),
            );
            assert_eq!(r.status, 200, "{mode:?} {method} {path}: {}", r.body);
        }
        let public = match mode {
            Mode::Bitwarden => ("GET", "/public/members"),
            Mode::Vaultwarden => ("POST", "/public/organization/import"),
        };
        let body = json!({"groups": [], "members": [], "overwriteExisting": false});
        let r = call(&v, &user_token, public.0, public.1, Some(body.clone()));
        assert_eq!(r.status, 401, "{mode:?}");
        assert_eq!(
            call(&v, &org_token, public.0, public.1, Some(body)).status,
            200
        );
        // The public API's clients are not asked for their version.
        let auth = format!("Bearer {org_token}");
        let r = send(
            &v.url(),
            "GET",
            "/api/public/members",
            &[
                ("authorization", auth.as_str()),
                ("bitwarden-client-version", "9.9.9"),
            ],
            b"",
        );
        assert!(r.is_some());
        // Unknown routes under /api are 404 before any token check.
        assert_eq!(call(&v, "", "GET", "/accounts/profile", None).status, 404);

        // expire_tokens ends user tokens too.
        v.expire_tokens();
        assert_eq!(call(&v, &user_token, "GET", "/sync", None).status, 401);
        let st = v.stats();
        assert_eq!(
            st.client_versions.iter().collect::<Vec<_>>(),
            ["", VERSION],
            "{mode:?}"
        );
        assert_eq!(st.confirms, 0);
    }
}

#[test]
fn who_may_list_and_confirm() {
    let v = start(Mode::Vaultwarden);
    let pw = Kdf::Pbkdf2 { iterations: 1000 };
    let admin = v.seed_admin("admin@example.com", "pw", pw, ADMIN);
    let manager = v.seed_admin("manager@example.com", "pw", pw, MANAGER);
    let user = v.seed_admin("user@example.com", "pw", pw, USER);
    let s_admin = unlock(&v, &admin, "pw");
    let s_manager = unlock(&v, &manager, "pw");
    let s_user = unlock(&v, &user, "pw");

    // Managers list members (shown as Custom), plain users may not.
    let list = call(&v, &s_manager.token, "GET", &users_path(""), None);
    assert_eq!(list.status, 200);
    let types: Vec<i64> = list.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_i64().unwrap())
        .collect();
    assert_eq!(types, [1, 4, 2]);
    assert_eq!(
        call(&v, &s_user.token, "GET", &users_path(""), None).status,
        401
    );
    // Another organization's id.
    let other = "/organizations/00000000-0000-4000-8000-000000000000/users";
    assert_eq!(call(&v, &s_admin.token, "GET", other, None).status, 401);

    let new_admin = v.seed_member("boss@example.com", ADMIN, INVITED, None);
    let new_user = v.seed_member("worker@example.com", USER, INVITED, None);
    v.register("boss@example.com");
    v.register("worker@example.com");
    // A manager may not confirm at all; an admin only plain users.
    let key = client::encrypt4(&public_key_of(&v, &s_admin, &new_user), &s_admin.org_key);
    let r = confirm(&v, &s_manager, &new_user, &key);
    assert_eq!((r.status, r.body.as_str()), (401, ""));
    let r = call(
        &v,
        &s_manager.token,
        "POST",
        &users_path("/public-keys"),
        Some(json!({"ids": [new_user]})),
    );
    assert_eq!(r.status, 401);
    let boss_key = client::encrypt4(&public_key_of(&v, &s_admin, &new_admin), &s_admin.org_key);
    assert_vw_error(
        &confirm(&v, &s_admin, &new_admin, &boss_key),
        400,
        "Only Owners can confirm Managers, Admins or Owners",
    );
    assert_eq!(confirm(&v, &s_admin, &new_user, &key).status, 200);
    assert_eq!(v.holds_org_key(&new_user), Some(true));
    assert_eq!(v.stats().confirms, 1);

    // Bodies: not JSON is 400, the wrong shape 422.
    let auth = format!("Bearer {}", s_admin.token);
    let r = send(
        &v.url(),
        "POST",
        &format!("/api{}", users_path("/confirm")),
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ],
        b"{not json",
    )
    .unwrap();
    assert_eq!(r.status, 400);
    let r = call(
        &v,
        &s_admin.token,
        "POST",
        &users_path("/public-keys"),
        Some(json!({"ids": "x"})),
    );
    assert_eq!(r.status, 422);
    let r = call(
        &v,
        &s_admin.token,
        "POST",
        &users_path("/confirm"),
        Some(json!({})),
    );
    assert_eq!((r.status, r.json()["data"].clone()), (200, json!([])));
}

#[test]
fn registering_and_public_keys() {
    let v = start(Mode::Vaultwarden);
    let owner = v.seed_admin(
        "o@example.com",
        "pw",
        Kdf::Pbkdf2 { iterations: 1000 },
        OWNER,
    );
    let s = unlock(&v, &owner, "pw");
    let public_key = |user_id: &str| {
        call(
            &v,
            &s.token,
            "GET",
            &format!("/users/{user_id}/public-key"),
            None,
        )
    };

    // Seeded Accepted: an account id without keys until the address registers.
    let acc = v.seed_member("Acc@Example.com", USER, ACCEPTED, None);
    let acc_user = member(&v, &acc).user_id.unwrap();
    assert_vw_error(&public_key(&acc_user), 404, "User has no public_key");
    assert_vw_error(
        &public_key("00000000-0000-4000-8000-000000000000"),
        404,
        "User doesn't exist",
    );
    let keys = call(
        &v,
        &s.token,
        "POST",
        &users_path("/public-keys"),
        Some(json!({"ids": [acc]})),
    )
    .json();
    assert_eq!(keys["data"][0]["userId"], acc_user.as_str());
    assert_eq!(keys["data"][0]["key"], Value::Null);
    assert_eq!(v.register("acc@example.com"), acc_user);
    assert_eq!(
        v.register("ACC@example.com"),
        acc_user,
        "registering twice keeps the account"
    );
    let pk = public_key(&acc_user);
    assert_eq!(pk.status, 200);

    // Revoked stays revoked, its key still served; restoring gives back Invited.
    let rev = v.seed_member("rev@example.com", USER, INVITED, None);
    v.set_status(&rev, REVOKED);
    let rev_user = v.register("rev@example.com");
    let m = member(&v, &rev);
    assert_eq!(
        (m.status, m.user_id.as_deref()),
        (REVOKED, Some(rev_user.as_str()))
    );
    let keys = call(
        &v,
        &s.token,
        "POST",
        &users_path("/public-keys"),
        Some(json!({"ids": [rev]})),
    )
    .json();
    assert!(keys["data"][0]["key"]
        .as_str()
        .unwrap()
        .starts_with("MIIBIjAN"));

    // Every account of one vault has its own key pair.
    let mut seen = std::collections::BTreeSet::new();
    for id in [&acc, &rev] {
        seen.insert(public_key_of(&v, &s, id));
    }
    seen.insert(public_key_of(&v, &s, &owner.member_id));
    assert_eq!(seen.len(), 3);

    // A Vaultwarden import (mail on) invites; registering accepts.
    let org_token = token(&v);
    let body = json!({"groups": [], "members": [{"email": "New@Example.com", "externalId": "n1", "deleted": false}], "overwriteExisting": false});
    assert_eq!(
        api(
            &v,
            &org_token,
            "POST",
            "/public/organization/import",
            Some(body)
        )
        .status,
        200
    );
    let new = v
        .members()
        .into_iter()
        .find(|m| m.email == "new@example.com")
        .unwrap();
    assert_eq!((new.status, new.user_id.clone()), (INVITED, None));
    let new_user = v.register("new@example.com");
    assert_eq!(member(&v, &new.id).status, ACCEPTED);
    assert_eq!(public_key(&new_user).status, 200);
}
