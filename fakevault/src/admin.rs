//! The routes an administrator's client uses to confirm members, behind a personal API
//! key's token (vault-crypto.md §2–§3; Vaultwarden's `sync` in `src/api/core/ciphers.rs`,
//! `get_public_keys` in `accounts.rs`, `get_members`, `bulk_public_keys`,
//! `confirm_invite` and `bulk_confirm_invite` in `organizations.rs`). The same in both
//! modes, and never rate limited.
//!
//! Order per request, as Rocket runs it: route (404, empty; Rocket has no 405), user token
//! (401, empty; an organization token is refused too), the caller's membership where the
//! route needs one (401: a Confirmed Owner, Admin or Manager to list members, a Confirmed
//! Owner or Admin for the rest), body (400 for JSON that does not parse, 422 for JSON of
//! the wrong shape), then the handler, whose refusals are 400 or 404 with Vaultwarden's
//! error body.

use crate::server::{Reply, Req};
use crate::state::{MemberRec, Shared, State};
use crate::token::{self, kdf_fields};
use crate::vaultwarden::error_body;
use crate::{ACCEPTED, ADMIN, CONFIRMED, CUSTOM, MANAGER, OWNER, USER};
use serde_json::{json, Map, Value};

/// The organization's name in a profile (the fake keeps none).
const ORG_NAME: &str = "Fake organization";

enum Route<'a> {
    Sync,
    Members(&'a str),
    PublicKey(&'a str),
    PublicKeys(&'a str),
    BulkConfirm(&'a str),
    Confirm(&'a str, &'a str),
}

/// `rest` is the path after `/api/`.
fn parse<'a>(method: &str, rest: &'a str) -> Option<Route<'a>> {
    let segs: Vec<&'a str> = rest.split('/').collect();
    Some(match (method, &segs[..]) {
        ("GET", ["sync"]) => Route::Sync,
        ("GET", ["organizations", org, "users"]) => Route::Members(org),
        ("GET", ["users", id, "public-key"]) => Route::PublicKey(id),
        ("POST", ["organizations", org, "users", "public-keys"]) => Route::PublicKeys(org),
        ("POST", ["organizations", org, "users", "confirm"]) => Route::BulkConfirm(org),
        ("POST", ["organizations", org, "users", member, "confirm"]) => Route::Confirm(org, member),
        _ => return None,
    })
}

type Res = Result<Reply, Reply>;

/// `rest` is the path after `/api/`.
pub(crate) fn handle(shared: &Shared, req: &Req, rest: &str) -> Reply {
    let Some(route) = parse(&req.method, rest) else {
        return Reply::empty(404);
    };
    let mut st = shared.lock();
    let Some(user_id) = token::user(&mut st, req) else {
        return Reply::empty(401);
    };
    exec(shared, &mut st, &user_id, route, req).unwrap_or_else(|reply| reply)
}

fn exec(shared: &Shared, st: &mut State, user_id: &str, route: Route<'_>, req: &Req) -> Res {
    match route {
        Route::Sync => sync(shared, st, user_id),
        Route::PublicKey(id) => public_key(st, id),
        Route::Members(org) => {
            caller(shared, st, user_id, org, &[OWNER, ADMIN, MANAGER])?;
            let data: Vec<Value> = st.members.iter().map(|r| member_json(st, r)).collect();
            Ok(list(data))
        }
        Route::PublicKeys(org) => {
            caller(shared, st, user_id, org, &[OWNER, ADMIN])?;
            let ids = ids_body(&json_object(req)?)?;
            let data: Vec<Value> = ids
                .iter()
                .filter_map(|id| st.member(id))
                .map(|r| {
                    let public = r.m.user_id.as_deref().and_then(|u| st.user(u));
                    json!({
                        "object": "organizationUserPublicKeyResponseModel",
                        "id": r.m.id,
                        "userId": r.m.user_id,
                        "key": public.map(|a| a.keys.public_b64.clone()),
                    })
                })
                .collect();
            Ok(list(data))
        }
        Route::Confirm(org, member_id) => {
            let caller_type = caller(shared, st, user_id, org, &[OWNER, ADMIN])?;
            let body = json_object(req)?;
            optional_string(&body, "id")?;
            let key = optional_string(&body, "key")?.unwrap_or_default();
            match confirm(st, caller_type, member_id, &key) {
                Ok(()) => Ok(Reply::empty(200)),
                Err(message) => Err(Reply::json(400, &error_body(&message))),
            }
        }
        Route::BulkConfirm(org) => {
            let caller_type = caller(shared, st, user_id, org, &[OWNER, ADMIN])?;
            let entries = bulk_body(&json_object(req)?)?;
            let mut data = Vec::new();
            for (id, key) in entries {
                // Vaultwarden unwraps the id: a missing one is a 500, after the entries
                // before it were confirmed.
                let Some(id) = id else {
                    return Err(Reply::empty(500));
                };
                let error = confirm(st, caller_type, &id, &key.unwrap_or_default()).err();
                data.push(json!({
                    "object": "OrganizationBulkConfirmResponseModel",
                    "id": id,
                    "error": error.unwrap_or_default(),
                }));
            }
            Ok(list(data))
        }
    }
}

/// The caller's membership type, if the caller is a Confirmed member of this organization
/// of one of `types`; else 401, as Vaultwarden's request guards answer.
fn caller(
    shared: &Shared,
    st: &State,
    user_id: &str,
    org: &str,
    types: &[i32],
) -> Result<i32, Reply> {
    let unauthorized = || Reply::empty(401);
    if org != shared.opts.org_id {
        return Err(unauthorized());
    }
    let r = st.member_of_user(user_id).ok_or_else(unauthorized)?;
    if r.m.status == CONFIRMED && types.contains(&r.m.type_) {
        Ok(r.m.type_)
    } else {
        Err(unauthorized())
    }
}

/// `confirm_invite_impl`, checks in Vaultwarden's order; the error is the message its
/// error body (single) or the bulk entry's `error` carries.
fn confirm(st: &mut State, caller_type: i32, member_id: &str, key: &str) -> Result<(), String> {
    if key.is_empty() || member_id.is_empty() {
        return Err("Key or UserId is not set, unable to process request".into());
    }
    let r = st
        .member(member_id)
        .ok_or("The specified user isn't a member of the organization")?;
    if r.m.type_ != USER && caller_type != OWNER {
        return Err("Only Owners can confirm Managers, Admins or Owners".into());
    }
    if r.m.status != ACCEPTED {
        return Err("User in invalid state".into());
    }
    // A policy's refusal comes after the state check, as `check_user_allowed` does.
    if let Some(message) = st.refusals.get(member_id) {
        return Err(message.clone());
    }
    st.set_status(member_id, CONFIRMED);
    if let Some(r) = st.member_mut(member_id) {
        // Stored as given: only the member can tell whether it opens.
        r.m.key = Some(key.to_string());
    }
    st.stats.confirms += 1;
    Ok(())
}

fn sync(shared: &Shared, st: &State, user_id: &str) -> Res {
    // A token outlives nothing here, but an account the test replaced is gone.
    let a = st.user(user_id).ok_or_else(|| Reply::empty(401))?;
    let organizations: Vec<Value> = st
        .members
        .iter()
        .filter(|r| r.m.user_id.as_deref() == Some(user_id) && r.m.status == CONFIRMED)
        .map(|r| {
            json!({
                "id": shared.opts.org_id,
                "name": ORG_NAME,
                "organizationUserId": r.m.id,
                "userId": user_id,
                "key": r.m.key,
                "status": r.m.status,
                "type": shown_type(r.m.type_),
                "enabled": true,
                "useApi": true,
                "useGroups": shared.opts.groups_enabled,
                "usePolicies": true,
                "selfHost": true,
                "object": "profileOrganization",
            })
        })
        .collect();
    let (kdf_type, iterations, memory, parallelism) = kdf_fields(&a.kdf);
    let profile = json!({
        "_status": 0,
        "accountKeys": {
            "publicKeyEncryptionKeyPair": {
                "wrappedPrivateKey": a.private_key,
                "publicKey": a.keys.public_b64,
                "signedPublicKey": null,
                "object": "publicKeyEncryptionKeyPair",
            },
            "securityState": null,
            "signatureKeyPair": null,
            "object": "privateKeys",
        },
        "id": a.id,
        "name": null,
        "email": a.email,
        "emailVerified": true,
        "premium": true,
        "premiumFromOrganization": false,
        "culture": "en-US",
        "twoFactorEnabled": false,
        "key": a.key,
        "privateKey": a.private_key,
        "organizations": organizations,
        "providers": [],
        "providerOrganizations": [],
        "forcePasswordReset": false,
        "avatarColor": null,
        "usesKeyConnector": false,
        "object": "profile",
    });
    Ok(Reply::json(
        200,
        &json!({
            "profile": profile,
            "folders": [],
            "collections": [],
            "policies": [],
            "ciphers": [],
            "domains": null,
            "sends": [],
            "userDecryption": {
                "masterPasswordUnlock": {
                    "kdf": {
                        "kdfType": kdf_type,
                        "iterations": iterations,
                        "memory": memory,
                        "parallelism": parallelism,
                    },
                    "masterKeyEncryptedUserKey": a.key,
                    "masterKeyWrappedUserKey": a.key,
                    "salt": a.email,
                },
            },
            "object": "sync",
        }),
    ))
}

/// `GET users/{id}/public-key`: any user token may ask.
fn public_key(st: &State, id: &str) -> Res {
    if let Some(a) = st.user(id) {
        return Ok(Reply::json(
            200,
            &json!({ "userId": a.id, "publicKey": a.keys.public_b64, "object": "userKey" }),
        ));
    }
    // A member's account without keys (seeded Accepted, never registered) exists.
    let known = st
        .members
        .iter()
        .any(|r| r.m.user_id.as_deref() == Some(id));
    let message = if known {
        "User has no public_key"
    } else {
        "User doesn't exist"
    };
    Err(Reply::json(404, &error_body(message)))
}

/// Vaultwarden shows a Manager (3) as Custom (4) to clients.
fn shown_type(type_: i32) -> i32 {
    if type_ == MANAGER {
        CUSTOM
    } else {
        type_
    }
}

/// `to_json_user_details` without collections and groups (not asked for); `name` null
/// (the fake keeps no names); `userId` null for an invitation without an account.
fn member_json(st: &State, r: &MemberRec) -> Value {
    let m = &r.m;
    let has_password = m.user_id.as_deref().and_then(|u| st.user(u)).is_some()
        || st.accounts.contains(&m.email.to_lowercase());
    json!({
        "id": m.id,
        "userId": m.user_id,
        "name": null,
        "email": m.email,
        "externalId": m.external_id,
        "avatarColor": null,
        "groups": [],
        "collections": [],
        "status": m.status,
        "type": shown_type(m.type_),
        "twoFactorEnabled": false,
        "resetPasswordEnrolled": false,
        "hasMasterPassword": has_password,
        "permissions": null,
        "ssoBound": false,
        "managedByOrganization": false,
        "claimedByOrganization": false,
        "usesKeyConnector": false,
        "accessSecretsManager": false,
        "object": "organizationUserUserDetails",
    })
}

fn list(data: Vec<Value>) -> Reply {
    Reply::json(
        200,
        &json!({ "data": data, "object": "list", "continuationToken": null }),
    )
}

/// Rocket's `Json<T>`: 400 for text that is not JSON, 422 for JSON that is not an object.
fn json_object(req: &Req) -> Result<Map<String, Value>, Reply> {
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Reply::empty(422)),
        Err(_) => Err(Reply::empty(400)),
    }
}

/// An `Option<String>` field: absent or null is none, another type is 422.
fn optional_string(body: &Map<String, Value>, name: &str) -> Result<Option<String>, Reply> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Reply::empty(422)),
    }
}

/// `{"ids": [string…]}`, all required.
fn ids_body(body: &Map<String, Value>) -> Result<Vec<String>, Reply> {
    body.get("ids")
        .and_then(Value::as_array)
        .and_then(|ids| {
            ids.iter()
                .map(|id| id.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| Reply::empty(422))
}

/// One entry of a bulk confirm: its `id` and `key`, both optional.
type BulkEntry = (Option<String>, Option<String>);

/// `{"keys": [{"id", "key"}…]}`, every field optional; no `keys` is an empty list.
fn bulk_body(body: &Map<String, Value>) -> Result<Vec<BulkEntry>, Reply> {
    let items = match body.get("keys") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(Reply::empty(422)),
    };
    items
        .iter()
        .map(|item| match item {
            Value::Object(entry) => Ok((
                optional_string(entry, "id")?,
                optional_string(entry, "key")?,
            )),
            _ => Err(Reply::empty(422)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(parse("GET", "sync"), Some(Route::Sync)));
        assert!(parse("POST", "sync").is_none());
        assert!(matches!(
            parse("POST", "organizations/o/users/confirm"),
            Some(Route::BulkConfirm("o"))
        ));
        assert!(matches!(
            parse("POST", "organizations/o/users/public-keys"),
            Some(Route::PublicKeys("o"))
        ));
        assert!(matches!(
            parse("POST", "organizations/o/users/m/confirm"),
            Some(Route::Confirm("o", "m"))
        ));
        assert!(matches!(
            parse("GET", "users/u/public-key"),
            Some(Route::PublicKey("u"))
        ));
        assert!(parse("GET", "organizations/o/users/m").is_none());
    }

    #[test]
    fn bodies() {
        let obj = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert_eq!(bulk_body(&obj(json!({}))).ok().map(|v| v.len()), Some(0));
        let two = bulk_body(&obj(
            json!({"keys": [{"id": "a", "key": "k"}, {"key": null}]}),
        ));
        assert_eq!(
            two.ok(),
            Some(vec![(Some("a".into()), Some("k".into())), (None, None)])
        );
        assert!(bulk_body(&obj(json!({"keys": [{"id": 1}]}))).is_err());
        assert!(ids_body(&obj(json!({"ids": ["a"]}))).is_ok());
        assert!(ids_body(&obj(json!({}))).is_err());
        assert!(ids_body(&obj(json!({"ids": [null]}))).is_err());
    }
}
