//! Vaultwarden's one public route, `POST /api/public/organization/import` (`ldap_import`
//! in `src/api/core/public.rs`; vaults.md §2 Vaultwarden column, §4).
//!
//! Order: route (404 for anything else, Rocket has no 405), bearer token (401: Rocket
//! runs request guards before the data guard), body (400 for JSON that does not parse,
//! 422 for JSON that does not deserialize: `groups`, `members`, `overwriteExisting` and
//! every item field are required, with their JSON types), then the import; 200, empty.
//!
//! The import is not transactional (vaults.md §4.1): members are applied in order, and
//! the first that fails (an address Vaultwarden's `is_valid_email` refuses when its user
//! must be created, an invitation mail that cannot be sent) answers 400 with
//! Vaultwarden's error body; the members before it stay applied, the members after it
//! and every group are skipped. An empty `externalId` is stored as none.

use crate::server::{Reply, Req};
use crate::state::{Shared, State};
use crate::{token, ACCEPTED, INVITED, REVOKED, USER};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::str::FromStr;

struct ImportMember {
    email: String,
    external_id: String,
    deleted: bool,
}

struct ImportGroup {
    name: String,
    external_id: String,
    member_external_ids: Vec<String>,
}

struct Import {
    groups: Vec<ImportGroup>,
    members: Vec<ImportMember>,
    overwrite_existing: bool,
}

/// `rest` is the path after `/api/public/`.
pub(crate) fn handle(shared: &Shared, req: &Req, rest: &str) -> Reply {
    if rest != "organization/import" || req.method != "POST" {
        return Reply::empty(404);
    }
    let mut st = shared.lock();
    if !token::authorized(&mut st, req) {
        return Reply::empty(401);
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return Reply::empty(400);
    };
    let Some(data) = parse(&body) else {
        return Reply::empty(422);
    };
    let applied = apply(
        &mut st,
        data,
        shared.opts.mail_enabled,
        shared.opts.groups_enabled,
    );
    if let Err(message) = applied {
        return Reply::json(400, &error_body(&message));
    }
    st.stats.imports += 1;
    st.last_import = Some(body);
    Reply::empty(200)
}

/// Vaultwarden's error body (`ApiErrorResponse` in its `src/error.rs`).
pub(crate) fn error_body(message: &str) -> Value {
    json!({
        "message": message,
        "validationErrors": {"": [message]},
        "errorModel": {"message": message, "object": "error"},
        "error": "",
        "error_description": "",
        "exceptionMessage": null,
        "exceptionStackTrace": null,
        "innerExceptionMessage": null,
        "object": "error",
    })
}

/// Vaultwarden's `is_valid_email`: the address parses, and its domain makes a URL with a
/// host name, the path `/` and no query.
pub(crate) fn is_valid_email(email: &str) -> bool {
    let Ok(parsed) = email_address::EmailAddress::from_str(email) else {
        return false;
    };
    let Ok(url) = url::Url::parse(&format!("https://{}", parsed.domain())) else {
        return false;
    };
    url.path() == "/" && url.domain().is_some() && url.query().is_none()
}

/// An external id as Vaultwarden stores it: an empty one is none.
fn stored_ext(ext: &str) -> Option<String> {
    (!ext.is_empty()).then(|| ext.to_string())
}

fn apply(
    st: &mut State,
    data: Import,
    mail_enabled: bool,
    groups_enabled: bool,
) -> Result<(), String> {
    for m in &data.members {
        let existing = st.member_by_email(&m.email).map(|r| r.m.id.clone());
        match existing {
            Some(id) => {
                let last_owner = st.is_last_confirmed_owner(&id);
                let status = st.member(&id).map_or(INVITED, |r| r.m.status);
                let prior = st.member(&id).map_or(INVITED, |r| r.prior_status);
                if m.deleted {
                    // Revoked, unless it is the last confirmed owner.
                    if status != REVOKED && !last_owner {
                        st.set_status(&id, REVOKED);
                    }
                } else if status == REVOKED {
                    st.set_status(&id, prior);
                }
                if let Some(r) = st.member_mut(&id) {
                    r.m.external_id = stored_ext(&m.external_id);
                }
            }
            None if m.deleted => {}
            None => {
                let email = m.email.to_lowercase();
                // The user record is created (and checked) first when no account exists.
                if !st.accounts.contains(&email) && !is_valid_email(&email) {
                    return Err(format!("User email {email} is not a valid email address"));
                }
                if mail_enabled && st.mail_refused.contains(&email) {
                    // The invitation is rolled back, then the import stops.
                    return Err(
                        "Error sending invite: the mail server refused the recipient ".into(),
                    );
                }
                // Only an account that already has a password is accepted directly when
                // no invitation mail can be sent.
                let status = if mail_enabled || !st.accounts.contains(&email) {
                    INVITED
                } else {
                    ACCEPTED
                };
                let id = st.add_member(email.clone(), USER, INVITED, stored_ext(&m.external_id));
                st.set_status(&id, status);
                st.invited(&email);
            }
        }
    }

    if groups_enabled {
        for g in &data.groups {
            let found = st
                .groups
                .iter()
                .find(|x| x.external_id.as_deref() == Some(g.external_id.as_str()))
                .map(|x| x.id.clone());
            // Matched by externalId; an existing group keeps its name. A group sent with
            // an empty externalId is stored without one, so it is added on every import.
            let id = match found {
                Some(id) => id,
                None => st.add_group(g.name.clone(), stored_ext(&g.external_id), Vec::new()),
            };
            let members: Vec<String> = g
                .member_external_ids
                .iter()
                .filter_map(|ext| {
                    st.members
                        .iter()
                        .find(|r| r.m.external_id.as_deref() == Some(ext.as_str()))
                        .map(|r| r.m.id.clone())
                })
                .collect();
            st.set_group_members(&id, &members);
        }
    }

    if data.overwrite_existing {
        let listed: HashSet<&str> = data
            .members
            .iter()
            .map(|m| m.external_id.as_str())
            .collect();
        let unlisted: Vec<String> = st
            .members
            .iter()
            .filter(|r| {
                r.m.external_id
                    .as_deref()
                    .is_some_and(|e| !listed.contains(e))
            })
            .map(|r| r.m.id.clone())
            .collect();
        for id in unlisted {
            if !st.is_last_confirmed_owner(&id) {
                st.remove_member(&id);
            }
        }
    }
    Ok(())
}

/// The body as Vaultwarden's serde structs would take it (unknown fields ignored).
fn parse(body: &Value) -> Option<Import> {
    let members = body
        .get("members")?
        .as_array()?
        .iter()
        .map(|m| {
            Some(ImportMember {
                email: m.get("email")?.as_str()?.to_string(),
                external_id: m.get("externalId")?.as_str()?.to_string(),
                deleted: m.get("deleted")?.as_bool()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let groups = body
        .get("groups")?
        .as_array()?
        .iter()
        .map(|g| {
            Some(ImportGroup {
                name: g.get("name")?.as_str()?.to_string(),
                external_id: g.get("externalId")?.as_str()?.to_string(),
                member_external_ids: g
                    .get("memberExternalIds")?
                    .as_array()?
                    .iter()
                    .map(|e| e.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Import {
        groups,
        members,
        overwrite_existing: body.get("overwriteExisting")?.as_bool()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn required_fields() {
        assert!(parse(&json!({"groups": [], "members": [], "overwriteExisting": false})).is_some());
        assert!(parse(&json!({"groups": [], "members": []})).is_none());
        assert!(parse(&json!({"members": [], "overwriteExisting": true})).is_none());
        assert!(
            parse(&json!({"groups": null, "members": [], "overwriteExisting": true})).is_none()
        );
        let no_deleted = json!({"groups": [], "members": [{"email": "a@x.io", "externalId": "1"}], "overwriteExisting": false});
        assert!(parse(&no_deleted).is_none());
        let extra =
            json!({"groups": [], "members": [], "overwriteExisting": false, "largeImport": true});
        assert!(parse(&extra).is_some());
    }
}
