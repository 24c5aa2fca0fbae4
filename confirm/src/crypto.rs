//! Bitwarden's client formats, as far as confirming a member needs them: the master key
//! from the master password, its stretch, EncString type 2 (AES-256-CBC with
//! HMAC-SHA256) to unlock the account's keys, and type 4 (RSA-2048 OAEP SHA-1) to unwrap
//! the organization key and wrap it to a member. Every primitive comes from the
//! RustCrypto crates; this module only lays out their inputs and outputs. Key material
//! lives in zeroizing buffers.

use aes::cipher::{block_padding::Pkcs7, BlockModeDecrypt, KeyIvInit};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// What went wrong unlocking or wrapping a key. Says nothing of the key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoError(pub String);

impl std::fmt::Display for CryptoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(msg: impl Into<String>) -> CryptoError {
    CryptoError(msg.into())
}

/// How the account derives its master key (the token response's `Kdf*` fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kdf {
    /// `Kdf` 0.
    Pbkdf2 {
        /// `KdfIterations`.
        iterations: u32,
    },
    /// `Kdf` 1.
    Argon2id {
        /// `KdfIterations`.
        iterations: u32,
        /// `KdfMemory`, in MiB.
        memory_mib: u32,
        /// `KdfParallelism`.
        parallelism: u32,
    },
}

/// A 64-byte symmetric key: AES-256 key, then HMAC-SHA256 key (a user key, an
/// organization key, a stretched master key).
pub struct SymmetricKey(Zeroizing<[u8; 64]>);

impl SymmetricKey {
    /// The key from its 64 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<SymmetricKey, CryptoError> {
        let mut k = Zeroizing::new([0u8; 64]);
        if bytes.len() != 64 {
            return Err(err(format!(
                "a symmetric key is 64 bytes, not {}",
                bytes.len()
            )));
        }
        k.copy_from_slice(bytes);
        Ok(SymmetricKey(k))
    }

    fn enc(&self) -> &[u8] {
        &self.0[..32]
    }

    fn mac(&self) -> &[u8] {
        &self.0[32..]
    }

    /// The 64 bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0[..]
    }
}

/// The master key: the KDF over the password, salted with the email trimmed and
/// lowercased (Argon2id salts with its SHA-256).
pub fn master_key(
    password: &[u8],
    email: &str,
    kdf: Kdf,
) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let salt = email.trim().to_lowercase();
    let mut out = Zeroizing::new([0u8; 32]);
    match kdf {
        Kdf::Pbkdf2 { iterations } => {
            if iterations == 0 {
                return Err(err("the account's PBKDF2 iterations are 0"));
            }
            pbkdf2::pbkdf2_hmac::<Sha256>(password, salt.as_bytes(), iterations, &mut out[..]);
        }
        Kdf::Argon2id {
            iterations,
            memory_mib,
            parallelism,
        } => {
            let params = argon2::Params::new(
                memory_mib.saturating_mul(1024),
                iterations,
                parallelism,
                Some(32),
            )
            .map_err(|e| err(format!("the account's Argon2id settings: {e}")))?;
            let salt = Sha256::digest(salt.as_bytes());
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(password, &salt, &mut out[..])
                .map_err(|e| err(format!("Argon2id: {e}")))?;
        }
    }
    Ok(out)
}

/// The stretched master key: HKDF-Expand-SHA256 of the master key with info `enc`, then
/// with info `mac` (no extract step).
pub fn stretch(master: &[u8; 32]) -> Result<SymmetricKey, CryptoError> {
    let hk = hkdf::Hkdf::<Sha256>::from_prk(master).map_err(|_| err("HKDF: bad key length"))?;
    let mut k = Zeroizing::new([0u8; 64]);
    hk.expand(b"enc", &mut k[..32])
        .and_then(|()| hk.expand(b"mac", &mut k[32..]))
        .map_err(|_| err("HKDF: bad output length"))?;
    Ok(SymmetricKey(k))
}

fn b64(part: &str, what: &str) -> Result<Vec<u8>, CryptoError> {
    STANDARD
        .decode(part.trim())
        .map_err(|_| err(format!("{what} is not base64")))
}

/// Decrypts an EncString of type 2 (`2.iv|ct|mac`) under `key`; the MAC is checked
/// (in constant time) before anything is decrypted. A wrong key fails here.
pub fn decrypt_type2(s: &str, key: &SymmetricKey) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let body = s
        .strip_prefix("2.")
        .ok_or_else(|| err("not an EncString of type 2 (AES-256-CBC, HMAC-SHA256)"))?;
    let mut parts = body.split('|');
    let (Some(iv), Some(ct), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(err("an EncString of type 2 has three parts: iv|data|mac"));
    };
    let (iv, ct, tag) = (
        b64(iv, "the iv")?,
        b64(ct, "the data")?,
        b64(tag, "the mac")?,
    );
    if iv.len() != 16 {
        return Err(err("the iv is not 16 bytes"));
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.mac())
        .map_err(|_| err("HMAC: bad key length"))?;
    mac.update(&iv);
    mac.update(&ct);
    mac.verify_slice(&tag)
        .map_err(|_| err("the MAC does not match: wrong key"))?;
    let dec = cbc::Decryptor::<aes::Aes256>::new_from_slices(key.enc(), &iv)
        .map_err(|_| err("AES: bad key or iv length"))?;
    dec.decrypt_padded_vec::<Pkcs7>(&ct)
        .map(Zeroizing::new)
        .map_err(|_| err("bad padding after a good MAC"))
}

/// An RSA private key from its PKCS#8 DER.
pub fn private_key(der: &[u8]) -> Result<rsa::PrivateKey, CryptoError> {
    rsa::PrivateKey::from_pkcs8_der(der).map_err(|_| err("the private key is not PKCS#8 RSA"))
}

/// Decrypts an EncString of type 4 (OAEP SHA-1) or 3 (OAEP SHA-256) with `key`.
pub fn decrypt_rsa(s: &str, key: &rsa::PrivateKey) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let (kind, data) = s
        .split_once('.')
        .ok_or_else(|| err("not an EncString (no type)"))?;
    let ct = b64(data, "the data")?;
    let pt = match kind {
        "4" => key.oaep_decrypt::<Sha1>(&ct),
        "3" => key.oaep_decrypt::<Sha256>(&ct),
        other => return Err(err(format!("EncString type {other} is not RSA OAEP"))),
    };
    pt.map(Zeroizing::new)
        .map_err(|_| err("RSA OAEP decryption failed: wrong key"))
}

/// A member's public key (SubjectPublicKeyInfo DER) from its base64.
pub fn public_key_der(b64_spki: &str) -> Result<Vec<u8>, CryptoError> {
    let der = b64(b64_spki, "the public key")?;
    rsa::PublicKey::from_public_key_der(&der)
        .map_err(|_| err("the public key is not an RSA SubjectPublicKeyInfo"))?;
    Ok(der)
}

/// The organization key wrapped to a member's public key: `4.` and the base64 of its
/// RSA OAEP SHA-1 encryption, as every client produces.
pub fn wrap(org_key: &SymmetricKey, spki_der: &[u8]) -> Result<String, CryptoError> {
    let pk = rsa::PublicKey::from_public_key_der(spki_der)
        .map_err(|_| err("the public key is not an RSA SubjectPublicKeyInfo"))?;
    let ct = pk
        .oaep_encrypt::<Sha1>(org_key.bytes())
        .map_err(|e| err(format!("RSA OAEP encryption: {e}")))?;
    Ok(format!("4.{}", STANDARD.encode(ct)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    // vault-crypto.md §1's known answers (from Bitwarden's published SDK test values).
    #[test]
    fn pbkdf2_master_key_and_its_stretch() {
        let mk = master_key(
            b"67t9b5g67$%Dh89n",
            "test_key",
            Kdf::Pbkdf2 { iterations: 10_000 },
        )
        .unwrap();
        assert_eq!(
            hex(&mk[..]),
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
        let mk = master_key(b"67t9b5g67$%Dh89n", "test_key", kdf).unwrap();
        assert_eq!(
            hex(&mk[..]),
            "cff0e1b1a213a34c626ab3afe00911f01493ed2ff6968db83ee183f23335e1f2"
        );
    }

    #[test]
    fn the_salt_is_the_trimmed_lowercased_email() {
        let kdf = Kdf::Pbkdf2 { iterations: 1000 };
        let a = master_key(b"pw", " Admin@Example.COM ", kdf).unwrap();
        let b = master_key(b"pw", "admin@example.com", kdf).unwrap();
        assert_eq!(a, b);
    }

    /// An EncString of type 2 made with the crates directly (random iv, CBC, then MAC).
    fn seal(pt: &[u8], key: &SymmetricKey) -> String {
        use aes::cipher::BlockModeEncrypt;
        let iv = [7u8; 16];
        let ct = cbc::Encryptor::<aes::Aes256>::new_from_slices(key.enc(), &iv)
            .unwrap()
            .encrypt_padded_vec::<Pkcs7>(pt);
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.mac()).unwrap();
        mac.update(&iv);
        mac.update(&ct);
        let tag = mac.finalize().into_bytes();
        format!(
            "2.{}|{}|{}",
            STANDARD.encode(iv),
            STANDARD.encode(&ct),
            STANDARD.encode(tag)
        )
    }

    #[test]
    fn type2_opens_with_its_key_and_refuses_any_other() {
        let key = SymmetricKey::from_slice(&[3u8; 64]).unwrap();
        let s = seal(b"the user key", &key);
        assert_eq!(&decrypt_type2(&s, &key).unwrap()[..], b"the user key");
        let other = SymmetricKey::from_slice(&[4u8; 64]).unwrap();
        assert!(decrypt_type2(&s, &other).unwrap_err().0.contains("MAC"));
        // A flipped ciphertext bit is caught by the MAC, before decryption.
        let mut parts: Vec<String> = s.split('|').map(str::to_string).collect();
        let mut ct = STANDARD.decode(&parts[1]).unwrap();
        ct[0] ^= 1;
        parts[1] = STANDARD.encode(ct);
        assert!(decrypt_type2(&parts.join("|"), &key).is_err());
        for bad in [
            "",
            "2.",
            "0.abc",
            "2.a|b",
            "2.!!|!!|!!",
            &s.replace("2.", "2.AAAA"),
        ] {
            assert!(decrypt_type2(bad, &key).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_wrapped_key_opens_with_the_members_private_key() {
        use rsa::pkcs8::EncodePublicKey;
        let private = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).unwrap();
        let spki = private.to_public_key().to_public_key_der().unwrap();
        let org = SymmetricKey::from_slice(&[9u8; 64]).unwrap();
        let wrapped = wrap(&org, spki.as_bytes()).unwrap();
        assert!(wrapped.starts_with("4."));
        assert_eq!(STANDARD.decode(&wrapped[2..]).unwrap().len(), 256);
        assert_eq!(&decrypt_rsa(&wrapped, &private).unwrap()[..], org.bytes());
        assert!(decrypt_rsa(&wrapped.replacen('4', "3", 1), &private).is_err());
        assert!(decrypt_rsa("2.x|y|z", &private).is_err());
        assert!(wrap(&org, b"not a key").is_err());
        assert!(public_key_der("AAAA").is_err());
    }
}
