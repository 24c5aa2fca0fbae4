//! What a drain ran into, as values. Each has the text an operator reads in the sync
//! answer and the status, which may quote the vault and name a member by email or a group
//! by name, and a log form for the host's log, which names resources by entry id only.

use serde::Serializer;

/// Something a drain ran into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The vault refused an entry (`u:{id}`, `g:{id}`, or `import`), or would refuse it:
    /// retried with backoff, or parked.
    Refused {
        /// The outbox entry.
        entry: String,
        /// The vault's words, or why the check before sending refused it.
        message: String,
    },
    /// A reconcile found a change made in the vault by hand.
    Drift {
        /// The outbox entry of the resource concerned.
        entry: String,
        /// The sentence for the operator (it names the member or the group).
        text: String,
        /// What happened, in words that name no one.
        kind: &'static str,
    },
    /// The vault failed, or asked to wait.
    Vault(String),
    /// No retry fixes it: the organization key refused, the origin not granted.
    Fatal(String),
    /// The key-value store failed.
    Store(String),
    /// Another drain of the organization held the turn for the whole budget.
    Busy,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Refused { entry, message } => write!(f, "{entry}: {message}"),
            Problem::Drift { text, .. } => f.write_str(text),
            Problem::Vault(m) | Problem::Fatal(m) => f.write_str(m),
            Problem::Store(m) => write!(
                f,
                "the key-value store failed ({m}); delivery resumes with the next drain"
            ),
            Problem::Busy => {
                f.write_str("another drain of this organization is running; sync again later")
            }
        }
    }
}

impl Problem {
    /// Its kind, as the recent problems list it.
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::Refused { .. } => "refused",
            Problem::Drift { .. } => "drift",
            Problem::Vault(_) => "vault",
            Problem::Fatal(_) => "fatal",
            Problem::Store(_) => "store",
            Problem::Busy => "busy",
        }
    }

    /// The SCIM id of the resource concerned, when there is one.
    pub fn resource(&self) -> Option<&str> {
        match self {
            Problem::Refused { entry, .. } | Problem::Drift { entry, .. } => {
                crate::delivery::parse_entry(entry).map(|(_, id)| id)
            }
            _ => None,
        }
    }

    /// The form for the host's log: entry ids and fixed words, never the vault's text
    /// (which may quote an address) nor a member's email or a group's name.
    pub fn log_form(&self) -> String {
        match self {
            Problem::Refused { entry, .. } => format!("{entry}: refused by the vault"),
            Problem::Drift { entry, kind, .. } => format!("{entry}: {kind}"),
            Problem::Vault(_) => "the vault failed or asked to wait".into(),
            Problem::Fatal(_) => {
                "the vault or the host refuses the connection; see _vault/status".into()
            }
            Problem::Store(_) | Problem::Busy => self.to_string(),
        }
    }
}

/// Serializes problems as their operator texts (the sync answer's `errors` and `drift`).
pub(super) fn texts<S: Serializer>(problems: &[Problem], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(problems.iter().map(ToString::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_form_names_no_one() {
        let all = [
            Problem::Refused {
                entry: "u:1".into(),
                message: "User email ann@example.com is not a valid email address".into(),
            },
            Problem::Drift {
                entry: "u:1".into(),
                text: "ann@example.com: revoked in the vault by hand".into(),
                kind: "revoked in the vault by hand",
            },
            Problem::Vault("the vault answered 500: ann@example.com".into()),
            Problem::Fatal(
                "https://vault.example.com refused the key (400: ann@example.com)".into(),
            ),
        ];
        for p in &all {
            assert!(p.to_string().contains("ann@example.com"), "{p}");
            assert!(!p.log_form().contains('@'), "{}", p.log_form());
        }
        assert_eq!(all[1].log_form(), "u:1: revoked in the vault by hand");
    }
}
