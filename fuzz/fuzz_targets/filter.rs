//! Filter and PATCH-path parsing: never panics; what parses prints to something that
//! parses to the same filter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_edge::filter::{parse_patch_path, Filter};
use scim_edge::schema::ResourceKind;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(f) = Filter::parse(s) {
        let _ = f.check(ResourceKind::User);
        let _ = f.check(ResourceKind::Group);
        let printed = f.to_string();
        match Filter::parse(&printed) {
            Ok(again) => assert_eq!(again, f, "{printed}"),
            Err(e) => panic!("printed filter does not parse: {printed}: {}", e.detail()),
        }
    }
    let _ = parse_patch_path(s);
});
