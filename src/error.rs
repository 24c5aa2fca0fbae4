//! The one SCIM error type: RFC 7644 section 3.12 keywords with fixed statuses.

use serde_json::{json, Value};
use std::fmt;

/// The error schema URN.
pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// What went wrong, as RFC 7644 names it. Each kind has one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400 `invalidFilter`
    InvalidFilter,
    /// 400 `tooMany`
    TooMany,
    /// 409 `uniqueness`
    Uniqueness,
    /// 400 `mutability`
    Mutability,
    /// 400 `invalidSyntax`
    InvalidSyntax,
    /// 400 `invalidPath`
    InvalidPath,
    /// 400 `noTarget`
    NoTarget,
    /// 400 `invalidValue`
    InvalidValue,
    /// 400 `invalidVers`
    InvalidVers,
    /// 400 `sensitive`
    Sensitive,
    /// 401, no keyword
    Unauthorized,
    /// 403, no keyword
    Forbidden,
    /// 404, no keyword
    NotFound,
    /// 405, no keyword
    MethodNotAllowed,
    /// 409, no keyword (a conflict other than uniqueness, e.g. bulk circular reference)
    Conflict,
    /// 412, no keyword
    PreconditionFailed,
    /// 413, no keyword
    PayloadTooLarge,
    /// 415, no keyword
    UnsupportedMediaType,
    /// 501, no keyword
    NotImplemented,
    /// 500, no keyword; the detail shown to the client is generic
    Internal,
    /// 503, no keyword: the store did not answer
    Unavailable,
}

impl ErrorKind {
    /// The HTTP status for this kind.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidFilter
            | ErrorKind::TooMany
            | ErrorKind::Mutability
            | ErrorKind::InvalidSyntax
            | ErrorKind::InvalidPath
            | ErrorKind::NoTarget
            | ErrorKind::InvalidValue
            | ErrorKind::InvalidVers
            | ErrorKind::Sensitive => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::Uniqueness | ErrorKind::Conflict => 409,
            ErrorKind::PreconditionFailed => 412,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::NotImplemented => 501,
            ErrorKind::Internal => 500,
            ErrorKind::Unavailable => 503,
        }
    }

    /// The RFC 7644 `scimType` keyword, where the RFC defines one.
    pub fn scim_type(self) -> Option<&'static str> {
        match self {
            ErrorKind::InvalidFilter => Some("invalidFilter"),
            ErrorKind::TooMany => Some("tooMany"),
            ErrorKind::Uniqueness => Some("uniqueness"),
            ErrorKind::Mutability => Some("mutability"),
            ErrorKind::InvalidSyntax => Some("invalidSyntax"),
            ErrorKind::InvalidPath => Some("invalidPath"),
            ErrorKind::NoTarget => Some("noTarget"),
            ErrorKind::InvalidValue => Some("invalidValue"),
            ErrorKind::InvalidVers => Some("invalidVers"),
            ErrorKind::Sensitive => Some("sensitive"),
            _ => None,
        }
    }
}

/// A SCIM error: what the client is told, and (separately) what only the log sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimError {
    kind: ErrorKind,
    detail: String,
    log: Option<String>,
}

impl ScimError {
    /// An error whose detail is safe to show the client.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        ScimError {
            kind,
            detail: detail.into(),
            log: None,
        }
    }

    /// An internal failure: the client sees a generic detail, the cause goes to the log only.
    pub fn internal(log: impl Into<String>) -> Self {
        ScimError {
            kind: ErrorKind::Internal,
            detail: "The service failed to process the request.".into(),
            log: Some(log.into()),
        }
    }

    /// The store could not be reached or failed: 503 so that clients retry.
    pub fn unavailable(log: impl Into<String>) -> Self {
        ScimError {
            kind: ErrorKind::Unavailable,
            detail: "The storage backend is unavailable; retry later.".into(),
            log: Some(log.into()),
        }
    }

    /// Shorthand for 400 `invalidValue`.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidValue, detail)
    }

    /// Shorthand for 400 `invalidSyntax`.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidSyntax, detail)
    }

    /// Shorthand for 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, detail)
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The detail shown to the client.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The log-only cause, if any.
    pub fn log_cause(&self) -> Option<&str> {
        self.log.as_deref()
    }

    /// The RFC 7644 error body.
    pub fn to_json(&self) -> Value {
        error_body(self.status(), &self.detail, self.kind.scim_type())
    }
}

/// An RFC 7644 3.12 error body for any status: the Envoy filter also fills in bodies for
/// statuses an upstream chose.
pub fn error_body(status: u16, detail: &str, scim_type: Option<&str>) -> Value {
    let mut body = json!({
        "schemas": [ERROR_URN],
        "status": status.to_string(),
        "detail": detail,
    });
    if let (Some(t), Some(map)) = (scim_type, body.as_object_mut()) {
        map.insert("scimType".into(), Value::String(t.into()));
    }
    body
}

impl fmt::Display for ScimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status(), self.detail)
    }
}

impl std::error::Error for ScimError {}

/// Result alias used throughout the core.
pub type Result<T> = std::result::Result<T, ScimError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_string_status_and_keyword() {
        let e = ScimError::new(ErrorKind::Uniqueness, "taken");
        assert_eq!(
            e.to_json(),
            json!({"schemas":[ERROR_URN],"status":"409","detail":"taken","scimType":"uniqueness"})
        );
    }

    #[test]
    fn internal_hides_cause() {
        let e = ScimError::internal("disk on fire at /var/x");
        assert_eq!(e.status(), 500);
        assert!(!e.to_json().to_string().contains("disk"));
        assert_eq!(e.log_cause(), Some("disk on fire at /var/x"));
        assert!(e.to_json().get("scimType").is_none());
    }
}
