//! Configuration in two phases: a serde DTO that rejects unknown fields, then a checked
//! runtime type. A bad value is named in the error and the host refuses to serve.

pub mod vault;

use crate::auth::KeyHash;
use crate::ids::OrgId;
use crate::okta::Policy;
use crate::service::Limits;
use serde::Deserialize;
use std::collections::BTreeMap;
use vault::{VaultConfig, VaultDto};

/// One organization's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgConfig {
    /// SHA-256 hashes of the active keys (several during a rotation).
    pub keys: Vec<KeyHash>,
    /// How Okta's rules apply.
    pub policy: Policy,
    /// The vault the organization is provisioned into, when it has one.
    pub vault: Option<VaultConfig>,
}

/// The whole configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Organizations by id.
    pub orgs: BTreeMap<OrgId, OrgConfig>,
    /// Limits.
    pub limits: Limits,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrgDto {
    keys: Vec<String>,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    vault: Option<VaultDto>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsDto {
    max_payload: Option<usize>,
    default_count: Option<usize>,
    max_count: Option<usize>,
    max_bulk_ops: Option<usize>,
    max_scan: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigDto {
    organizations: BTreeMap<String, OrgDto>,
    #[serde(default)]
    limits: LimitsDto,
}

/// Parses one organization entry; `path` names it in errors.
pub fn org_config(path: &str, keys: &[String], policy: Option<&str>) -> Result<OrgConfig, String> {
    if keys.is_empty() {
        return Err(format!("{path}.keys: at least one key hash is required"));
    }
    let mut hashes = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        hashes.push(
            KeyHash::from_hex(k).ok_or_else(|| {
                format!("{path}.keys[{i}]: expected 64 hex digits (a SHA-256 hash)")
            })?,
        );
    }
    let policy = match policy {
        Some(p) => p
            .parse::<Policy>()
            .map_err(|e| format!("{path}.policy: {e}"))?,
        None => Policy::default(),
    };
    Ok(OrgConfig {
        keys: hashes,
        policy,
        vault: None,
    })
}

impl LimitsDto {
    fn into_limits(self) -> Result<Limits, String> {
        let d = Limits::default();
        let positive = |name: &str, v: Option<usize>, default: usize| match v {
            Some(0) => Err(format!("limits.{name}: must be greater than 0")),
            Some(x) => Ok(x),
            None => Ok(default),
        };
        let l = Limits {
            max_payload: positive("max_payload", self.max_payload, d.max_payload)?,
            default_count: positive("default_count", self.default_count, d.default_count)?,
            max_count: positive("max_count", self.max_count, d.max_count)?,
            max_bulk_ops: positive("max_bulk_ops", self.max_bulk_ops, d.max_bulk_ops)?,
            max_scan: positive("max_scan", self.max_scan, d.max_scan)?,
            max_depth: d.max_depth,
        };
        if l.default_count > l.max_count {
            return Err("limits.default_count: must not exceed limits.max_count".into());
        }
        Ok(l)
    }
}

/// A parse error fit for a log: serde quotes a mistyped string's value, which may be a
/// vault's client secret, so such errors give only where they are.
fn quiet(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if text.contains(": string \"") {
        format!(
            "a value has the wrong type at line {} column {}",
            e.line(),
            e.column()
        )
    } else {
        text
    }
}

pub(crate) fn checked_orgs(
    dto: BTreeMap<String, OrgDto>,
    prefix: &str,
) -> Result<BTreeMap<OrgId, OrgConfig>, String> {
    let mut orgs = BTreeMap::new();
    for (id, o) in dto {
        let path = format!("{prefix}{id}");
        let org = OrgId::parse(&id)
            .ok_or_else(|| format!("{path}: the organization id must be a UUID"))?;
        let mut cfg = org_config(&path, &o.keys, o.policy.as_deref())?;
        if let Some(v) = o.vault {
            cfg.vault = Some(v.checked(&format!("{path}.vault"))?);
        }
        orgs.insert(org, cfg);
    }
    Ok(orgs)
}

/// Parses the organizations object alone
/// (`{"<uuid>": {"keys": [..], "policy": ".."}}`), for hosts that keep it in a variable
/// of its own; `label` names that variable in errors.
pub fn parse_organizations(json: &str, label: &str) -> Result<BTreeMap<OrgId, OrgConfig>, String> {
    let dto: BTreeMap<String, OrgDto> = serde_json::from_str(json)
        .map_err(|e| format!("{label}: not the expected JSON object: {}", quiet(&e)))?;
    checked_orgs(dto, &format!("{label}: "))
}

/// Parses limits from a JSON object (`{"max_payload": ..}`), for hosts that keep them
/// in a variable of their own.
pub fn parse_limits(json: &str) -> Result<Limits, String> {
    let dto: LimitsDto = serde_json::from_str(json).map_err(|e| format!("limits: {e}"))?;
    dto.into_limits()
}

impl Config {
    /// Parses the JSON form:
    /// `{"organizations": {"<uuid>": {"keys": ["<sha256 hex>"], "policy": "strict"}}, "limits": {..}}`.
    pub fn from_json(json: &str) -> Result<Config, String> {
        let dto: ConfigDto =
            serde_json::from_str(json).map_err(|e| format!("configuration: {}", quiet(&e)))?;
        Ok(Config {
            orgs: checked_orgs(dto.organizations, "organizations.")?,
            limits: dto.limits.into_limits()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "3f2b1c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d";

    #[test]
    fn good_config() {
        let h = KeyHash::of("k").to_hex();
        let c = Config::from_json(&format!(
            r#"{{"organizations": {{"{ORG}": {{"keys": ["{h}"], "policy": "lenient"}}}}, "limits": {{"max_count": 50, "default_count": 10}}}}"#
        ))
        .unwrap();
        let org = c.orgs.get(&OrgId::parse(ORG).unwrap()).unwrap();
        assert_eq!(org.policy, Policy::Lenient);
        assert_eq!(c.limits.max_count, 50);
    }

    #[test]
    fn organizations_alone() {
        let h = KeyHash::of("k").to_hex();
        let orgs = parse_organizations(
            &format!(r#"{{"{ORG}": {{"keys": ["{h}"]}}}}"#),
            "variable 'x'",
        )
        .unwrap();
        assert_eq!(orgs.len(), 1);
        assert_eq!(
            parse_organizations(r#"{"nope": {"keys": []}}"#, "variable 'x'").unwrap_err(),
            "variable 'x': nope: the organization id must be a UUID"
        );
        assert!(parse_organizations("[]", "variable 'x'")
            .unwrap_err()
            .starts_with("variable 'x': not the expected JSON object"));
    }

    #[test]
    fn bad_values_are_named() {
        let h = KeyHash::of("k").to_hex();
        let cases = [
            (format!(r#"{{"organizations": {{"nope": {{"keys": ["{h}"]}}}}}}"#), "organizations.nope: the organization id must be a UUID".to_string()),
            (format!(r#"{{"organizations": {{"{ORG}": {{"keys": ["abc"]}}}}}}"#), format!("organizations.{ORG}.keys[0]: expected 64 hex digits (a SHA-256 hash)")),
            (format!(r#"{{"organizations": {{"{ORG}": {{"keys": []}}}}}}"#), format!("organizations.{ORG}.keys: at least one key hash is required")),
            (format!(r#"{{"organizations": {{"{ORG}": {{"keys": ["{h}"], "policy": "loose"}}}}}}"#), format!("organizations.{ORG}.policy: unknown policy 'loose' (expected strict, lenient or off)")),
            (r#"{"organizations": {}, "limits": {"max_count": 0}}"#.to_string(), "limits.max_count: must be greater than 0".to_string()),
        ];
        for (json, want) in cases {
            assert_eq!(Config::from_json(&json).unwrap_err(), want);
        }
        let e = Config::from_json(r#"{"organizations": {}, "extra": 1}"#).unwrap_err();
        assert!(e.contains("unknown field `extra`"), "{e}");
    }
}
