//! What a request asks of an organization, parsed once from its method and the path
//! after the organization: [`Route::parse`] is the one place that reads them. The route
//! then says what it needs (a key, a body), whether the vault drains after its answer,
//! and its template for logs.

use super::console::Asset;
use crate::schema::ResourceKind;

/// One request's route inside an organization. Resource segments match in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'p> {
    /// `/Users` or `/Groups`, or one resource under them.
    Resource(ResourceKind, ResourceOp<'p>),
    /// `POST /.search` across both types (`None`), or under one type's endpoint.
    Search(Option<ResourceKind>),
    /// `POST /Bulk`.
    Bulk,
    /// `GET` of a discovery endpoint.
    Discovery(Discovery<'p>),
    /// `POST /_repair`.
    Repair,
    /// `/_vault/sync`, `/_vault/status` or `/_vault/observed`, with the method each takes.
    Vault(VaultOp),
    /// `GET /_console` and its assets (no key: they hold no data), or the overview the
    /// page reads (`None`).
    Console(Option<Asset>),
    /// `/Me` and below, under any method: not implemented (501), since keys belong to
    /// organizations, not users.
    Me,
    /// A method the endpoint does not take (405).
    NotAllowed {
        /// The endpoint's template.
        template: &'static str,
        /// The methods it takes, for the error's detail.
        allow: &'static str,
        /// What is checked before the refusal.
        first: First,
    },
    /// No endpoint at this path (404); what is checked before the refusal.
    Unknown(First),
}

/// What one resource route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceOp<'p> {
    /// `GET /Users`: a filtered, sorted page.
    List,
    /// `POST /Users`.
    Create,
    /// `GET /Users/{id}`.
    Get(&'p str),
    /// `PUT /Users/{id}`.
    Replace(&'p str),
    /// `PATCH /Users/{id}`.
    Patch(&'p str),
    /// `DELETE /Users/{id}`.
    Delete(&'p str),
}

/// The discovery endpoints (RFC 7644 section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery<'p> {
    /// `/ServiceProviderConfig`.
    ServiceProviderConfig,
    /// `/ResourceTypes`.
    ResourceTypes,
    /// `/ResourceTypes/{name}`, as the client spelled the name.
    ResourceType(&'p str),
    /// `/Schemas`.
    Schemas,
    /// `/Schemas/{id}`, as the client spelled the URN.
    Schema(&'p str),
}

/// The vault's own routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultOp {
    /// `POST /_vault/sync`: a drain now.
    Sync,
    /// `GET /_vault/status`.
    Status,
    /// `POST /_vault/observed`: the Confirm agent's report of the members' statuses.
    Observed,
    /// `POST /_vault/retry`: a parked entry back in the outbox, and a drain.
    Retry,
}

/// What a refused request still meets before its refusal, as the endpoints around it do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum First {
    /// Nothing: the refusal comes at once.
    Nothing,
    /// The body: under `/Users`, `/Groups`, `/.search` and `/Bulk`, a POST, PUT or PATCH
    /// has its body read (and perhaps refused) before its method or path is.
    Body,
    /// The vault: under `/_vault/{op}`, an organization without a vault says so first.
    Vault,
}

impl<'p> Route<'p> {
    /// The route for a method and the path segments after the organization.
    pub fn parse(method: &str, rest: &[&'p str]) -> Self {
        use Discovery::{ResourceType, ResourceTypes, Schema, Schemas, ServiceProviderConfig};
        let method = method.to_ascii_uppercase();
        let (head, tail) = match rest.split_first() {
            Some((head, tail)) => (head.to_ascii_lowercase(), tail),
            None => (String::new(), rest),
        };
        let first = match head.as_str() {
            "users" | "groups" | ".search" | "bulk"
                if matches!(method.as_str(), "POST" | "PUT" | "PATCH") =>
            {
                First::Body
            }
            "_vault" if tail.len() == 1 => First::Vault,
            _ => First::Nothing,
        };
        // The endpoints that take one method, each with it.
        let (route, allow) = match (head.as_str(), tail) {
            ("users", _) => return Self::resource(ResourceKind::User, tail, &method, first),
            ("groups", _) => return Self::resource(ResourceKind::Group, tail, &method, first),
            (".search", []) => (Route::Search(None), "POST"),
            ("bulk", []) => (Route::Bulk, "POST"),
            ("serviceproviderconfig", []) => (Route::Discovery(ServiceProviderConfig), "GET"),
            ("resourcetypes", []) => (Route::Discovery(ResourceTypes), "GET"),
            ("resourcetypes", [name]) => (Route::Discovery(ResourceType(name)), "GET"),
            ("schemas", []) => (Route::Discovery(Schemas), "GET"),
            ("schemas", [id]) => (Route::Discovery(Schema(id)), "GET"),
            ("_repair", []) => (Route::Repair, "POST"),
            ("_vault", [op]) if op.eq_ignore_ascii_case("sync") => {
                (Route::Vault(VaultOp::Sync), "POST")
            }
            ("_vault", [op]) if op.eq_ignore_ascii_case("status") => {
                (Route::Vault(VaultOp::Status), "GET")
            }
            ("_vault", [op]) if op.eq_ignore_ascii_case("observed") => {
                (Route::Vault(VaultOp::Observed), "POST")
            }
            ("_vault", [op]) if op.eq_ignore_ascii_case("retry") => {
                (Route::Vault(VaultOp::Retry), "POST")
            }
            ("_console", []) => (Route::Console(Some(Asset::Page)), "GET"),
            ("_console", ["console.js"]) => (Route::Console(Some(Asset::Script)), "GET"),
            ("_console", ["console.css"]) => (Route::Console(Some(Asset::Style)), "GET"),
            ("_console", ["overview"]) => (Route::Console(None), "GET"),
            ("me", _) => return Route::Me,
            _ => return Route::Unknown(first),
        };
        route.only(&method, allow, first)
    }

    /// `/Users` or `/Groups` and below.
    fn resource(kind: ResourceKind, tail: &[&'p str], method: &str, first: First) -> Self {
        let op = match (tail, method) {
            ([], "GET") => ResourceOp::List,
            ([], "POST") => ResourceOp::Create,
            ([], _) => return Route::Resource(kind, ResourceOp::List).refused("GET, POST", first),
            ([s], _) if s.eq_ignore_ascii_case(".search") => {
                return Route::Search(Some(kind)).only(method, "POST", first)
            }
            ([id], "GET") => ResourceOp::Get(id),
            ([id], "PUT") => ResourceOp::Replace(id),
            ([id], "PATCH") => ResourceOp::Patch(id),
            ([id], "DELETE") => ResourceOp::Delete(id),
            ([id], _) => {
                return Route::Resource(kind, ResourceOp::Get(id))
                    .refused("GET, PUT, PATCH, DELETE", first)
            }
            _ => return Route::Unknown(first),
        };
        Route::Resource(kind, op)
    }

    /// This route when asked with the one method its endpoint takes; a 405 otherwise.
    fn only(self, method: &str, allow: &'static str, first: First) -> Self {
        if method == allow {
            self
        } else {
            self.refused(allow, first)
        }
    }

    /// A 405 at this route's endpoint, which takes only `allow`.
    fn refused(self, allow: &'static str, first: First) -> Self {
        Route::NotAllowed {
            template: self.template(),
            allow,
            first,
        }
    }

    /// The route's template, ids replaced by their names (`/Users/{id}`): what a log line
    /// may name without naming a resource.
    pub fn template(&self) -> &'static str {
        match *self {
            Route::Resource(kind, op) => match (kind, op) {
                (ResourceKind::User, ResourceOp::List | ResourceOp::Create) => "/Users",
                (ResourceKind::User, _) => "/Users/{id}",
                (ResourceKind::Group, ResourceOp::List | ResourceOp::Create) => "/Groups",
                (ResourceKind::Group, _) => "/Groups/{id}",
            },
            Route::Search(None) => "/.search",
            Route::Search(Some(ResourceKind::User)) => "/Users/.search",
            Route::Search(Some(ResourceKind::Group)) => "/Groups/.search",
            Route::Bulk => "/Bulk",
            Route::Discovery(d) => match d {
                Discovery::ServiceProviderConfig => "/ServiceProviderConfig",
                Discovery::ResourceTypes => "/ResourceTypes",
                Discovery::ResourceType(_) => "/ResourceTypes/{name}",
                Discovery::Schemas => "/Schemas",
                Discovery::Schema(_) => "/Schemas/{id}",
            },
            Route::Repair => "/_repair",
            Route::Vault(VaultOp::Sync) => "/_vault/sync",
            Route::Vault(VaultOp::Status) => "/_vault/status",
            Route::Vault(VaultOp::Observed) => "/_vault/observed",
            Route::Vault(VaultOp::Retry) => "/_vault/retry",
            Route::Console(Some(Asset::Page)) => "/_console",
            Route::Console(Some(Asset::Script)) => "/_console/console.js",
            Route::Console(Some(Asset::Style)) => "/_console/console.css",
            Route::Console(None) => "/_console/overview",
            Route::Me => "/Me",
            Route::NotAllowed { template, .. } => template,
            Route::Unknown(First::Vault) => "/_vault/{unknown}",
            Route::Unknown(_) => "/{unknown}",
        }
    }

    /// Whether the organization's bearer key must be presented: everywhere but the
    /// console's page and assets, which hold no data.
    pub fn needs_key(&self) -> bool {
        !matches!(self, Route::Console(Some(_)))
    }

    /// Whether the request's JSON body is read (and checked against the limits) before
    /// the route runs or is refused.
    pub fn takes_body(&self) -> bool {
        matches!(
            self,
            Route::Resource(
                _,
                ResourceOp::Create | ResourceOp::Replace(_) | ResourceOp::Patch(_)
            ) | Route::Search(_)
                | Route::Bulk
                | Route::Vault(VaultOp::Observed | VaultOp::Retry)
                | Route::NotAllowed {
                    first: First::Body,
                    ..
                }
                | Route::Unknown(First::Body)
        )
    }

    /// Whether a success here changed resources, so that the organization's vault drains
    /// after the answer has been sent.
    pub fn drains_after(&self) -> bool {
        matches!(
            self,
            Route::Resource(
                _,
                ResourceOp::Create
                    | ResourceOp::Replace(_)
                    | ResourceOp::Patch(_)
                    | ResourceOp::Delete(_)
            ) | Route::Bulk
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Discovery::{ResourceType, ResourceTypes, Schema, Schemas, ServiceProviderConfig};
    use ResourceKind::{Group, User};
    use ResourceOp::{Create, Delete, Get, List, Patch, Replace};
    use Route::{Bulk, Me, Repair, Resource, Search, Unknown};

    fn parse(method: &str, path: &'static str) -> Route<'static> {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        Route::parse(method, &segs)
    }

    #[test]
    fn each_endpoint_parses_to_its_route() {
        assert_eq!(parse("GET", "/Users"), Resource(User, List));
        assert_eq!(parse("POST", "/Groups"), Resource(Group, Create));
        assert_eq!(parse("GET", "/Users/7"), Resource(User, Get("7")));
        assert_eq!(parse("PUT", "/Groups/7"), Resource(Group, Replace("7")));
        assert_eq!(parse("PATCH", "/Users/7"), Resource(User, Patch("7")));
        assert_eq!(parse("DELETE", "/Groups/7"), Resource(Group, Delete("7")));
        assert_eq!(parse("POST", "/.search"), Search(None));
        assert_eq!(parse("POST", "/Users/.search"), Search(Some(User)));
        assert_eq!(parse("POST", "/Bulk"), Bulk);
        let discovery = |path| match parse("GET", path) {
            Route::Discovery(d) => Some(d),
            _ => None,
        };
        assert_eq!(
            discovery("/ServiceProviderConfig"),
            Some(ServiceProviderConfig)
        );
        assert_eq!(discovery("/ResourceTypes"), Some(ResourceTypes));
        assert_eq!(discovery("/ResourceTypes/User"), Some(ResourceType("User")));
        assert_eq!(discovery("/Schemas"), Some(Schemas));
        assert_eq!(discovery("/Schemas/urn:x"), Some(Schema("urn:x")));
        assert_eq!(parse("POST", "/_repair"), Repair);
        assert_eq!(parse("POST", "/_vault/sync"), Route::Vault(VaultOp::Sync));
        assert_eq!(
            parse("GET", "/_vault/status"),
            Route::Vault(VaultOp::Status)
        );
        assert_eq!(
            parse("POST", "/_vault/observed"),
            Route::Vault(VaultOp::Observed)
        );
        assert_eq!(parse("GET", "/Me"), Me);
        assert_eq!(parse("DELETE", "/Me/x/y"), Me);
    }

    #[test]
    fn templates_name_the_endpoint_not_the_resource() {
        let cases = [
            ("GET", "/Users", "/Users"),
            ("POST", "/Groups", "/Groups"),
            ("GET", "/Users/7", "/Users/{id}"),
            ("PUT", "/Groups/7", "/Groups/{id}"),
            ("PATCH", "/Users/7", "/Users/{id}"),
            ("DELETE", "/Groups/7", "/Groups/{id}"),
            ("POST", "/.search", "/.search"),
            ("POST", "/Users/.search", "/Users/.search"),
            ("POST", "/Groups/.search", "/Groups/.search"),
            ("POST", "/Bulk", "/Bulk"),
            ("GET", "/ServiceProviderConfig", "/ServiceProviderConfig"),
            ("GET", "/ResourceTypes", "/ResourceTypes"),
            ("GET", "/ResourceTypes/User", "/ResourceTypes/{name}"),
            ("GET", "/Schemas", "/Schemas"),
            ("GET", "/Schemas/urn:x", "/Schemas/{id}"),
            ("POST", "/_repair", "/_repair"),
            ("POST", "/_vault/sync", "/_vault/sync"),
            ("GET", "/_vault/status", "/_vault/status"),
            ("POST", "/_vault/observed", "/_vault/observed"),
            ("GET", "/Me", "/Me"),
            ("GET", "/Widgets/7", "/{unknown}"),
            ("GET", "/_vault/other", "/_vault/{unknown}"),
        ];
        for (method, path, template) in cases {
            assert_eq!(parse(method, path).template(), template, "{method} {path}");
        }
    }

    #[test]
    fn segments_and_methods_match_in_any_case() {
        assert_eq!(parse("get", "/users"), Resource(User, List));
        assert_eq!(parse("Post", "/GROUPS/.SEARCH"), Search(Some(Group)));
        assert_eq!(parse("post", "/BULK"), Bulk);
        assert_eq!(
            parse("GET", "/serviceproviderconfig"),
            Route::Discovery(ServiceProviderConfig)
        );
        assert_eq!(parse("POST", "/_Vault/SYNC"), Route::Vault(VaultOp::Sync));
        assert_eq!(parse("POST", "/_REPAIR"), Repair);
        assert_eq!(parse("GET", "/me"), Me);
        // Ids and names keep the client's spelling.
        assert_eq!(parse("GET", "/users/AbC"), Resource(User, Get("AbC")));
        assert_eq!(
            parse("GET", "/resourcetypes/group"),
            Route::Discovery(ResourceType("group"))
        );
    }

    #[test]
    fn a_method_the_endpoint_does_not_take_is_refused_with_those_it_does() {
        let any_id = "GET, PUT, PATCH, DELETE";
        let cases = [
            ("PUT", "/Users", "GET, POST", First::Body),
            ("DELETE", "/Groups", "GET, POST", First::Nothing),
            ("POST", "/Users/7", any_id, First::Body),
            ("HEAD", "/Groups/7", any_id, First::Nothing),
            ("GET", "/Users/.search", "POST", First::Nothing),
            ("PATCH", "/.search", "POST", First::Body),
            ("GET", "/Bulk", "POST", First::Nothing),
            ("PUT", "/Bulk", "POST", First::Body),
            ("POST", "/ServiceProviderConfig", "GET", First::Nothing),
            ("PUT", "/ResourceTypes", "GET", First::Nothing),
            ("DELETE", "/ResourceTypes/User", "GET", First::Nothing),
            ("PATCH", "/Schemas", "GET", First::Nothing),
            ("POST", "/Schemas/urn:x", "GET", First::Nothing),
            ("GET", "/_repair", "POST", First::Nothing),
            ("GET", "/_vault/sync", "POST", First::Vault),
            ("POST", "/_vault/status", "GET", First::Vault),
            ("GET", "/_vault/observed", "POST", First::Vault),
        ];
        for (method, path, allow, first) in cases {
            // A refusal's template is its endpoint's, as a method it takes would find it.
            let allowed = allow.split(", ").next().unwrap_or(allow);
            let template = parse(allowed, path).template();
            let route = parse(method, path);
            let refused = Route::NotAllowed {
                template,
                allow,
                first,
            };
            assert_eq!(route, refused, "{method} {path}");
            assert_eq!(route.takes_body(), first == First::Body, "{method} {path}");
            assert!(!route.drains_after(), "{method} {path}");
        }
    }

    #[test]
    fn a_path_with_no_endpoint_is_unknown() {
        let cases = [
            ("GET", "", First::Nothing),
            ("GET", "/Widgets", First::Nothing),
            ("POST", "/Widgets", First::Nothing),
            ("GET", "/Users/a/b", First::Nothing),
            ("POST", "/Users/a/b", First::Body),
            ("PUT", "/.search/x", First::Body),
            ("POST", "/Bulk/x", First::Body),
            ("GET", "/ServiceProviderConfig/x", First::Nothing),
            ("GET", "/Schemas/a/b", First::Nothing),
            ("POST", "/_repair/x", First::Nothing),
            ("POST", "/_vault", First::Nothing),
            ("POST", "/_vault/sync/x", First::Nothing),
            ("POST", "/_vault/other", First::Vault),
        ];
        for (method, path, first) in cases {
            let route = parse(method, path);
            assert_eq!(route, Unknown(first), "{method} {path}");
            assert_eq!(route.takes_body(), first == First::Body, "{method} {path}");
            assert!(!route.drains_after(), "{method} {path}");
        }
    }

    #[test]
    fn routes_say_what_they_need_and_whether_the_vault_drains() {
        // (method, path, takes a body, drains after)
        let cases = [
            ("GET", "/Users", false, false),
            ("POST", "/Users", true, true),
            ("GET", "/Users/7", false, false),
            ("PUT", "/Users/7", true, true),
            ("PATCH", "/Groups/7", true, true),
            ("DELETE", "/Groups/7", false, true),
            ("POST", "/Users/.search", true, false),
            ("POST", "/.search", true, false),
            ("POST", "/Bulk", true, true),
            ("GET", "/Schemas", false, false),
            ("POST", "/_repair", false, false),
            ("POST", "/_vault/sync", false, false),
            ("GET", "/_vault/status", false, false),
            ("POST", "/_vault/observed", true, false),
            ("POST", "/_vault/retry", true, false),
            ("GET", "/_console/overview", false, false),
            ("POST", "/Me", false, false),
        ];
        // The console's page and assets hold no data: they need no key.
        for path in ["/_console", "/_console/console.js", "/_console/console.css"] {
            let route = parse("GET", path);
            assert!(matches!(route, Route::Console(Some(_))), "{path}");
            assert!(!route.needs_key(), "{path}");
            assert_eq!(route.template(), path);
            assert!(parse("POST", path).needs_key(), "{path}");
        }
        for (method, path, body, drains) in cases {
            let route = parse(method, path);
            assert!(route.needs_key(), "{method} {path}");
            assert_eq!(route.takes_body(), body, "{method} {path}");
            assert_eq!(route.drains_after(), drains, "{method} {path}");
        }
    }
}
