//! scim-edge as the agent asks it, with the organization's SCIM key: the user a vault
//! member belongs to (by the member id scim-edge linked, else by email), and the report
//! of what the agent read and did (`POST _vault/observed`).

use crate::args::Args;
use crate::http::{Body, Http};
use crate::vault::Member;
use serde_json::{json, Value};
use zeroize::Zeroizing;

/// The vault extension's URN, under which scim-edge shows a user's member id.
const VAULT_URN: &str = "urn:scim-edge:schemas:extension:vault:2.0:User";

/// A SCIM user, as far as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub active: bool,
    /// The vault member scim-edge linked it to, if any.
    pub member_id: Option<String>,
}

pub struct Scim<'a> {
    http: &'a Http,
    base: &'a str,
    auth: Zeroizing<String>,
}

/// A string inside a SCIM filter's quotes.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn user_of(v: &Value) -> Option<User> {
    Some(User {
        id: v.get("id")?.as_str()?.to_string(),
        active: v.get("active").and_then(Value::as_bool).unwrap_or(true),
        member_id: v
            .get(VAULT_URN)
            .and_then(|e| e.get("memberId"))
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

impl<'a> Scim<'a> {
    pub fn new(http: &'a Http, args: &'a Args) -> Scim<'a> {
        Scim {
            http,
            base: &args.scim_url,
            auth: Zeroizing::new(format!("Bearer {}", args.scim_key.expose())),
        }
    }

    fn headers(&self) -> [(&str, &str); 2] {
        [
            ("Authorization", self.auth.as_str()),
            ("Accept", "application/scim+json"),
        ]
    }

    /// The users a filter finds.
    fn users(&self, filter: &str) -> Result<Vec<User>, String> {
        let url = format!("{}/Users", self.base);
        let a = self.http.send(
            "GET",
            &url,
            &self.headers(),
            &[("filter", filter), ("count", "2")],
            Body::None,
        )?;
        if !a.ok() {
            return Err(format!("scim-edge answered {}: {}", a.status, a.message()));
        }
        Ok(a.body
            .get("Resources")
            .and_then(Value::as_array)
            .map(|rs| rs.iter().filter_map(user_of).collect())
            .unwrap_or_default())
    }

    /// The user member `m` belongs to: the one linked to its id, else the one whose
    /// userName or an email is its address (compared without case). `Ok(None)` when none
    /// is, or when the address names more than one.
    pub fn user_of(&self, m: &Member) -> Result<Option<User>, String> {
        let by_id = self.users(&format!("{VAULT_URN}:memberId eq {}", quoted(&m.id)))?;
        if let [u] = by_id.as_slice() {
            return Ok(Some(u.clone()));
        }
        let e = quoted(&m.email);
        let by_email = self.users(&format!("userName eq {e} or emails.value eq {e}"))?;
        Ok(match by_email.as_slice() {
            [u] => Some(u.clone()),
            _ => None,
        })
    }

    /// Reports the members as the pass leaves them, five hundred to a request, and the
    /// pass's counts with the last. How many observations scim-edge recorded; members
    /// it refused (those it did not provision) are not an error.
    pub fn report(&self, members: &[Member], counts: (u32, u32, u32)) -> Result<u64, String> {
        let (confirmed, skipped, failed) = counts;
        let url = format!("{}/_vault/observed", self.base);
        let chunks: Vec<&[Member]> = if members.is_empty() {
            vec![&[]]
        } else {
            members.chunks(500).collect()
        };
        let mut recorded = 0;
        for (i, chunk) in chunks.iter().enumerate() {
            let seen: Vec<Value> = chunk
                .iter()
                .map(|m| json!({"id": m.id, "email": m.email, "status": m.status}))
                .collect();
            let mut body = json!({ "members": seen });
            if i + 1 == chunks.len() {
                body["pass"] =
                    json!({"confirmed": confirmed, "skipped": skipped, "failed": failed});
            }
            let a = self
                .http
                .send("POST", &url, &self.headers(), &[], Body::Json(&body))?;
            if !a.ok() {
                return Err(format!(
                    "reporting to scim-edge: {} {}",
                    a.status,
                    a.message()
                ));
            }
            recorded += a.body.get("recorded").and_then(Value::as_u64).unwrap_or(0);
        }
        Ok(recorded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_strings_escape_quotes_and_backslashes() {
        assert_eq!(quoted(r#"a"b\c@d"#), r#""a\"b\\c@d""#);
    }

    #[test]
    fn a_user_reads_its_member_id_and_active() {
        let u =
            user_of(&json!({"id": "u1", "active": false, VAULT_URN: {"memberId": "m1"}})).unwrap();
        assert_eq!(
            u,
            User {
                id: "u1".into(),
                active: false,
                member_id: Some("m1".into())
            }
        );
        assert!(user_of(&json!({"active": true})).is_none());
    }
}
