//! Bitwarden's Public API as typed calls: each knows its method, path and route template
//! (for logs: ids written `{id}`) and what it sends; lists are read into serde structs.
//! The drains say what they want done (`Api::Revoke(vid)`), never how it is spelled.

use super::conn::{Conn, Fail};
use super::net::OutResponse;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

/// One call of the Public API.
#[derive(Debug, Clone, Copy)]
pub enum Api<'a> {
    /// `GET public/members`: every member, every status, unpaged.
    Members,
    /// `GET public/members/{id}`.
    Member(&'a str),
    /// `POST public/members`: invites, as a User (type 2), with no collections or groups.
    Invite {
        /// The address invited.
        email: &'a str,
        /// The externalId it is known by.
        ext: &'a str,
    },
    /// `POST public/members/{id}/revoke`.
    Revoke(&'a str),
    /// `POST public/members/{id}/restore`.
    Restore(&'a str),
    /// `DELETE public/members/{id}`.
    Remove(&'a str),
    /// `GET public/groups`.
    Groups,
    /// `POST public/groups`, always with its externalId.
    CreateGroup {
        /// Its name.
        name: &'a str,
        /// Its externalId.
        ext: &'a str,
    },
    /// `PUT public/groups/{id}`, always with its externalId (a PUT without it clears it).
    UpdateGroup {
        /// The group's vault id.
        id: &'a str,
        /// Its name.
        name: &'a str,
        /// Its externalId.
        ext: &'a str,
    },
    /// `DELETE public/groups/{id}`.
    DeleteGroup(&'a str),
    /// `GET public/groups/{id}/member-ids`.
    GroupMembers(&'a str),
    /// `PUT public/groups/{id}/member-ids`: the whole set.
    SetGroupMembers(&'a str, &'a [String]),
}

impl Api<'_> {
    /// The HTTP method.
    pub fn method(&self) -> &'static str {
        match self {
            Api::Members | Api::Member(_) | Api::Groups | Api::GroupMembers(_) => "GET",
            Api::Invite { .. } | Api::Revoke(_) | Api::Restore(_) | Api::CreateGroup { .. } => {
                "POST"
            }
            Api::UpdateGroup { .. } | Api::SetGroupMembers(..) => "PUT",
            Api::Remove(_) | Api::DeleteGroup(_) => "DELETE",
        }
    }

    /// The route with its ids, under the API base.
    pub fn path(&self) -> String {
        let t = self.template();
        match self {
            Api::Member(id)
            | Api::Revoke(id)
            | Api::Restore(id)
            | Api::Remove(id)
            | Api::UpdateGroup { id, .. }
            | Api::DeleteGroup(id)
            | Api::GroupMembers(id)
            | Api::SetGroupMembers(id, _) => t.replacen("{id}", id, 1),
            _ => t.to_string(),
        }
    }

    /// The route with `{id}` for the ids: what a log line names.
    pub fn template(&self) -> &'static str {
        match self {
            Api::Members | Api::Invite { .. } => "public/members",
            Api::Member(_) | Api::Remove(_) => "public/members/{id}",
            Api::Revoke(_) => "public/members/{id}/revoke",
            Api::Restore(_) => "public/members/{id}/restore",
            Api::Groups | Api::CreateGroup { .. } => "public/groups",
            Api::UpdateGroup { .. } | Api::DeleteGroup(_) => "public/groups/{id}",
            Api::GroupMembers(_) | Api::SetGroupMembers(..) => "public/groups/{id}/member-ids",
        }
    }

    /// The JSON body, for the calls that send one.
    pub fn body(&self) -> Option<Value> {
        match self {
            Api::Invite { email, ext } => Some(
                json!({"email": email, "type": 2, "externalId": ext, "collections": [], "groups": []}),
            ),
            Api::CreateGroup { name, ext } | Api::UpdateGroup { name, ext, .. } => {
                Some(json!({"name": name, "externalId": ext}))
            }
            Api::SetGroupMembers(_, ids) => Some(json!({ "memberIds": ids })),
            _ => None,
        }
    }
}

/// A member as the Public API lists or answers it (the fields scim-edge reads).
#[derive(Debug, Clone, Deserialize)]
pub struct ApiMember {
    /// Its id.
    pub id: String,
    /// Its email (the invited address, or the account's once accepted).
    #[serde(default)]
    pub email: Option<String>,
    /// Bitwarden's status number.
    #[serde(default)]
    pub status: i64,
    /// Owner 0, Admin 1, User 2, Custom 4.
    #[serde(default, rename = "type")]
    pub kind: i64,
    /// Its externalId.
    #[serde(default, rename = "externalId")]
    pub external_id: Option<String>,
}

/// A group as the Public API lists or answers it.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiGroup {
    /// Its id.
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its externalId.
    #[serde(default, rename = "externalId")]
    pub external_id: Option<String>,
}

/// What the vault answered a call with. A 5xx, a 429 and a refused token never get here:
/// the connection sorts those out first (see [`Conn::call`]).
#[derive(Debug)]
pub enum Answer {
    /// 2xx, with its body.
    Done(OutResponse),
    /// 404: no such member or group (removed by hand).
    NotFound,
    /// Refused, in the vault's words (400 "Seat limit has been reached.", …).
    Refused {
        /// The HTTP status.
        status: u16,
        /// The vault's message.
        message: String,
    },
}

impl Answer {
    fn of(r: OutResponse) -> Answer {
        match r.status {
            200..=299 => Answer::Done(r),
            404 => Answer::NotFound,
            status => Answer::Refused {
                status,
                message: r.message(),
            },
        }
    }

    /// The body read as `T`, when the call succeeded and the body is one.
    pub fn read<T: DeserializeOwned>(&self) -> Option<T> {
        match self {
            Answer::Done(r) => serde_json::from_slice(&r.body).ok(),
            _ => None,
        }
    }

    /// Why the call did not succeed, for a problem's text.
    pub fn message(&self) -> String {
        match self {
            Answer::Done(_) => String::new(),
            Answer::NotFound => "not found in the vault (404)".into(),
            Answer::Refused { message, .. } => message.clone(),
        }
    }
}

#[derive(Deserialize)]
struct List<T> {
    #[serde(default = "Vec::new")]
    data: Vec<T>,
}

impl Conn<'_> {
    /// Sends a Public API call.
    pub fn api(&mut self, call: Api<'_>) -> Result<Answer, Fail> {
        self.call(call.method(), &call.path(), call.body().as_ref())
            .map(Answer::of)
    }

    /// A Public API list (`{"object": "list", "data": [..]}`): every item, unpaged.
    pub fn api_list<T: DeserializeOwned>(&mut self, call: Api<'_>) -> Result<Vec<T>, Fail> {
        let listing =
            |m: &dyn std::fmt::Display| Fail::Vault(format!("listing {}: {m}", call.template()));
        match self.api(call)? {
            Answer::Done(r) => serde_json::from_slice::<List<T>>(&r.body)
                .map(|l| l.data)
                .map_err(|e| listing(&e)),
            other => Err(listing(&other.message())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_call_knows_its_route() {
        let ids = ["m1".to_string()];
        let cases = [
            (Api::Members, "GET", "public/members", "public/members"),
            (
                Api::Revoke("m1"),
                "POST",
                "public/members/m1/revoke",
                "public/members/{id}/revoke",
            ),
            (
                Api::Remove("m1"),
                "DELETE",
                "public/members/m1",
                "public/members/{id}",
            ),
            (
                Api::SetGroupMembers("g1", &ids),
                "PUT",
                "public/groups/g1/member-ids",
                "public/groups/{id}/member-ids",
            ),
        ];
        for (call, method, path, template) in cases {
            assert_eq!(
                (call.method(), call.path().as_str(), call.template()),
                (method, path, template)
            );
        }
        let body = Api::UpdateGroup {
            id: "g1",
            name: "Eng",
            ext: "x",
        }
        .body();
        assert_eq!(body, Some(json!({"name": "Eng", "externalId": "x"})));
    }
}
