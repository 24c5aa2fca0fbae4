//! What an administrator compares before confirming: the hex SHA-256 of a member's
//! public key, and the fingerprint phrase the web vault shows for it (five words of the
//! EFF large wordlist, which the user supplies: none is shipped).

use sha2::{Digest, Sha256};

/// The EFF large wordlist's length.
const WORDS: usize = 7776;

/// The hex SHA-256 of a public key's SubjectPublicKeyInfo DER.
pub fn hex(spki_der: &[u8]) -> String {
    Sha256::digest(spki_der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The EFF large wordlist, read from its text: one word per line, optionally after the
/// dice number and a tab (`11111\tabacus`), as EFF publishes it.
pub struct Wordlist(Vec<String>);

impl Wordlist {
    /// Parses the list; anything but 7,776 words is refused.
    pub fn parse(text: &str) -> Result<Wordlist, String> {
        let words: Vec<String> = text
            .lines()
            .filter_map(|l| l.split_whitespace().last())
            .map(str::to_string)
            .collect();
        if words.len() != WORDS {
            return Err(format!(
                "the EFF large wordlist has {WORDS} words; this file has {}",
                words.len()
            ));
        }
        Ok(Wordlist(words))
    }

    /// The phrase for member `user_id` (the account id, not the membership id): HKDF-Expand
    /// of the key's SHA-256 with the user id as info, read as a big-endian number and
    /// spelled in base 7,776, least significant word first.
    pub fn phrase(&self, user_id: &str, spki_der: &[u8]) -> Result<String, String> {
        let prk = Sha256::digest(spki_der);
        let hk = hkdf::Hkdf::<Sha256>::from_prk(&prk).map_err(|_| "HKDF: bad key length")?;
        let mut n = [0u8; 32];
        hk.expand(user_id.as_bytes(), &mut n)
            .map_err(|_| "HKDF: bad output length")?;
        let mut words = Vec::with_capacity(5);
        for _ in 0..5 {
            let r = div_rem(&mut n, WORDS as u32);
            words.push(self.0[r as usize].as_str());
        }
        Ok(words.join("-"))
    }
}

/// Divides the big-endian number in `n` by `d` in place; the remainder.
fn div_rem(n: &mut [u8], d: u32) -> u32 {
    let mut rem: u32 = 0;
    for b in n.iter_mut() {
        let cur = (rem << 8) | u32::from(*b);
        *b = (cur / d) as u8;
        rem = cur % d;
    }
    rem
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    // vault-crypto.md §1: the public key and user id of the fingerprint's known answer.
    const SPKI: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAuyYs8W7NWf0Zv35Ueco93730dtRKi4Jhc6Snar+86drE+ruSfaCWMcbgsAoAj2Pm6KAzaJrTIVCqBERQ23OncpzjfcGAeyf+v3w/gSw/EjihMJ4AG5ICY4hLFYcGdgwa+7is+TVO0i6PEWjKQa3l2+mQo2XY7pg2ngHDMssV4gxSqq+qoBX3+FBhewCYdOV+3cebwsAzz7HwoFTxKViwNW8crbHonhZPhZgfIAzEkzo5MvzQg5azhLKW6vuPfaOQFC5HqPykVnh8OPzO0uzUi3+97CguAu4N2CgwVYXltZuw2fGamdVw3kjbxQPbOE1tL0j7gyTwYKkfUl2m8gMh1QIDAQAB";
    const USER: &str = "a09726a0-9590-49d1-a5f5-afe300b6a515";

    fn spki() -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(SPKI)
            .unwrap()
    }

    #[test]
    fn hex_fingerprint_known_answer() {
        assert_eq!(
            hex(&spki()),
            "37b9e1a7acf5ded4c65e696ef6ee23a975cd9c13878751662164d4251c8b09b0"
        );
    }

    /// The phrase with the real list, where the user supplies one
    /// (`SCIM_EDGE_EFF_WORDLIST`, which scripts/test points at a copy from PyPI).
    #[test]
    fn phrase_known_answer_with_the_eff_list() {
        let Some(path) = std::env::var_os("SCIM_EDGE_EFF_WORDLIST") else {
            eprintln!("SKIPPED: SCIM_EDGE_EFF_WORDLIST is not set");
            return;
        };
        let list = Wordlist::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(
            list.phrase(USER, &spki()).unwrap(),
            "turban-deftly-anime-chatroom-unselfish"
        );
    }

    #[test]
    fn digits_come_least_significant_first() {
        let x: u128 = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        let mut n = [0u8; 32];
        n[16..].copy_from_slice(&x.to_be_bytes());
        let mut want = x;
        for _ in 0..5 {
            assert_eq!(u128::from(div_rem(&mut n, 7776)), want % 7776);
            want /= 7776;
            assert_eq!(u128::from_be_bytes(n[16..].try_into().unwrap()), want);
        }
        let text: String = (0..WORDS).map(|i| format!("{i}\n")).collect();
        let phrase = Wordlist::parse(&text)
            .unwrap()
            .phrase(USER, &spki())
            .unwrap();
        assert_eq!(phrase.split('-').count(), 5);
    }

    #[test]
    fn lists_of_the_wrong_length_are_refused() {
        assert!(Wordlist::parse("a\nb\n").is_err());
        let dice: String = (0..WORDS).map(|i| format!("{i:05}\tw{i}\n")).collect();
        assert!(Wordlist::parse(&dice).is_ok());
    }
}
