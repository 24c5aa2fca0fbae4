//! Okta's rules for vault users, in one place so that the Spin service and the Envoy
//! filter apply the same ones: a usable primary email, `userName` equal to it
//! (case-insensitively), and neither changing once provisioned.
//!
//! Functions here work on a raw JSON object and find members case-insensitively, so the
//! filter can apply them to a body it forwards untouched otherwise.

use crate::caseless::{Email, UserName};
use crate::error::{ErrorKind, Result, ScimError};
use serde_json::{Map, Value};
use std::str::FromStr;

/// How strictly an organization applies the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// The rules are enforced; bad payloads are rejected.
    #[default]
    Strict,
    /// Unambiguous gaps are repaired (a single email without `primary`, no emails when
    /// `userName` is an email); the rest is enforced.
    Lenient,
    /// RFC 7643 only: for clients whose `userName` is not an email.
    Off,
}

impl Policy {
    /// Its word, as configured.
    pub const fn as_str(self) -> &'static str {
        match self {
            Policy::Strict => "strict",
            Policy::Lenient => "lenient",
            Policy::Off => "off",
        }
    }
}

impl FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "strict" => Ok(Policy::Strict),
            "lenient" => Ok(Policy::Lenient),
            "off" => Ok(Policy::Off),
            other => Err(format!(
                "unknown policy '{other}' (expected strict, lenient or off)"
            )),
        }
    }
}

const EMAIL_TYPES: [&str; 3] = ["work", "home", "other"];

fn key_ci(obj: &Map<String, Value>, name: &str) -> Option<String> {
    obj.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

fn get_mut_ci<'a>(obj: &'a mut Map<String, Value>, name: &str) -> Option<&'a mut Value> {
    let k = key_ci(obj, name)?;
    obj.get_mut(&k)
}

fn get_ci<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let k = key_ci(obj, name)?;
    obj.get(&k)
}

fn is_true(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Whether a string is shaped like an email address: one `@` with something on each side
/// and no whitespace.
pub fn looks_like_email(s: &str) -> bool {
    let mut parts = s.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty() && !domain.is_empty() && !s.chars().any(char::is_whitespace)
        }
        _ => false,
    }
}

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::invalid_value(detail)
}

/// The `userName`, as a trimmed string.
pub fn user_name(doc: &Map<String, Value>) -> Option<UserName<'_>> {
    get_ci(doc, "userName")?
        .as_str()
        .map(|s| UserName::new(s.trim()))
}

/// The primary email's value: the entry marked primary, else (when there is exactly one)
/// the only entry.
pub fn primary_email(doc: &Map<String, Value>) -> Option<Email<'_>> {
    let emails = get_ci(doc, "emails")?.as_array()?;
    let marked: Vec<&Value> = emails
        .iter()
        .filter(|e| e.as_object().is_some_and(|o| is_true(get_ci(o, "primary"))))
        .collect();
    let chosen = match (marked.as_slice(), emails.as_slice()) {
        ([one], _) => *one,
        ([], [only]) => only,
        _ => return None,
    };
    chosen
        .as_object()
        .and_then(|o| get_ci(o, "value"))
        .and_then(Value::as_str)
        .map(|s| Email::new(s.trim()))
}

/// Normalizes a User body for create or replace, or rejects it (400 `invalidValue`).
/// Whitespace around `userName` and email values is trimmed under every policy but `off`.
pub fn normalize(doc: &mut Map<String, Value>, policy: Policy) -> Result<()> {
    if policy == Policy::Off {
        return Ok(());
    }
    if let Some(Value::String(u)) = get_mut_ci(doc, "userName") {
        let t = u.trim();
        if t.len() != u.len() {
            *u = t.to_string();
        }
    }
    let Some(user) = user_name(doc).map(|u| u.as_str().to_string()) else {
        return Err(invalid("Attribute 'userName' is required"));
    };
    if policy == Policy::Lenient
        && get_ci(doc, "emails").is_none_or(Value::is_null)
        && looks_like_email(&user)
    {
        let k = key_ci(doc, "emails").unwrap_or_else(|| "emails".into());
        doc.insert(
            k,
            serde_json::json!([{"value": user, "type": "work", "primary": true}]),
        );
    }
    let Some(Value::Array(emails)) = get_mut_ci(doc, "emails") else {
        return Err(invalid("A primary email is required: 'emails' is missing"));
    };
    let mut kept = Vec::with_capacity(emails.len());
    for e in emails.drain(..) {
        let Value::Object(mut o) = e else {
            return Err(invalid("Each 'emails' entry must be an object"));
        };
        if let Some(Value::String(v)) = get_mut_ci(&mut o, "value") {
            let t = v.trim();
            if t.len() != v.len() {
                *v = t.to_string();
            }
        }
        let primary = is_true(get_ci(&o, "primary"));
        let ty = get_ci(&o, "type")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(t) = ty.filter(|t| !EMAIL_TYPES.iter().any(|c| c.eq_ignore_ascii_case(t))) {
            match (policy, primary) {
                (Policy::Lenient, true) => {
                    let k = key_ci(&o, "type").unwrap_or_else(|| "type".into());
                    o.insert(k, Value::String("work".into()));
                }
                (Policy::Lenient, false) => continue,
                _ => {
                    return Err(invalid(format!(
                        "Email type '{t}' is not supported (expected work, home or other)"
                    )))
                }
            }
        }
        kept.push(Value::Object(o));
    }
    *emails = kept;
    let marked = emails
        .iter()
        .filter(|e| e.as_object().is_some_and(|o| is_true(get_ci(o, "primary"))))
        .count();
    if marked == 0 && policy == Policy::Lenient {
        let matching: Vec<usize> = emails
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                e.as_object()
                    .and_then(|o| get_ci(o, "value"))
                    .and_then(Value::as_str)
                    .is_some_and(|v| Email::new(v).matches(&user))
            })
            .map(|(i, _)| i)
            .collect();
        let pick = match (emails.len(), matching.as_slice()) {
            (1, _) => Some(0),
            (_, [one]) => Some(*one),
            _ => None,
        };
        if let Some(Value::Object(o)) = pick.and_then(|i| emails.get_mut(i)) {
            let k = key_ci(o, "primary").unwrap_or_else(|| "primary".into());
            o.insert(k, Value::Bool(true));
        }
    }
    let marked = emails
        .iter()
        .filter(|e| e.as_object().is_some_and(|o| is_true(get_ci(o, "primary"))))
        .count();
    match marked {
        0 => {
            return Err(invalid(
                "A primary email is required: mark one 'emails' entry \"primary\": true",
            ))
        }
        1 => {}
        _ => return Err(invalid("Only one email may be primary")),
    }
    let Some(email) = primary_email(doc).map(|e| e.as_str()) else {
        return Err(invalid("The primary email has no value"));
    };
    if !looks_like_email(email) {
        return Err(invalid(format!(
            "The primary email '{email}' is not an email address"
        )));
    }
    if !UserName::new(&user).matches(email) {
        return Err(invalid(format!(
            "userName '{user}' must equal the primary email '{email}'"
        )));
    }
    Ok(())
}

/// Rejects (400 `mutability`) a change of `userName` or of the primary email of an
/// already provisioned user. Case-only changes are allowed.
pub fn check_unchanged(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    policy: Policy,
) -> Result<()> {
    if policy == Policy::Off {
        return Ok(());
    }
    if user_name(old) != user_name(new) {
        return Err(ScimError::new(
            ErrorKind::Mutability,
            "userName cannot change once a user is provisioned",
        ));
    }
    if primary_email(old) != primary_email(new) {
        return Err(ScimError::new(
            ErrorKind::Mutability,
            "The primary email cannot change once a user is provisioned",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    struct Case {
        name: &'static str,
        policy: Policy,
        input: Value,
        want: std::result::Result<Value, &'static str>,
    }

    #[test]
    fn normalize_table() {
        let cases = [
            Case {
                name: "okta body passes strict untouched",
                policy: Policy::Strict,
                input: json!({"userName": "Ann@Example.com", "emails": [{"primary": true, "value": "ann@example.com", "type": "work"}]}),
                want: Ok(
                    json!({"userName": "Ann@Example.com", "emails": [{"primary": true, "value": "ann@example.com", "type": "work"}]}),
                ),
            },
            Case {
                name: "whitespace trimmed",
                policy: Policy::Strict,
                input: json!({"userName": " ann@x.io ", "emails": [{"primary": true, "value": "ann@x.io\t"}]}),
                want: Ok(
                    json!({"userName": "ann@x.io", "emails": [{"primary": true, "value": "ann@x.io"}]}),
                ),
            },
            Case {
                name: "strict requires primary",
                policy: Policy::Strict,
                input: json!({"userName": "ann@x.io", "emails": [{"value": "ann@x.io"}]}),
                want: Err("A primary email is required: mark one 'emails' entry \"primary\": true"),
            },
            Case {
                name: "lenient marks a single email primary",
                policy: Policy::Lenient,
                input: json!({"userName": "ann@x.io", "emails": [{"value": "ann@x.io"}]}),
                want: Ok(
                    json!({"userName": "ann@x.io", "emails": [{"value": "ann@x.io", "primary": true}]}),
                ),
            },
            Case {
                name: "lenient picks the email equal to userName",
                policy: Policy::Lenient,
                input: json!({"userName": "ann@x.io", "emails": [{"value": "a@home.io"}, {"value": "ANN@x.io"}]}),
                want: Ok(
                    json!({"userName": "ann@x.io", "emails": [{"value": "a@home.io"}, {"value": "ANN@x.io", "primary": true}]}),
                ),
            },
            Case {
                name: "lenient fills emails from userName",
                policy: Policy::Lenient,
                input: json!({"userName": "ann@x.io"}),
                want: Ok(
                    json!({"userName": "ann@x.io", "emails": [{"value": "ann@x.io", "type": "work", "primary": true}]}),
                ),
            },
            Case {
                name: "strict missing emails",
                policy: Policy::Strict,
                input: json!({"userName": "ann@x.io"}),
                want: Err("A primary email is required: 'emails' is missing"),
            },
            Case {
                name: "lenient cannot invent email for a non-email userName",
                policy: Policy::Lenient,
                input: json!({"userName": "ann"}),
                want: Err("A primary email is required: 'emails' is missing"),
            },
            Case {
                name: "mismatch",
                policy: Policy::Strict,
                input: json!({"userName": "bob@x.io", "emails": [{"primary": true, "value": "ann@x.io"}]}),
                want: Err("userName 'bob@x.io' must equal the primary email 'ann@x.io'"),
            },
            Case {
                name: "not an email",
                policy: Policy::Strict,
                input: json!({"userName": "ann", "emails": [{"primary": true, "value": "ann"}]}),
                want: Err("The primary email 'ann' is not an email address"),
            },
            Case {
                name: "two primaries",
                policy: Policy::Lenient,
                input: json!({"userName": "a@x.io", "emails": [{"primary": true, "value": "a@x.io"}, {"primary": "true", "value": "b@x.io"}]}),
                want: Err("Only one email may be primary"),
            },
            Case {
                name: "strict rejects unsupported type",
                policy: Policy::Strict,
                input: json!({"userName": "a@x.io", "emails": [{"primary": true, "value": "a@x.io", "type": "corp"}]}),
                want: Err("Email type 'corp' is not supported (expected work, home or other)"),
            },
            Case {
                name: "lenient repairs unsupported types",
                policy: Policy::Lenient,
                input: json!({"userName": "a@x.io", "emails": [{"primary": true, "value": "a@x.io", "type": "corp"}, {"value": "b@x.io", "type": "alias"}]}),
                want: Ok(
                    json!({"userName": "a@x.io", "emails": [{"primary": true, "value": "a@x.io", "type": "work"}]}),
                ),
            },
            Case {
                name: "off accepts anything",
                policy: Policy::Off,
                input: json!({"userName": " Random 123 "}),
                want: Ok(json!({"userName": " Random 123 "})),
            },
            Case {
                name: "vendor casing of member names",
                policy: Policy::Strict,
                input: json!({"UserName": "a@x.io", "Emails": [{"Primary": "True", "Value": "A@X.IO"}]}),
                want: Ok(
                    json!({"UserName": "a@x.io", "Emails": [{"Primary": "True", "Value": "A@X.IO"}]}),
                ),
            },
        ];
        for c in cases {
            let mut doc = obj(c.input);
            let got = normalize(&mut doc, c.policy);
            match c.want {
                Ok(v) => {
                    assert!(got.is_ok(), "{}: {got:?}", c.name);
                    assert_eq!(Value::Object(doc), v, "{}", c.name);
                }
                Err(msg) => {
                    let e = got.unwrap_err();
                    assert_eq!(e.detail(), msg, "{}", c.name);
                    assert_eq!(e.kind(), ErrorKind::InvalidValue, "{}", c.name);
                }
            }
        }
    }

    #[test]
    fn immutable_once_provisioned() {
        let old = obj(
            json!({"userName": "Ann@x.io", "emails": [{"primary": true, "value": "ann@x.io"}]}),
        );
        let same_ci = obj(
            json!({"userName": "ann@X.io", "emails": [{"primary": true, "value": "ANN@x.io"}]}),
        );
        assert!(check_unchanged(&old, &same_ci, Policy::Strict).is_ok());
        let renamed = obj(
            json!({"userName": "bob@x.io", "emails": [{"primary": true, "value": "bob@x.io"}]}),
        );
        let e = check_unchanged(&old, &renamed, Policy::Lenient).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Mutability);
        assert_eq!(
            e.detail(),
            "userName cannot change once a user is provisioned"
        );
        let new_email = obj(
            json!({"userName": "Ann@x.io", "emails": [{"primary": true, "value": "other@x.io"}]}),
        );
        assert_eq!(
            check_unchanged(&old, &new_email, Policy::Strict)
                .unwrap_err()
                .detail(),
            "The primary email cannot change once a user is provisioned"
        );
        assert!(check_unchanged(&old, &renamed, Policy::Off).is_ok());
    }

    #[test]
    fn policy_parses() {
        assert_eq!("Lenient".parse::<Policy>(), Ok(Policy::Lenient));
        assert!("loose".parse::<Policy>().is_err());
    }
}
