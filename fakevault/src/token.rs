//! `POST /identity/connect/token` (organization API key, `client_credentials`) and the
//! bearer check of the API (vaults.md §1.1, §4).

use crate::server::{too_many, Reply, Req};
use crate::state::{Shared, State};
use crate::Mode;
use serde_json::json;
use std::time::{Duration, Instant};

const SCOPE: &str = "api.organization";

fn oauth_error(error: &str, description: &str) -> Reply {
    Reply::json(
        400,
        &if description.is_empty() {
            json!({ "error": error })
        } else {
            // Vaultwarden's errors carry the message; the OAuth code is kept for both modes.
            json!({ "error": error, "error_description": description, "message": description, "object": "error" })
        },
    )
}

/// Issues a token, or answers 400 as Bitwarden's IdentityServer (client, then grant, then
/// scope) or Vaultwarden (grant, then blank fields incl. the device ones, then scope, then
/// client) would; 429 past [`crate::Options::token_per_window`].
pub(crate) fn handle(shared: &Shared, req: &Req, now_ms: u64) -> Reply {
    let opts = &shared.opts;
    let mut st = shared.lock();
    if let Err(wait) = st.token_limit.hit(now_ms) {
        return too_many(shared, wait);
    }
    if !req
        .content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return oauth_error("invalid_request", "");
    }
    let form = parse_form(&req.body);
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let client_ok = field("client_id") == Some(opts.client_id().as_str())
        && field("client_secret") == Some(opts.client_secret.as_str());
    let grant_ok = field("grant_type") == Some("client_credentials");
    match opts.mode {
        Mode::Bitwarden => {
            if !client_ok {
                return oauth_error("invalid_client", "");
            }
            if !grant_ok {
                return oauth_error("unsupported_grant_type", "");
            }
            // No scope asks for every allowed one; any other scope is refused.
            if field("scope").is_some_and(|s| s.split(' ').any(|s| !s.is_empty() && s != SCOPE)) {
                return oauth_error("invalid_scope", "");
            }
        }
        Mode::Vaultwarden => {
            if !grant_ok {
                return oauth_error("unsupported_grant_type", "Invalid type");
            }
            for name in [
                "client_id",
                "client_secret",
                "scope",
                "device_identifier",
                "device_name",
                "device_type",
            ] {
                if field(name).is_none() {
                    return oauth_error("invalid_request", &format!("{name} cannot be blank"));
                }
            }
            if field("scope") != Some(SCOPE) {
                return oauth_error("invalid_scope", "Scope not supported");
            }
            if !client_ok {
                return oauth_error("invalid_client", "Invalid client_id or client_secret");
            }
        }
    }
    let token = st.token();
    let expiry = Instant::now() + Duration::from_secs(opts.token_lifetime_s);
    st.tokens.insert(token.clone(), expiry);
    st.stats.tokens_issued += 1;
    Reply::json(
        200,
        &json!({
            "access_token": token,
            "expires_in": opts.token_lifetime_s,
            "token_type": "Bearer",
            "scope": SCOPE,
        }),
    )
}

/// Whether the request carries a live access token (`Authorization: Bearer …`).
pub(crate) fn authorized(st: &mut State, req: &Req) -> bool {
    let Some(value) = req.authorization.as_deref() else {
        return false;
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
    let token = token.trim();
    match st.tokens.get(token) {
        Some(expiry) if Instant::now() < *expiry => true,
        Some(_) => {
            st.tokens.remove(token);
            false
        }
        None => false,
    }
}

/// `application/x-www-form-urlencoded` pairs, decoded.
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    body.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |b| *b == b'=');
            let k = decode(it.next().unwrap_or_default());
            let v = decode(it.next().unwrap_or_default());
            (k, v)
        })
        .collect()
}

fn decode(s: &[u8]) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let f = parse_form(b"a=b+c&client_id=organization.x%2Dy&e=%zz&f=%4");
        assert_eq!(f[0], ("a".to_string(), "b c".to_string()));
        assert_eq!(f[1].1, "organization.x-y");
        assert_eq!(f[2].1, "%zz");
        assert_eq!(f[3].1, "%4");
    }
}
