//! The discovery endpoints (RFC 7644 section 4): what this service provider supports,
//! its resource types and its schemas, the vault extension only where there is a vault.

use super::{Discovery, Router, Target};
use crate::error::{Result, ScimError};
use crate::http::Response;
use crate::schema::{discovered_schemas, ResourceKind};
use crate::service::list_response;
use serde_json::{json, Value};

impl Router<'_> {
    pub(super) fn discovery(&self, t: &Target<'_>, d: Discovery<'_>) -> Result<Response> {
        let vault = t.cfg.vault.is_some();
        let found = match d {
            Discovery::ServiceProviderConfig => self.service_provider_config(&t.base),
            Discovery::ResourceTypes => list_response(
                2,
                1,
                vec![
                    ResourceKind::User.resource_type_json(&t.base, vault),
                    ResourceKind::Group.resource_type_json(&t.base, vault),
                ],
            ),
            Discovery::ResourceType(name) => [ResourceKind::User, ResourceKind::Group]
                .into_iter()
                .find(|k| name.eq_ignore_ascii_case(k.name()))
                .map(|k| k.resource_type_json(&t.base, vault))
                .ok_or_else(|| ScimError::not_found("No such resource type"))?,
            Discovery::Schemas => {
                let all = discovered_schemas(vault);
                list_response(
                    all.len(),
                    1,
                    all.iter().map(|s| s.to_json(&t.base)).collect(),
                )
            }
            Discovery::Schema(id) => discovered_schemas(vault)
                .into_iter()
                .find(|s| id.eq_ignore_ascii_case(s.id))
                .map(|s| s.to_json(&t.base))
                .ok_or_else(|| ScimError::not_found("No such schema"))?,
        };
        Ok(Response::json(200, &found))
    }

    fn service_provider_config(&self, base: &str) -> Value {
        let l = &self.config.limits;
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
            "patch": {"supported": true},
            "bulk": {"supported": true, "maxOperations": l.max_bulk_ops, "maxPayloadSize": l.max_payload},
            "filter": {"supported": true, "maxResults": l.max_count},
            "changePassword": {"supported": false},
            "sort": {"supported": true},
            "etag": {"supported": true},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "Bearer key",
                "description": "A per-organization key sent as 'Authorization: Bearer <key>'",
                "primary": true,
            }],
            "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
        })
    }
}
