//! Who is confirmed: an Accepted member of type User, at an allowed domain when any is
//! given, whose scim-edge user exists, is active and is not linked to another member.
//! Each rule says why a member is left, in words for the output.

use crate::scim::User;
use crate::vault::Member;

/// Bitwarden's member status Accepted.
pub const ACCEPTED: i64 = 1;
/// Bitwarden's member status Confirmed.
pub const CONFIRMED: i64 = 2;
/// Bitwarden's member type User.
const USER: i64 = 2;

fn type_name(t: i64) -> &'static str {
    match t {
        0 => "an Owner",
        1 => "an Admin",
        3 => "a Manager",
        4 => "a Custom member",
        _ => "not a User",
    }
}

/// Why the vault's side leaves this accepted member, if it does: its type, its domain.
pub fn by_vault(m: &Member, allow_domains: &[String]) -> Option<String> {
    if m.type_ != USER {
        return Some(format!(
            "{}: only members of type User are confirmed; an administrator confirms the others",
            type_name(m.type_)
        ));
    }
    if allow_domains.is_empty() {
        return None;
    }
    let domain = m
        .email
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default();
    (!allow_domains.contains(&domain))
        .then(|| format!("domain '{domain}' is not among --allow-domain"))
}

/// Why scim-edge's side leaves it, if it does: no user, a deactivated one, or one linked
/// to another member.
pub fn by_scim(m: &Member, user: Option<&User>) -> Option<String> {
    let Some(u) = user else {
        return Some("scim-edge provisioned no user with this member id or email".into());
    };
    if let Some(other) = u.member_id.as_deref().filter(|v| *v != m.id) {
        return Some(format!(
            "scim-edge user {} is linked to another vault member ({other})",
            u.id
        ));
    }
    (!u.active).then(|| {
        format!(
            "scim-edge user {} is inactive: the identity provider deactivated it",
            u.id
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(type_: i64, email: &str) -> Member {
        Member {
            id: "m1".into(),
            user_id: Some("u1".into()),
            email: email.into(),
            status: ACCEPTED,
            type_,
        }
    }

    #[test]
    fn only_users_at_allowed_domains() {
        assert_eq!(by_vault(&member(2, "a@x.org"), &[]), None);
        for t in [0, 1, 3, 4] {
            assert!(by_vault(&member(t, "a@x.org"), &[]).is_some(), "type {t}");
        }
        let allow = vec!["x.org".to_string()];
        assert_eq!(by_vault(&member(2, "a@X.ORG"), &allow), None);
        assert!(by_vault(&member(2, "a@sub.x.org"), &allow).is_some());
        assert!(by_vault(&member(2, "a@y.org"), &allow).is_some());
    }

    #[test]
    fn only_active_users_linked_to_this_member() {
        let m = member(2, "a@x.org");
        let user = |active, member_id: Option<&str>| User {
            id: "s1".into(),
            active,
            member_id: member_id.map(str::to_string),
        };
        assert!(by_scim(&m, None).is_some());
        assert_eq!(by_scim(&m, Some(&user(true, None))), None);
        assert_eq!(by_scim(&m, Some(&user(true, Some("m1")))), None);
        assert!(by_scim(&m, Some(&user(false, Some("m1"))))
            .unwrap()
            .contains("inactive"));
        assert!(by_scim(&m, Some(&user(true, Some("m2"))))
            .unwrap()
            .contains("m2"));
    }
}
