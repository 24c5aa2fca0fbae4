//! Which host a component is served as, and the names the command line takes for it.

/// The host a component is served as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `spin up` with its default SQLite store: every interface Spin implements;
    /// `get-many` leaves missing keys out of its answer.
    Spin,
    /// Akamai Functions: no `wasi:keyvalue/atomics`, `get-many` pairs a missing key with
    /// `none`, and keys over [`EDGE_MAX_KEY`](crate::EDGE_MAX_KEY) or values over
    /// [`EDGE_MAX_VALUE`](crate::EDGE_MAX_VALUE) bytes are refused.
    Edge,
}

impl Profile {
    /// The name `--profile` and `SCIM_EDGE_PROFILE` take.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Spin => "spin",
            Profile::Edge => "edge",
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "spin" => Ok(Profile::Spin),
            "edge" => Ok(Profile::Edge),
            other => Err(format!("unknown profile {other:?} (spin or edge)")),
        }
    }
}
