//! The console: one page with its script and style, served without a key (they hold no
//! data; the page asks for the key and sends it only to the authenticated routes), and
//! `_console/overview`, which gives the page the organization at a glance. Every console
//! route carries a strict Content-Security-Policy and the headers that keep its data out
//! of caches and referrers.

use super::{Router, Target};
use crate::error::Result;
use crate::http::Response;
use crate::schema::ResourceKind;
use crate::service::{ListQuery, Service};
use serde_json::{json, Value};

const PAGE: &str = include_str!("../console/index.html");
const SCRIPT: &str = include_str!("../console/console.js");
const STYLE: &str = include_str!("../console/console.css");

/// Only same-origin script, style and fetches; no frames, no base, no forms.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The console's assets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    /// `_console`: the page.
    Page,
    /// `_console/console.js`.
    Script,
    /// `_console/console.css`.
    Style,
}

/// Adds the console's headers to a response.
pub fn guarded(mut r: Response) -> Response {
    for (k, v) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
    ] {
        r.headers.push((k.into(), v.into()));
    }
    r
}

/// An asset.
pub fn asset(a: Asset) -> Response {
    let (ty, body) = match a {
        Asset::Page => ("text/html; charset=utf-8", PAGE),
        Asset::Script => ("text/javascript; charset=utf-8", SCRIPT),
        Asset::Style => ("text/css; charset=utf-8", STYLE),
    };
    guarded(Response::asset(200, ty, body.as_bytes()))
}

impl Router<'_> {
    /// `GET _console/overview`: the policy, users active and inactive, groups, and the
    /// vault's status when there is a vault.
    pub(super) fn overview(&self, svc: &Service<'_>, t: &Target<'_>) -> Result<Response> {
        let count = |kind: ResourceKind, filter: Option<&str>| -> Result<u64> {
            let q = ListQuery {
                filter: filter.map(str::to_string),
                start_index: 1,
                count: Some(0),
                ..ListQuery::default()
            };
            Ok(svc.list(kind, &q)?["totalResults"].as_u64().unwrap_or(0))
        };
        let users = count(ResourceKind::User, None)?;
        let inactive = count(ResourceKind::User, Some("active eq false"))?;
        let vault = match t.cfg.vault.as_ref() {
            Some(v) => crate::vault::status(&self.env(), &t.org, t.cfg, v)?,
            None => Value::Null,
        };
        Ok(guarded(Response::json(
            200,
            &json!({
                "organization": t.org.as_str(),
                "policy": t.cfg.policy.as_str(),
                "users": {"active": users - inactive.min(users), "inactive": inactive},
                "groups": count(ResourceKind::Group, None)?,
                "vault": vault,
            }),
        )))
    }
}
