//! One pass: list the members, decide for each Accepted one, confirm those the rules
//! let through, print one JSON line per decision and a summary, and report the members'
//! statuses back to scim-edge.

use crate::args::Args;
use crate::crypto;
use crate::decide::{self, ACCEPTED, CONFIRMED};
use crate::fingerprint::{self, Wordlist};
use crate::scim::Scim;
use crate::vault::{Member, Vault, VaultError};
use serde_json::{json, Value};
use std::io::Write;

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub confirmed: u32,
    pub would_confirm: u32,
    pub skipped: u32,
    pub failed: u32,
    /// The report to scim-edge failed.
    pub unreported: bool,
}

impl Outcome {
    /// Whether everything meant was done.
    pub fn clean(&self) -> bool {
        self.failed == 0 && !self.unreported
    }
}

fn now() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    scim_edge::time::format_millis(ms)
}

/// One decision, as its output line.
struct Line<'m> {
    member: &'m Member,
    user_id: Option<&'m str>,
    fingerprint: Option<String>,
    phrase: Option<String>,
}

impl Line<'_> {
    fn print(&self, out: &mut dyn Write, action: &str, reason: Option<&str>) {
        let mut v = json!({
            "time": now(),
            "email": self.member.email,
            "memberId": self.member.id,
            "userId": self.user_id.or(self.member.user_id.as_deref()),
            "fingerprint": self.fingerprint,
            "action": action,
            "reason": reason,
        });
        if let Some(p) = &self.phrase {
            v["phrase"] = Value::String(p.clone());
        }
        let _ = writeln!(out, "{v}");
        let _ = out.flush();
    }
}

/// Runs one pass. A vault or login failure before any decision is the error; once
/// decisions are made, each failure is its member's line.
pub fn run(
    vault: &mut Vault<'_>,
    scim: &Scim<'_>,
    args: &Args,
    words: Option<&Wordlist>,
    out: &mut dyn Write,
) -> Result<Outcome, VaultError> {
    let mut members = vault.members()?;
    let accepted = members.iter().filter(|m| m.status == ACCEPTED).count();
    let mut o = Outcome::default();
    let mut candidates: Vec<&Member> = Vec::new();
    for m in members.iter().filter(|m| m.status == ACCEPTED) {
        let line = Line {
            member: m,
            user_id: None,
            fingerprint: None,
            phrase: None,
        };
        if let Some(why) = decide::by_vault(m, &args.allow_domains) {
            o.skipped += 1;
            line.print(out, "skipped", Some(&why));
            continue;
        }
        match scim.user_of(m) {
            Err(e) => {
                o.failed += 1;
                line.print(
                    out,
                    "failed",
                    Some(&format!("scim-edge could not be asked: {e}")),
                );
            }
            Ok(user) => match decide::by_scim(m, user.as_ref()) {
                Some(why) => {
                    o.skipped += 1;
                    line.print(out, "skipped", Some(&why));
                }
                None => candidates.push(m),
            },
        }
    }
    let keys = vault.public_keys(&candidates)?;
    let mut wrapped: Vec<(String, String)> = Vec::new();
    let mut lines: Vec<Line<'_>> = Vec::new();
    for m in &candidates {
        let key = keys.iter().find(|(id, _)| *id == m.id).map(|(_, k)| k);
        let user_id = key.and_then(|k| k.user_id.as_deref());
        let mut line = Line {
            member: m,
            user_id,
            fingerprint: None,
            phrase: None,
        };
        let Some(spki) = key.and_then(|k| k.spki.as_deref()) else {
            o.failed += 1;
            line.print(
                out,
                "failed",
                Some("the vault has no public key for this member"),
            );
            continue;
        };
        line.fingerprint = Some(fingerprint::hex(spki));
        if let (Some(w), Some(uid)) = (words, user_id.or(m.user_id.as_deref())) {
            line.phrase = w.phrase(uid, spki).ok();
        }
        match crypto::wrap(vault.org_key(), spki) {
            Err(e) => {
                o.failed += 1;
                line.print(out, "failed", Some(&e.0));
            }
            Ok(_) if args.dry_run => {
                o.would_confirm += 1;
                line.print(out, "would-confirm", Some("dry run"));
            }
            Ok(k) => {
                wrapped.push((m.id.clone(), k));
                lines.push(line);
            }
        }
    }
    let results = if wrapped.is_empty() {
        Vec::new()
    } else {
        vault.confirm(&wrapped)?
    };
    let mut confirmed_ids = Vec::new();
    for (line, (id, error)) in lines.iter().zip(&results) {
        match error {
            None => {
                o.confirmed += 1;
                confirmed_ids.push(id.clone());
                line.print(out, "confirmed", None);
            }
            Some(e) => {
                o.failed += 1;
                line.print(out, "failed", Some(&format!("the vault refused: {e}")));
            }
        }
    }
    for m in members.iter_mut().filter(|m| confirmed_ids.contains(&m.id)) {
        m.status = CONFIRMED;
    }
    let mut reported = Value::Null;
    if !args.dry_run {
        match scim.report(&members, (o.confirmed, o.skipped, o.failed)) {
            Ok(n) => reported = json!(n),
            Err(e) => {
                o.unreported = true;
                eprintln!("scim-edge-confirm: {e}");
            }
        }
    }
    let by_status = |s: i64| members.iter().filter(|m| m.status == s).count();
    let _ = writeln!(
        out,
        "{}",
        json!({
            "time": now(),
            "summary": {
                "members": members.len(),
                "accepted": accepted,
                "confirmed": o.confirmed,
                "would-confirm": o.would_confirm,
                "skipped": o.skipped,
                "failed": o.failed,
                "stillAccepted": by_status(ACCEPTED),
                "confirmedInVault": by_status(CONFIRMED),
                "reported": reported,
                "dryRun": args.dry_run,
            }
        })
    );
    let _ = out.flush();
    Ok(o)
}
