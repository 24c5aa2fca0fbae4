//! The Envoy filter: a thin proxy-wasm adapter over the core's gate
//! ([`scim_edge::gate`]). Every decision is the gate's; this file moves headers and
//! bodies between Envoy and it.
//!
//! Host calls go through `proxy_wasm::hostcalls`, which return errors instead of
//! panicking, so no path here can panic: a panic would take down the worker's VM.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType};
use scim_edge::error::ScimError;
use scim_edge::gate::{Admitted, GateConfig, ResponsePlan};
use scim_edge::http::{header, Response};
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { gate: None }) });
}}

fn log(level: LogLevel, message: &str) {
    // Nothing else can be done if the host refuses a log line.
    let _ = hostcalls::log(level, message);
}

struct Root {
    gate: Option<Rc<GateConfig>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let text = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(Some(bytes)) => String::from_utf8(bytes).ok(),
            _ => None,
        };
        let Some(text) = text else {
            log(
                LogLevel::Error,
                "scim-edge: configuration: missing or not UTF-8 (expected a google.protobuf.StringValue holding JSON)",
            );
            return false;
        };
        match GateConfig::from_json(&text) {
            Ok(g) => {
                log(
                    LogLevel::Info,
                    &format!(
                        "scim-edge: configured {} organization(s) under {}",
                        g.orgs.len(),
                        g.path_prefixes.join(", ")
                    ),
                );
                self.gate = Some(Rc::new(g));
                true
            }
            Err(e) => {
                log(
                    LogLevel::Error,
                    &format!("scim-edge: bad configuration: {e}"),
                );
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter {
            gate: self.gate.clone(),
            admitted: None,
            had_length: false,
            answered: false,
            response_status: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One request's state.
struct Filter {
    gate: Option<Rc<GateConfig>>,
    admitted: Option<Admitted>,
    /// The request declared a content-length, which a rewrite must correct.
    had_length: bool,
    /// The filter answered locally: its own response passes through untouched.
    answered: bool,
    /// The upstream status, while its response body is buffered.
    response_status: Option<u16>,
}

impl Context for Filter {}

impl Filter {
    fn send(&mut self, r: &Response) -> Action {
        self.answered = true;
        let headers: Vec<(&str, &str)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Err(s) = hostcalls::send_http_response(u32::from(r.status), headers, Some(&r.body)) {
            log(
                LogLevel::Error,
                &format!("scim-edge: sending a local response failed: {s:?}"),
            );
            let _ = hostcalls::reset_http_request();
        }
        Action::Pause
    }

    fn reject(&mut self, e: &ScimError) -> Action {
        let r = Response::error(e);
        if let Some(cause) = &r.cause {
            log(LogLevel::Error, &format!("scim-edge: {cause}"));
        }
        self.send(&r)
    }

    fn screen(&mut self, gate: &GateConfig, body: &[u8], size: usize) -> Action {
        let Some(a) = &self.admitted else {
            return Action::Continue;
        };
        match a.screen_body(gate, body) {
            Err(e) => self.reject(&e),
            Ok(None) => Action::Continue,
            Ok(Some(new)) => {
                let set = hostcalls::set_buffer(BufferType::HttpRequestBody, 0, size, &new)
                    .and_then(|()| {
                        if self.had_length {
                            hostcalls::set_map_value(
                                MapType::HttpRequestHeaders,
                                "content-length",
                                Some(&new.len().to_string()),
                            )
                        } else {
                            Ok(())
                        }
                    });
                match set {
                    Ok(()) => Action::Continue,
                    Err(s) => self.reject(&ScimError::internal(format!(
                        "rewriting the request body failed: {s:?}"
                    ))),
                }
            }
        }
    }
}

fn map(kind: MapType) -> Vec<(String, String)> {
    hostcalls::get_map(kind).unwrap_or_default()
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        let Some(gate) = self.gate.clone() else {
            return self.reject(&ScimError::internal("the filter has no configuration"));
        };
        let headers = map(MapType::HttpRequestHeaders);
        let admitted = gate.admit(
            header(&headers, ":method").unwrap_or(""),
            header(&headers, ":path").unwrap_or(""),
            &headers,
        );
        match admitted {
            Err(e) => self.reject(&e),
            Ok(a) => {
                let reads = a.reads_body();
                self.had_length = header(&headers, "content-length").is_some();
                self.admitted = Some(a);
                match (reads, end_of_stream) {
                    (false, _) => Action::Continue,
                    (true, true) => self.screen(&gate, &[], 0),
                    // Held until the body is complete, so a rewrite can fix content-length.
                    (true, false) => Action::Pause,
                }
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(gate) = self.gate.clone() else {
            return Action::Continue;
        };
        if self.answered || !self.admitted.as_ref().is_some_and(Admitted::reads_body) {
            return Action::Continue;
        }
        if let Err(e) = gate.check_size(body_size) {
            return self.reject(&e);
        }
        if !end_of_stream {
            return Action::Pause;
        }
        match hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size) {
            Ok(body) => self.screen(&gate, &body.unwrap_or_default(), body_size),
            Err(s) => self.reject(&ScimError::internal(format!(
                "reading the request body failed: {s:?}"
            ))),
        }
    }

    fn on_http_response_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        if self.answered {
            return Action::Continue;
        }
        let Some(a) = &self.admitted else {
            return Action::Continue;
        };
        // Host calls that return data are the filter's main cost: skip them when the
        // gate has nothing to check.
        if !a.inspects_response(end_of_stream) {
            return Action::Continue;
        }
        let headers = map(MapType::HttpResponseHeaders);
        let Ok(status) = header(&headers, ":status").unwrap_or("").parse::<u16>() else {
            return Action::Continue;
        };
        match a.response_plan(status, &headers, end_of_stream) {
            ResponsePlan::Forward => Action::Continue,
            ResponsePlan::Replace(r) => self.send(&r),
            ResponsePlan::Buffer => {
                self.response_status = Some(status);
                Action::Pause
            }
        }
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let (Some(status), Some(a)) = (self.response_status, &self.admitted) else {
            return Action::Continue;
        };
        if !end_of_stream {
            return Action::Pause;
        }
        let body = match hostcalls::get_buffer(BufferType::HttpResponseBody, 0, body_size) {
            Ok(b) => b.unwrap_or_default(),
            Err(_) => return Action::Continue,
        };
        let Some(r) = a.finish_response(status, &body) else {
            return Action::Continue;
        };
        let len = r.body.len().to_string();
        let set = hostcalls::set_buffer(BufferType::HttpResponseBody, 0, body_size, &r.body)
            .and_then(|()| {
                r.headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .chain([("content-length", len.as_str())])
                    .try_for_each(|(k, v)| {
                        hostcalls::set_map_value(MapType::HttpResponseHeaders, k, Some(v))
                    })
            });
        if let Err(s) = set {
            log(
                LogLevel::Error,
                &format!("scim-edge: rewriting a response failed: {s:?}"),
            );
        }
        Action::Continue
    }
}
