//! `scim-edge-confirm`: finishes onboarding for the members an identity provider
//! provisioned through scim-edge, by confirming them in the vault (wrapping the
//! organization key to each one's public key), where an administrator would otherwise
//! do it by hand. Runs where the administrator runs their own vault client: the
//! organization key is unlocked here and never leaves this process.

mod args;
mod crypto;
mod decide;
mod fingerprint;
mod http;
mod pass;
mod scim;
mod vault;

use args::Args;
use fingerprint::Wordlist;
use http::Http;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vault::{Vault, VaultError};

/// The longest wait after failures in a row, with `--every`.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

fn fail(msg: &str, code: u8) -> ExitCode {
    eprintln!("scim-edge-confirm: {msg}");
    ExitCode::from(code)
}

/// One pass with an unlocked vault (unlocking it first when needed): 0 when all was done,
/// 1 when something failed, 2 on a login error (which no later pass would mend).
fn pass<'a>(
    http: &'a Http,
    args: &'a Args,
    words: Option<&Wordlist>,
    vault: &mut Option<Vault<'a>>,
) -> u8 {
    let v = match vault {
        Some(v) => v,
        None => match Vault::unlock(http, args) {
            Ok(v) => vault.insert(v),
            Err(VaultError::Login(e)) => {
                eprintln!("scim-edge-confirm: {e}");
                return 2;
            }
            Err(VaultError::Vault(e)) => {
                eprintln!("scim-edge-confirm: {e}");
                return 1;
            }
        },
    };
    let scim = scim::Scim::new(http, args);
    match pass::run(v, &scim, args, words, &mut std::io::stdout()) {
        Ok(o) if o.clean() => 0,
        Ok(_) => 1,
        Err(VaultError::Login(e)) => {
            eprintln!("scim-edge-confirm: {e}");
            2
        }
        Err(VaultError::Vault(e)) => {
            eprintln!("scim-edge-confirm: {e}");
            1
        }
    }
}

/// Sleeps `d`, or until a stop signal; whether one came.
fn sleep(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100).min(end - Instant::now()));
    }
    stop.load(Ordering::Relaxed)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match args::parse(&argv) {
        Ok(Some(a)) => a,
        Ok(None) => {
            print!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(&e, 2),
    };
    let words = match &args.wordlist {
        None => None,
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| format!("--wordlist {path}: {e}"))
            .and_then(|t| Wordlist::parse(&t).map_err(|e| format!("--wordlist {path}: {e}")))
        {
            Ok(w) => Some(w),
            Err(e) => return fail(&e, 2),
        },
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            return fail(&format!("cannot handle signal {sig}: {e}"), 2);
        }
    }
    let http = Http::new();
    let mut vault = None;
    let Some(every) = args.every else {
        return ExitCode::from(pass(&http, &args, words.as_ref(), &mut vault));
    };
    let mut failures: u32 = 0;
    loop {
        let code = pass(&http, &args, words.as_ref(), &mut vault);
        if code == 2 {
            return ExitCode::from(2);
        }
        failures = if code == 0 { 0 } else { failures + 1 };
        // After failures in a row the wait doubles, up to an hour (or `every`, if longer).
        let wait = every
            .saturating_mul(1 << failures.min(6))
            .min(MAX_BACKOFF.max(every));
        if sleep(wait, &stop) {
            return ExitCode::SUCCESS;
        }
    }
}
