//! A member's status in the vault, as each user's vault extension reports it: the five
//! a vault has (Bitwarden's `OrganizationUserStatusType`) and two of scim-edge's own
//! (`pending` before the first delivery, `error` while delivery fails or is parked). The
//! words are spelled here only: the stored records, the schema's canonical values, the
//! status route and filters all go through [`MemberStatus`].

use serde::{Deserialize, Serialize};

/// A member's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    /// Not delivered yet.
    Pending,
    /// Invited: waiting for the person to accept.
    Invited,
    /// Accepted: waiting for an administrator's (or the agent's) Confirm.
    Accepted,
    /// Confirmed: holds the organization key.
    Confirmed,
    /// Revoked: no access.
    Revoked,
    /// Staged (Bitwarden's Directory Connector without invitations).
    Staged,
    /// Delivery fails or was given up on.
    Error,
}

impl MemberStatus {
    /// Every status, in the order the schema lists them.
    pub const ALL: [MemberStatus; 7] = [
        MemberStatus::Pending,
        MemberStatus::Invited,
        MemberStatus::Accepted,
        MemberStatus::Confirmed,
        MemberStatus::Revoked,
        MemberStatus::Staged,
        MemberStatus::Error,
    ];

    /// Its word (the stored and reported form).
    pub const fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Pending => "pending",
            MemberStatus::Invited => "invited",
            MemberStatus::Accepted => "accepted",
            MemberStatus::Confirmed => "confirmed",
            MemberStatus::Revoked => "revoked",
            MemberStatus::Staged => "staged",
            MemberStatus::Error => "error",
        }
    }

    /// From Bitwarden's number (`OrganizationUserStatusType`: Invited 0, Accepted 1,
    /// Confirmed 2, Staged 3, Revoked -1); a number it does not define is an error.
    pub fn from_bitwarden(n: i64) -> MemberStatus {
        match n {
            0 => MemberStatus::Invited,
            1 => MemberStatus::Accepted,
            2 => MemberStatus::Confirmed,
            3 => MemberStatus::Staged,
            -1 => MemberStatus::Revoked,
            _ => MemberStatus::Error,
        }
    }
}

/// The words, for the schema's canonical values.
pub const WORDS: [&str; 7] = [
    MemberStatus::ALL[0].as_str(),
    MemberStatus::ALL[1].as_str(),
    MemberStatus::ALL[2].as_str(),
    MemberStatus::ALL[3].as_str(),
    MemberStatus::ALL[4].as_str(),
    MemberStatus::ALL[5].as_str(),
    MemberStatus::ALL[6].as_str(),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_form_is_the_word() {
        for s in MemberStatus::ALL {
            let json = serde_json::to_string(&s).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<MemberStatus>(&json).ok(), Some(s));
        }
        assert_eq!(WORDS[2], "accepted");
        assert_eq!(MemberStatus::from_bitwarden(-1), MemberStatus::Revoked);
        assert_eq!(MemberStatus::from_bitwarden(7), MemberStatus::Error);
    }
}
