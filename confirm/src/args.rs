//! The command line. Secrets come from files or environment variables only, never from
//! an argument (which `ps` and shell histories show), and are zeroized when dropped.

use std::time::Duration;
use zeroize::Zeroizing;

pub const USAGE: &str = "\
usage: scim-edge-confirm --api-url URL --identity-url URL --org VAULT_ORG_ID
         --client-id user.<uuid> --client-secret-file FILE --password-file FILE
         --scim-url URL --scim-key-file FILE
         [--allow-domain DOMAIN]... [--dry-run] [--once | --every DURATION] [--wordlist FILE]

Confirms the vault organization's Accepted members that scim-edge provisioned and the
identity provider keeps active, with an administrator's personal API key and master
password, which never leave this machine. Prints one JSON line per decision and a
summary; exits 0 when all it meant to do was done, 1 when something failed, 2 on a
configuration or login error.

  --api-url URL           the vault's API base (https://api.bitwarden.com,
                          https://vault.example.com/api)
  --identity-url URL      its identity base (https://identity.bitwarden.com,
                          https://vault.example.com/identity)
  --org ID                the vault organization's id
  --client-id ID          the administrator's personal API key id (user.<uuid>)
  --client-secret-file F  its secret              (or SCIM_EDGE_CONFIRM_CLIENT_SECRET)
  --password-file F       the master password     (or SCIM_EDGE_CONFIRM_PASSWORD)
  --scim-url URL          scim-edge's base for the organization (https://host/v2/<org>)
  --scim-key-file F       its SCIM key            (or SCIM_EDGE_CONFIRM_SCIM_KEY)
  --allow-domain D        confirm only addresses at this domain (repeatable)
  --dry-run               read and decide; confirm nothing, report nothing
  --once                  one pass (the default)
  --every DURATION        a pass every DURATION (30s, 5m, 1h) until SIGTERM or SIGINT
  --wordlist FILE         the EFF large wordlist: print each member's fingerprint phrase
";

/// A secret: zeroized on drop, never printed.
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// Everything the command line says.
#[derive(Debug)]
pub struct Args {
    pub api_url: String,
    pub identity_url: String,
    pub org: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub password: Secret,
    pub scim_url: String,
    pub scim_key: Secret,
    pub allow_domains: Vec<String>,
    pub dry_run: bool,
    pub every: Option<Duration>,
    pub wordlist: Option<String>,
}

/// Where a secret may come from.
struct SecretSource {
    flag: &'static str,
    env: &'static str,
    what: &'static str,
}

const CLIENT_SECRET: SecretSource = SecretSource {
    flag: "--client-secret-file",
    env: "SCIM_EDGE_CONFIRM_CLIENT_SECRET",
    what: "the personal API key's secret",
};
const PASSWORD: SecretSource = SecretSource {
    flag: "--password-file",
    env: "SCIM_EDGE_CONFIRM_PASSWORD",
    what: "the master password",
};
const SCIM_KEY: SecretSource = SecretSource {
    flag: "--scim-key-file",
    env: "SCIM_EDGE_CONFIRM_SCIM_KEY",
    what: "the SCIM key",
};

/// The flags that take a value.
const VALUED: [&str; 11] = [
    "--api-url",
    "--identity-url",
    "--org",
    "--client-id",
    "--client-secret-file",
    "--password-file",
    "--scim-url",
    "--scim-key-file",
    "--allow-domain",
    "--every",
    "--wordlist",
];

/// Reads a secret from its file (one trailing line break dropped: the rest, spaces
/// included, is the secret) or its environment variable.
fn secret(src: &SecretSource, file: Option<&str>) -> Result<Secret, String> {
    let text = match file {
        Some(path) => Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| format!("{} ({}): {e}", src.flag, src.what))?,
        ),
        None => Zeroizing::new(std::env::var(src.env).map_err(|_| {
            format!(
                "{} is required: give {} FILE or set {}",
                src.what, src.flag, src.env
            )
        })?),
    };
    let trimmed = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if trimmed.is_empty() {
        return Err(format!("{} is empty", src.what));
    }
    Ok(Secret(Zeroizing::new(trimmed.to_string())))
}

/// `30s`, `5m`, `1h`.
pub fn duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("--every: '{s}' is not a duration like 30s, 5m or 1h");
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(bad()),
    };
    if secs == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(secs))
}

fn base(flag: &str, url: Option<String>) -> Result<String, String> {
    let url = url.ok_or_else(|| format!("{flag} URL is required"))?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(format!("{flag}: '{url}' is not an http(s) URL"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Parses the arguments (without the program name). `Ok(None)` for `--help`.
pub fn parse(argv: &[String]) -> Result<Option<Args>, String> {
    let mut values: Vec<(&str, String)> = Vec::new();
    let (mut dry_run, mut once) = (false, false);
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--dry-run" => dry_run = true,
            "--once" => once = true,
            "--secret" | "--client-secret" | "--password" | "--scim-key" => {
                return Err(format!(
                    "{a}: secrets are not taken as arguments; use the -file flag or the environment variable (see --help)"
                ))
            }
            flag => {
                let Some(name) = VALUED.iter().find(|f| **f == flag) else {
                    return Err(format!("unknown argument '{flag}' (see --help)"));
                };
                let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
                values.push((name, v.clone()));
            }
        }
    }
    let one = |name: &str| -> Result<Option<String>, String> {
        let mut found = values.iter().filter(|(n, _)| *n == name);
        let first = found.next().map(|(_, v)| v.clone());
        if found.next().is_some() {
            return Err(format!("{name} is given twice"));
        }
        Ok(first)
    };
    let required = |name: &str| one(name)?.ok_or_else(|| format!("{name} is required"));
    let every = one("--every")?.map(|s| duration(&s)).transpose()?;
    if once && every.is_some() {
        return Err("--once and --every exclude each other".into());
    }
    let client_id = required("--client-id")?;
    if !client_id.starts_with("user.") {
        return Err(format!(
            "--client-id: '{client_id}' is not a personal API key id (user.<uuid>); an organization key cannot confirm"
        ));
    }
    Ok(Some(Args {
        api_url: base("--api-url", one("--api-url")?)?,
        identity_url: base("--identity-url", one("--identity-url")?)?,
        org: required("--org")?.to_ascii_lowercase(),
        client_id,
        client_secret: secret(&CLIENT_SECRET, one("--client-secret-file")?.as_deref())?,
        password: secret(&PASSWORD, one("--password-file")?.as_deref())?,
        scim_url: base("--scim-url", one("--scim-url")?)?,
        scim_key: secret(&SCIM_KEY, one("--scim-key-file")?.as_deref())?,
        allow_domains: values
            .iter()
            .filter(|(n, _)| *n == "--allow-domain")
            .map(|(_, v)| v.trim().trim_start_matches('@').to_ascii_lowercase())
            .collect(),
        dry_run,
        every,
        wordlist: one("--wordlist")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "5", "m", "0s", "5d", "-1m", "1.5m"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_never_arguments() {
        let argv: Vec<String> = ["--client-secret", "x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(parse(&argv).unwrap_err().contains("not taken as arguments"));
    }

    #[test]
    fn a_secret_file_keeps_inner_spaces_and_drops_one_line_break() {
        let dir = std::env::temp_dir().join(format!("confirm-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pw");
        std::fs::write(&f, " pass word \r\n").unwrap();
        let s = secret(&PASSWORD, f.to_str()).unwrap();
        assert_eq!(s.expose(), " pass word ");
        assert_eq!(format!("{s:?}"), "<secret>");
        std::fs::write(&f, "\n").unwrap();
        assert!(secret(&PASSWORD, f.to_str()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
