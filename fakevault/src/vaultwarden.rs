//! Vaultwarden's one public route, `POST /api/public/organization/import` (`ldap_import`
//! in `src/api/core/public.rs`; vaults.md §2 Vaultwarden column, §4).
//!
//! Order: route (404 for anything else, Rocket has no 405), bearer token (401: Rocket
//! runs request guards before the data guard), body (400 for JSON that does not parse,
//! 422 for JSON that does not deserialize: `groups`, `members`, `overwriteExisting` and
//! every item field are required, with their JSON types), then the import; 200, empty.

use crate::server::{Reply, Req};
use crate::state::{Shared, State};
use crate::{token, ACCEPTED, INVITED, REVOKED, USER};
use serde_json::Value;
use std::collections::HashSet;

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
    apply(
        &mut st,
        data,
        shared.opts.mail_enabled,
        shared.opts.groups_enabled,
    );
    st.stats.imports += 1;
    st.last_import = Some(body);
    Reply::empty(200)
}

fn apply(st: &mut State, data: Import, mail_enabled: bool, groups_enabled: bool) {
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
                    r.m.external_id = Some(m.external_id.clone());
                }
            }
            None if m.deleted => {}
            None => {
                let email = m.email.to_lowercase();
                // Only an account that already has a password is accepted directly when
                // no invitation mail can be sent.
                let status = if mail_enabled || !st.accounts.contains(&email) {
                    INVITED
                } else {
                    ACCEPTED
                };
                let id = st.add_member(email.clone(), USER, INVITED, Some(m.external_id.clone()));
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
            // Matched by externalId; an existing group keeps its name.
            let id = match found {
                Some(id) => id,
                None => st.add_group(g.name.clone(), Some(g.external_id.clone()), Vec::new()),
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
