//! Typed identifiers of the Azure objects the provider manages.
//!
//! This module owns parsing (case-insensitive on segment names, as ARM is) and the canonical text
//! of every id. It must never call Azure, and nothing outside it should split an id string.

use std::fmt;
use std::str::FromStr;

use url::Url;

/// An id did not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parsing {input:?} as {kind}: {problem}; expected {format}")]
pub struct IdParseError {
    /// What we tried to parse, e.g. "a SQL server id".
    pub kind: &'static str,
    /// The text given.
    pub input: String,
    /// What was wrong.
    pub problem: IdProblem,
    /// The expected shape, with placeholders.
    pub format: &'static str,
}

/// What was wrong with an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdProblem {
    /// Nothing was given.
    Empty,
    /// A segment name (such as `resourceGroups`) is missing.
    MissingSegment(&'static str),
    /// A segment name is present but its value is missing.
    MissingValue(&'static str),
    /// Another segment name stands where one was expected.
    UnexpectedSegment {
        /// The segment name expected here.
        expected: &'static str,
        /// What was found.
        found: String,
    },
    /// More segments follow the last expected one.
    TrailingSegments(String),
    /// Anything else, described.
    Invalid(String),
}

impl fmt::Display for IdProblem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => formatter.write_str("the id is empty"),
            Self::MissingSegment(segment) => {
                write!(formatter, "the {segment:?} segment is missing")
            }
            Self::MissingValue(segment) => {
                write!(formatter, "the {segment:?} segment has no value after it")
            }
            Self::UnexpectedSegment { expected, found } => {
                write!(formatter, "found {found:?} where the {expected:?} segment belongs")
            }
            Self::TrailingSegments(rest) => write!(formatter, "unexpected {rest:?} at the end"),
            Self::Invalid(reason) => formatter.write_str(reason),
        }
    }
}

/// One `name/value` pair of an ARM id.
#[derive(Clone, Copy)]
enum Segment {
    /// `name/{value}` with any value.
    Value(&'static str),
    /// `providers/{namespace}` with a fixed namespace.
    Provider(&'static str),
}

/// The shape of one kind of ARM id.
struct ArmPattern {
    kind: &'static str,
    format: &'static str,
    segments: &'static [Segment],
}

impl ArmPattern {
    fn error(&self, input: &str, problem: IdProblem) -> IdParseError {
        IdParseError { kind: self.kind, input: input.to_owned(), problem, format: self.format }
    }

    /// Returns the values of the `Value` segments, in order.
    fn parse(&self, input: &str) -> Result<Vec<String>, IdParseError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(self.error(input, IdProblem::Empty));
        }
        let Some(path) = trimmed.strip_prefix('/') else {
            let reason = "an ARM id starts with \"/subscriptions/\"".to_owned();
            return Err(self.error(input, IdProblem::Invalid(reason)));
        };
        let path = path.strip_suffix('/').unwrap_or(path);
        let parts: Vec<&str> = path.split('/').collect();
        if parts.iter().any(|part| part.is_empty()) {
            let reason = "the id contains an empty segment (\"//\")".to_owned();
            return Err(self.error(input, IdProblem::Invalid(reason)));
        }

        let mut values = Vec::new();
        let mut remaining = parts.as_slice();
        for segment in self.segments {
            let name = match segment {
                Segment::Value(name) => name,
                Segment::Provider(_) => &"providers",
            };
            let (found_name, rest) = match remaining {
                [] => return Err(self.error(input, IdProblem::MissingSegment(name))),
                [found_name, rest @ ..] => (found_name, rest),
            };
            if !found_name.eq_ignore_ascii_case(name) {
                let found = (*found_name).to_owned();
                return Err(
                    self.error(input, IdProblem::UnexpectedSegment { expected: name, found })
                );
            }
            let (value, rest) = match rest {
                [] => return Err(self.error(input, IdProblem::MissingValue(name))),
                [value, rest @ ..] => (value, rest),
            };
            match segment {
                Segment::Value(_) => values.push((*value).to_owned()),
                Segment::Provider(namespace) if value.eq_ignore_ascii_case(namespace) => {}
                Segment::Provider(namespace) => {
                    let found = format!("providers/{value}");
                    let problem = IdProblem::UnexpectedSegment { expected: namespace, found };
                    return Err(self.error(input, problem));
                }
            }
            remaining = rest;
        }

        if !remaining.is_empty() {
            let rest = format!("/{}", remaining.join("/"));
            return Err(self.error(input, IdProblem::TrailingSegments(rest)));
        }
        Ok(values)
    }
}

/// Implements `FromStr` by delegating to the type's `parse`.
macro_rules! from_str_via_parse {
    ($($type:ty),* $(,)?) => {$(
        impl FromStr for $type {
            type Err = IdParseError;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                Self::parse(input)
            }
        }
    )*};
}

from_str_via_parse!(
    SubscriptionId,
    ResourceGroupId,
    UserAssignedIdentityId,
    SqlServerId,
    ServerKeyId,
    KeyVaultId,
    RoleAssignmentId,
    KeyVaultKeyId,
    FederatedCredentialId,
);

/// `/subscriptions/{subscription_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscriptionId {
    /// The subscription id (a UUID).
    pub subscription_id: String,
}

const SUBSCRIPTION: ArmPattern = ArmPattern {
    kind: "a subscription id",
    format: "/subscriptions/{subscription_id}",
    segments: &[Segment::Value("subscriptions")],
};

impl SubscriptionId {
    /// Parses `/subscriptions/{subscription_id}`.
    pub fn parse(input: &str) -> Result<Self, IdParseError> {
        let [subscription_id]: [String; 1] = take(SUBSCRIPTION.parse(input)?);
        Ok(Self { subscription_id })
    }
}

impl fmt::Display for SubscriptionId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "/subscriptions/{}", self.subscription_id)
    }
}

/// `/subscriptions/{subscription_id}/resourceGroups/{resource_group_name}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceGroupId {
    /// The subscription id.
    pub subscription_id: String,
    /// The resource group name.
    pub resource_group_name: String,
}

const RESOURCE_GROUP: ArmPattern = ArmPattern {
    kind: "a resource group id",
    format: "/subscriptions/{subscription_id}/resourceGroups/{resource_group_name}",
    segments: &[Segment::Value("subscriptions"), Segment::Value("resourceGroups")],
};

impl ResourceGroupId {
    /// Parses `/subscriptions/{subscription_id}/resourceGroups/{resource_group_name}`.
    pub fn parse(input: &str) -> Result<Self, IdParseError> {
        let [subscription_id, resource_group_name] = take(RESOURCE_GROUP.parse(input)?);
        Ok(Self { subscription_id, resource_group_name })
    }
}

impl fmt::Display for ResourceGroupId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "/subscriptions/{}/resourceGroups/{}",
            self.subscription_id, self.resource_group_name
        )
    }
}

/// `…/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserAssignedIdentityId {
    /// The subscription id.
    pub subscription_id: String,
    /// The resource group name.
    pub resource_group_name: String,
    /// The identity's name.
    pub name: String,
}

const USER_ASSIGNED_IDENTITY: ArmPattern = ArmPattern {
    kind: "a user-assigned identity id",
    format: "/subscriptions/{subscription_id}/resourceGroups/{resource_group_name}/providers/\
             Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
    segments: &[
        Segment::Value("subscriptions"),
        Segment::Value("resourceGroups"),
        Segment::Provider("Microsoft.ManagedIdentity"),
        Segment::Value("userAssignedIdentities"),
    ],
};

impl UserAssignedIdentityId {
    /// Parses a user-assigned managed identity's ARM id.
    pub fn parse(input: &str) -> Result<Self, IdParseError> {
        let [subscription_id, resource_group_name, name] =
            take(USER_ASSIGNED_IDENTITY.parse(input)?);
        Ok(Self { subscription_id, resource_group_name, name })
    }
}

impl fmt::Display for UserAssignedIdentityId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ManagedIdentity/\
             userAssignedIdentities/{}",
            self.subscription_id, self.resource_group_name, self.name
        )
    }
}

/// `…/providers/Microsoft.Sql/servers/{server_name}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SqlServerId {
    /// The subscription id.
    pub subscription_id: String,
    /// The resource group name.
    pub resource_group_name: String,
    /// The logical server's name.
    pub server_name: String,
}

const SQL_SERVER: ArmPattern = ArmPattern {
    kind: "a SQL server id",
    format: "/subscriptions/{subscription_id}/resourceGroups/{resource_group_name}/providers/\
             Microsoft.Sql/servers/{server_name}",
    segments: &[
        Segment::Value("subscriptions"),
        Segment::Value("resourceGroups"),
        Segment::Provider("Microsoft.Sql"),
        Segment::Value("servers"),
    ],
};

impl SqlServerId {
    /// Parses a SQL logical server's ARM id.
    pub fn parse(input: &str) -> Result<Self, IdParseError> {
        let [subscription_id, resource_group_name, server_name] = take(SQL_SERVER.parse(input)?);
        Ok(Self { subscription_id, resource_group_name, server_name })
    }
}

impl fmt::Display for SqlServerId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Sql/servers/{}",
            self.subscription_id, self.resource_group_name, self.server_name
        )
    }
}

/// `…/providers/Microsoft.Sql/servers/{server_name}/keys/{key_name}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerKeyId {
    /// The server the key is registered on.
    pub server: SqlServerId,
    /// The server key's name, `{vault}_{key}_{version}` for Key Vault keys.
    pub key_name: String,
}

const SERVER_KEY: ArmPattern = ArmPattern {
    kind: "a SQL server key id",
    format: "/subscriptions/{subscription_id}/resourceGroups/{resource_group_name}/providers/\
             Microsoft.Sql/servers/{server_name}/keys/{key_name}",
    segments: &[
        Segment::Value("subscriptions"),
        Segment::Value("resourceGroups"),
        Segment::Provider("Microsoft.Sql"),
        Segment::Value("servers"),
        Segment::Value("keys"),
    ],
};

impl ServerKeyId {
    /// Parses a SQL server key's ARM id.
    pub fn parse(input: &str) -> Result<Self, IdParseError> {
        let [subscription_id, resource_group_name, server_name, key_name] =
            take(SERVER_KEY.parse(input)?);
        let server = SqlServerId { subscription_id, resource_group_name, server_name };
        Ok(Self { server, key_name })
    }
}

impl fmt::Display for ServerKeyId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/keys/{}", self.server, self.key_name)
    }
}

/// `…/providers/Microsoft.KeyVault/vaults/{vault_name}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyVaultId {
    /// The subscription id.
    pub subscription_id: String,
    /// The resource group name.
    pub resource_group_name: String,
    /// The vault's name (also the first label of its DNS name).
    pub vault_name: String,
}

const KEY_VAULT: ArmPattern = ArmPattern {
    kind: "a key vault id",
    format: "/subscriptions/{subscription_id}/resourceGroups/{resource_group_name}/providers/\
             Microsoft.KeyVault/vaults/{vault_name}",
    segments: &[
        Segment::Value("subscriptions"),
        Segment::Value("resourceGroups"),
        Segment::Provider("Microsoft.KeyVault"),
        Segment::Value("vaults"),
    ],
};

impl KeyVaultId {
    /// Parses a key vault's ARM id.
    pub fn parse(input: &str) -> Result<Self, IdParseError> {
        let [subscription_id, resource_group_name, vault_name] = take(KEY_VAULT.parse(input)?);
        Ok(Self { subscription_id, resource_group_name, vault_name })
    }
}

impl fmt::Display for KeyVaultId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.KeyVault/vaults/{}",
            self.subscription_id, self.resource_group_name, self.vault_name
        )
    }
}

/// `{scope}/providers/Microsoft.Authorization/roleAssignments/{name}`.
///
/// The scope is any ARM id (subscription, vault, key); the name is a GUID chosen at creation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoleAssignmentId {
    /// The ARM id the assignment applies to, or `/` for the tenant root.
    pub scope: String,
    /// The assignment's name (a GUID).
    pub name: String,
}

const ROLE_ASSIGNMENT_FORMAT: &str =
    "{scope}/providers/Microsoft.Authorization/roleAssignments/{name}";
const ROLE_ASSIGNMENT_INFIX: &str = "/providers/Microsoft.Authorization/roleAssignments/";

impl RoleAssignmentId {
    /// Parses a role assignment id.
    pub fn parse(input: &str) -> Result<Self, IdParseError> {
        let error = |problem| IdParseError {
            kind: "a role assignment id",
            input: input.to_owned(),
            problem,
            format: ROLE_ASSIGNMENT_FORMAT,
        };
        let trimmed = input.trim().trim_end_matches('/');
        if trimmed.is_empty() {
            return Err(error(IdProblem::Empty));
        }
        // ASCII lowercasing keeps byte offsets, so the position found applies to the original.
        let lowered = trimmed.to_ascii_lowercase();
        let infix = ROLE_ASSIGNMENT_INFIX.to_ascii_lowercase();
        let Some(position) = lowered.rfind(&infix) else {
            if lowered.ends_with(infix.trim_end_matches('/')) {
                return Err(error(IdProblem::MissingValue("roleAssignments")));
            }
            return Err(error(IdProblem::MissingSegment("roleAssignments")));
        };
        let scope = &trimmed[..position];
        let name = &trimmed[position + ROLE_ASSIGNMENT_INFIX.len()..];
        if name.is_empty() {
            return Err(error(IdProblem::MissingValue("roleAssignments")));
        }
        if name.contains('/') {
            let rest = name[name.find('/').unwrap_or_default()..].to_owned();
            return Err(error(IdProblem::TrailingSegments(rest)));
        }
        if !scope.is_empty() && !scope.starts_with('/') {
            return Err(error(IdProblem::Invalid("the scope must start with \"/\"".to_owned())));
        }
        let scope = if scope.is_empty() { "/".to_owned() } else { scope.to_owned() };
        Ok(Self { scope, name: name.to_owned() })
    }
}

impl fmt::Display for RoleAssignmentId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scope = self.scope.trim_end_matches('/');
        write!(formatter, "{scope}{ROLE_ASSIGNMENT_INFIX}{}", self.name)
    }
}

/// A Key Vault key identifier: `https://{vault}.vault.azure.net/keys/{name}[/{version}]`.
///
/// The host is kept lowercase and without a trailing slash, so two spellings of the same key
/// compare equal; the name and version keep their case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyVaultKeyId {
    /// The vault's name: the first DNS label of the host.
    pub vault_name: String,
    /// The vault's host, lowercase, e.g. `contoso.vault.azure.net`.
    pub host: String,
    /// The key's name.
    pub name: String,
    /// The key version (32 hex digits), or `None` for the versionless id.
    pub version: Option<String>,
}

const KEY_ID_FORMAT: &str = "https://{vault_name}.vault.azure.net/keys/{key_name}[/{version}]";

impl KeyVaultKeyId {
    /// Parses a versioned or versionless key identifier.
    pub fn parse(input: &str) -> Result<Self, IdParseError> {
        let error = |problem| IdParseError {
            kind: "a Key Vault key id",
            input: input.to_owned(),
            problem,
            format: KEY_ID_FORMAT,
        };
        let invalid = |reason: &str| error(IdProblem::Invalid(reason.to_owned()));
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(error(IdProblem::Empty));
        }

        let url = Url::parse(trimmed).map_err(|_| invalid("it is not a URL"))?;
        if url.scheme() != "https" {
            return Err(invalid("Key Vault is only reached over https"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("a key id has no query or fragment"));
        }
        let host =
            url.host_str().filter(|host| !host.is_empty()).ok_or_else(|| invalid("no host"))?;
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let vault_name = host.split(['.', ':']).next().unwrap_or_default().to_owned();

        let path = url.path().trim_matches('/');
        let mut parts = path.split('/').filter(|part| !part.is_empty());
        match parts.next() {
            Some(segment) if segment.eq_ignore_ascii_case("keys") => {}
            Some(found) => {
                let found = found.to_owned();
                return Err(error(IdProblem::UnexpectedSegment { expected: "keys", found }));
            }
            None => return Err(error(IdProblem::MissingSegment("keys"))),
        }
        let name = parts.next().ok_or_else(|| error(IdProblem::MissingValue("keys")))?;
        validate_key_name(name).map_err(invalid)?;
        let version = parts.next().map(str::to_owned);
        if let Some(version) = &version {
            validate_key_version(version).map_err(invalid)?;
        }
        if let Some(extra) = parts.next() {
            return Err(error(IdProblem::TrailingSegments(format!("/{extra}"))));
        }

        Ok(Self { vault_name, host, name: name.to_owned(), version })
    }

    /// The same key without a version: `https://{host}/keys/{name}`.
    pub fn versionless(&self) -> Self {
        Self { version: None, ..self.clone() }
    }

    /// The same key at a given version.
    pub fn with_version(&self, version: impl Into<String>) -> Self {
        Self { version: Some(version.into()), ..self.clone() }
    }

    /// The vault's URI as ARM reports it: `https://{host}/`.
    pub fn vault_uri(&self) -> String {
        format!("https://{}/", self.host)
    }
}

impl fmt::Display for KeyVaultKeyId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "https://{}/keys/{}", self.host, self.name)?;
        if let Some(version) = &self.version {
            write!(formatter, "/{version}")?;
        }
        Ok(())
    }
}

/// Key Vault key names: 1 to 127 characters of `0-9a-zA-Z-`.
fn validate_key_name(name: &str) -> Result<(), &'static str> {
    let allowed = |character: char| character.is_ascii_alphanumeric() || character == '-';
    if name.is_empty() || name.len() > 127 || !name.chars().all(allowed) {
        return Err("a key name is 1 to 127 letters, digits and dashes");
    }
    Ok(())
}

/// Key Vault key versions are 32 hexadecimal digits.
fn validate_key_version(version: &str) -> Result<(), &'static str> {
    if version.len() != 32 || !version.chars().all(|character| character.is_ascii_hexdigit()) {
        return Err("a key version is 32 hexadecimal digits");
    }
    Ok(())
}

/// The name Azure SQL requires for a server key: `{vault}_{key}_{version}`.
///
/// Returns `None` for a versionless id: SQL registers one specific version, so the caller must
/// resolve the current version first.
pub fn server_key_name(key: &KeyVaultKeyId) -> Option<String> {
    let version = key.version.as_deref()?;
    Some(format!("{}_{}_{}", key.vault_name, key.name, version))
}

/// `{application object id}/federatedIdentityCredentials/{credential id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FederatedCredentialId {
    /// The application's object id (not its client id).
    pub application_object_id: String,
    /// The credential's id, as Graph assigned it.
    pub credential_id: String,
}

const FEDERATED_CREDENTIAL_FORMAT: &str =
    "{application_object_id}/federatedIdentityCredentials/{credential_id}";

impl FederatedCredentialId {
    /// Parses the id; Graph's `/applications/{id}/…` spelling is accepted too.
    pub fn parse(input: &str) -> Result<Self, IdParseError> {
        let error = |problem| IdParseError {
            kind: "a federated identity credential id",
            input: input.to_owned(),
            problem,
            format: FEDERATED_CREDENTIAL_FORMAT,
        };
        let trimmed = input.trim().trim_matches('/');
        if trimmed.is_empty() {
            return Err(error(IdProblem::Empty));
        }
        let mut parts: Vec<&str> = trimmed.split('/').collect();
        if parts.len() > 3 && parts[0].eq_ignore_ascii_case("applications") {
            parts.remove(0);
        }
        match parts.as_slice() {
            [application, segment, credential]
                if segment.eq_ignore_ascii_case("federatedIdentityCredentials")
                    && !application.is_empty()
                    && !credential.is_empty() =>
            {
                Ok(Self {
                    application_object_id: (*application).to_owned(),
                    credential_id: (*credential).to_owned(),
                })
            }
            [_] => Err(error(IdProblem::MissingSegment("federatedIdentityCredentials"))),
            [_, segment] if segment.eq_ignore_ascii_case("federatedIdentityCredentials") => {
                Err(error(IdProblem::MissingValue("federatedIdentityCredentials")))
            }
            [_, found, ..] if !found.eq_ignore_ascii_case("federatedIdentityCredentials") => {
                let found = (*found).to_owned();
                let expected = "federatedIdentityCredentials";
                Err(error(IdProblem::UnexpectedSegment { expected, found }))
            }
            [_, _, _, rest @ ..] => {
                Err(error(IdProblem::TrailingSegments(format!("/{}", rest.join("/")))))
            }
            _ => Err(error(IdProblem::Invalid("a segment is empty".to_owned()))),
        }
    }
}

impl fmt::Display for FederatedCredentialId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}/federatedIdentityCredentials/{}",
            self.application_object_id, self.credential_id
        )
    }
}

/// Moves the parsed values into a fixed-size array; the pattern guarantees the count.
fn take<const N: usize>(values: Vec<String>) -> [String; N] {
    values.try_into().unwrap_or_else(|values: Vec<String>| {
        unreachable!("pattern yields {N} values, got {}", values.len())
    })
}

#[cfg(test)]
mod tests {
    use super::{
        FederatedCredentialId, IdProblem, KeyVaultId, KeyVaultKeyId, ResourceGroupId,
        RoleAssignmentId, ServerKeyId, SqlServerId, SubscriptionId, UserAssignedIdentityId,
        server_key_name,
    };

    const SUB: &str = "/subscriptions/00000000-0000-0000-0000-000000000001";
    const VERSION: &str = "0123456789abcdef0123456789abcdef";

    /// Checks the problem reported for each bad input, and that good inputs round-trip to the
    /// canonical text.
    fn check<T: std::fmt::Display>(
        parse: fn(&str) -> Result<T, super::IdParseError>,
        good: &[(&str, &str, &str)],
        bad: &[(&str, &str, IdProblem)],
    ) {
        for (name, input, canonical) in good {
            let parsed = parse(input).unwrap_or_else(|error| panic!("{name}: {error}"));
            assert_eq!(parsed.to_string(), *canonical, "{name}");
        }
        for (name, input, problem) in bad {
            let error = match parse(input) {
                Ok(parsed) => panic!("{name}: parsed as {parsed}"),
                Err(error) => error,
            };
            assert_eq!(&error.problem, problem, "{name}");
            assert!(error.to_string().contains("expected "), "{name}: {error}");
        }
    }

    #[test]
    fn subscription_ids() {
        check(
            SubscriptionId::parse,
            &[
                ("canonical", SUB, SUB),
                ("uppercase segment", "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000001", SUB),
            ],
            &[
                ("empty", "", IdProblem::Empty),
                ("missing value", "/subscriptions", IdProblem::MissingValue("subscriptions")),
                (
                    "trailing",
                    &format!("{SUB}/resourceGroups/rg"),
                    IdProblem::TrailingSegments("/resourceGroups/rg".into()),
                ),
            ],
        );
    }

    #[test]
    fn resource_group_ids() {
        let canonical = format!("{SUB}/resourceGroups/rg");
        check(
            ResourceGroupId::parse,
            &[
                ("canonical", &canonical, &canonical),
                ("lowercase segment", &format!("{SUB}/resourcegroups/rg"), &canonical),
                ("trailing slash", &format!("{SUB}/resourceGroups/rg/"), &canonical),
            ],
            &[
                ("missing resource group", SUB, IdProblem::MissingSegment("resourceGroups")),
                (
                    "missing value",
                    &format!("{SUB}/resourceGroups"),
                    IdProblem::MissingValue("resourceGroups"),
                ),
                (
                    "wrong segment",
                    &format!("{SUB}/groups/rg"),
                    IdProblem::UnexpectedSegment {
                        expected: "resourceGroups",
                        found: "groups".into(),
                    },
                ),
                (
                    "no leading slash",
                    "subscriptions/x/resourceGroups/rg",
                    IdProblem::Invalid("an ARM id starts with \"/subscriptions/\"".into()),
                ),
                (
                    "double slash",
                    &format!("{SUB}//resourceGroups/rg"),
                    IdProblem::Invalid("the id contains an empty segment (\"//\")".into()),
                ),
            ],
        );
    }

    #[test]
    fn user_assigned_identity_ids() {
        let canonical = format!(
            "{SUB}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami"
        );
        check(
            UserAssignedIdentityId::parse,
            &[
                ("canonical", &canonical, &canonical),
                (
                    "as ARM returns it",
                    &format!(
                        "{SUB}/resourcegroups/rg/providers/microsoft.managedidentity/\
                         userassignedidentities/uami"
                    ),
                    &canonical,
                ),
            ],
            &[
                (
                    "missing subscription",
                    "/resourceGroups/rg",
                    IdProblem::UnexpectedSegment {
                        expected: "subscriptions",
                        found: "resourceGroups".into(),
                    },
                ),
                (
                    "missing provider",
                    &format!("{SUB}/resourceGroups/rg"),
                    IdProblem::MissingSegment("providers"),
                ),
                (
                    "wrong provider",
                    &format!("{SUB}/resourceGroups/rg/providers/Microsoft.Sql/servers/x"),
                    IdProblem::UnexpectedSegment {
                        expected: "Microsoft.ManagedIdentity",
                        found: "providers/Microsoft.Sql".into(),
                    },
                ),
                (
                    "missing identity segment",
                    &format!("{SUB}/resourceGroups/rg/providers/Microsoft.ManagedIdentity"),
                    IdProblem::MissingSegment("userAssignedIdentities"),
                ),
                (
                    "missing name",
                    &format!(
                        "{SUB}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/\
                         userAssignedIdentities"
                    ),
                    IdProblem::MissingValue("userAssignedIdentities"),
                ),
            ],
        );
    }

    #[test]
    fn sql_server_and_server_key_ids() {
        let server = format!("{SUB}/resourceGroups/rg/providers/Microsoft.Sql/servers/sql1");
        check(
            SqlServerId::parse,
            &[("canonical", &server, &server)],
            &[
                (
                    "missing servers",
                    &format!("{SUB}/resourceGroups/rg/providers/Microsoft.Sql"),
                    IdProblem::MissingSegment("servers"),
                ),
                (
                    "missing name",
                    &format!("{SUB}/resourceGroups/rg/providers/Microsoft.Sql/servers"),
                    IdProblem::MissingValue("servers"),
                ),
                (
                    "database id",
                    &format!("{server}/databases/db"),
                    IdProblem::TrailingSegments("/databases/db".into()),
                ),
            ],
        );
        let key = format!("{server}/keys/vault_key_{VERSION}");
        check(
            ServerKeyId::parse,
            &[("canonical", &key, &key)],
            &[
                ("server only", &server, IdProblem::MissingSegment("keys")),
                ("missing key name", &format!("{server}/keys"), IdProblem::MissingValue("keys")),
            ],
        );
        let parsed = ServerKeyId::parse(&key).unwrap();
        assert_eq!(parsed.server.server_name, "sql1");
        assert_eq!(parsed.key_name, format!("vault_key_{VERSION}"));
    }

    #[test]
    fn key_vault_ids() {
        let canonical = format!("{SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1");
        check(
            KeyVaultId::parse,
            &[("canonical", &canonical, &canonical)],
            &[
                (
                    "missing vaults",
                    &format!("{SUB}/resourceGroups/rg/providers/Microsoft.KeyVault"),
                    IdProblem::MissingSegment("vaults"),
                ),
                (
                    "missing name",
                    &format!("{SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults"),
                    IdProblem::MissingValue("vaults"),
                ),
                (
                    "key path",
                    &format!("{canonical}/keys/k"),
                    IdProblem::TrailingSegments("/keys/k".into()),
                ),
            ],
        );
    }

    #[test]
    fn role_assignment_ids() {
        let vault = format!("{SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1");
        let id = format!("{vault}/providers/Microsoft.Authorization/roleAssignments/guid-1");
        let root = "/providers/Microsoft.Authorization/roleAssignments/guid-2";
        check(
            RoleAssignmentId::parse,
            &[
                ("vault scope", &id, &id),
                ("lowercase", &id.replace("roleAssignments", "roleassignments"), &id),
                ("tenant root", root, root),
            ],
            &[
                ("empty", " ", IdProblem::Empty),
                ("no assignment", &vault, IdProblem::MissingSegment("roleAssignments")),
                (
                    "missing name",
                    &format!("{vault}/providers/Microsoft.Authorization/roleAssignments/"),
                    IdProblem::MissingValue("roleAssignments"),
                ),
                ("trailing", &format!("{id}/extra"), IdProblem::TrailingSegments("/extra".into())),
            ],
        );
        let parsed = RoleAssignmentId::parse(&id).unwrap();
        assert_eq!(parsed.scope, vault);
        assert_eq!(parsed.name, "guid-1");
        assert_eq!(RoleAssignmentId::parse(root).unwrap().scope, "/");
    }

    #[test]
    fn key_vault_key_ids() {
        let versioned = format!("https://contoso.vault.azure.net/keys/cmk/{VERSION}");
        let versionless = "https://contoso.vault.azure.net/keys/cmk";
        check(
            KeyVaultKeyId::parse,
            &[
                ("versioned", &versioned, &versioned),
                ("versionless", versionless, versionless),
                (
                    "host case and trailing slash",
                    &format!("https://Contoso.Vault.Azure.NET/keys/cmk/{VERSION}/"),
                    &versioned,
                ),
                ("default port", "https://contoso.vault.azure.net:443/keys/cmk", versionless),
            ],
            &[
                ("empty", "", IdProblem::Empty),
                ("not a url", "contoso/keys/cmk", IdProblem::Invalid("it is not a URL".into())),
                (
                    "http",
                    "http://contoso.vault.azure.net/keys/cmk",
                    IdProblem::Invalid("Key Vault is only reached over https".into()),
                ),
                ("no path", "https://contoso.vault.azure.net/", IdProblem::MissingSegment("keys")),
                (
                    "secret",
                    "https://contoso.vault.azure.net/secrets/s",
                    IdProblem::UnexpectedSegment { expected: "keys", found: "secrets".into() },
                ),
                (
                    "missing name",
                    "https://contoso.vault.azure.net/keys",
                    IdProblem::MissingValue("keys"),
                ),
                (
                    "bad name",
                    "https://contoso.vault.azure.net/keys/my_key",
                    IdProblem::Invalid("a key name is 1 to 127 letters, digits and dashes".into()),
                ),
                (
                    "short version",
                    "https://contoso.vault.azure.net/keys/cmk/abc",
                    IdProblem::Invalid("a key version is 32 hexadecimal digits".into()),
                ),
                (
                    "extra",
                    &format!("{versioned}/wrapkey"),
                    IdProblem::TrailingSegments("/wrapkey".into()),
                ),
                (
                    "query",
                    &format!("{versioned}?api-version=7.5"),
                    IdProblem::Invalid("a key id has no query or fragment".into()),
                ),
            ],
        );
        let parsed = KeyVaultKeyId::parse(&versioned).unwrap();
        assert_eq!(parsed.vault_name, "contoso");
        assert_eq!(parsed.host, "contoso.vault.azure.net");
        assert_eq!(parsed.version.as_deref(), Some(VERSION));
        assert_eq!(parsed.versionless().to_string(), versionless);
        assert_eq!(parsed.vault_uri(), "https://contoso.vault.azure.net/");
    }

    #[test]
    fn server_key_names() {
        let cases = [
            (
                "versioned",
                format!("https://contoso.vault.azure.net/keys/cmk/{VERSION}"),
                Some(format!("contoso_cmk_{VERSION}")),
            ),
            ("versionless", "https://contoso.vault.azure.net/keys/cmk".to_owned(), None),
            (
                "managed hsm",
                format!("https://hsm1.managedhsm.azure.net/keys/k/{VERSION}"),
                Some(format!("hsm1_k_{VERSION}")),
            ),
        ];
        for (name, input, expected) in cases {
            let key = KeyVaultKeyId::parse(&input).unwrap();
            assert_eq!(server_key_name(&key), expected, "{name}");
        }
    }

    #[test]
    fn federated_credential_ids() {
        let canonical = "app-object-id/federatedIdentityCredentials/cred-id";
        check(
            FederatedCredentialId::parse,
            &[
                ("canonical", canonical, canonical),
                (
                    "graph path",
                    "/applications/app-object-id/federatedIdentityCredentials/cred-id",
                    canonical,
                ),
                ("lowercase", "app-object-id/federatedidentitycredentials/cred-id", canonical),
            ],
            &[
                ("empty", "", IdProblem::Empty),
                (
                    "object id only",
                    "app-object-id",
                    IdProblem::MissingSegment("federatedIdentityCredentials"),
                ),
                (
                    "missing credential",
                    "app-object-id/federatedIdentityCredentials",
                    IdProblem::MissingValue("federatedIdentityCredentials"),
                ),
                (
                    "wrong segment",
                    "app-object-id/owners/x",
                    IdProblem::UnexpectedSegment {
                        expected: "federatedIdentityCredentials",
                        found: "owners".into(),
                    },
                ),
                (
                    "trailing",
                    "a/federatedIdentityCredentials/c/x",
                    IdProblem::TrailingSegments("/x".into()),
                ),
            ],
        );
    }
}
