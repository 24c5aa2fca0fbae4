//! Bitwarden's Public API for members and groups (vaults.md §1.2): routing, the rate
//! limit, authentication, model validation and the handlers.
//!
//! Order per request, as ASP.NET runs it: rate limit (before routing), route (404/405),
//! bearer token (401, empty), model validation (400 "The request's model state is
//! invalid."), then the action (404 empty for an unknown id, 400 `{"object":"error"…}`).
//! Paths are matched case-insensitively. Collections are stored as given, not checked
//! against any collection list; seats and policies are not modelled.

use crate::server::{is_guid, too_many, Reply, Req};
use crate::state::{MemberRec, Shared, State};
use crate::{token, Group, INVITED, OWNER, REVOKED};
use serde_json::{json, Map, Value};

const INVALID_MODEL: &str = "The request's model state is invalid.";
const NO_OWNER_LEFT: &str = "Organization must have at least one confirmed owner.";

#[derive(Clone, Copy)]
enum Action {
    Reinvite,
    Revoke,
    Restore,
}

enum Route<'a> {
    ListMembers,
    CreateMember,
    GetMember(&'a str),
    UpdateMember(&'a str),
    DeleteMember(&'a str),
    GetMemberGroups(&'a str),
    SetMemberGroups(&'a str),
    Member(&'a str, Action),
    ListGroups,
    CreateGroup,
    GetGroup(&'a str),
    UpdateGroup(&'a str),
    DeleteGroup(&'a str),
    GetGroupMembers(&'a str),
    SetGroupMembers(&'a str),
}

/// `rest` is the path after `/api/public/`.
pub(crate) fn handle(shared: &Shared, req: &Req, rest: &str, now_ms: u64) -> Reply {
    let mut st = shared.lock();
    let limiter = if req.is_write() {
        &mut st.writes
    } else {
        &mut st.reads
    };
    if let Err(wait) = limiter.hit(now_ms) {
        return too_many(shared, wait);
    }
    let lower = rest.trim_end_matches('/').to_ascii_lowercase();
    let segs: Vec<&str> = lower.split('/').collect();
    let route = match parse(&req.method, &segs) {
        Ok(route) => route,
        Err(status) => return Reply::empty(status),
    };
    if !token::authorized(&mut st, req) {
        return Reply::empty(401);
    }
    exec(&mut st, route, req).unwrap_or_else(|reply| reply)
}

/// The route, or 405 for a known path with another method, 404 otherwise.
fn parse<'a>(method: &str, segs: &[&'a str]) -> Result<Route<'a>, u16> {
    let route = match (segs, method) {
        (["members"], "GET") => Route::ListMembers,
        (["members"], "POST") => Route::CreateMember,
        (["members", id], "GET") => Route::GetMember(id),
        (["members", id], "PUT") => Route::UpdateMember(id),
        (["members", id], "DELETE") => Route::DeleteMember(id),
        (["members", id, "group-ids"], "GET") => Route::GetMemberGroups(id),
        (["members", id, "group-ids"], "PUT") => Route::SetMemberGroups(id),
        (["members", id, "reinvite"], "POST") => Route::Member(id, Action::Reinvite),
        (["members", id, "revoke"], "POST") => Route::Member(id, Action::Revoke),
        (["members", id, "restore"], "POST") => Route::Member(id, Action::Restore),
        (["groups"], "GET") => Route::ListGroups,
        (["groups"], "POST") => Route::CreateGroup,
        (["groups", id], "GET") => Route::GetGroup(id),
        (["groups", id], "PUT") => Route::UpdateGroup(id),
        (["groups", id], "DELETE") => Route::DeleteGroup(id),
        (["groups", id, "member-ids"], "GET") => Route::GetGroupMembers(id),
        (["groups", id, "member-ids"], "PUT") => Route::SetGroupMembers(id),
        (["members" | "groups"] | ["members" | "groups", _], _)
        | (["members", _, "group-ids" | "reinvite" | "revoke" | "restore"], _)
        | (["groups", _, "member-ids"], _) => return Err(405),
        _ => return Err(404),
    };
    Ok(route)
}

type Res = Result<Reply, Reply>;

fn exec(st: &mut State, route: Route<'_>, req: &Req) -> Res {
    match route {
        Route::ListMembers => {
            let data: Vec<Value> = st.members.iter().map(member_json).collect();
            Ok(list(data))
        }
        Route::CreateMember => create_member(st, req),
        Route::GetMember(id) => {
            let r = find_member(st, id)?;
            Ok(Reply::json(200, &member_json(r)))
        }
        Route::UpdateMember(id) => update_member(st, id, req),
        Route::DeleteMember(id) => {
            find_member(st, id)?;
            if st.is_last_confirmed_owner(id) {
                return Err(bad(NO_OWNER_LEFT));
            }
            st.remove_member(id);
            Ok(Reply::empty(200))
        }
        Route::GetMemberGroups(id) => {
            find_member(st, id)?;
            Ok(Reply::json(200, &json!(st.group_ids_of(id))))
        }
        Route::SetMemberGroups(id) => {
            guid_param(id)?;
            let body = body_object(req)?;
            let ids = guid_list(&body, "groupIds", "GroupIds")?;
            find_member(st, id)?;
            st.set_member_groups(id, &ids);
            Ok(Reply::empty(200))
        }
        Route::Member(id, action) => member_action(st, id, action),
        Route::ListGroups => Ok(list(st.groups.iter().map(group_json).collect())),
        Route::CreateGroup => {
            let g = group_model(&body_object(req)?)?;
            let id = st.add_group(g.name, g.external_id, g.collections.unwrap_or_default());
            let group = find_group(st, &id)?;
            Ok(Reply::json(200, &group_json(group)))
        }
        Route::GetGroup(id) => Ok(Reply::json(200, &group_json(find_group(st, id)?))),
        Route::UpdateGroup(id) => {
            guid_param(id)?;
            let g = group_model(&body_object(req)?)?;
            let group = find_group_mut(st, id)?;
            group.name = g.name;
            // Omitted externalId is reset; omitted collections are left alone.
            group.external_id = g.external_id;
            if let Some(c) = g.collections {
                group.collections = c;
            }
            Ok(Reply::json(200, &group_json(group)))
        }
        Route::DeleteGroup(id) => {
            find_group(st, id)?;
            st.groups.retain(|g| g.id != id);
            Ok(Reply::empty(200))
        }
        Route::GetGroupMembers(id) => {
            let g = find_group(st, id)?;
            Ok(Reply::json(200, &json!(g.member_ids)))
        }
        Route::SetGroupMembers(id) => {
            guid_param(id)?;
            let body = body_object(req)?;
            let ids = guid_list(&body, "memberIds", "MemberIds")?;
            find_group(st, id)?;
            st.set_group_members(id, &ids);
            Ok(Reply::empty(200))
        }
    }
}

fn create_member(st: &mut State, req: &Req) -> Res {
    let body = body_object(req)?;
    let mut errors = Errors::default();
    let email = match get(&body, "email") {
        None => {
            errors.add("Email", "The Email field is required.");
            String::new()
        }
        Some(Value::String(e)) => {
            if e.chars().count() > 256 {
                errors.add(
                    "Email",
                    "The field Email must be a string with a maximum length of 256.",
                );
            } else if !strict_email(e) {
                errors.add(
                    "Email",
                    "The Email field is not a supported e-mail address format.",
                );
            }
            e.clone()
        }
        Some(_) => {
            errors.add(
                "Email",
                "The JSON value could not be converted to System.String.",
            );
            String::new()
        }
    };
    let m = member_model(&body, &mut errors);
    errors.check()?;
    if st.member_by_email(&email).is_some() {
        return Err(bad("This user has already been invited."));
    }
    let id = st.add_member(email.clone(), m.type_, INVITED, m.external_id);
    if let Some(r) = st.member_mut(&id) {
        r.m.collections = m.collections.unwrap_or_default();
        r.m.permissions = m.permissions;
    }
    if let Some(groups) = m.groups {
        st.set_member_groups(&id, &groups);
    }
    st.invited(&email);
    let r = find_member(st, &id)?;
    Ok(Reply::json(200, &member_json(r)))
}

fn update_member(st: &mut State, id: &str, req: &Req) -> Res {
    guid_param(id)?;
    let body = body_object(req)?;
    let mut errors = Errors::default();
    let m = member_model(&body, &mut errors);
    errors.check()?;
    find_member(st, id)?;
    if m.type_ != OWNER && st.is_last_confirmed_owner(id) {
        return Err(bad(NO_OWNER_LEFT));
    }
    if let Some(r) = st.member_mut(id) {
        // "If a property is not provided, the value … will be reset" (groups excepted).
        r.m.type_ = m.type_;
        r.m.external_id = m.external_id;
        r.m.collections = m.collections.unwrap_or_default();
        r.m.permissions = m.permissions;
    }
    if let Some(groups) = m.groups {
        st.set_member_groups(id, &groups);
    }
    let r = find_member(st, id)?;
    Ok(Reply::json(200, &member_json(r)))
}

fn member_action(st: &mut State, id: &str, action: Action) -> Res {
    let r = find_member(st, id)?;
    let (status, email, prior) = (r.m.status, r.m.email.clone(), r.prior_status);
    match action {
        Action::Reinvite => {
            if status != INVITED {
                return Err(bad("User invalid."));
            }
            st.invited(&email);
        }
        Action::Revoke => {
            if status == REVOKED {
                return Err(bad("Already revoked."));
            }
            if st.is_last_confirmed_owner(id) {
                return Err(bad(NO_OWNER_LEFT));
            }
            st.set_status(id, REVOKED);
        }
        Action::Restore => {
            if status != REVOKED {
                return Err(bad("Already active."));
            }
            st.set_status(id, prior);
        }
    }
    Ok(Reply::empty(200))
}

/// The fields POST and PUT members share.
struct MemberModel {
    type_: i32,
    external_id: Option<String>,
    collections: Option<Vec<Value>>,
    groups: Option<Vec<String>>,
    permissions: Option<Value>,
}

fn member_model(body: &Map<String, Value>, errors: &mut Errors) -> MemberModel {
    let type_ = match get(body, "type") {
        None => {
            errors.add("Type", "The Type field is required.");
            0
        }
        Some(v) => match v.as_i64() {
            Some(t @ (0 | 1 | 2 | 4)) => t as i32,
            _ => {
                errors.add("Type", "The field Type is invalid.");
                0
            }
        },
    };
    let permissions = match get(body, "permissions") {
        Some(p @ Value::Object(_)) => Some(p.clone()),
        Some(_) => {
            errors.add("Permissions", "The JSON value could not be converted.");
            None
        }
        None => None,
    };
    MemberModel {
        type_,
        external_id: string_field(body, "externalId", "ExternalId", 300, errors),
        collections: collections(body, errors),
        groups: match get(body, "groups") {
            None => None,
            Some(v) => ids_value(v).or_else(|| {
                errors.add(
                    "Groups",
                    "The JSON value could not be converted to System.Guid.",
                );
                None
            }),
        },
        permissions,
    }
}

/// The fields POST and PUT groups take.
struct GroupModel {
    name: String,
    external_id: Option<String>,
    collections: Option<Vec<Value>>,
}

fn group_model(body: &Map<String, Value>) -> Result<GroupModel, Reply> {
    let mut errors = Errors::default();
    let name = string_field(body, "name", "Name", 100, &mut errors);
    if name.is_none() && !errors.has("Name") {
        errors.add("Name", "The Name field is required.");
    }
    let g = GroupModel {
        name: name.unwrap_or_default(),
        external_id: string_field(body, "externalId", "ExternalId", 300, &mut errors),
        collections: collections(body, &mut errors),
    };
    errors.check()?;
    Ok(g)
}

/// An optional string field of at most `max` characters.
fn string_field(
    body: &Map<String, Value>,
    name: &str,
    label: &str,
    max: usize,
    errors: &mut Errors,
) -> Option<String> {
    match get(body, name) {
        None => None,
        Some(Value::String(s)) if s.chars().count() <= max => Some(s.clone()),
        Some(Value::String(_)) => {
            errors.add(
                label,
                &format!("The field {label} must be a string with a maximum length of {max}."),
            );
            None
        }
        Some(_) => {
            errors.add(
                label,
                "The JSON value could not be converted to System.String.",
            );
            None
        }
    }
}

fn collections(body: &Map<String, Value>, errors: &mut Errors) -> Option<Vec<Value>> {
    match get(body, "collections") {
        None => None,
        Some(Value::Array(items))
            if items
                .iter()
                .all(|c| c.get("id").and_then(Value::as_str).is_some_and(is_guid)) =>
        {
            Some(items.clone())
        }
        Some(_) => {
            errors.add("Collections", "The JSON value could not be converted.");
            None
        }
    }
}

/// A `{"groupIds": […]}`-style body: a missing or null list is empty.
fn guid_list(body: &Map<String, Value>, name: &str, label: &str) -> Result<Vec<String>, Reply> {
    match get(body, name) {
        None => Ok(Vec::new()),
        Some(v) => ids_value(v).ok_or_else(|| {
            let mut errors = Errors::default();
            errors.add(
                label,
                "The JSON value could not be converted to System.Guid.",
            );
            errors.reply()
        }),
    }
}

/// An array of GUID strings, lowercased.
fn ids_value(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|id| {
            id.as_str()
                .filter(|s| is_guid(s))
                .map(str::to_ascii_lowercase)
        })
        .collect()
}

/// A case-insensitive, non-null field (ASP.NET binds JSON names case-insensitively).
fn get<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.iter()
        .find(|(k, v)| k.eq_ignore_ascii_case(name) && !v.is_null())
        .map(|(_, v)| v)
}

/// The JSON object body: 415 without a JSON content type, 400 if empty or not an object.
fn body_object(req: &Req) -> Result<Map<String, Value>, Reply> {
    if !req.content_type.to_ascii_lowercase().contains("json") {
        return Err(Reply::empty(415));
    }
    let mut errors = Errors::default();
    if req.body.iter().all(u8::is_ascii_whitespace) {
        errors.add("", "A non-empty request body is required.");
        return Err(errors.reply());
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => {
            errors.add("$", "The JSON value could not be converted.");
            Err(errors.reply())
        }
    }
}

/// A route's `{id}` must be a GUID, or model binding fails.
fn guid_param(id: &str) -> Result<(), Reply> {
    if is_guid(id) {
        return Ok(());
    }
    let mut errors = Errors::default();
    errors.add("id", &format!("The value '{id}' is not valid."));
    Err(errors.reply())
}

fn find_member<'a>(st: &'a State, id: &str) -> Result<&'a MemberRec, Reply> {
    guid_param(id)?;
    st.member(id).ok_or_else(|| Reply::empty(404))
}

fn find_group<'a>(st: &'a State, id: &str) -> Result<&'a Group, Reply> {
    guid_param(id)?;
    st.group(id).ok_or_else(|| Reply::empty(404))
}

fn find_group_mut<'a>(st: &'a mut State, id: &str) -> Result<&'a mut Group, Reply> {
    st.group_mut(id).ok_or_else(|| Reply::empty(404))
}

/// Roughly .NET's `[StrictEmailAddress]`: one `@`, no spaces or brackets (MimeKit parses
/// it back to itself), and its pattern `^[\x00-\x7F]+@.+\.\p{L}+$`: an ASCII local part,
/// a dotted domain ending in letters.
pub(crate) fn strict_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    let bad_char = |c: char| c.is_whitespace() || "<>()[],;:\\\"@".contains(c);
    let tld_letters = domain
        .rsplit_once('.')
        .is_some_and(|(_, tld)| !tld.is_empty() && tld.chars().all(char::is_alphabetic));
    !local.is_empty()
        && local.is_ascii()
        && !local.chars().any(bad_char)
        && tld_letters
        && !domain.starts_with('.')
        && !domain.contains("..")
        && !domain.chars().any(bad_char)
}

#[derive(Default)]
struct Errors(Map<String, Value>);

impl Errors {
    fn add(&mut self, key: &str, message: &str) {
        let entry = self
            .0
            .entry(key.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.push(Value::String(message.to_string()));
        }
    }

    fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    fn reply(self) -> Reply {
        Reply::json(
            400,
            &json!({ "object": "error", "message": INVALID_MODEL, "errors": Value::Object(self.0) }),
        )
    }

    fn check(self) -> Result<(), Reply> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.reply())
        }
    }
}

fn bad(message: &str) -> Reply {
    Reply::json(
        400,
        &json!({ "object": "error", "message": message, "errors": null }),
    )
}

fn list(data: Vec<Value>) -> Reply {
    Reply::json(
        200,
        &json!({ "object": "list", "data": data, "continuationToken": null }),
    )
}

/// `MemberResponseModel`; `name` stays null (the fake has no accounts' names).
fn member_json(r: &MemberRec) -> Value {
    let m = &r.m;
    json!({
        "object": "member",
        "id": m.id,
        "userId": m.user_id,
        "name": null,
        "email": m.email,
        "twoFactorEnabled": false,
        "status": m.status,
        "collections": m.collections,
        "resetPasswordEnrolled": false,
        "ssoExternalId": null,
        "type": m.type_,
        "externalId": m.external_id,
        "permissions": m.permissions,
    })
}

fn group_json(g: &Group) -> Value {
    json!({
        "object": "group",
        "id": g.id,
        "name": g.name,
        "externalId": g.external_id,
        "collections": g.collections,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(strict_email("a.b+c@example.com"));
        assert!(!strict_email("a@b"));
        assert!(!strict_email("a b@example.com"));
        assert!(!strict_email("@example.com"));
        assert!(!strict_email("a@@example.com"));
        assert!(!strict_email("ä@example.com"));
        assert!(!strict_email("a@example.c1"));
    }

    #[test]
    fn routes() {
        assert!(matches!(parse("GET", &["members"]), Ok(Route::ListMembers)));
        assert!(matches!(parse("PATCH", &["members", "x"]), Err(405)));
        assert!(matches!(parse("GET", &["collections"]), Err(404)));
        assert!(matches!(
            parse("GET", &["members", "x", "revoke"]),
            Err(405)
        ));
        assert!(matches!(parse("POST", &["members", "x", "y"]), Err(404)));
    }
}
