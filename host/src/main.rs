//! `scim-edge-host --wasm <component.wasm> [--listen 127.0.0.1:3000] [--workers N]
//! [--profile spin|edge] [--no-batch] [--allow-outbound <entry>]...` serves a Spin HTTP
//! component with an in-memory key-value store, as `spin up` would on this machine.
//! Variables come from `SPIN_VARIABLE_<NAME>` environment variables or
//! `--variable name=value`, as with Spin.
//!
//! `--allow-outbound <entry>` (repeatable) grants the component outbound HTTP as one
//! `allowed_outbound_hosts` entry of `spin.toml` would: `https://vault.example.com`,
//! `http://127.0.0.1:8080`, `http://localhost:*`, `*://*.example.com:443`,
//! `https://{{ vault_host }}` (templates take the variables above). Without it every
//! outbound request is refused, as with `allowed_outbound_hosts = []`. Each response
//! reports its request's outbound requests in `x-outbound-calls`.
//!
//! `--profile edge` serves it as Akamai Functions would: without `wasi:keyvalue/atomics`
//! (a component importing it does not start) and with the edge store's key and value size
//! limits; the default is `spin`. `--no-batch` makes every `get-many` fail, as on Spin's
//! Redis backend. Each response reports its request's key-value traffic in the
//! `x-kv-calls`, `x-kv-reads` and `x-kv-writes` headers.

use scim_edge_host::{serve, Backend, Host, Profile};

const USAGE: &str = "\
usage: scim-edge-host --wasm <component.wasm> [--listen 127.0.0.1:3000] [--workers N]
         [--profile spin|edge] [--no-batch] [--allow-outbound <entry>]...
         [--variable name=value]...

Serves a Spin HTTP component with an in-memory key-value store, as `spin up` would.
Variables also come from SPIN_VARIABLE_<NAME> environment variables.

  --wasm FILE             the component
  --listen ADDR           where to listen (default 127.0.0.1:3000)
  --workers N             instances serving at once (default 2)
  --profile spin|edge     spin: with wasi:keyvalue/atomics; edge: Akamai Functions'
                          interfaces and limits, without atomics
  --no-batch              every get-many fails, as on Spin's Redis backend
  --allow-outbound ENTRY  grant outbound HTTP as one allowed_outbound_hosts entry
                          (repeatable; none: every outbound request is refused)
  --variable NAME=VALUE   a Spin variable
  -h, --help              this text
";
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut wasm = None;
    let mut listen = "127.0.0.1:3000".to_string();
    let mut workers = 2usize;
    let mut profile = Profile::Spin;
    let mut no_batch = false;
    let mut allow_outbound: Vec<String> = Vec::new();
    let mut variables: HashMap<String, String> = std::env::vars()
        .filter_map(|(k, v)| {
            k.strip_prefix("SPIN_VARIABLE_")
                .map(|n| (n.to_ascii_lowercase(), v))
        })
        .collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--wasm" => wasm = Some(value()?),
            "--listen" => listen = value()?,
            "--workers" => {
                workers = value()?
                    .parse()
                    .map_err(|_| "--workers takes a number".to_string())?
            }
            "--profile" => profile = value()?.parse()?,
            "--no-batch" => no_batch = true,
            "--allow-outbound" => allow_outbound.push(value()?),
            "--variable" => {
                let v = value()?;
                let (k, val) = v.split_once('=').ok_or("--variable takes name=value")?;
                variables.insert(k.to_string(), val.to_string());
            }
            other => return Err(format!("unknown argument {other} (see --help)")),
        }
    }
    let wasm = wasm.ok_or("--wasm <component.wasm> is required")?;
    let bytes = std::fs::read(&wasm).map_err(|e| format!("{wasm}: {e}"))?;
    let addr = listen
        .parse()
        .map_err(|e| format!("--listen {listen}: {e}"))?;
    let backend = Arc::new(Backend::default());
    backend.set_no_batch(no_batch);
    let host = Host::with_profile(&bytes, variables, backend, profile)
        .map_err(|e| format!("{wasm} on the {profile} profile: {e:#}"))?
        .allow_outbound(&allow_outbound)
        .map_err(|e| format!("--allow-outbound: {e:#}"))?;
    let running = serve(host, addr, workers).map_err(|e| format!("listen {listen}: {e}"))?;
    println!(
        "serving {wasm} as {profile}{} on http://{}; outbound HTTP to {}",
        if no_batch { " without get-many" } else { "" },
        running.addr,
        if allow_outbound.is_empty() {
            "nothing".to_string()
        } else {
            allow_outbound.join(", ")
        }
    );
    loop {
        std::thread::park();
    }
}

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scim-edge-host: {e}");
            ExitCode::from(2)
        }
    }
}
