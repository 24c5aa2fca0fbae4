//! Attribute definitions as data. One table drives validation, projection, filter
//! case-exactness and the `/Schemas` output.

use serde_json::{json, Map, Value};

/// Core User schema URN.
pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Enterprise User extension URN.
pub const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Core Group schema URN.
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// RFC 7643 2.3 data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    /// string
    String,
    /// boolean
    Boolean,
    /// decimal
    Decimal,
    /// integer
    Integer,
    /// dateTime
    DateTime,
    /// reference
    Reference,
    /// binary
    Binary,
    /// complex
    Complex,
}

impl AttrType {
    fn name(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Reference => "reference",
            AttrType::Binary => "binary",
            AttrType::Complex => "complex",
        }
    }
}

/// RFC 7643 7 mutability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    /// Set by the service only.
    ReadOnly,
    /// Settable.
    ReadWrite,
    /// Settable once.
    Immutable,
    /// Accepted, never returned.
    WriteOnly,
}

/// RFC 7643 7 returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// Always returned.
    Always,
    /// Never returned.
    Never,
    /// Returned unless excluded.
    Default,
    /// Returned only when asked for.
    Request,
}

/// One attribute (or sub-attribute) definition.
#[derive(Debug, Clone, Copy)]
pub struct AttrDef {
    /// Canonical name.
    pub name: &'static str,
    /// Data type.
    pub ty: AttrType,
    /// Multi-valued.
    pub multi: bool,
    /// Required.
    pub required: bool,
    /// Case-exact comparison.
    pub case_exact: bool,
    /// Mutability.
    pub mutability: Mutability,
    /// Returned.
    pub returned: Returned,
    /// Unique within the service provider.
    pub unique: bool,
    /// Canonical values (advisory).
    pub canonical: &'static [&'static str],
    /// Reference types, for references.
    pub reference_types: &'static [&'static str],
    /// Sub-attributes of a complex attribute.
    pub sub: &'static [AttrDef],
    /// Human-readable description.
    pub description: &'static str,
}

const fn attr(name: &'static str, description: &'static str) -> AttrDef {
    AttrDef {
        name,
        ty: AttrType::String,
        multi: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        unique: false,
        canonical: &[],
        reference_types: &[],
        sub: &[],
        description,
    }
}

impl AttrDef {
    const fn ty(mut self, ty: AttrType) -> Self {
        self.ty = ty;
        self
    }
    const fn multi(mut self) -> Self {
        self.multi = true;
        self
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    const fn mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }
    const fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }
    const fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    const fn canonical(mut self, c: &'static [&'static str]) -> Self {
        self.canonical = c;
        self
    }
    const fn refs(mut self, r: &'static [&'static str]) -> Self {
        self.ty = AttrType::Reference;
        self.reference_types = r;
        self
    }
    const fn complex(mut self, sub: &'static [AttrDef]) -> Self {
        self.ty = AttrType::Complex;
        self.sub = sub;
        self
    }

    /// A sub-attribute by name, case-insensitively.
    pub fn sub_attr(&self, name: &str) -> Option<&'static AttrDef> {
        self.sub.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Whether clients may write this attribute.
    pub fn writable(&self) -> bool {
        self.mutability != Mutability::ReadOnly
    }

    fn to_json(self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("type".into(), json!(self.ty.name()));
        m.insert("multiValued".into(), json!(self.multi));
        m.insert("description".into(), json!(self.description));
        m.insert("required".into(), json!(self.required));
        if self.ty != AttrType::Complex && self.ty != AttrType::Boolean {
            m.insert("caseExact".into(), json!(self.case_exact));
        }
        if !self.canonical.is_empty() {
            m.insert("canonicalValues".into(), json!(self.canonical));
        }
        if !self.reference_types.is_empty() {
            m.insert("referenceTypes".into(), json!(self.reference_types));
        }
        let mutability = match self.mutability {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        };
        m.insert("mutability".into(), json!(mutability));
        let returned = match self.returned {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        };
        m.insert("returned".into(), json!(returned));
        m.insert(
            "uniqueness".into(),
            json!(if self.unique { "server" } else { "none" }),
        );
        if !self.sub.is_empty() {
            let sub: Vec<Value> = self.sub.iter().map(|a| a.to_json()).collect();
            m.insert("subAttributes".into(), Value::Array(sub));
        }
        Value::Object(m)
    }
}

/// A schema: URN, name and attributes.
#[derive(Debug)]
pub struct Schema {
    /// The schema URN.
    pub id: &'static str,
    /// Short name.
    pub name: &'static str,
    /// Description.
    pub description: &'static str,
    /// Top-level attributes.
    pub attributes: &'static [AttrDef],
}

impl Schema {
    /// A top-level attribute by name, case-insensitively.
    pub fn attr(&self, name: &str) -> Option<&'static AttrDef> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The `/Schemas` representation.
    pub fn to_json(&self, base: &str) -> Value {
        let attrs: Vec<Value> = self.attributes.iter().map(|a| a.to_json()).collect();
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": attrs,
            "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{}", self.id)},
        })
    }
}

const TYPE_WORK_HOME: &[&str] = &["work", "home", "other"];

const MULTI_STRING_SUB: &[AttrDef] = &[
    attr("value", "The value."),
    attr("display", "A human-readable name."),
    attr("type", "A label for the value's function."),
    attr("primary", "Marks the preferred value.").ty(AttrType::Boolean),
];

const EMAIL_SUB: &[AttrDef] = &[
    attr("value", "The email address."),
    attr("display", "A human-readable name."),
    attr("type", "A label: work, home or other.").canonical(TYPE_WORK_HOME),
    attr("primary", "Marks the primary email.").ty(AttrType::Boolean),
];

const PHONE_SUB: &[AttrDef] = &[
    attr("value", "The phone number."),
    attr("display", "A human-readable name."),
    attr("type", "A label for the number.")
        .canonical(&["work", "home", "mobile", "fax", "pager", "other"]),
    attr("primary", "Marks the primary number.").ty(AttrType::Boolean),
];

const PHOTO_SUB: &[AttrDef] = &[
    attr("value", "The photo URL.").refs(&["external"]),
    attr("display", "A human-readable name."),
    attr("type", "photo or thumbnail.").canonical(&["photo", "thumbnail"]),
    attr("primary", "Marks the primary photo.").ty(AttrType::Boolean),
];

const ADDRESS_SUB: &[AttrDef] = &[
    attr("formatted", "The full mailing address."),
    attr("streetAddress", "The street address."),
    attr("locality", "The city or locality."),
    attr("region", "The state or region."),
    attr("postalCode", "The postal code."),
    attr("country", "The ISO 3166-1 alpha-2 country code."),
    attr("type", "A label: work, home or other.").canonical(TYPE_WORK_HOME),
    attr("primary", "Marks the primary address.").ty(AttrType::Boolean),
];

const USER_GROUPS_SUB: &[AttrDef] = &[
    attr("value", "The group's id.").mutability(Mutability::ReadOnly),
    attr("$ref", "The group's URI.")
        .refs(&["Group"])
        .mutability(Mutability::ReadOnly),
    attr("display", "The group's displayName.").mutability(Mutability::ReadOnly),
    attr("type", "direct or indirect.")
        .canonical(&["direct", "indirect"])
        .mutability(Mutability::ReadOnly),
];

const X509_SUB: &[AttrDef] = &[
    attr("value", "The DER certificate, base64.").ty(AttrType::Binary),
    attr("display", "A human-readable name."),
    attr("type", "A label for the certificate."),
    attr("primary", "Marks the primary certificate.").ty(AttrType::Boolean),
];

const NAME_SUB: &[AttrDef] = &[
    attr("formatted", "The full name, formatted for display."),
    attr("familyName", "The family name."),
    attr("givenName", "The given name."),
    attr("middleName", "The middle name."),
    attr("honorificPrefix", "The honorific prefix."),
    attr("honorificSuffix", "The honorific suffix."),
];

const USER_ATTRS: &[AttrDef] = &[
    attr(
        "userName",
        "The unique identifier the client authenticates with.",
    )
    .required()
    .unique(),
    attr("name", "The components of the user's name.").complex(NAME_SUB),
    attr("displayName", "The name shown to people."),
    attr("nickName", "The casual name."),
    attr("profileUrl", "The online profile URL.").refs(&["external"]),
    attr("title", "The user's title."),
    attr("userType", "The organization-to-user relationship."),
    attr(
        "preferredLanguage",
        "The preferred written or spoken language.",
    ),
    attr("locale", "The default location for localization."),
    attr("timezone", "The IANA time zone."),
    attr("active", "Whether the user is active.").ty(AttrType::Boolean),
    attr(
        "password",
        "The cleartext password; accepted and never stored.",
    )
    .mutability(Mutability::WriteOnly)
    .returned(Returned::Never)
    .exact(),
    attr("emails", "Email addresses.")
        .complex(EMAIL_SUB)
        .multi(),
    attr("phoneNumbers", "Phone numbers.")
        .complex(PHONE_SUB)
        .multi(),
    attr("ims", "Instant messaging addresses.")
        .complex(MULTI_STRING_SUB)
        .multi(),
    attr("photos", "Photo URLs.").complex(PHOTO_SUB).multi(),
    attr("addresses", "Physical mailing addresses.")
        .complex(ADDRESS_SUB)
        .multi(),
    attr(
        "groups",
        "The groups the user belongs to, computed by the service.",
    )
    .complex(USER_GROUPS_SUB)
    .multi()
    .mutability(Mutability::ReadOnly),
    attr("entitlements", "Entitlements.")
        .complex(MULTI_STRING_SUB)
        .multi(),
    attr("roles", "Roles.").complex(MULTI_STRING_SUB).multi(),
    attr("x509Certificates", "Certificates.")
        .complex(X509_SUB)
        .multi(),
];

const MANAGER_SUB: &[AttrDef] = &[
    attr("value", "The manager's id."),
    attr("$ref", "The manager's URI.").refs(&["User"]),
    attr("displayName", "The manager's displayName.").mutability(Mutability::ReadOnly),
];

const ENTERPRISE_ATTRS: &[AttrDef] = &[
    attr("employeeNumber", "The employee number."),
    attr("costCenter", "The cost center."),
    attr("organization", "The organization."),
    attr("division", "The division."),
    attr("department", "The department."),
    attr("manager", "The user's manager.").complex(MANAGER_SUB),
];

const MEMBER_SUB: &[AttrDef] = &[
    attr("value", "The member's id.")
        .mutability(Mutability::Immutable)
        .exact(),
    attr("$ref", "The member's URI.")
        .refs(&["User", "Group"])
        .mutability(Mutability::Immutable),
    attr("display", "The member's display name.").mutability(Mutability::Immutable),
    attr("type", "User or Group.")
        .canonical(&["User", "Group"])
        .mutability(Mutability::Immutable),
];

const GROUP_ATTRS: &[AttrDef] = &[
    attr("displayName", "The group's name.").required(),
    attr("members", "The group's members.")
        .complex(MEMBER_SUB)
        .multi(),
];

const META_SUB: &[AttrDef] = &[
    attr("resourceType", "The resource type.")
        .exact()
        .mutability(Mutability::ReadOnly),
    attr("created", "When the resource was created.")
        .ty(AttrType::DateTime)
        .mutability(Mutability::ReadOnly),
    attr("lastModified", "When the resource was last changed.")
        .ty(AttrType::DateTime)
        .mutability(Mutability::ReadOnly),
    attr("location", "The resource's URI.")
        .refs(&["uri"])
        .mutability(Mutability::ReadOnly),
    attr("version", "The resource's weak ETag.")
        .exact()
        .mutability(Mutability::ReadOnly),
];

/// Attributes common to every resource (RFC 7643 3.1).
pub const COMMON_ATTRS: &[AttrDef] = &[
    attr("id", "The service-issued identifier.")
        .exact()
        .mutability(Mutability::ReadOnly)
        .returned(Returned::Always)
        .unique(),
    attr("externalId", "The client's identifier for the resource.").exact(),
    attr("meta", "Resource metadata.")
        .complex(META_SUB)
        .mutability(Mutability::ReadOnly),
];

/// The core User schema.
pub static USER_SCHEMA: Schema = Schema {
    id: USER_URN,
    name: "User",
    description: "User Account",
    attributes: USER_ATTRS,
};

/// The enterprise User extension.
pub static ENTERPRISE_SCHEMA: Schema = Schema {
    id: ENTERPRISE_URN,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: ENTERPRISE_ATTRS,
};

/// The vault extension's URN: each user's state in the organization's vault.
pub const VAULT_URN: &str = "urn:scim-edge:schemas:extension:vault:2.0:User";

static VAULT_ATTRS: &[AttrDef] = &[
    attr(
        "status",
        "The member's state in the vault: pending (not delivered yet), invited, accepted (waiting for an administrator's Confirm), confirmed, revoked, staged, or error",
    )
    .mutability(Mutability::ReadOnly)
    .canonical(&crate::member_status::WORDS),
    attr("memberId", "The member's id in the vault")
        .exact()
        .mutability(Mutability::ReadOnly),
    attr("error", "The vault's last error for this member, while delivery fails")
        .mutability(Mutability::ReadOnly),
];

/// The vault extension: read-only, present on users of organizations with a vault. Its
/// attributes may be named without the URN in filters (`status eq "accepted"`).
pub static VAULT_SCHEMA: Schema = Schema {
    id: VAULT_URN,
    name: "VaultMember",
    description: "The user's membership in the organization's vault",
    attributes: VAULT_ATTRS,
};

/// The core Group schema.
pub static GROUP_SCHEMA: Schema = Schema {
    id: GROUP_URN,
    name: "Group",
    description: "Group",
    attributes: GROUP_ATTRS,
};

/// The schemas an organization's discovery serves: the vault extension only where the
/// organization has a vault.
pub fn discovered_schemas(vault: bool) -> Vec<&'static Schema> {
    all_schemas()
        .into_iter()
        .filter(|s| vault || s.id != VAULT_URN)
        .collect()
}

/// The two resource types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// Users
    User,
    /// Groups
    Group,
}

/// An attribute found by path: the schema that holds it and its definition.
#[derive(Debug, Clone, Copy)]
pub struct Found {
    /// The extension schema, when the attribute lives in one.
    pub extension: Option<&'static Schema>,
    /// The attribute.
    pub attr: &'static AttrDef,
}

impl ResourceKind {
    /// The name used in `meta.resourceType`.
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }

    /// The endpoint segment.
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "Users",
            ResourceKind::Group => "Groups",
        }
    }

    /// The core schema.
    pub fn core(self) -> &'static Schema {
        match self {
            ResourceKind::User => &USER_SCHEMA,
            ResourceKind::Group => &GROUP_SCHEMA,
        }
    }

    /// Extension schemas.
    pub fn extensions(self) -> &'static [&'static Schema] {
        static USER_EXTENSIONS: [&Schema; 2] = [&ENTERPRISE_SCHEMA, &VAULT_SCHEMA];
        match self {
            ResourceKind::User => &USER_EXTENSIONS,
            ResourceKind::Group => &[],
        }
    }

    /// An extension schema by URN, case-insensitively.
    pub fn extension(self, urn: &str) -> Option<&'static Schema> {
        self.extensions()
            .iter()
            .copied()
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// A top-level attribute of the core schema or the common attributes.
    pub fn core_attr(self, name: &str) -> Option<&'static AttrDef> {
        self.core().attr(name).or_else(|| {
            COMMON_ATTRS
                .iter()
                .find(|a| a.name.eq_ignore_ascii_case(name))
        })
    }

    /// Resolves `[urn:]attr` to its definition. The URN, when present, must be the core
    /// schema or one of this type's extensions.
    pub fn resolve(self, urn: Option<&str>, name: &str) -> Option<Found> {
        match urn {
            None => match self.core_attr(name) {
                Some(attr) => Some(Found {
                    extension: None,
                    attr,
                }),
                None if self == ResourceKind::User => VAULT_SCHEMA.attr(name).map(|attr| Found {
                    extension: Some(&VAULT_SCHEMA),
                    attr,
                }),
                None => None,
            },
            Some(u) if u.eq_ignore_ascii_case(self.core().id) => {
                self.core_attr(name).map(|attr| Found {
                    extension: None,
                    attr,
                })
            }
            Some(u) => {
                let ext = self.extension(u)?;
                ext.attr(name).map(|attr| Found {
                    extension: Some(ext),
                    attr,
                })
            }
        }
    }

    /// The `/ResourceTypes` representation.
    pub fn resource_type_json(self, base: &str, vault: bool) -> Value {
        let ext: Vec<Value> = self
            .extensions()
            .iter()
            .filter(|s| vault || s.id != VAULT_URN)
            .map(|s| json!({"schema": s.id, "required": false}))
            .collect();
        let mut v = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": self.name(),
            "name": self.name(),
            "endpoint": format!("/{}", self.endpoint()),
            "description": self.core().description,
            "schema": self.core().id,
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{}", self.name())},
        });
        if let (false, Some(m)) = (ext.is_empty(), v.as_object_mut()) {
            m.insert("schemaExtensions".into(), Value::Array(ext));
        }
        v
    }
}

/// Every schema served at `/Schemas`.
pub fn all_schemas() -> [&'static Schema; 4] {
    [
        &USER_SCHEMA,
        &ENTERPRISE_SCHEMA,
        &VAULT_SCHEMA,
        &GROUP_SCHEMA,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_case_insensitive() {
        let f = ResourceKind::User.resolve(None, "USERNAME").unwrap();
        assert_eq!(f.attr.name, "userName");
        assert!(!f.attr.case_exact);
        let f = ResourceKind::User
            .resolve(Some(ENTERPRISE_URN), "employeenumber")
            .unwrap();
        assert_eq!(f.attr.name, "employeeNumber");
        assert!(f.extension.is_some());
        assert!(ResourceKind::Group
            .resolve(Some(ENTERPRISE_URN), "department")
            .is_none());
        assert_eq!(
            ResourceKind::User
                .core_attr("emails")
                .unwrap()
                .sub_attr("PRIMARY")
                .unwrap()
                .ty,
            AttrType::Boolean
        );
    }

    #[test]
    fn schema_json_lists_sub_attributes() {
        let v = USER_SCHEMA.to_json("/v2/o");
        let attrs = v["attributes"].as_array().unwrap();
        let emails = attrs.iter().find(|a| a["name"] == "emails").unwrap();
        assert_eq!(emails["multiValued"], true);
        assert_eq!(emails["subAttributes"].as_array().unwrap().len(), 4);
        let pw = attrs.iter().find(|a| a["name"] == "password").unwrap();
        assert_eq!(pw["returned"], "never");
        assert_eq!(pw["mutability"], "writeOnly");
    }
}
