//! Values RFC 7643 declares `caseExact: false` (`userName`, emails, group `displayName`)
//! compare by full Unicode case folding: the `C` and `F` mappings of Unicode's
//! CaseFolding.txt, without the Turkic (`T`) tailoring. Every comparison, index digest,
//! derived id, filter operator and sort key of such a value goes through [`fold`], so no
//! code path can compare differently.
//!
//! The hard cases, as full folding defines them:
//! - German: `ß`, `ẞ`, `ss` and `SS` are one value (`straße` = `STRASSE`).
//! - Greek: `Σ`, `σ` and final `ς` are one letter (`ΟΔΟΣ` = `οδος` = `οδοσ`).
//! - Turkish: `I` = `i`; dotted `İ` folds to `i` + U+0307 (so it equals `i̇`, not `i`);
//!   dotless `ı` folds to itself and equals neither `i` nor `I`. Identity values are
//!   email addresses, not Turkish text, so no locale tailoring applies.
//! - No Unicode normalization: a precomposed `é` and `e` + U+0301 stay different, as
//!   they do in every identity provider we speak to.
//!
//! The fold is computed from the standard library's case mappings (lowercase, then
//! uppercase, then lowercase of each character), which equals CaseFolding.txt for every
//! assigned character except two: `ı`, whose uppercase is `I`, and Cherokee, which
//! CaseFolding folds to the uppercase letters. `tests/caseless.rs` checks this against
//! Python's `str.casefold` for every code point.

use std::borrow::Cow;

/// The full case fold of `s`.
pub fn fold(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        fold_char(c, &mut out);
    }
    out
}

fn fold_char(c: char, out: &mut String) {
    if c == '\u{131}' {
        out.push(c);
        return;
    }
    for lower in c.to_lowercase() {
        for upper in lower.to_uppercase() {
            for f in upper.to_lowercase() {
                if matches!(f, '\u{AB70}'..='\u{ABBF}' | '\u{13F8}'..='\u{13FD}') {
                    out.extend(f.to_uppercase());
                } else {
                    out.push(f);
                }
            }
        }
    }
}

/// The form an attribute's value compares by: as sent when the attribute is
/// `caseExact`, else folded.
pub fn compare_form(s: &str, exact: bool) -> Cow<'_, str> {
    if exact {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(fold(s))
    }
}

/// Whether two values are equal under full case folding.
pub fn same(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        fold(a) == fold(b)
    }
}

macro_rules! caseless_value {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name<'a>(&'a str);

        impl<'a> $name<'a> {
            /// The value as the client sent it (case is preserved for display).
            pub fn new(value: &'a str) -> Self {
                $name(value)
            }

            /// The value as sent.
            pub fn as_str(&self) -> &'a str {
                self.0
            }

            /// The folded form: what index digests and derived ids are computed from.
            pub fn key(&self) -> String {
                fold(self.0)
            }

            /// Whether `other` names the same value.
            pub fn matches(&self, other: &str) -> bool {
                same(self.0, other)
            }
        }

        impl PartialEq for $name<'_> {
            fn eq(&self, other: &Self) -> bool {
                same(self.0, other.0)
            }
        }

        impl Eq for $name<'_> {}
    };
}

caseless_value!(
    /// A user's `userName`.
    UserName
);
caseless_value!(
    /// An email address (`emails[].value`).
    Email
);
caseless_value!(
    /// A group's `displayName`.
    DisplayName
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_and_unicode_paths_agree() {
        assert_eq!(fold("Ann@Example.COM"), "ann@example.com");
        assert_eq!(fold("ZOË"), "zoë");
        assert!(same("Zoë.x@example.com", "ZOË.X@EXAMPLE.COM"));
        assert!(!same("zoe", "zoë"));
    }
}
