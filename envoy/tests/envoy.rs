//! The filter in real Envoy 1.40: one Envoy per test binary with two filtered
//! listeners, one in front of a recording upstream, one in front of the Spin component on
//! the test host; the suite (`support/suite.rs`) is the edge gate's too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../tests/common/orgs.rs"]
mod orgs;
#[path = "../../tests/common/runscope.rs"]
mod runscope;
#[path = "support/suite.rs"]
mod suite;
mod support;

use std::sync::{Arc, OnceLock};
use support::{Envoy, Listener, SpinHost, Upstream};

struct World {
    envoy: Envoy,
    upstream: Upstream,
    _spin: SpinHost,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let upstream = Upstream::start(true, Arc::new(suite::script));
        let spin = suite::spin_upstream();
        let envoy = Envoy::start(
            &[
                Listener {
                    name: "gate".into(),
                    upstream: upstream.addr,
                    filter: Some(suite::filter_config()),
                },
                Listener {
                    name: "spin".into(),
                    upstream: spin.addr,
                    filter: Some(suite::filter_config()),
                },
            ],
            2,
        );
        World {
            envoy,
            upstream,
            _spin: spin,
        }
    })
}

/// What the suite needs from Envoy.
mod front {
    use super::world;
    use std::net::SocketAddr;

    /// Envoy resolves `..` before the filter, which then checks the organization the
    /// path names: the other organization's, so the key does not fit.
    pub const DOT_SEGMENTS_STATUS: u16 = 401;

    pub fn gate() -> SocketAddr {
        world().envoy.addr("gate")
    }

    pub fn spin() -> SocketAddr {
        world().envoy.addr("spin")
    }

    pub fn upstream() -> &'static super::Upstream {
        &world().upstream
    }

    /// The VM is still the first one: no panic, no reload.
    pub fn assert_no_panic() {
        let log = world().envoy.log();
        assert!(!log.contains("panicked"), "{log}");
    }
}

#[test]
fn a_bad_configuration_is_refused_naming_the_setting() {
    let (ok, out) = support::validate(&suite::filter_config());
    assert!(ok, "{out}");
    for (config, want) in suite::bad_configurations() {
        let (ok, out) = support::validate(&config);
        assert!(!ok, "accepted: {config}");
        assert!(
            out.contains(&format!("scim-edge: bad configuration: {want}")),
            "{want}\n{out}"
        );
    }
}
