//! The connection to one organization's vault: the access token (cached in the store
//! until shortly before it expires), the limiter that keeps calls below the vault's and
//! the host's limits, and each call's outcome sorted into what a drain does next.
//!
//! The limiter divides each limit's window into `n - 1` slots for a limit of `n` and
//! lets one call into each slot, counted with the store's increment so every instance
//! shares it. Any window of the vault's, wherever it starts, then overlaps at most `n`
//! slots: the vault never sees more than its limit however its windows are aligned.

use super::net::{form_value, origin, NetError, OutRequest, OutResponse, Outbound, CLIENT_VERSION};
use crate::config::vault::VaultConfig;
use crate::delivery::{load, save, VaultKeys};
use crate::error::{Result, ScimError};
use crate::ids::Clock;
use crate::store::{decode_counter, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// Why a call did not give an answer to act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Fail {
    /// The drain's time or call budget is spent: stop, nothing failed.
    Budget,
    /// The vault or the host's quota says wait (429): stop until then.
    Limited,
    /// The vault (or whatever answers at its address) failed: a 5xx, a timeout, a
    /// broken connection, an answer without what it must hold. Retried later.
    Vault(String),
    /// A failure no retry fixes (the host refuses the origin, the key is rejected).
    Fatal(String),
    /// The key-value store failed. The vault is not at fault: nothing is paused and no
    /// entry is charged; the next drain takes over.
    Store(String),
}

/// A call's result.
pub type Call = std::result::Result<OutResponse, Fail>;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Token {
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_at: i64,
}

/// Device fields Vaultwarden requires on every token request (Bitwarden ignores them for
/// organization clients). The identifier is fixed so the vault sees one device.
const DEVICE: [(&str, &str); 3] = [
    ("device_identifier", "5c1d0a4e-7b1f-4e0c-9a55-5c1de0a9e000"),
    ("device_name", "scim-edge"),
    ("device_type", "21"),
];

/// One drain's connection.
pub struct Conn<'a> {
    store: &'a dyn Store,
    out: &'a dyn Outbound,
    clock: &'a dyn Clock,
    cfg: &'a VaultConfig,
    keys: VaultKeys<'a>,
    deadline: i64,
    calls_left: u32,
    token: Option<String>,
    /// How this drain's token request went, when it made one: `Err` with the reason.
    pub token_seen: Option<std::result::Result<(), String>>,
    /// The outbox entry the drain is delivering, for the vault calls' log lines.
    pub serving: Option<String>,
    /// Vault calls made (token requests included).
    pub calls: u32,
    /// Writes made.
    pub writes: u32,
    /// 429 answers received.
    pub limited: u32,
    answers: u32,
    /// The last limiter slot this drain took, with its length, by limiter.
    taken: RefCell<BTreeMap<&'static str, (i64, i64)>>,
}

/// Adds to a counter: atomically where the store can, else read and written back (the
/// edge; two instances may then share a slot, which only the vault's 429 corrects).
pub(super) fn bump(store: &dyn Store, key: &str) -> Result<i64> {
    add(store, key, 1)
}

/// Adds `delta` to a counter, as [`bump`] does.
pub(super) fn add(store: &dyn Store, key: &str, delta: i64) -> Result<i64> {
    if store.atomic() {
        return Ok(store.increment(key, delta)?);
    }
    let now = store
        .get(key)?
        .and_then(|b| decode_counter(&b))
        .unwrap_or(0)
        + delta;
    store.set(key, now.to_string().as_bytes())?;
    Ok(now)
}

/// The slot length for `n` calls per `window` ms (see the module doc).
fn slot_ms(n: u32, window: i64) -> i64 {
    let slots = i64::from(n.saturating_sub(1).max(1));
    ((window + slots - 1) / slots).max(1)
}

impl<'a> Conn<'a> {
    /// A connection that may make `calls` vault calls until `deadline` (ms).
    pub fn new(
        store: &'a dyn Store,
        out: &'a dyn Outbound,
        clock: &'a dyn Clock,
        cfg: &'a VaultConfig,
        keys: VaultKeys<'a>,
        deadline: i64,
        calls: u32,
    ) -> Self {
        Conn {
            store,
            out,
            clock,
            cfg,
            keys,
            deadline,
            calls_left: calls,
            token: None,
            token_seen: None,
            serving: None,
            calls: 0,
            writes: 0,
            limited: 0,
            answers: 0,
            taken: RefCell::default(),
        }
    }

    /// The store the drain works on.
    pub fn store(&self) -> &'a dyn Store {
        self.store
    }

    /// Now, ms.
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Vault calls this drain may still make.
    pub fn calls_left(&self) -> u32 {
        self.calls_left
    }

    /// Whether time and calls are left.
    pub fn has_budget(&self) -> bool {
        self.calls_left > 0 && self.now() < self.deadline
    }

    /// Takes slot `s` (of `len` ms) of `what` when nobody has; the counter is the store's
    /// increment, shared by every instance.
    pub fn take_slot(
        &self,
        what: &'static str,
        s: i64,
        len: i64,
    ) -> std::result::Result<bool, Fail> {
        let taken = bump(self.store, &self.keys.rate(what, s)).map_err(store_fail)?;
        if taken != 1 {
            return Ok(false);
        }
        // The first in its slot clears the slot before, and this drain's last one when
        // it lies further back (the counters would otherwise pile up).
        let _ = self.store.delete(&self.keys.rate(what, s - 1));
        let last = self.taken.borrow_mut().insert(what, (s, len));
        if let Some((p, _)) = last.filter(|(p, _)| *p < s - 1) {
            let _ = self.store.delete(&self.keys.rate(what, p));
        }
        Ok(true)
    }

    /// The limiter counters this drain leaves behind, with when each may be deleted
    /// (the end of its slot), for the next drain to sweep.
    pub fn counters(&self) -> Vec<(String, i64)> {
        self.taken
            .borrow()
            .iter()
            .map(|(what, (s, len))| (self.keys.rate(what, *s), (s + 1).saturating_mul(*len)))
            .collect()
    }

    fn slot(&self, what: &'static str, n: u32, window: i64) -> std::result::Result<(), Fail> {
        let len = slot_ms(n, window);
        loop {
            let now = self.now();
            let s = now / len;
            if self.take_slot(what, s, len)? {
                return Ok(());
            }
            let next = (s + 1) * len;
            if next >= self.deadline {
                return Err(Fail::Budget);
            }
            self.out.pause(next - now);
            if self.now() == now {
                // A host that cannot wait (no outbound HTTP): the drain ends here.
                return Err(Fail::Budget);
            }
        }
    }

    /// The organization's pause, read fresh: another drain may have set it.
    pub fn pause_until(&self) -> i64 {
        let key = self.keys.pause();
        self.store.forget(std::slice::from_ref(&key));
        self.store
            .get(&key)
            .ok()
            .flatten()
            .and_then(|b| decode_counter(&b))
            .unwrap_or(0)
    }

    fn paused(&self) -> std::result::Result<(), Fail> {
        let until = self.pause_until();
        let now = self.now();
        if until > now {
            if until >= self.deadline {
                return Err(Fail::Limited);
            }
            self.out.pause(until - now);
        }
        Ok(())
    }

    fn pause_for(&self, resp: &OutResponse) {
        let wait = resp
            .header("retry-after")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map_or(self.cfg.rate.second_ms, |s| s.clamp(1, 3600) * 1000);
        self.pause(wait);
    }

    /// Whether the vault has answered this drain (anything but a 5xx).
    pub fn answered(&self) -> bool {
        self.answers > 0
    }

    /// Holds every drain of the organization back for `wait` ms.
    pub fn pause(&self, wait: i64) {
        let until = self.pause_until().max(self.now().saturating_add(wait));
        let _ = self
            .store
            .set(&self.keys.pause(), until.to_string().as_bytes());
    }

    fn send(&mut self, req: OutRequest) -> Call {
        if self.calls_left == 0 || self.now() >= self.deadline {
            return Err(Fail::Budget);
        }
        if let Some(h) = self.cfg.rate.per_hour {
            self.slot("h", h, 3_600_000)?;
        }
        self.calls_left -= 1;
        self.calls += 1;
        let (method, url, start) = (req.method.clone(), req.url.clone(), self.now());
        let sent = self.out.send(req);
        let outcome = match &sent {
            Ok(r) => Ok(r.status),
            Err(e) => Err(e.to_string()),
        };
        self.out.log(&crate::access_log::vault_call(
            start,
            self.keys.0.as_str(),
            &method,
            &url,
            outcome.as_ref().map(|s| *s).map_err(String::as_str),
            self.now() - start,
            self.serving.as_deref(),
        ));
        match sent {
            Ok(r) if r.status == 429 => {
                self.limited += 1;
                self.pause_for(&r);
                Err(Fail::Limited)
            }
            Ok(r) if r.status >= 500 => Err(Fail::Vault(format!(
                "the vault answered {}: {}",
                r.status,
                r.message()
            ))),
            Ok(r) => {
                self.answers += 1;
                Ok(r)
            }
            Err(NetError::Denied(m)) => Err(Fail::Fatal(format!(
                "the host refused the request: {m}; grant the vault's origin in allowed_outbound_hosts (variable vault_origin)"
            ))),
            Err(e) => Err(Fail::Vault(e.to_string())),
        }
    }

    fn cached_token(&self) -> Result<Option<String>> {
        let t: Token = load(self.store, &self.keys.token())?;
        // Renewed a minute early (or at a tenth of its life, for short ones).
        Ok((!t.access_token.is_empty() && t.expires_at > self.now()).then_some(t.access_token))
    }

    fn fetch_token(&mut self) -> std::result::Result<String, Fail> {
        self.slot("t", self.cfg.rate.token_per_window, self.cfg.rate.window_ms)?;
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("scope", "api.organization"),
            ("client_id", self.cfg.client_id.as_str()),
            ("client_secret", self.cfg.client_secret.expose()),
        ];
        form.extend(DEVICE);
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", form_value(v)))
            .collect::<Vec<_>>()
            .join("&");
        let url = format!("{}/connect/token", self.cfg.identity_url);
        let r = self.send(
            OutRequest::new(
                "POST",
                url.clone(),
                Some("application/x-www-form-urlencoded"),
                body.into_bytes(),
                self.cfg.timeout_ms,
            )
            .header("bitwarden-client-version", CLIENT_VERSION.into()),
        )?;
        if r.status != 200 {
            // The identity server's own words; the request (and the secret) stay out.
            return Err(Fail::Fatal(format!(
                "{} refused the organization API key ({}: {})",
                origin(&url),
                r.status,
                r.message()
            )));
        }
        let v = r.json();
        let token = v
            .get("access_token")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if token.is_empty() {
            return Err(Fail::Vault("the token answer has no access_token".into()));
        }
        // The vault's number, held to a day: a huge one would overflow the product.
        let life = v
            .get("expires_in")
            .and_then(Value::as_i64)
            .unwrap_or(3600)
            .clamp(0, 86_400)
            * 1000;
        let early = (life / 10).min(60_000);
        let stored = Token {
            access_token: token.clone(),
            expires_at: self.now() + life - early,
        };
        save(self.store, &self.keys.token(), &stored).map_err(store_fail)?;
        Ok(token)
    }

    fn token(&mut self) -> std::result::Result<String, Fail> {
        if let Some(t) = &self.token {
            return Ok(t.clone());
        }
        let t = match self.cached_token() {
            Ok(Some(t)) => t,
            _ => {
                let fetched = self.fetch_token();
                self.token_seen = Some(match &fetched {
                    Ok(_) => Ok(()),
                    Err(Fail::Vault(m) | Fail::Fatal(m) | Fail::Store(m)) => Err(m.clone()),
                    Err(Fail::Limited) => Err("the token endpoint asked to wait (429)".into()),
                    Err(Fail::Budget) => Err("the drain's budget ran out first".into()),
                });
                fetched?
            }
        };
        self.token = Some(t.clone());
        Ok(t)
    }

    /// Calls `{api_url}/{path}`. Writes take a limiter slot first. A 401 renews the
    /// token once.
    pub fn call(&mut self, method: &'static str, path: &str, body: Option<&Value>) -> Call {
        let write = method != "GET";
        self.paused()?;
        for renewed in [false, true] {
            let token = self.token()?;
            if write {
                let r = &self.cfg.rate;
                self.slot("s", r.per_second, r.second_ms)?;
                self.slot("w", r.per_window, r.window_ms)?;
            }
            let url = format!("{}/{path}", self.cfg.api_url);
            let req = match body {
                Some(b) => OutRequest::new(
                    method,
                    url,
                    Some("application/json"),
                    b.to_string().into_bytes(),
                    self.cfg.timeout_ms,
                ),
                None => OutRequest::new(method, url, None, Vec::new(), self.cfg.timeout_ms),
            };
            let r = self.send(req.header("authorization", format!("Bearer {token}")))?;
            if write {
                self.writes += 1;
            }
            if r.status == 401 && !renewed {
                self.token = None;
                let _ = self.store.delete(&self.keys.token());
                continue;
            }
            if r.status == 401 || r.status == 403 {
                return Err(Fail::Fatal(format!(
                    "the vault refused the token ({}); check the organization API key",
                    r.status
                )));
            }
            return Ok(r);
        }
        Err(Fail::Fatal("the vault refused a fresh token".into()))
    }
}

/// A store failure as a drain failure.
pub fn store_fail(e: ScimError) -> Fail {
    Fail::Store(e.log_cause().unwrap_or(e.detail()).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_keep_any_window_within_its_limit() {
        // 60 per minute: slots of 1017 ms; any 60 s overlaps at most 60 of them.
        let len = slot_ms(60, 60_000);
        assert_eq!(len, 1017);
        assert!(60_000 / len < 60);
        assert_eq!(slot_ms(5, 1000), 250);
        // Rounded up: 5 per 10 ms in slots of 3 ms, never 6 in any 10 ms.
        assert_eq!(slot_ms(5, 10), 3);
        assert_eq!(slot_ms(1, 1000), 1000);
    }
}
