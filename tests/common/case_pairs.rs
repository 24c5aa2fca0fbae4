//! Identity values that full Unicode case folding makes one value, or keeps apart: the
//! hard cases named in `src/caseless.rs`, shared by the native and the HTTP tests.

/// (first, second, whether they are the same value).
pub const CASE_PAIRS: &[(&str, &str, bool)] = &[
    ("zoë.x@example.com", "ZOË.X@EXAMPLE.COM", true),
    ("Ann@Example.com", "ann@example.COM", true),
    ("straße@example.de", "STRASSE@example.de", true),
    ("STRAẞE@example.de", "strasse@example.de", true),
    ("οδος@example.gr", "ΟΔΟΣ@example.gr", true),
    ("οδοσ@example.gr", "οδος@example.gr", true),
    ("ilker@example.tr", "ILKER@example.tr", true),
    ("İlker@example.tr", "i\u{307}lker@example.tr", true),
    ("İlker@example.tr", "ilker@example.tr", false),
    ("ılker@example.tr", "ilker@example.tr", false),
    ("ılker@example.tr", "ILKER@example.tr", false),
    ("\u{212A}im@example.com", "kim@example.com", true),
    ("josé@example.es", "jose\u{301}@example.es", false),
    ("zoe@example.com", "zoë@example.com", false),
];
