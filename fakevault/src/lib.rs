//! A fake password vault for scim-edge's provisioning tests: an HTTP/1.1 server on
//! `127.0.0.1` that answers like Bitwarden's Public API (members and groups) or like
//! Vaultwarden's one public route (`POST /api/public/organization/import`), behind the
//! organization API key's `client_credentials` token flow.
//!
//! It also serves, in both modes alike, what an administrator's client uses to confirm
//! members (vault-crypto.md §2–§5): the personal API key login (`client_id=user.<id>`,
//! `scope=api`) and, behind its token, `GET /api/sync`, `GET
//! /api/organizations/{org}/users`, `GET /api/users/{id}/public-key`, `POST
//! /api/organizations/{org}/users/public-keys` and the single and bulk confirm routes.
//! Accounts hold real Bitwarden keys ([`FakeVault::seed_admin`], [`FakeVault::register`]):
//! the organization has a random 64-byte key, each account an RSA-2048 key pair, so a
//! test can check that a confirmed member can open its copy of the organization key
//! ([`FakeVault::holds_org_key`]). An organization token opens only `/api/public/…`, a
//! user token only those routes.
//!
//! The behaviour follows `vaults.md` (§1.1–1.3, §2, §4) and `vault-crypto.md`; where this
//! crate models less than the real server it says so on the item concerned. Nothing is
//! logged.
//!
//! Every request is first counted in [`Stats::requests`]; then, while
//! [`FakeVault::set_down`] is on, it is answered 503 with an empty body; otherwise the
//! next queued [`Fault`] (if any) answers it with a status, delays it, or closes the
//! connection unanswered; only then is it routed, rate limited, authenticated and handled.
//!
//! Not modelled: Bitwarden's import route, events, seats, policies (a refusal can be
//! staged with [`FakeVault::refuse_confirm`]), collections as objects, account names
//! (`name` is always null); Vaultwarden's restore policy checks; password logins,
//! prelogin, two-step login, accept with an invitation token (registering accepts every
//! invitation, as Vaultwarden with mail off does), more than one organization, the
//! Bitwarden-only device checks of the personal API key login (Bitwarden mode takes it
//! without device fields). An Invited member has no `userId` until its address registers
//! (Vaultwarden makes a user record at once). Refusals by a route's guard (401) and
//! unknown routes (404) have empty bodies where Rocket would send its catcher's.
//!
//! ```no_run
//! use scim_edge_fakevault::{FakeVault, Kdf, Options, OWNER};
//! let vault = FakeVault::start(Options::default());
//! let token_url = format!("{}/connect/token", vault.identity_url());
//! let members_url = format!("{}/public/members", vault.api_url());
//! # let _ = (token_url, members_url);
//! assert!(vault.members().is_empty());
//! // An owner the Confirm agent logs in as, with its personal API key.
//! let owner = vault.seed_admin("owner@example.com", "pw", Kdf::Pbkdf2 { iterations: 600_000 }, OWNER);
//! # let _ = owner.client_secret;
//! ```
#![deny(missing_docs)]

mod accounts;
mod admin;
mod bitwarden;
mod crypto;
mod limiter;
mod server;
mod state;
mod token;
mod vaultwarden;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use state::Shared;

/// Which vault the fake answers as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Bitwarden's Public API: `/api/public/members…` and `/api/public/groups…`
    /// (vaults.md §1.2). The import route is not modelled in this mode (404).
    Bitwarden,
    /// Vaultwarden: only `POST /api/public/organization/import` (vaults.md §2, §4).
    Vaultwarden,
}

/// The write rate limit of Bitwarden cloud (vaults.md §1.3), as fixed windows: time is
/// cut into consecutive slots of `second_ms` and of `window_ms` from the server's start,
/// and a slot admits at most `per_second` (resp. `per_window`) requests. Requests refused
/// with 429 do not use up a slot. A limit of 0 means unlimited.
///
/// Writes (POST/PUT/DELETE under `/api/public`) and reads (GET under `/api/public`) are
/// counted separately, all routes together (stricter than Bitwarden, whose counters may be per
/// verb and path). Only [`Mode::Bitwarden`] limits the API; both modes limit the token
/// endpoint ([`Options::token_per_window`]). The administrator's routes are never limited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Writes admitted per `second_ms` slot (Bitwarden: 5).
    pub per_second: u32,
    /// Writes admitted per `window_ms` slot (Bitwarden: 60).
    pub per_window: u32,
    /// Length of the short slot in milliseconds (1000).
    pub second_ms: u64,
    /// Length of the long slot in milliseconds (60000); also the token endpoint's window.
    pub window_ms: u64,
    /// GETs admitted per `window_ms` slot (Bitwarden: 200).
    pub reads_per_window: u32,
    /// Whether a 429 carries `Retry-After` (seconds to the end of the full slot, rounded
    /// up, at least 1). Real Bitwarden sends none; the default `true` is a convenience.
    pub retry_after: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_second: 5,
            per_window: 60,
            second_ms: 1000,
            window_ms: 60_000,
            reads_per_window: 200,
            retry_after: true,
        }
    }
}

impl Limits {
    /// No limit on the API (self-hosted Bitwarden, vaults.md §1.3). The token endpoint
    /// still uses [`Options::token_per_window`] over `window_ms`.
    pub fn unlimited() -> Self {
        Limits {
            per_second: 0,
            per_window: 0,
            reads_per_window: 0,
            ..Limits::default()
        }
    }
}

/// How the fake vault is set up. `Debug` leaves the secret out.
#[derive(Clone)]
pub struct Options {
    /// Which API it serves.
    pub mode: Mode,
    /// The organization id; the client id is `organization.<org_id>`.
    pub org_id: String,
    /// The organization API key (the `client_secret`).
    pub client_secret: String,
    /// Access token lifetime in seconds, returned as `expires_in` (3600).
    pub token_lifetime_s: u64,
    /// Lifetime of a personal API key login's access token in seconds (7200, Vaultwarden's
    /// and Bitwarden's two hours).
    pub user_token_lifetime_s: u64,
    /// The API rate limit.
    pub limits: Limits,
    /// Token requests admitted per `limits.window_ms` (10: Bitwarden's 10/min, and
    /// Vaultwarden's login limit, burst 10 per 60 s), both grants together. 0 means
    /// unlimited.
    pub token_per_window: u32,
    /// Vaultwarden's `ORG_GROUPS_ENABLED` (default false): without it an import's groups
    /// are ignored. Bitwarden mode always has groups.
    pub groups_enabled: bool,
    /// Vaultwarden: whether SMTP is configured (default true). With mail off, an import
    /// adds a member whose account already exists with a password (see
    /// [`FakeVault::seed_account`]) directly as Accepted (1); a member whose account the
    /// import has to create is Invited (0) either way, as in Vaultwarden's `ldap_import`.
    pub mail_enabled: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Bitwarden,
            org_id: "3f6b2a5e-7c1d-4e8f-9a0b-1c2d3e4f5a6b".to_string(),
            client_secret: "fake-vault-api-key".to_string(),
            token_lifetime_s: 3600,
            user_token_lifetime_s: 7200,
            limits: Limits::default(),
            token_per_window: 10,
            groups_enabled: false,
            mail_enabled: true,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("mode", &self.mode)
            .field("org_id", &self.org_id)
            .field("client_secret", &"<redacted>")
            .field("token_lifetime_s", &self.token_lifetime_s)
            .field("user_token_lifetime_s", &self.user_token_lifetime_s)
            .field("limits", &self.limits)
            .field("token_per_window", &self.token_per_window)
            .field("groups_enabled", &self.groups_enabled)
            .field("mail_enabled", &self.mail_enabled)
            .finish()
    }
}

impl Options {
    /// The `client_id` the token endpoint accepts: `organization.<org_id>`.
    pub fn client_id(&self) -> String {
        format!("organization.{}", self.org_id)
    }
}

/// A queued fault; each applies to the next `n` requests on any route, before routing
/// (after [`FakeVault::set_down`] and after the request is counted in [`Stats`]).
/// Faults are used in the order queued, one request at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and an empty body, changing nothing.
    Status(u16, usize),
    /// Sleep this long, then handle the request normally.
    Slow(Duration, usize),
    /// Read the request, then close the connection without answering.
    Drop(usize),
    /// Apply the next n API writes (POST/PUT/DELETE under `/api`), then close the
    /// connection without answering: the vault did it, the caller never learns. Other
    /// requests pass while this fault waits for a write.
    Lost(usize),
}

/// An account's key derivation settings (vault-crypto.md §1: `kdf` 0 and 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kdf {
    /// PBKDF2-HMAC-SHA256 over the password, salted with the lowercased email.
    Pbkdf2 {
        /// `KdfIterations` (Vaultwarden's default is 600,000).
        iterations: u32,
    },
    /// Argon2id salted with SHA-256 of the lowercased email.
    Argon2id {
        /// `KdfIterations` (t).
        iterations: u32,
        /// `KdfMemory` in MiB (m).
        memory_mib: u32,
        /// `KdfParallelism` (p).
        parallelism: u32,
    },
}

/// Member status: Invited.
pub const INVITED: i32 = 0;
/// Member status: Accepted.
pub const ACCEPTED: i32 = 1;
/// Member status: Confirmed.
pub const CONFIRMED: i32 = 2;
/// Member status: Staged.
pub const STAGED: i32 = 3;
/// Member status: Revoked.
pub const REVOKED: i32 = -1;
/// Member type: Owner.
pub const OWNER: i32 = 0;
/// Member type: Admin.
pub const ADMIN: i32 = 1;
/// Member type: User.
pub const USER: i32 = 2;
/// Member type: Manager (Vaultwarden; shown as Custom, 4, in its member lists).
pub const MANAGER: i32 = 3;
/// Member type: Custom.
pub const CUSTOM: i32 = 4;

/// A snapshot of an organization member.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// The membership (OrganizationUser) id.
    pub id: String,
    /// The account id: `None` until the member accepted.
    pub user_id: Option<String>,
    /// The email, as first given (Vaultwarden lowercases it).
    pub email: String,
    /// Owner 0, Admin 1, User 2, Custom 4.
    pub type_: i32,
    /// Invited 0, Accepted 1, Confirmed 2, Staged 3, Revoked -1.
    pub status: i32,
    /// The externalId.
    pub external_id: Option<String>,
    /// Collection access objects as last written (`{"id","readOnly",…}`).
    pub collections: Vec<Value>,
    /// The permissions object as last written.
    pub permissions: Option<Value>,
    /// Ids of the groups the member is in.
    pub group_ids: Vec<String>,
    /// The organization key as stored for this member: what the confirm call sent (or
    /// the one [`FakeVault::seed_admin`] made); `None` until then.
    pub key: Option<String>,
}

/// What [`FakeVault::seed_admin`] made: the ids, and the personal API key the Confirm
/// agent logs in with. `Debug` leaves the secret out.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminLogin {
    /// The account id.
    pub user_id: String,
    /// The membership id.
    pub member_id: String,
    /// The email, trimmed and lowercased (the KDF salt).
    pub email: String,
    /// `user.<user_id>`, the token endpoint's `client_id`.
    pub client_id: String,
    /// The personal API key, the token endpoint's `client_secret`.
    pub client_secret: String,
}

impl std::fmt::Debug for AdminLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminLogin")
            .field("user_id", &self.user_id)
            .field("member_id", &self.member_id)
            .field("email", &self.email)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// A snapshot of a group.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// The group id.
    pub id: String,
    /// The name.
    pub name: String,
    /// The externalId.
    pub external_id: Option<String>,
    /// Collection access objects as last written.
    pub collections: Vec<Value>,
    /// Ids of the members in the group.
    pub member_ids: Vec<String>,
}

/// What the fake has seen so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests received, by `"METHOD /path"` with every GUID segment written `{id}`
    /// (e.g. `"POST /api/public/members/{id}/revoke"`, `"POST /identity/connect/token"`);
    /// counts every request, including those answered by a fault, while down, or 429.
    pub requests: BTreeMap<String, u64>,
    /// Writes (POST/PUT/DELETE under `/api`, the administrator's POSTs included) answered
    /// with a 2xx.
    pub writes: u64,
    /// 429s sent by the rate limits (API and token endpoint; not by a [`Fault`]).
    pub rate_limited: u64,
    /// Access tokens issued (organization and personal API key logins).
    pub tokens_issued: u64,
    /// Invitations issued, by lowercased email: Bitwarden's POST members and reinvite,
    /// and members an import created (with mail off Vaultwarden records an invitation
    /// instead of mailing one; counted the same).
    pub invites: BTreeMap<String, u32>,
    /// Imports applied (answered 200).
    pub imports: u64,
    /// Requests whose body came with `Transfer-Encoding: chunked`: answered 411 and not
    /// handled, as front ends that take only bodies of a stated length answer them.
    pub chunked: u64,
    /// Every `User-Agent` seen (`""` for a request without one).
    pub user_agents: BTreeSet<String>,
    /// Memberships confirmed through the confirm routes (single or bulk).
    pub confirms: u64,
    /// The `deviceIdentifier` of every personal API key login that sent one.
    pub devices: BTreeSet<String>,
    /// Every `Bitwarden-Client-Version` sent to the token endpoint or to a route under
    /// `/api/` other than `/api/public/…` (`""` for a request without one).
    pub client_versions: BTreeSet<String>,
}

impl Stats {
    /// Requests received for one `"METHOD /path"` key (0 if none).
    pub fn count(&self, key: &str) -> u64 {
        self.requests.get(key).copied().unwrap_or(0)
    }

    /// The most invitations any one email received (0 if none).
    pub fn max_invites(&self) -> u32 {
        self.invites.values().copied().max().unwrap_or(0)
    }
}

/// Whether Vaultwarden's import can add a member at this address (its `is_valid_email`,
/// checked when the member's user must be created).
pub fn vaultwarden_accepts(email: &str) -> bool {
    vaultwarden::is_valid_email(email)
}

/// Whether Bitwarden's `POST public/members` takes this address (`[StrictEmailAddress]`).
pub fn bitwarden_accepts(email: &str) -> bool {
    bitwarden::strict_email(email)
}

/// A running fake vault; dropping it stops the server and closes its connections.
pub struct FakeVault {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: server::Handle,
}

impl FakeVault {
    /// Binds `127.0.0.1:0` and serves on a thread of its own with its own runtime (no
    /// caller runtime is needed, and calling from inside one is fine).
    ///
    /// # Panics
    /// If the socket cannot be bound or the thread not started; see [`FakeVault::try_start`].
    #[allow(clippy::expect_used)]
    pub fn start(opts: Options) -> FakeVault {
        FakeVault::try_start(opts).expect("fake vault: bind 127.0.0.1:0")
    }

    /// [`FakeVault::start`], returning the I/O error instead of panicking.
    pub fn try_start(opts: Options) -> std::io::Result<FakeVault> {
        let shared = Arc::new(Shared::new(opts));
        let (addr, server) = server::spawn(shared.clone())?;
        Ok(FakeVault {
            shared,
            addr,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The API base, `url() + "/api"`, under which `public/…` lies (self-hosted layout,
    /// both modes).
    pub fn api_url(&self) -> String {
        format!("{}/api", self.url())
    }

    /// The identity base, `url() + "/identity"`; the token endpoint is
    /// `identity_url() + "/connect/token"`.
    pub fn identity_url(&self) -> String {
        format!("{}/identity", self.url())
    }

    /// The options the vault was started with.
    pub fn options(&self) -> Options {
        self.shared.opts.clone()
    }

    /// All members, in creation order.
    pub fn members(&self) -> Vec<Member> {
        self.shared.lock().members_snapshot()
    }

    /// All groups, in creation order, with their member ids.
    pub fn groups(&self) -> Vec<Group> {
        self.shared.lock().groups_snapshot()
    }

    /// Adds a pre-existing member (e.g. an Owner, type 0, status 2) and returns its id.
    /// A member seeded Accepted or Confirmed gets a `user_id`. No invitation is counted.
    pub fn seed_member(
        &self,
        email: &str,
        type_: i32,
        status: i32,
        external_id: Option<&str>,
    ) -> String {
        let mut st = self.shared.lock();
        let id = st.add_member(
            email.to_string(),
            type_,
            INVITED,
            external_id.map(str::to_string),
        );
        st.set_status(&id, status);
        id
    }

    /// Adds a pre-existing group with these members and returns its id.
    pub fn seed_group(&self, name: &str, external_id: Option<&str>, member_ids: &[&str]) -> String {
        let mut st = self.shared.lock();
        let id = st.add_group(
            name.to_string(),
            external_id.map(str::to_string),
            Vec::new(),
        );
        let ids: Vec<String> = member_ids.iter().map(|s| s.to_string()).collect();
        st.set_group_members(&id, &ids);
        id
    }

    /// Edits a group as an administrator would by hand: its name and its members (ids
    /// that are not members are dropped). Unknown ids are ignored.
    pub fn edit_group(&self, group_id: &str, name: &str, member_ids: &[&str]) {
        let mut st = self.shared.lock();
        let ids: Vec<String> = member_ids.iter().map(|s| s.to_string()).collect();
        st.set_group_members(group_id, &ids);
        if let Some(g) = st.group_mut(group_id) {
            g.name = name.to_string();
        }
    }

    /// Registers an existing Vaultwarden account with a password (not a member): with mail
    /// off, an import adds it directly as Accepted.
    pub fn seed_account(&self, email: &str) {
        self.shared.lock().accounts.insert(email.to_lowercase());
    }

    /// Adds an organization administrator as the Confirm agent finds one: an account
    /// with this password and KDF, real keys (a random user key under the stretched
    /// master key, an RSA-2048 private key under the user key), a personal API key, and a
    /// Confirmed membership of type `type_` ([`OWNER`], [`ADMIN`], [`MANAGER`]…) whose
    /// key is the organization key wrapped (type 4) to the account's public key. An
    /// existing membership with this email (case-insensitive) is taken over.
    ///
    /// The key pair comes from a process-wide pool: tests reuse pairs across vaults, but
    /// two accounts of one vault never share one.
    ///
    /// # Panics
    /// If the KDF settings are out of range (0 iterations; Argon2's own limits).
    #[allow(clippy::panic)]
    pub fn seed_admin(&self, email: &str, password: &str, kdf: Kdf, type_: i32) -> AdminLogin {
        match accounts::seed_admin(&self.shared, email, password, kdf, type_) {
            Ok(login) => login,
            Err(e) => panic!("fake vault: seed_admin({email}): {e}"),
        }
    }

    /// The address registers an account with a fresh RSA-2048 key pair (its password is
    /// never known) and returns the account id. As Vaultwarden does with mail off
    /// (vault-crypto.md §4), in both modes: every Invited membership of that email
    /// (case-insensitive) becomes Accepted; every membership of it gets the account id
    /// (the one a membership seeded Accepted or Confirmed already has, if any); Revoked
    /// ones stay revoked. An address that already registered keeps its account (only
    /// its invitations are accepted again). Later Vaultwarden imports of the address,
    /// with mail off, add it Accepted.
    ///
    /// # Panics
    /// If key generation fails.
    #[allow(clippy::panic)]
    pub fn register(&self, email: &str) -> String {
        match accounts::register(&self.shared, email) {
            Ok(id) => id,
            Err(e) => panic!("fake vault: register({email}): {e}"),
        }
    }

    /// This member's confirmation is refused with `message`, as a policy (single
    /// organization, two-step login) would: the single confirm route answers 400 with
    /// Vaultwarden's error body carrying it, the bulk route puts it in the entry's
    /// `error`. Checked after the member's state, as Vaultwarden does.
    pub fn refuse_confirm(&self, member_id: &str, message: &str) {
        self.shared
            .lock()
            .refusals
            .insert(member_id.to_string(), message.to_string());
    }

    /// `None` if no key is stored for the membership; else whether the stored key (what
    /// the confirm call sent) decrypts with the member's private key to exactly the
    /// organization's 64 bytes. The confirm routes store any non-empty key, as the real
    /// vault does: this is how a test tells the member can read the organization's items.
    pub fn holds_org_key(&self, member_id: &str) -> Option<bool> {
        accounts::holds_org_key(&self.shared, member_id)
    }

    /// Vaultwarden with mail on: the mail server refuses invitations to this address, so
    /// an import that must invite it stops there with a 400 naming no address.
    pub fn refuse_mail(&self, email: &str) {
        self.shared.lock().mail_refused.insert(email.to_lowercase());
    }

    /// The mail server takes every address again.
    pub fn clear_mail_refusals(&self) {
        self.shared.lock().mail_refused.clear();
    }

    /// Sets a member's status, as an accept (1), confirm (2) or an admin's manual revoke
    /// (-1) would. Revoking remembers the prior status for a later restore. Unknown ids are
    /// ignored.
    pub fn set_status(&self, member_id: &str, status: i32) {
        self.shared.lock().set_status(member_id, status);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// Queues a fault (see [`Fault`]).
    pub fn fault(&self, f: Fault) {
        self.shared.lock().faults.push_back(f);
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// While down, every request is answered 503 with an empty body (still counted in
    /// [`Stats::requests`]; queued faults wait).
    pub fn set_down(&self, down: bool) {
        self.shared.lock().down = down;
    }

    /// Makes every access token issued so far expired, organization and user tokens alike
    /// (the next API call with one is 401).
    pub fn expire_tokens(&self) {
        self.shared.lock().tokens.clear();
    }

    /// The body of the last import applied.
    pub fn last_import(&self) -> Option<Value> {
        self.shared.lock().last_import.clone()
    }
}

impl std::fmt::Debug for FakeVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeVault")
            .field("url", &self.url())
            .field("mode", &self.shared.opts.mode)
            .finish()
    }
}

impl Drop for FakeVault {
    fn drop(&mut self) {
        self.server.stop();
    }
}
