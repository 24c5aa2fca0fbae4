//! `scim-edge-keys new --org <uuid> [--policy strict|lenient|off]`: mints a bearer key
//! for one organization, prints it once with its SHA-256 hash and the exact Spin
//! variable that configures it. `scim-edge-keys hash` prints the hash of a key read from
//! standard input (for keys minted elsewhere). The key is written only to standard output.

use base64::Engine;
use scim_edge::auth::KeyHash;
use scim_edge::ids::OrgId;
use scim_edge::okta::Policy;
use std::io::Read;
use std::process::ExitCode;

const USAGE: &str = "usage:\n  scim-edge-keys new --org <organization uuid> [--policy strict|lenient|off]\n  scim-edge-keys hash   (reads a key on standard input)";

fn mint() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness available: {e}"))?;
    Ok(format!(
        "scim_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn run(args: &[String]) -> Result<String, String> {
    match args.first().map(String::as_str) {
        Some("new") => {
            let org = flag(args, "--org").ok_or("--org <uuid> is required")?;
            let org = OrgId::parse(org).ok_or_else(|| format!("--org: '{org}' is not a UUID"))?;
            let policy_text = flag(args, "--policy").unwrap_or("strict");
            policy_text
                .parse::<Policy>()
                .map_err(|e| format!("--policy: {e}"))?;
            let key = mint()?;
            let hash = KeyHash::of(&key).to_hex();
            let orgs = serde_json::json!({ org.as_str(): {"keys": [hash], "policy": policy_text} })
                .to_string();
            Ok(format!(
                "Key for organization {org} (shown once; give it to the identity provider as the bearer token):\n  {key}\n\n\
                 SHA-256 (the only form scim-edge stores):\n  {hash}\n\n\
                 Spin variable, as an environment variable:\n  SPIN_VARIABLE_ORGANIZATIONS='{orgs}'\n\
                 or on the command line:\n  spin up --variable organizations='{orgs}'\n\n\
                 Several organizations go in the one JSON object. To rotate a key, add the new hash\n\
                 to the organization's \"keys\" array, switch the identity provider over, then remove\n\
                 the old hash.\n"
            ))
        }
        Some("hash") => {
            let mut key = String::new();
            std::io::stdin()
                .read_to_string(&mut key)
                .map_err(|e| format!("reading the key: {e}"))?;
            let key = key.trim();
            if key.is_empty() {
                return Err("no key on standard input".into());
            }
            Ok(format!("{}\n", KeyHash::of(key).to_hex()))
        }
        _ => Err(USAGE.into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("scim-edge-keys: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_prints_a_key_whose_hash_is_the_configured_one() {
        let out = run(&[
            "new".into(),
            "--org".into(),
            "3F2B1C4D-5E6F-4A1B-8C2D-3E4F5A6B7C8D".into(),
        ])
        .unwrap();
        let key = out.lines().nth(1).unwrap().trim();
        assert!(key.starts_with("scim_") && key.len() > 40);
        let hash = KeyHash::of(key).to_hex();
        assert!(out.contains(&format!("SPIN_VARIABLE_ORGANIZATIONS='{{\"3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d\":{{\"keys\":[\"{hash}\"],\"policy\":\"strict\"}}}}'")), "{out}");
        let cfg = out
            .lines()
            .find(|l| l.trim_start().starts_with("SPIN_VARIABLE_"))
            .unwrap();
        let json = cfg.split_once('=').unwrap().1.trim_matches('\'');
        assert!(
            scim_edge::config::Config::from_json(&format!("{{\"organizations\": {json}}}")).is_ok()
        );
        let again = run(&[
            "new".into(),
            "--org".into(),
            "3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d".into(),
        ])
        .unwrap();
        assert_ne!(again.lines().nth(1), out.lines().nth(1));
    }

    #[test]
    fn bad_arguments() {
        assert_eq!(
            run(&["new".into()]).unwrap_err(),
            "--org <uuid> is required"
        );
        assert_eq!(
            run(&["new".into(), "--org".into(), "x".into()]).unwrap_err(),
            "--org: 'x' is not a UUID"
        );
        assert!(run(&[
            "new".into(),
            "--org".into(),
            "3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d".into(),
            "--policy".into(),
            "loose".into()
        ])
        .unwrap_err()
        .starts_with("--policy: unknown policy"));
        assert_eq!(run(&[]).unwrap_err(), USAGE);
    }
}
