//! The edge gate: a Spin component over the core's gate ([`scim_edge::gate`]), as the
//! Envoy filter is a proxy-wasm one. It reads two Spin variables, `gate` (the filter's
//! JSON configuration) and `upstream` (the vault's origin). A request is decided on its
//! head first, so a refusal does not wait for the body; what is admitted is read, screened
//! and sent on ([`scim_edge::gate::forward`]). It needs no key-value store, so it runs on
//! every Spin host.

use scim_edge::error::{ErrorKind, ScimError};
use scim_edge::gate::forward::{admit, Upstream};
use scim_edge::gate::GateConfig;
use scim_edge::http::Response;
use scim_edge::spin_http::{read_body, read_head, respond, SpinOutbound};
use spin_sdk::http::{IncomingRequest, ResponseOutparam};

/// Reads both variables; an error names the variable and the setting at fault.
fn load() -> Result<(GateConfig, Upstream), String> {
    let var = |name: &str| {
        spin_sdk::variables::get(name).map_err(|e| format!("variable '{name}': {e:?}"))
    };
    let gate = GateConfig::from_json(&var("gate")?).map_err(|e| format!("variable 'gate': {e}"))?;
    let upstream =
        Upstream::parse(&var("upstream")?).map_err(|e| format!("variable 'upstream': {e}"))?;
    Ok((gate, upstream))
}

#[spin_sdk::http_component]
fn serve(req: IncomingRequest, out: ResponseOutparam) {
    let head = read_head(&req);
    let (method, path) = (head.method.clone(), head.path.clone());
    let r = match load() {
        Ok((gate, upstream)) => match admit(&gate, &upstream, head) {
            Ok(pending) => {
                let body = read_body(&req, pending.body_limit());
                pending.send(&body, &SpinOutbound)
            }
            Err(refused) => refused,
        },
        Err(e) => {
            // Fail closed: nothing passes a gate that is not configured.
            eprintln!("scim-edge-gate: configuration error: {e}");
            Response::error(&ScimError::new(
                ErrorKind::Internal,
                "The gate is not configured correctly; see the server log",
            ))
        }
    };
    if let Some(cause) = &r.cause {
        eprintln!(
            "scim-edge-gate: {} {} -> {}: {cause}",
            method, path, r.status
        );
    }
    respond(out, r);
}
