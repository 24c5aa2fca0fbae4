//! Bitwarden's client crypto as the accounts need it (vault-crypto.md §1): master key
//! (PBKDF2 or Argon2id), master password hash, stretched master key, EncString type 2
//! (AES-256-CBC + HMAC-SHA256) and type 4 (RSA-2048 OAEP with SHA-1), SPKI and PKCS#8
//! DER keys. Every primitive comes from a RustCrypto crate; this module only composes.
//!
//! RSA-2048 generation is slow in a debug build, so key pairs come from a process-wide
//! pool (see [`key_pair`]).

use crate::Kdf;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use cbc::cipher::block_padding::Pkcs7;
#[cfg(test)]
use cbc::cipher::BlockModeDecrypt;
use cbc::cipher::{BlockModeEncrypt, KeyIvInit};
use hmac::{KeyInit, Mac};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex, OnceLock};

type HmacSha256 = hmac::Hmac<Sha256>;
type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
#[cfg(test)]
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// Why a key could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CryptoError(pub &'static str);

impl std::fmt::Display for CryptoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// A symmetric key (user key, organization key, stretched master key): AES-256 key
/// (bytes 0–31) ‖ HMAC-SHA256 key (32–63).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SymKey(pub [u8; 64]);

impl SymKey {
    /// 64 random bytes.
    pub fn random() -> SymKey {
        let mut k = [0u8; 64];
        rand::fill(&mut k[..]);
        SymKey(k)
    }

    fn enc(&self) -> &[u8] {
        &self.0[..32]
    }

    fn mac(&self) -> &[u8] {
        &self.0[32..]
    }
}

impl std::fmt::Debug for SymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SymKey(<redacted>)")
    }
}

/// The salt every KDF starts from: the email trimmed and lowercased.
fn normalized_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The 32-byte master key from the password and the account's KDF settings.
pub(crate) fn master_key(password: &str, email: &str, kdf: &Kdf) -> Result<[u8; 32], CryptoError> {
    let salt = normalized_email(email);
    let mut out = [0u8; 32];
    match *kdf {
        Kdf::Pbkdf2 { iterations } => {
            if iterations == 0 {
                return Err(CryptoError("PBKDF2 needs at least one iteration"));
            }
            pbkdf2::pbkdf2_hmac::<Sha256>(
                password.as_bytes(),
                salt.as_bytes(),
                iterations,
                &mut out,
            );
        }
        Kdf::Argon2id {
            iterations,
            memory_mib,
            parallelism,
        } => {
            let memory_kib = memory_mib
                .checked_mul(1024)
                .ok_or(CryptoError("Argon2 memory out of range"))?;
            let params = argon2::Params::new(memory_kib, iterations, parallelism, Some(32))
                .map_err(|_| CryptoError("Argon2 parameters out of range"))?;
            let argon =
                argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
            // Argon2's salt is the SHA-256 of the email, not the email itself.
            let salt = Sha256::digest(salt.as_bytes());
            argon
                .hash_password_into(password.as_bytes(), &salt, &mut out)
                .map_err(|_| CryptoError("Argon2 failed"))?;
        }
    }
    Ok(out)
}

/// What a client sends as its master password hash: base64 of one PBKDF2-HMAC-SHA256
/// round over the master key, salted with the password. No route here takes a password
/// (API key logins only): kept for its known answer, which pins the KDF's salt rules.
#[cfg(test)]
pub(crate) fn master_password_hash(master_key: &[u8; 32], password: &str) -> String {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(master_key, password.as_bytes(), 1, &mut out);
    B64.encode(out)
}

/// The stretched master key: HKDF-Expand (no Extract) with infos `enc` and `mac`.
pub(crate) fn stretch(master_key: &[u8; 32]) -> Result<SymKey, CryptoError> {
    let hk = hkdf::Hkdf::<Sha256>::from_prk(master_key).map_err(|_| CryptoError("HKDF PRK"))?;
    let mut k = [0u8; 64];
    let (enc, mac) = k.split_at_mut(32);
    hk.expand(b"enc", enc)
        .map_err(|_| CryptoError("HKDF expand"))?;
    hk.expand(b"mac", mac)
        .map_err(|_| CryptoError("HKDF expand"))?;
    Ok(SymKey(k))
}

fn mac_over(key: &SymKey, iv: &[u8], ct: &[u8]) -> Result<HmacSha256, CryptoError> {
    let mut mac =
        <HmacSha256 as KeyInit>::new_from_slice(key.mac()).map_err(|_| CryptoError("HMAC key"))?;
    mac.update(iv);
    mac.update(ct);
    Ok(mac)
}

/// EncString type 2: `2.<iv>|<ct>|<mac>` with a random IV.
pub(crate) fn encrypt_type2(key: &SymKey, plain: &[u8]) -> Result<String, CryptoError> {
    let mut iv = [0u8; 16];
    rand::fill(&mut iv[..]);
    let ct = Aes256CbcEnc::new_from_slices(key.enc(), &iv)
        .map_err(|_| CryptoError("AES key"))?
        .encrypt_padded_vec::<Pkcs7>(plain);
    let tag = mac_over(key, &iv, &ct)?.finalize().into_bytes();
    Ok(format!(
        "2.{}|{}|{}",
        B64.encode(iv),
        B64.encode(&ct),
        B64.encode(tag)
    ))
}

/// Reads an EncString type 2, checking its MAC (in constant time) before decrypting.
/// The server never decrypts one; the tests check what it wrote.
#[cfg(test)]
pub(crate) fn decrypt_type2(key: &SymKey, enc: &str) -> Option<Vec<u8>> {
    let rest = enc.strip_prefix("2.")?;
    let mut parts = rest.split('|');
    let (iv, ct, tag) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (iv, ct, tag) = (
        B64.decode(iv).ok()?,
        B64.decode(ct).ok()?,
        B64.decode(tag).ok()?,
    );
    mac_over(key, &iv, &ct).ok()?.verify_slice(&tag).ok()?;
    Aes256CbcDec::new_from_slices(key.enc(), &iv)
        .ok()?
        .decrypt_padded_vec::<Pkcs7>(&ct)
        .ok()
}

/// EncString type 4: `4.<b64 of RSA-OAEP (SHA-1, MGF1-SHA-1, no label)>`.
pub(crate) fn encrypt_type4(public: &rsa::PublicKey, plain: &[u8]) -> Result<String, CryptoError> {
    let ct = public
        .oaep_encrypt::<sha1::Sha1>(plain)
        .map_err(|_| CryptoError("RSA-OAEP encryption"))?;
    Ok(format!("4.{}", B64.encode(ct)))
}

/// Reads an EncString type 4 with this private key; `None` for anything else.
pub(crate) fn decrypt_type4(private: &rsa::PrivateKey, enc: &str) -> Option<Vec<u8>> {
    let ct = B64.decode(enc.strip_prefix("4.")?).ok()?;
    private.oaep_decrypt::<sha1::Sha1>(&ct).ok()
}

/// An account's RSA-2048 key pair with its two encodings.
pub(crate) struct KeyPair {
    pub private: rsa::PrivateKey,
    /// SubjectPublicKeyInfo DER, base64 (what the server hands out as the public key).
    pub public_b64: String,
    /// PKCS#8 DER of the private key (what the client wraps under the user key).
    pub pkcs8: Vec<u8>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public_b64", &self.public_b64)
            .finish_non_exhaustive()
    }
}

fn generate() -> Result<KeyPair, CryptoError> {
    let private = rsa::PrivateKey::new(&mut rand::rng(), 2048)
        .map_err(|_| CryptoError("RSA key generation"))?;
    let spki = private
        .to_public_key()
        .to_public_key_der()
        .map_err(|_| CryptoError("SPKI encoding"))?;
    let pkcs8 = private
        .to_pkcs8_der()
        .map_err(|_| CryptoError("PKCS#8 encoding"))?;
    Ok(KeyPair {
        public_b64: B64.encode(spki.as_bytes()),
        pkcs8: pkcs8.as_bytes().to_vec(),
        private,
    })
}

type Slot = Arc<OnceLock<Result<Arc<KeyPair>, CryptoError>>>;

/// Generated key pairs, shared by every vault of the process.
static POOL: OnceLock<Mutex<Vec<Slot>>> = OnceLock::new();

/// The `n`-th key pair of the process-wide pool, generated on first use. A vault asks
/// for 0, 1, 2… so its accounts never share a pair, while vaults reuse each other's.
/// Different slots are generated in parallel; one slot only once.
pub(crate) fn key_pair(n: usize) -> Result<Arc<KeyPair>, CryptoError> {
    let slot = {
        let mut pool = POOL
            .get_or_init(|| Mutex::new(Vec::new()))
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        while pool.len() <= n {
            pool.push(Arc::new(OnceLock::new()));
        }
        pool[n].clone()
    };
    slot.get_or_init(|| generate().map(Arc::new)).clone()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    const PASSWORD: &str = "67t9b5g67$%Dh89n";

    #[test]
    fn pbkdf2_master_key_and_its_stretch() {
        let mk = master_key(PASSWORD, "test_key", &Kdf::Pbkdf2 { iterations: 10_000 }).unwrap();
        assert_eq!(
            hex(&mk),
            "1f4f68e29647b15ac250acd1118184518aa745a7fe95021b27c5402a16c3564b"
        );
        let s = stretch(&mk).unwrap();
        assert_eq!(
            hex(s.enc()),
            "6f1fb22dee9825728fd77c5387adc3178e8678f93d84a3b671c5bdccbc15ed60"
        );
        assert_eq!(
            hex(s.mac()),
            "dd7fceea651bca265634221c4e1cb910303d7fa6d1f7c257e81a3055c1f9b39b"
        );
    }

    #[test]
    fn argon2id_master_key() {
        let kdf = Kdf::Argon2id {
            iterations: 4,
            memory_mib: 32,
            parallelism: 2,
        };
        let mk = master_key(PASSWORD, "test_key", &kdf).unwrap();
        assert_eq!(
            hex(&mk),
            "cff0e1b1a213a34c626ab3afe00911f01493ed2ff6968db83ee183f23335e1f2"
        );
    }

    #[test]
    fn master_password_hash_trims_and_lowercases_the_email() {
        let kdf = Kdf::Pbkdf2 {
            iterations: 100_000,
        };
        let mk = master_key("asdfasdf", " TEST@bitwarden.com", &kdf).unwrap();
        assert_eq!(
            master_password_hash(&mk, "asdfasdf"),
            "wmyadRMyBZOH7P/a/ucTCbSghKgdzDpPqUnu/DAVtSw="
        );
    }

    #[test]
    fn bad_kdf_settings_are_errors() {
        assert!(master_key("p", "e", &Kdf::Pbkdf2 { iterations: 0 }).is_err());
        let kdf = Kdf::Argon2id {
            iterations: 0,
            memory_mib: 1,
            parallelism: 1,
        };
        assert!(master_key("p", "e", &kdf).is_err());
    }

    #[test]
    fn type2_round_trip_and_tamper() {
        let k = SymKey::random();
        let e = encrypt_type2(&k, b"sixty-four bytes or any other length").unwrap();
        assert!(e.starts_with("2."));
        assert_eq!(e.split('|').count(), 3);
        assert_ne!(
            e,
            encrypt_type2(&k, b"sixty-four bytes or any other length").unwrap()
        );
        assert_eq!(
            decrypt_type2(&k, &e).unwrap(),
            b"sixty-four bytes or any other length"
        );
        // Another key, a flipped ciphertext byte, or a missing part: refused.
        assert!(decrypt_type2(&SymKey::random(), &e).is_none());
        let parts: Vec<&str> = e[2..].split('|').collect();
        let mut ct = B64.decode(parts[1]).unwrap();
        ct[0] ^= 1;
        let tampered = format!("2.{}|{}|{}", parts[0], B64.encode(ct), parts[2]);
        assert!(decrypt_type2(&k, &tampered).is_none());
        assert!(decrypt_type2(&k, &format!("2.{}|{}", parts[0], parts[1])).is_none());
    }

    #[test]
    fn key_pairs_and_type4() {
        let kp = key_pair(0).unwrap();
        let spki = B64.decode(&kp.public_b64).unwrap();
        assert_eq!(spki.len(), 294);
        let public = rsa::PublicKey::from_public_key_der(&spki).unwrap();
        assert_eq!(
            rsa::PrivateKey::from_pkcs8_der(&kp.pkcs8).unwrap(),
            kp.private
        );
        let org = SymKey::random();
        let e = encrypt_type4(&public, &org.0).unwrap();
        assert_eq!(B64.decode(&e[2..]).unwrap().len(), 256);
        assert_eq!(decrypt_type4(&kp.private, &e).unwrap(), org.0.to_vec());
        assert!(decrypt_type4(&kp.private, "4.AAAA").is_none());
        assert!(decrypt_type4(&kp.private, &e.replacen('4', "3", 1)).is_none());
        // The pool hands the same pair to the same slot, another to the next.
        assert!(Arc::ptr_eq(&kp, &key_pair(0).unwrap()));
        assert_ne!(key_pair(1).unwrap().public_b64, kp.public_b64);
    }
}
