//! An organization's `vault` settings: which vault, where, with which organization API
//! key, and how fast it may be written. Checked when loaded; errors name the field. The
//! client secret is kept in a [`Secret`], which never prints.

use serde::Deserialize;

/// Which vault API the organization is provisioned through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultKind {
    /// Bitwarden's Public API (`public/members`, `public/groups`): Teams and Enterprise.
    Bitwarden,
    /// Vaultwarden's organization import (`public/organization/import`).
    Vaultwarden,
}

/// What a SCIM DELETE of a user does in the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDelete {
    /// Revoke the member (Okta's and Bitwarden's SCIM default): access ends, history stays.
    Revoke,
    /// Remove the membership.
    Remove,
}

/// A secret that never appears in `Debug` output or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the token request only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// How fast the vault may be written, in its own terms: at most `per_second` writes in
/// any `second_ms` and `per_window` in any `window_ms`, and `token_per_window` token
/// requests per `window_ms`. The defaults are Bitwarden cloud's (5/s, 60/min, 10 tokens
/// per minute); tests shorten the durations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    /// Writes per second.
    pub per_second: u32,
    /// Writes per window.
    pub per_window: u32,
    /// Token requests per window.
    pub token_per_window: u32,
    /// The second, in ms.
    pub second_ms: i64,
    /// The window, in ms.
    pub window_ms: i64,
    /// Outbound requests per hour allowed by the host (Fermyon Cloud: 500 per app), when
    /// it has such a quota.
    pub per_hour: Option<u32>,
}

impl Default for Rate {
    fn default() -> Self {
        Rate {
            per_second: 5,
            per_window: 60,
            token_per_window: 10,
            second_ms: 1000,
            window_ms: 60_000,
            per_hour: None,
        }
    }
}

/// One organization's vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultConfig {
    /// The API spoken.
    pub kind: VaultKind,
    /// The base under which `public/...` lies, without a trailing slash.
    pub api_url: String,
    /// The base of `connect/token`, without a trailing slash.
    pub identity_url: String,
    /// `organization.<uuid>`.
    pub client_id: String,
    /// The organization API key.
    pub client_secret: Secret,
    /// What DELETE does.
    pub on_delete: OnDelete,
    /// Whether groups are pushed (Vaultwarden: only with `ORG_GROUPS_ENABLED`).
    pub groups: bool,
    /// Whether drift found in the vault is healed to the identity provider's state.
    pub heal: bool,
    /// Write limits.
    pub rate: Rate,
    /// Vault calls a drain may make after each SCIM request (0: only `_vault/sync`).
    pub after_request_calls: u32,
    /// How long `_vault/sync` may drain, ms.
    pub sync_budget_ms: i64,
    /// Failed attempts after which an entry is parked.
    pub max_attempts: u32,
    /// Vaultwarden: least time between two imports, ms.
    pub debounce_ms: i64,
    /// Per-call timeout, ms.
    pub timeout_ms: i64,
    /// First wait after a failure, ms; it doubles with each failure of an entry.
    pub retry_ms: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateDto {
    per_second: Option<u32>,
    per_window: Option<u32>,
    token_per_window: Option<u32>,
    second_ms: Option<i64>,
    window_ms: Option<i64>,
    per_hour: Option<u32>,
}

/// The `vault` object as written in the `organizations` variable.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VaultDto {
    kind: String,
    api_url: String,
    identity_url: String,
    client_id: String,
    client_secret: String,
    on_delete: Option<String>,
    groups: Option<bool>,
    heal: Option<bool>,
    rate: Option<RateDto>,
    after_request_calls: Option<u32>,
    sync_budget_ms: Option<i64>,
    max_attempts: Option<u32>,
    debounce_ms: Option<i64>,
    timeout_ms: Option<i64>,
    retry_ms: Option<i64>,
}

/// The longest duration a setting takes.
const DAY_MS: i64 = 86_400_000;

fn base_url(path: &str, field: &str, v: &str) -> Result<String, String> {
    let v = v.trim().trim_end_matches('/');
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"))
        .ok_or_else(|| format!("{path}.{field}: expected an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') || rest.contains(['?', '#', ' ']) {
        return Err(format!(
            "{path}.{field}: expected a URL with a host and no query"
        ));
    }
    Ok(v.to_string())
}

fn positive_ms(path: &str, field: &str, v: Option<i64>, default: i64) -> Result<i64, String> {
    match v {
        Some(x) if x <= 0 => Err(format!("{path}.{field}: must be greater than 0")),
        Some(x) if x > DAY_MS => Err(format!(
            "{path}.{field}: must be at most a day ({DAY_MS} ms)"
        )),
        Some(x) => Ok(x),
        None => Ok(default),
    }
}

impl RateDto {
    fn checked(self, path: &str) -> Result<Rate, String> {
        let d = Rate::default();
        let count = |field: &str, v: Option<u32>, default: u32| match v {
            Some(0) => Err(format!("{path}.rate.{field}: must be greater than 0")),
            Some(x) => Ok(x),
            None => Ok(default),
        };
        let r = Rate {
            per_second: count("per_second", self.per_second, d.per_second)?,
            per_window: count("per_window", self.per_window, d.per_window)?,
            token_per_window: count(
                "token_per_window",
                self.token_per_window,
                d.token_per_window,
            )?,
            second_ms: positive_ms(
                &format!("{path}.rate"),
                "second_ms",
                self.second_ms,
                d.second_ms,
            )?,
            window_ms: positive_ms(
                &format!("{path}.rate"),
                "window_ms",
                self.window_ms,
                d.window_ms,
            )?,
            per_hour: match self.per_hour {
                Some(0) => return Err(format!("{path}.rate.per_hour: must be greater than 0")),
                other => other,
            },
        };
        if r.window_ms < r.second_ms {
            return Err(format!(
                "{path}.rate.window_ms: must not be shorter than rate.second_ms"
            ));
        }
        Ok(r)
    }
}

impl VaultDto {
    /// Checks every field; `path` names the object (`organizations.<uuid>.vault`).
    pub(crate) fn checked(self, path: &str) -> Result<VaultConfig, String> {
        let kind = match self.kind.as_str() {
            "bitwarden" => VaultKind::Bitwarden,
            "vaultwarden" => VaultKind::Vaultwarden,
            other => {
                return Err(format!(
                    "{path}.kind: unknown vault '{other}' (expected bitwarden or vaultwarden)"
                ))
            }
        };
        let org = self.client_id.strip_prefix("organization.").unwrap_or("");
        if crate::ids::parse_uuid(org).is_none() {
            return Err(format!(
                "{path}.client_id: expected organization.<uuid>, the organization API key's client id"
            ));
        }
        if self.client_secret.trim().is_empty() {
            return Err(format!("{path}.client_secret: must not be empty"));
        }
        let on_delete = match self.on_delete.as_deref() {
            None | Some("revoke") => OnDelete::Revoke,
            Some("remove") => OnDelete::Remove,
            Some(other) => {
                return Err(format!(
                    "{path}.on_delete: unknown action '{other}' (expected revoke or remove)"
                ))
            }
        };
        if kind == VaultKind::Vaultwarden && on_delete == OnDelete::Remove {
            return Err(format!(
                "{path}.on_delete: Vaultwarden's import can only revoke; use revoke"
            ));
        }
        let rate = match self.rate {
            Some(r) => r.checked(path)?,
            None => Rate::default(),
        };
        Ok(VaultConfig {
            kind,
            api_url: base_url(path, "api_url", &self.api_url)?,
            identity_url: base_url(path, "identity_url", &self.identity_url)?,
            client_id: self.client_id,
            client_secret: Secret(self.client_secret),
            on_delete,
            groups: self.groups.unwrap_or(kind == VaultKind::Bitwarden),
            heal: self.heal.unwrap_or(true),
            rate,
            after_request_calls: self.after_request_calls.unwrap_or(4),
            sync_budget_ms: positive_ms(path, "sync_budget_ms", self.sync_budget_ms, 20_000)?,
            max_attempts: match self.max_attempts {
                Some(0) => return Err(format!("{path}.max_attempts: must be greater than 0")),
                Some(n) => n,
                None => 8,
            },
            debounce_ms: positive_ms(path, "debounce_ms", self.debounce_ms, 2_000)?,
            timeout_ms: positive_ms(path, "timeout_ms", self.timeout_ms, 10_000)?,
            retry_ms: positive_ms(path, "retry_ms", self.retry_ms, 5_000)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<VaultConfig, String> {
        let dto: VaultDto = serde_json::from_str(json).map_err(|e| e.to_string())?;
        dto.checked("organizations.o.vault")
    }

    const GOOD: &str = r#"{"kind": "bitwarden", "api_url": "https://api.bitwarden.com/", "identity_url": "https://identity.bitwarden.com", "client_id": "organization.3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d", "client_secret": "s3cret"}"#;

    #[test]
    fn defaults_are_bitwardens_limits() {
        let v = parse(GOOD).unwrap();
        assert_eq!(v.kind, VaultKind::Bitwarden);
        assert_eq!(v.api_url, "https://api.bitwarden.com");
        assert_eq!(v.rate, Rate::default());
        assert_eq!(v.on_delete, OnDelete::Revoke);
        assert!(v.groups);
        assert!(!format!("{v:?}").contains("s3cret"));
    }

    #[test]
    fn bad_fields_are_named_and_the_secret_never_shows() {
        let cases = [
            (GOOD.replace("bitwarden\"", "keepass\""), "organizations.o.vault.kind: unknown vault 'keepass' (expected bitwarden or vaultwarden)"),
            (GOOD.replace("https://api.bitwarden.com/", "ftp://x"), "organizations.o.vault.api_url: expected an http:// or https:// URL"),
            (GOOD.replace("organization.3f2b", "user.3f2b"), "organizations.o.vault.client_id: expected organization.<uuid>, the organization API key's client id"),
            (GOOD.replace("\"s3cret\"", "\" \""), "organizations.o.vault.client_secret: must not be empty"),
            (GOOD.replace("}", ", \"on_delete\": \"purge\"}"), "organizations.o.vault.on_delete: unknown action 'purge' (expected revoke or remove)"),
            (GOOD.replace("}", ", \"rate\": {\"per_second\": 0}}"), "organizations.o.vault.rate.per_second: must be greater than 0"),
            (GOOD.replace("\"bitwarden\"", "\"vaultwarden\"").replace("}", ", \"on_delete\": \"remove\"}"), "organizations.o.vault.on_delete: Vaultwarden's import can only revoke; use revoke"),
        ];
        for (json, want) in cases {
            let e = parse(&json).unwrap_err();
            assert_eq!(e, want);
            assert!(!e.contains("s3cret"));
        }
        let e = parse(&GOOD.replace("}", ", \"secret\": 1}")).unwrap_err();
        assert!(e.contains("unknown field `secret`"), "{e}");
    }
}
