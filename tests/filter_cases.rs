//! RFC 7644 3.4.2.2 filters, table-driven: what parses (and how it prints and matches),
//! and what is rejected with exactly which message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scim_edge::error::ErrorKind;
use scim_edge::filter::Filter;
use scim_edge::schema::ResourceKind;
use serde_json::{json, Value};

fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "Ext-1",
        "userName": "Bjensen@example.com",
        "name": {"familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "title": "Tour Guide",
        "userType": "Employee",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
        "meta": {"resourceType": "User", "created": "2011-08-01T18:29:49.793Z", "lastModified": "2011-08-01T21:32:44.882Z", "version": "W/\"a330bc54f0671c9\""},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984", "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
        }
    })
}

fn group() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
        "displayName": "Tour Guides",
        "members": [{"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen", "type": "User"}]
    })
}

/// (filter, matches the sample user, canonical print)
const VALID_USER: &[(&str, bool, &str)] = &[
    (
        r#"userName eq "bjensen@example.com""#,
        true,
        r#"userName eq "bjensen@example.com""#,
    ),
    (
        r#"userName eq "BJENSEN@EXAMPLE.COM""#,
        true,
        r#"userName eq "BJENSEN@EXAMPLE.COM""#,
    ),
    (
        r#"USERNAME EQ "bjensen@example.com""#,
        true,
        r#"USERNAME eq "bjensen@example.com""#,
    ),
    (
        r#"userName ne "bjensen@example.com""#,
        false,
        r#"userName ne "bjensen@example.com""#,
    ),
    (r#"userName co "JENSEN""#, true, r#"userName co "JENSEN""#),
    (r#"userName sw "bj""#, true, r#"userName sw "bj""#),
    (
        r#"userName ew "@example.com""#,
        true,
        r#"userName ew "@example.com""#,
    ),
    (
        r#"userName ew "@example.org""#,
        false,
        r#"userName ew "@example.org""#,
    ),
    (r#"userName gt "a""#, true, r#"userName gt "a""#),
    (r#"userName lt "a""#, false, r#"userName lt "a""#),
    (
        r#"userName ge "bjensen@example.com""#,
        true,
        r#"userName ge "bjensen@example.com""#,
    ),
    (
        r#"userName le "bjensen@example.com""#,
        true,
        r#"userName le "bjensen@example.com""#,
    ),
    (r#"externalId eq "Ext-1""#, true, r#"externalId eq "Ext-1""#),
    (
        r#"externalId eq "ext-1""#,
        false,
        r#"externalId eq "ext-1""#,
    ),
    (
        r#"id eq "2819C223-7F76-453A-919D-413861904646""#,
        false,
        r#"id eq "2819C223-7F76-453A-919D-413861904646""#,
    ),
    (
        r#"id eq "2819c223-7f76-453a-919d-413861904646""#,
        true,
        r#"id eq "2819c223-7f76-453a-919d-413861904646""#,
    ),
    ("title pr", true, "title pr"),
    ("nickName pr", false, "nickName pr"),
    ("name.middleName pr", false, "name.middleName pr"),
    (
        r#"name.familyName co "ens""#,
        true,
        r#"name.familyName co "ens""#,
    ),
    (
        r#"name.givenName eq "barbara""#,
        true,
        r#"name.givenName eq "barbara""#,
    ),
    ("active eq true", true, "active eq true"),
    ("active eq false", false, "active eq false"),
    ("active ne false", true, "active ne false"),
    ("nickName eq null", true, "nickName eq null"),
    ("title ne null", true, "title ne null"),
    (
        r#"emails co "jensen.org""#,
        true,
        r#"emails co "jensen.org""#,
    ),
    (r#"emails.type eq "home""#, true, r#"emails.type eq "home""#),
    (
        r#"emails.type eq "other""#,
        false,
        r#"emails.type eq "other""#,
    ),
    (
        r#"emails[type eq "work" and value co "@example.com"]"#,
        true,
        r#"emails[type eq "work" and value co "@example.com"]"#,
    ),
    (
        r#"emails[type eq "home" and value co "@example.com"]"#,
        false,
        r#"emails[type eq "home" and value co "@example.com"]"#,
    ),
    ("emails[primary eq true]", true, "emails[primary eq true]"),
    (
        r#"emails[not (type eq "work")]"#,
        true,
        r#"emails[not (type eq "work")]"#,
    ),
    (
        r#"phoneNumbers[type eq "work" or type eq "mobile"]"#,
        true,
        r#"phoneNumbers[type eq "work" or type eq "mobile"]"#,
    ),
    (
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        true,
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
    ),
    (
        r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
        false,
        r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
    ),
    (
        r#"meta.lastModified ge "2011-08-01T23:32:44.882+02:00""#,
        true,
        r#"meta.lastModified ge "2011-08-01T23:32:44.882+02:00""#,
    ),
    (
        r#"meta.created le "2011-08-01T18:29:49.793Z""#,
        true,
        r#"meta.created le "2011-08-01T18:29:49.793Z""#,
    ),
    (
        r#"meta.resourceType eq "User""#,
        true,
        r#"meta.resourceType eq "User""#,
    ),
    (
        r#"meta.resourceType eq "user""#,
        false,
        r#"meta.resourceType eq "user""#,
    ),
    (
        r#"title pr and userType eq "Employee""#,
        true,
        r#"title pr and userType eq "Employee""#,
    ),
    (
        r#"title pr or userType eq "Intern""#,
        true,
        r#"title pr or userType eq "Intern""#,
    ),
    (
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
        true,
        r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
    ),
    (
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        false,
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
    ),
    (
        r#"userType eq "Intern" or title pr and active eq false"#,
        false,
        r#"userType eq "Intern" or title pr and active eq false"#,
    ),
    (
        r#"(userType eq "Intern" or title pr) and active eq true"#,
        true,
        r#"(userType eq "Intern" or title pr) and active eq true"#,
    ),
    (
        r#"not (userName eq "x@y.z")"#,
        true,
        r#"not (userName eq "x@y.z")"#,
    ),
    (
        r#"not(userName eq "x@y.z")"#,
        true,
        r#"not (userName eq "x@y.z")"#,
    ),
    (r#"((((userName pr))))"#, true, "userName pr"),
    (
        "userName  eq   \"bjensen@example.com\"",
        true,
        r#"userName eq "bjensen@example.com""#,
    ),
    (
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "B""#,
        true,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "B""#,
    ),
    (
        r#"urn:ietf:params:scim:schemas:core:2.0:User:name.familyName eq "Jensen""#,
        true,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:name.familyName eq "Jensen""#,
    ),
    (
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
        true,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
    ),
    (
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department co "tour""#,
        true,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department co "tour""#,
    ),
    (
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#,
        true,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#,
    ),
    (
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter pr"#,
        false,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter pr"#,
    ),
    (
        r#"displayName eq "Babs \"B\" Jensen""#,
        false,
        r#"displayName eq "Babs \"B\" Jensen""#,
    ),
    (
        r#"displayName sw "Babs\u0020""#,
        true,
        r#"displayName sw "Babs ""#,
    ),
    (
        r#"userName eq "bjensen@example.com" AND active EQ true OR title pr"#,
        true,
        r#"userName eq "bjensen@example.com" and active eq true or title pr"#,
    ),
];

/// (filter, resource type, exact message)
const INVALID: &[(&str, ResourceKind, &str)] = &[
    ("", ResourceKind::User, "The filter is empty"),
    ("   ", ResourceKind::User, "The filter is empty"),
    (
        "userName",
        ResourceKind::User,
        "Expected an operator after 'userName' but found end of filter at position 9",
    ),
    (
        "userName eq",
        ResourceKind::User,
        "Expected a value after 'eq' but found end of filter at position 12",
    ),
    (
        "userName eq ",
        ResourceKind::User,
        "Expected a value after 'eq' but found end of filter at position 13",
    ),
    (
        r#"userName xx "a""#,
        ResourceKind::User,
        r#"Expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after 'userName' but found 'xx' at position 10"#,
    ),
    (
        r#"userName eq "a"#,
        ResourceKind::User,
        "Unterminated string starting at position 13",
    ),
    (
        r#"userName eq 'a'"#,
        ResourceKind::User,
        "Expected a string, number, true, false or null but found ''a'' at position 13",
    ),
    (
        "userName eq bob",
        ResourceKind::User,
        "Expected a string, number, true, false or null but found 'bob' at position 13",
    ),
    (
        r#"userName eq "a" xor title pr"#,
        ResourceKind::User,
        "Expected 'and', 'or' or the end of the filter but found 'xor' at position 17",
    ),
    (
        r#"userName eq "a" and"#,
        ResourceKind::User,
        "Expected an attribute name but found end of filter at position 20",
    ),
    (
        r#"(userName eq "a""#,
        ResourceKind::User,
        "Expected ')' to close the '(' at position 1 but found end of filter at position 17",
    ),
    (
        r#"userName eq "a")"#,
        ResourceKind::User,
        "Expected 'and', 'or' or the end of the filter but found ')' at position 16",
    ),
    (
        r#"not userName eq "a""#,
        ResourceKind::User,
        "Expected '(' after 'not' but found 'userName' at position 5",
    ),
    (
        r#"emails[type eq "work""#,
        ResourceKind::User,
        "Expected ']' to close the '[' at position 7 but found end of filter at position 22",
    ),
    (
        r#"emails[type[value eq "x"]]"#,
        ResourceKind::User,
        "Value paths cannot be nested at position 12",
    ),
    (
        r#"emails[name.givenName eq "x"]"#,
        ResourceKind::User,
        "Inside a value filter 'name.givenName' must be a plain sub-attribute name at position 8",
    ),
    (
        r#"name.givenName[value eq "x"]"#,
        ResourceKind::User,
        "A value filter must follow an attribute, not a sub-attribute at position 15",
    ),
    (
        r#"1userName eq "a""#,
        ResourceKind::User,
        "Expected an attribute name but found '1userName' at position 1",
    ),
    (
        r#"user..name eq "a""#,
        ResourceKind::User,
        "Invalid attribute path 'user..name' at position 1",
    ),
    (
        r#"name.given.x eq "a""#,
        ResourceKind::User,
        "Invalid attribute path 'name.given.x' at position 1",
    ),
    (
        r#"nosuch eq "a""#,
        ResourceKind::User,
        "Unknown attribute 'nosuch'",
    ),
    (
        r#"name.nosuch eq "a""#,
        ResourceKind::User,
        "Unknown attribute 'name.nosuch'",
    ),
    (
        r#"emails[nosuch eq "a"]"#,
        ResourceKind::User,
        "Unknown attribute 'emails.nosuch'",
    ),
    (
        r#"urn:example:x:userName eq "a""#,
        ResourceKind::User,
        "Unknown attribute 'urn:example:x:userName'",
    ),
    (
        r#"members eq "a""#,
        ResourceKind::User,
        "Unknown attribute 'members'",
    ),
    (
        r#"userName eq "a""#,
        ResourceKind::Group,
        "Unknown attribute 'userName'",
    ),
    (
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x""#,
        ResourceKind::Group,
        "Unknown attribute 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department'",
    ),
    (
        r#"name eq "x""#,
        ResourceKind::User,
        "'name' is complex: name one of its sub-attributes",
    ),
    (
        r#"active eq "true""#,
        ResourceKind::User,
        "'active' is a boolean; compare it with true or false",
    ),
    (
        "active gt true",
        ResourceKind::User,
        "'gt' is not defined for the boolean attribute 'active'",
    ),
    (
        "active co true",
        ResourceKind::User,
        "'co' is not defined for the boolean attribute 'active'",
    ),
    (
        "userName eq 12",
        ResourceKind::User,
        "'userName' is a string; compare it with a quoted string",
    ),
    (
        "userName eq true",
        ResourceKind::User,
        "'userName' is a string; compare it with a quoted string",
    ),
    (
        "userName gt null",
        ResourceKind::User,
        "'gt' cannot compare 'userName' with null",
    ),
    (
        r#"meta.lastModified gt "yesterday""#,
        ResourceKind::User,
        "'yesterday' is not a date-time for 'meta.lastModified': expected YYYY-MM-DDThh:mm:ss[.fraction][Z|+hh:mm|-hh:mm]",
    ),
    (
        r#"meta.lastModified gt "2026-02-31T00:00:00Z""#,
        ResourceKind::User,
        "'2026-02-31T00:00:00Z' is not a date-time for 'meta.lastModified': 2026-02 has no day 31",
    ),
    (
        r#"meta.created lt "2026-01-01T00:00:00+99:99""#,
        ResourceKind::Group,
        "'2026-01-01T00:00:00+99:99' is not a date-time for 'meta.created': the offset 99:99 is beyond 23:59",
    ),
    (
        r#"meta.created eq "2026-01-01T24:00:00Z""#,
        ResourceKind::User,
        "'2026-01-01T24:00:00Z' is not a date-time for 'meta.created': 24:00:00 is not a time of day",
    ),
    (
        r#"meta.lastModified gt 5"#,
        ResourceKind::User,
        "'meta.lastModified' is a dateTime; compare it with an RFC 3339 date-time string",
    ),
    (
        r#"title[value eq "x"]"#,
        ResourceKind::User,
        "'title' is not a complex attribute and cannot take a value filter",
    ),
    (
        "userName eq 1.2.3",
        ResourceKind::User,
        "Invalid number '1.2.3' at position 13",
    ),
    (
        r#"userName eq "\q""#,
        ResourceKind::User,
        "Invalid escape in the string at position 13",
    ),
];

#[test]
fn valid_user_filters_parse_print_and_match() {
    let doc = user();
    for (src, want_match, printed) in VALID_USER {
        let f = Filter::parse(src).unwrap_or_else(|e| panic!("{src}: {}", e.detail()));
        f.check(ResourceKind::User)
            .unwrap_or_else(|e| panic!("{src}: {}", e.detail()));
        assert_eq!(f.to_string(), *printed, "{src}");
        assert_eq!(f.matches(ResourceKind::User, &doc), *want_match, "{src}");
        let again = Filter::parse(printed).unwrap();
        assert_eq!(again, f, "{src}: printing changed the meaning");
    }
}

#[test]
fn group_filters() {
    let doc = group();
    let cases: &[(&str, bool)] = &[
        (r#"displayName eq "tour guides""#, true),
        (
            r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
            true,
        ),
        (
            r#"members[value eq "2819C223-7F76-453A-919D-413861904646"]"#,
            false,
        ),
        (r#"members[display co "babs"]"#, true),
        (r#"members.type eq "User""#, true),
        (
            r#"id eq "e9e30dba-f08f-4109-8486-d5c6a331660a" and members[value eq "nobody"]"#,
            false,
        ),
        ("members pr", true),
        ("externalId pr", false),
    ];
    for (src, want) in cases {
        let f = Filter::parse(src).unwrap();
        f.check(ResourceKind::Group)
            .unwrap_or_else(|e| panic!("{src}: {}", e.detail()));
        assert_eq!(f.matches(ResourceKind::Group, &doc), *want, "{src}");
    }
}

#[test]
fn invalid_filters_have_exact_messages() {
    for (src, kind, msg) in INVALID {
        let err = match Filter::parse(src) {
            Err(e) => e,
            Ok(f) => f.check(*kind).expect_err(src),
        };
        assert_eq!(err.detail(), *msg, "{src}");
        assert_eq!(err.kind(), ErrorKind::InvalidFilter, "{src}");
        assert_eq!(err.to_json()["scimType"], "invalidFilter");
        assert_eq!(err.status(), 400);
    }
}

#[test]
fn limits() {
    let long = format!(r#"userName eq "{}""#, "a".repeat(5000));
    assert_eq!(
        Filter::parse(&long).unwrap_err().detail(),
        "The filter is longer than 4096 characters"
    );
    let deep = format!("{}userName pr{}", "(".repeat(17), ")".repeat(17));
    assert_eq!(
        Filter::parse(&deep).unwrap_err().detail(),
        "Filter nests deeper than 16 levels at position 17"
    );
    let ok_deep = format!("{}userName pr{}", "(".repeat(16), ")".repeat(16));
    assert!(Filter::parse(&ok_deep).is_ok());
    let many = vec!["title pr"; 65].join(" or ");
    assert_eq!(
        Filter::parse(&many).unwrap_err().detail(),
        "Filter has more than 64 comparisons at position 769"
    );
    let nots = format!("{}title pr{}", "not (".repeat(20), ")".repeat(20));
    assert_eq!(
        Filter::parse(&nots).unwrap_err().detail(),
        "Filter nests deeper than 16 levels at position 85"
    );
}

/// Numbers print as written. Found by fuzzing: serde_json's parser is not correctly
/// rounded, so the shortest text of a parsed float can read back as a different float.
#[test]
fn numbers_print_as_written() {
    let cases = [
        "URN0nn le 111111111111111111111110",
        "g gt 1.1111e54",
        "g gt 2.0004306466688538e21",
        "x eq 1E+5",
        "x eq -0",
        "x eq 1.50",
        "x eq 12",
    ];
    for src in cases {
        let f = Filter::parse(src).unwrap();
        let printed = f.to_string();
        assert_eq!(printed, src);
        assert_eq!(Filter::parse(&printed).unwrap(), f, "{src}");
    }
}

#[test]
fn table_is_large_enough() {
    assert!(VALID_USER.len() + INVALID.len() + 8 >= 80);
}
