//! `azurecmk_cross_tenant_key_grant`: lets the ISV application's service principal use the
//! customer's key (step 6).
//!
//! A vault uses either Azure RBAC or access policies, and a grant of the other kind has no
//! effect, so the grant follows the vault's permission model unless told otherwise, and refuses a
//! mismatch rather than writing a grant that does nothing. RBAC mode assigns Key Vault Crypto
//! Service Encryption User on the key or the vault; access-policy mode adds exactly get, wrapKey
//! and unwrapKey to the principal's entry, and destroy removes only those three, never
//! permissions it did not write. Create returns once the grant reads back.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::azure::authorization::{self, KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER};
use crate::azure::graph::{self, DirectoryObjectKind};
use crate::azure::ids::{KeyVaultId, RoleAssignmentId};
use crate::azure::key_vault::{self, AccessPolicy, Permissions, TDE_KEY_PERMISSIONS, Vault};
use crate::azure::{AzureClient, AzureError, CallContext};
use crate::framework::model::{from_value, to_value};
use crate::framework::timeouts::{Operation, Timeouts, timeouts_block};
use crate::framework::{
    ApplyResult, Attribute, AttributePath, Block, Change, Context, Diagnostic, Diagnostics, Plan,
    ReadResult, Resource, Schema, Type, Validator, Value,
};
use crate::provider::Clients;

use super::common::{QUICK_TIMEOUTS, azure_diagnostic, call_context};
use super::key_vault_key::read_vault;
use super::replication::poll_until_found;
use super::validators;

/// `mode` values.
const AUTO: &str = "auto";
const RBAC: &str = "rbac";
const ACCESS_POLICY: &str = "access_policy";

/// The segment joining a vault id and an object id in access-policy grant ids.
const ACCESS_POLICY_INFIX: &str = "/accessPolicies/";

/// The segment joining a vault id and a key name in an ARM scope.
const KEY_INFIX: &str = "/keys/";

/// How long a service principal that Graph does not show yet may take to replicate before the
/// id counts as wrong.
const PRINCIPAL_REPLICATION_WAIT: Duration = Duration::from_secs(60);

/// The resource's state and configuration.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Model {
    id: Option<String>,
    service_principal_object_id: String,
    key_vault_id: String,
    key_name: Option<String>,
    mode: Option<String>,
    effective_mode: Option<String>,
    role_assignment_id: Option<String>,
    access_policy_key_permissions: Option<Vec<String>>,
    timeouts: Option<Timeouts>,
}

/// The resource.
pub struct CrossTenantKeyGrant {
    schema: Schema,
}

impl CrossTenantKeyGrant {
    /// The resource with its schema.
    pub fn new() -> CrossTenantKeyGrant {
        CrossTenantKeyGrant { schema: schema() }
    }
}

fn schema() -> Schema {
    let attributes = vec![
        Attribute::string("id").computed().describe(
            "The role assignment's ARM id in RBAC mode; `<key_vault_id>/accessPolicies/<object \
             id>` in access-policy mode. Import accepts either.",
        ),
        Attribute::string("service_principal_object_id")
            .required()
            .requires_replace()
            .validate(Validator::String(validators::uuid))
            .describe(
                "The object id of the ISV application's service principal in this tenant \
                 (`azurecmk_application_installation.object_id`), not the application's client \
                 id.",
            ),
        Attribute::string("key_vault_id")
            .required()
            .requires_replace()
            .validate(Validator::String(validators::key_vault_id))
            .describe("The ARM id of the vault holding the key."),
        Attribute::string("key_name")
            .optional()
            .requires_replace()
            .validate(Validator::String(validators::key_name))
            .describe(
                "Grant on this key only; omitted, the grant covers every key in the vault. Only \
                 RBAC can scope a grant to one key: access policies are vault-wide, so in \
                 access-policy mode the principal can use every key in the vault whatever this \
                 says.",
            ),
        Attribute::string("mode")
            .default(Value::String(AUTO.to_string()))
            .requires_replace()
            .validate(Validator::OneOf(&[AUTO, RBAC, ACCESS_POLICY]))
            .describe(
                "`auto` (default) follows the vault's permission model; `rbac` or \
                 `access_policy` insist on one and fail on a vault using the other.",
            ),
        Attribute::string("effective_mode")
            .computed()
            .describe("`rbac` or `access_policy`: the kind of grant written."),
        Attribute::string("role_assignment_id")
            .computed()
            .describe("The role assignment's ARM id (RBAC mode only)."),
        Attribute::of_type("access_policy_key_permissions", Type::list(Type::String))
            .computed()
            .describe(
                "The key permissions this grant holds in the access policy (access-policy mode \
                 only): `get`, `wrapKey`, `unwrapKey`.",
            ),
    ];
    let description = "Lets the ISV application's service principal use a key in the customer's \
                       vault as a TDE protector: the Key Vault Crypto Service Encryption User role \
                       on an RBAC vault, or get, wrapKey and unwrapKey in an access-policy vault. \
                       Configure this resource's provider block for the customer's tenant.";
    Schema {
        version: 0,
        block: Block::new(description, attributes).with_block(timeouts_block(QUICK_TIMEOUTS)),
    }
}

/// How a grant is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GrantMode {
    Rbac,
    AccessPolicy,
}

impl GrantMode {
    fn as_str(self) -> &'static str {
        match self {
            GrantMode::Rbac => RBAC,
            GrantMode::AccessPolicy => ACCESS_POLICY,
        }
    }

    fn parse(text: &str) -> Option<GrantMode> {
        match text {
            RBAC => Some(GrantMode::Rbac),
            ACCESS_POLICY => Some(GrantMode::AccessPolicy),
            _ => None,
        }
    }

    /// The permission model a vault uses; access policies unless RBAC is on.
    fn of_vault(vault: &Vault) -> GrantMode {
        if vault.enable_rbac_authorization == Some(true) {
            GrantMode::Rbac
        } else {
            GrantMode::AccessPolicy
        }
    }
}

/// What a grant's id names.
#[derive(Debug, PartialEq, Eq)]
enum GrantId {
    RoleAssignment { id: RoleAssignmentId, vault: KeyVaultId, key_name: Option<String> },
    AccessPolicy { vault: KeyVaultId, object_id: String },
}

#[async_trait]
impl Resource<Clients> for CrossTenantKeyGrant {
    fn type_name(&self) -> &'static str {
        "azurecmk_cross_tenant_key_grant"
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    async fn modify_plan(
        &self,
        _context: &Context<'_, Clients>,
        prior: &Value,
        _config: &Value,
        plan: &mut Plan,
    ) -> Diagnostics {
        if Change::between(prior, &plan.planned_state) == Change::Update {
            let keep = replacement_needed(prior, &plan.planned_state);
            plan.requires_replace.retain(|path| keep.contains(path));
        }
        Diagnostics::new()
    }

    async fn create(&self, context: &Context<'_, Clients>, planned: &Value) -> ApplyResult {
        self.grant(context, planned).await
    }

    async fn read(&self, context: &Context<'_, Clients>, state: &Value) -> ReadResult {
        match self.read_grant(context, state).await {
            Ok(Ok((state, warnings))) => ReadResult::Found(state, warnings),
            Ok(Err(warning)) => ReadResult::Gone(warning.into()),
            Err(diagnostics) => ReadResult::Failed(diagnostics),
        }
    }

    async fn update(
        &self,
        _context: &Context<'_, Clients>,
        _prior: &Value,
        planned: &Value,
    ) -> ApplyResult {
        // Only changes that leave the grant in Azure as it is reach update (see modify_plan).
        ApplyResult::done(planned.clone())
    }

    async fn delete(&self, context: &Context<'_, Clients>, prior: &Value) -> Diagnostics {
        self.revoke(context, prior).await.err().unwrap_or_default()
    }

    async fn import(
        &self,
        _context: &Context<'_, Clients>,
        id: &str,
    ) -> Result<Value, Diagnostics> {
        let grant_id = parse_grant_id(id).map_err(|problem| {
            Diagnostics::from(Diagnostic::error(
                "Invalid import id",
                format!(
                    "{problem}. Import a grant by its role assignment id \
                     (`<key_vault_id>[/keys/<name>]/providers/Microsoft.Authorization/\
                     roleAssignments/<name>`) or by `<key_vault_id>/accessPolicies/<object id>`."
                ),
            ))
        })?;
        // The mode written is the default; read fills in everything else from Azure.
        let mut model = Model { mode: Some(AUTO.to_string()), ..Model::default() };
        match grant_id {
            GrantId::RoleAssignment { id, vault, key_name } => {
                model.id = Some(id.to_string());
                model.key_vault_id = vault.to_string();
                model.key_name = key_name;
                model.effective_mode = Some(RBAC.to_string());
            }
            GrantId::AccessPolicy { vault, object_id } => {
                model.id = Some(access_policy_grant_id(&vault, &object_id));
                model.key_vault_id = vault.to_string();
                model.service_principal_object_id = object_id;
                model.effective_mode = Some(ACCESS_POLICY.to_string());
            }
        }
        Ok(to_value(&model, &self.schema))
    }
}

impl CrossTenantKeyGrant {
    async fn grant(&self, context: &Context<'_, Clients>, planned: &Value) -> ApplyResult {
        let mut model: Model = match from_value(planned) {
            Ok(model) => model,
            Err(diagnostics) => return ApplyResult::failed(diagnostics),
        };
        let call = match call_context(context, planned, Operation::Create, QUICK_TIMEOUTS) {
            Ok(call) => call,
            Err(diagnostics) => return ApplyResult::failed(diagnostics),
        };
        let azure = &context.provider.azure;
        let warnings = match write_grant(azure, &mut model, &call).await {
            Ok(warnings) => warnings,
            Err(diagnostics) => return ApplyResult::failed(diagnostics),
        };

        // The grant exists from here on: record it even if it never reads back.
        let state = to_value(&model, &self.schema);
        match wait_until_visible(azure, &model, &call).await {
            Ok(()) => ApplyResult { state: Some(state), diagnostics: warnings },
            Err(diagnostics) => ApplyResult::partial(state, diagnostics),
        }
    }

    /// The grant as Azure holds it, or the warning to show when it is gone.
    async fn read_grant(
        &self,
        context: &Context<'_, Clients>,
        state: &Value,
    ) -> Result<Result<(Value, Diagnostics), Diagnostic>, Diagnostics> {
        let mut model: Model = from_value(state)?;
        let grant_id = parse_state_id(&model)?;
        let call = call_context(context, state, Operation::Read, QUICK_TIMEOUTS)?;
        let azure = &context.provider.azure;

        let found = match grant_id {
            GrantId::RoleAssignment { id, vault, key_name } => {
                read_role_grant(azure, &mut model, id, vault, key_name, &call).await?
            }
            GrantId::AccessPolicy { vault, object_id } => {
                read_policy_grant(azure, &mut model, &vault, &object_id, &call).await?
            }
        };
        Ok(found.map(|warnings| {
            model.mode.get_or_insert_with(|| AUTO.to_string());
            (to_value(&model, &self.schema), warnings)
        }))
    }

    async fn revoke(
        &self,
        context: &Context<'_, Clients>,
        prior: &Value,
    ) -> Result<(), Diagnostics> {
        let model: Model = from_value(prior)?;
        let grant_id = parse_state_id(&model)?;
        let call = call_context(context, prior, Operation::Delete, QUICK_TIMEOUTS)?;
        let azure = &context.provider.azure;

        match grant_id {
            GrantId::RoleAssignment { id, .. } => {
                authorization::delete_role_assignment(azure, &id, &call).await.map_err(|error| {
                    azure_diagnostic(&format!("deleting role assignment {id}"), &error).into()
                })
            }
            GrantId::AccessPolicy { vault, object_id } => {
                remove_policy(azure, &vault, &object_id, &call).await
            }
        }
    }
}

/// Writes the grant the vault's permission model calls for and records it in `model`; returns
/// warnings for the user.
async fn write_grant(
    azure: &AzureClient,
    model: &mut Model,
    call: &CallContext,
) -> Result<Diagnostics, Diagnostics> {
    let vault_id = parse_vault_id(&model.key_vault_id)?;
    let vault = read_vault(azure, &vault_id, call).await?;
    let mode = choose_mode(model.mode.as_deref().unwrap_or(AUTO), &vault)?;
    tracing::debug!(vault = %vault_id, mode = mode.as_str(), "key grant mode chosen");
    check_principal(azure, &model.service_principal_object_id, call).await?;

    let mut warnings = Diagnostics::new();
    match mode {
        GrantMode::Rbac => {
            let id = assign_role(azure, &vault_id, model, call).await?;
            model.id = Some(id.to_string());
            model.role_assignment_id = Some(id.to_string());
        }
        GrantMode::AccessPolicy => {
            add_policy(azure, &vault_id, &vault, &model.service_principal_object_id, call).await?;
            model.id = Some(access_policy_grant_id(&vault_id, &model.service_principal_object_id));
            model.access_policy_key_permissions = Some(tde_permissions());
            if model.key_name.is_some() {
                warnings.push(vault_wide_warning(&vault));
            }
        }
    }
    model.effective_mode = Some(mode.as_str().to_string());
    Ok(warnings)
}

/// Reads the new grant back until Azure shows it: role assignments and access policies
/// replicate, and a grant that does not read back yet is not usable yet either.
async fn wait_until_visible(
    azure: &AzureClient,
    model: &Model,
    call: &CallContext,
) -> Result<(), Diagnostics> {
    let grant_id = parse_state_id(model)?;
    let grant_text = model.id.clone().unwrap_or_default();
    let action = format!("reading back grant {grant_text}");
    let visible = match &grant_id {
        GrantId::RoleAssignment { id, .. } => {
            let read = || authorization::get_role_assignment(azure, id, call);
            poll_until_found(call, read).await.map(|found| found.is_some())
        }
        GrantId::AccessPolicy { vault, object_id } => {
            let read = || async {
                let vault = key_vault::get_vault(azure, vault, call).await?;
                Ok(vault.filter(|vault| missing_permissions(vault, object_id).is_empty()))
            };
            poll_until_found(call, read).await.map(|found| found.is_some())
        }
    };
    match visible.map_err(|error| azure_diagnostic(&action, &error))? {
        true => Ok(()),
        false => Err(not_visible(&grant_text)),
    }
}

/// The mode to write on this vault, or why the one asked for cannot work.
fn choose_mode(asked: &str, vault: &Vault) -> Result<GrantMode, Diagnostic> {
    let model = GrantMode::of_vault(vault);
    let Some(asked) = GrantMode::parse(asked) else { return Ok(model) };
    if asked == model {
        return Ok(model);
    }
    let (uses, ignored) = match model {
        GrantMode::Rbac => ("Azure RBAC", "access policies"),
        GrantMode::AccessPolicy => ("access policies", "role assignments"),
    };
    Err(Diagnostic::error(
        "Grant mode does not match the vault",
        format!(
            "Key vault {} uses {uses}, so it ignores {ignored} and a {} grant would give the \
             service principal nothing. Set mode = \"{}\" (or \"auto\"), or switch the vault's \
             permission model.",
            vault.name,
            asked.as_str(),
            model.as_str()
        ),
    )
    .at_attribute("mode"))
}

/// Fails fast, saying what the id is, when `service_principal_object_id` names something other
/// than a service principal; waits a while for one that is still replicating.
async fn check_principal(
    azure: &AzureClient,
    object_id: &str,
    call: &CallContext,
) -> Result<(), Diagnostics> {
    let action = format!("looking up service principal {object_id}");
    let mut found = graph::get_directory_object(azure, object_id, call)
        .await
        .map_err(|error| azure_diagnostic(&action, &error))?;

    if found.is_none() {
        // An application's client id is the commonest mistake, and never turns into an object.
        let action = format!("looking up service principals of application {object_id}");
        let by_app_id = graph::find_service_principal_by_app_id(azure, object_id, call)
            .await
            .map_err(|error| azure_diagnostic(&action, &error))?;
        if let Some(principal) = by_app_id {
            return Err(not_a_principal(format!(
                "{object_id} is the client id of application {}, not an object id. Its service \
                 principal in this tenant has object id {}: use that.",
                principal.display_name, principal.id
            )));
        }
        // A service principal created moments ago may not be visible to every replica yet.
        let replication = CallContext {
            deadline: call.deadline.min(tokio::time::Instant::now() + PRINCIPAL_REPLICATION_WAIT),
            cancel: call.cancel.clone(),
        };
        let lookup = || graph::get_directory_object(azure, object_id, &replication);
        found = poll_until_found(&replication, lookup)
            .await
            .map_err(|error| azure_diagnostic(&action, &error))?;
    }

    let problem = match found {
        Some(DirectoryObjectKind::ServicePrincipal { .. })
        | Some(DirectoryObjectKind::ManagedIdentity { .. }) => return Ok(()),
        Some(DirectoryObjectKind::Application { app_id }) => format!(
            "{object_id} is the object id of an application registration (client id {app_id}), \
             not of a service principal. Use the object id of the application's service \
             principal in this tenant: azurecmk_application_installation.object_id."
        ),
        Some(DirectoryObjectKind::Other(kind)) => {
            format!("{object_id} is a {kind}, not a service principal.")
        }
        None => format!(
            "No service principal with object id {object_id} exists in tenant {}. Install the \
             ISV's application in this tenant first (azurecmk_application_installation) and use \
             its object_id.",
            azure.tenant_id()
        ),
    };
    Err(not_a_principal(problem))
}

fn not_a_principal(problem: String) -> Diagnostics {
    Diagnostic::error("Not a service principal object id", problem)
        .at_attribute("service_principal_object_id")
        .into()
}

/// Assigns the role at the key or the vault scope, under a new assignment name.
async fn assign_role(
    azure: &AzureClient,
    vault_id: &KeyVaultId,
    model: &Model,
    call: &CallContext,
) -> Result<RoleAssignmentId, Diagnostics> {
    let id = RoleAssignmentId {
        scope: grant_scope(vault_id, model.key_name.as_deref()),
        name: uuid::Uuid::new_v4().to_string(),
    };
    let role = authorization::role_definition_id(
        &vault_id.subscription_id,
        KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
    );
    let principal = &model.service_principal_object_id;

    let created = authorization::create_role_assignment(azure, &id, &role, principal, call).await;
    if let Err(error) = created {
        return Err(role_assignment_failure(azure, &id, principal, &error, call).await);
    }
    Ok(id)
}

/// Explains a refused role assignment; an existing one is named so it can be imported.
async fn role_assignment_failure(
    azure: &AzureClient,
    id: &RoleAssignmentId,
    principal: &str,
    error: &AzureError,
    call: &CallContext,
) -> Diagnostics {
    let mut diagnostic = azure_diagnostic(&format!("creating role assignment {id}"), error);
    if error.code() == Some("RoleAssignmentExists") {
        let listed =
            authorization::list_role_assignments_for_principal(azure, &id.scope, principal, call);
        let existing = listed.await.unwrap_or_default().into_iter().find(|assignment| {
            assignment.scope.eq_ignore_ascii_case(&id.scope)
                && assignment.role_definition_id.ends_with(KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER)
        });
        diagnostic.detail.push_str(" The principal already holds this role at this scope.");
        if let Some(existing) = existing {
            diagnostic.detail.push_str(&format!(
                " Import it instead: terraform import <address> {}",
                existing.id
            ));
        }
    }
    diagnostic.into()
}

/// Adds get, wrapKey and unwrapKey to the principal's access policy entry (creating it).
async fn add_policy(
    azure: &AzureClient,
    vault_id: &KeyVaultId,
    vault: &Vault,
    object_id: &str,
    call: &CallContext,
) -> Result<(), Diagnostics> {
    if missing_permissions(vault, object_id).is_empty() {
        return Err(already_granted(vault_id, object_id));
    }
    let policy = tde_policy(&vault.tenant_id, object_id);
    key_vault::add_access_policy(azure, vault_id, &policy, call).await.map_err(|error| {
        azure_diagnostic(&format!("adding an access policy to {vault_id}"), &error).into()
    })
}

/// Removes exactly get, wrapKey and unwrapKey; a vault already gone took the grant with it.
async fn remove_policy(
    azure: &AzureClient,
    vault_id: &KeyVaultId,
    object_id: &str,
    call: &CallContext,
) -> Result<(), Diagnostics> {
    let action = format!("removing an access policy from {vault_id}");
    let Some(vault) = key_vault::get_vault(azure, vault_id, call)
        .await
        .map_err(|error| azure_diagnostic(&action, &error))?
    else {
        return Ok(());
    };
    let policy = tde_policy(&vault.tenant_id, object_id);
    match key_vault::remove_access_policy(azure, vault_id, &policy, call).await {
        Err(error) if !error.is_not_found() => Err(azure_diagnostic(&action, &error).into()),
        _ => Ok(()),
    }
}

async fn read_role_grant(
    azure: &AzureClient,
    model: &mut Model,
    id: RoleAssignmentId,
    vault: KeyVaultId,
    key_name: Option<String>,
    call: &CallContext,
) -> Result<Result<Diagnostics, Diagnostic>, Diagnostics> {
    let assignment = authorization::get_role_assignment(azure, &id, call)
        .await
        .map_err(|error| azure_diagnostic(&format!("reading role assignment {id}"), &error))?;
    let Some(assignment) = assignment else {
        return Ok(Err(Diagnostic::warning(
            "Key grant deleted outside Terraform",
            format!(
                "Role assignment {id} no longer exists; Terraform will plan to grant the role \
                 again."
            ),
        )));
    };

    model.id = Some(id.to_string());
    model.role_assignment_id = Some(id.to_string());
    model.effective_mode = Some(RBAC.to_string());
    model.access_policy_key_permissions = None;
    keep_spelling(&mut model.service_principal_object_id, &assignment.principal_id);
    keep_vault_spelling(&mut model.key_vault_id, &vault);
    if !same_optional_name(model.key_name.as_deref(), key_name.as_deref()) {
        model.key_name = key_name;
    }
    Ok(Ok(Diagnostics::new()))
}

async fn read_policy_grant(
    azure: &AzureClient,
    model: &mut Model,
    vault_id: &KeyVaultId,
    object_id: &str,
    call: &CallContext,
) -> Result<Result<Diagnostics, Diagnostic>, Diagnostics> {
    let vault = key_vault::get_vault(azure, vault_id, call)
        .await
        .map_err(|error| azure_diagnostic(&format!("reading key vault {vault_id}"), &error))?;
    let Some(vault) = vault else {
        return Ok(Err(Diagnostic::warning(
            "Key vault deleted outside Terraform",
            format!(
                "Key vault {vault_id} no longer exists, and its access policies with it; \
                 Terraform will plan to create the grant again."
            ),
        )));
    };
    let missing = missing_permissions(&vault, object_id);
    if !missing.is_empty() {
        return Ok(Err(Diagnostic::warning(
            "Key grant changed outside Terraform",
            format!(
                "The access policy of {object_id} in key vault {} no longer grants {}; \
                 Terraform will plan to grant get, wrapKey and unwrapKey again.",
                vault.name,
                missing.join(", ")
            ),
        )));
    }

    model.id = Some(access_policy_grant_id(vault_id, object_id));
    model.role_assignment_id = None;
    model.effective_mode = Some(ACCESS_POLICY.to_string());
    model.access_policy_key_permissions = Some(tde_permissions());
    keep_spelling(&mut model.service_principal_object_id, object_id);
    keep_vault_spelling(&mut model.key_vault_id, vault_id);

    let mut warnings = Diagnostics::new();
    if GrantMode::of_vault(&vault) == GrantMode::Rbac {
        warnings.push(Diagnostic::warning(
            "Access policy grant has no effect",
            format!(
                "Key vault {} now uses Azure RBAC and ignores access policies, so this grant \
                 gives the service principal nothing. Replace the grant (terraform apply \
                 -replace) to assign the role instead.",
                vault.name
            ),
        ));
    }
    Ok(Ok(warnings))
}

/// Which of the three TDE permissions the principal's entry lacks (all three without an entry).
fn missing_permissions(vault: &Vault, object_id: &str) -> Vec<&'static str> {
    let held: Vec<&str> = vault
        .access_policies
        .iter()
        .filter(|policy| policy.object_id.eq_ignore_ascii_case(object_id))
        .filter(|policy| policy.tenant_id.eq_ignore_ascii_case(&vault.tenant_id))
        .filter(|policy| policy.application_id.is_none())
        .flat_map(|policy| policy.permissions.keys.iter().map(String::as_str))
        .collect();
    let has = |permission: &str| {
        held.iter().any(|granted| {
            granted.eq_ignore_ascii_case(permission) || granted.eq_ignore_ascii_case("all")
        })
    };
    TDE_KEY_PERMISSIONS.into_iter().filter(|permission| !has(permission)).collect()
}

fn tde_policy(tenant_id: &str, object_id: &str) -> AccessPolicy {
    AccessPolicy {
        tenant_id: tenant_id.to_string(),
        object_id: object_id.to_string(),
        application_id: None,
        permissions: Permissions { keys: tde_permissions(), ..Permissions::default() },
    }
}

fn tde_permissions() -> Vec<String> {
    TDE_KEY_PERMISSIONS.iter().map(|permission| permission.to_string()).collect()
}

/// The ARM scope of a grant: the key, or the whole vault.
fn grant_scope(vault_id: &KeyVaultId, key_name: Option<&str>) -> String {
    match key_name {
        Some(name) => format!("{vault_id}{KEY_INFIX}{name}"),
        None => vault_id.to_string(),
    }
}

fn access_policy_grant_id(vault_id: &KeyVaultId, object_id: &str) -> String {
    format!("{vault_id}{ACCESS_POLICY_INFIX}{object_id}")
}

/// Reads either kind of grant id.
fn parse_grant_id(text: &str) -> Result<GrantId, String> {
    let trimmed = text.trim().trim_end_matches('/');
    let lowered = trimmed.to_ascii_lowercase();
    // ASCII lowercasing keeps byte offsets, so the position found applies to the original.
    if let Some(position) = lowered.rfind(&ACCESS_POLICY_INFIX.to_ascii_lowercase()) {
        let vault = KeyVaultId::parse(&trimmed[..position]).map_err(|error| error.to_string())?;
        let object_id = &trimmed[position + ACCESS_POLICY_INFIX.len()..];
        validators::uuid(object_id)?;
        return Ok(GrantId::AccessPolicy { vault, object_id: object_id.to_string() });
    }
    let id = RoleAssignmentId::parse(trimmed).map_err(|error| error.to_string())?;
    let (vault, key_name) = parse_scope(&id.scope)?;
    Ok(GrantId::RoleAssignment { id, vault, key_name })
}

/// Splits a grant scope into the vault and, for a key scope, the key's name.
fn parse_scope(scope: &str) -> Result<(KeyVaultId, Option<String>), String> {
    let lowered = scope.to_ascii_lowercase();
    if let Some(position) = lowered.rfind(KEY_INFIX) {
        let name = &scope[position + KEY_INFIX.len()..];
        if let Ok(vault) = KeyVaultId::parse(&scope[..position]) {
            validators::key_name(name)?;
            return Ok((vault, Some(name.to_string())));
        }
    }
    let vault = KeyVaultId::parse(scope).map_err(|_| {
        format!("the role assignment's scope {scope:?} is neither a key vault nor a key in one")
    })?;
    Ok((vault, None))
}

fn parse_state_id(model: &Model) -> Result<GrantId, Diagnostic> {
    parse_grant_id(model.id.as_deref().unwrap_or_default()).map_err(|problem| {
        Diagnostic::error(
            "Corrupt state",
            format!("The id stored in state is not a key grant id: {problem}."),
        )
    })
}

fn parse_vault_id(text: &str) -> Result<KeyVaultId, Diagnostic> {
    KeyVaultId::parse(text).map_err(|error| {
        Diagnostic::error("Invalid key_vault_id", format!("{error}.")).at_attribute("key_vault_id")
    })
}

/// The attributes whose planned change really needs a new grant. Respellings of the same ids,
/// a mode that resolves to the grant already written, and (for vault-wide access policies) the
/// key name leave Azure as it is.
fn replacement_needed(prior: &Value, planned: &Value) -> Vec<AttributePath> {
    let text = |value: &Value, name: &str| value.attribute(name).as_str().map(str::to_string);
    let effective = text(prior, "effective_mode");
    let mut needed = Vec::new();

    let same_principal = matches!(
        (text(prior, "service_principal_object_id"), text(planned, "service_principal_object_id")),
        (Some(left), Some(right)) if left.eq_ignore_ascii_case(&right)
    );
    if !same_principal {
        needed.push(AttributePath::root("service_principal_object_id"));
    }
    let vault = |value: &Value| {
        text(value, "key_vault_id")
            .and_then(|id| KeyVaultId::parse(&id).ok())
            .map(|id| id.to_string().to_ascii_lowercase())
    };
    if vault(prior).is_none() || vault(prior) != vault(planned) {
        needed.push(AttributePath::root("key_vault_id"));
    }
    let key_name_matters = effective.as_deref() != Some(ACCESS_POLICY);
    let same_key = same_optional_name(
        text(prior, "key_name").as_deref(),
        text(planned, "key_name").as_deref(),
    );
    if key_name_matters && !same_key {
        needed.push(AttributePath::root("key_name"));
    }
    let resolves = |mode: Option<String>| match mode.as_deref() {
        None | Some(AUTO) => effective.clone(),
        other => other.map(str::to_string),
    };
    if effective.is_none() || resolves(text(planned, "mode")) != effective {
        needed.push(AttributePath::root("mode"));
    }
    needed
}

fn same_optional_name(left: Option<&str>, right: Option<&str>) -> bool {
    match (left, right) {
        (Some(left), Some(right)) => left.eq_ignore_ascii_case(right),
        (None, None) => true,
        _ => false,
    }
}

/// Keeps `recorded` when it is a respelling of `actual` (GUIDs compare without case).
fn keep_spelling(recorded: &mut String, actual: &str) {
    if !recorded.eq_ignore_ascii_case(actual) {
        *recorded = actual.to_string();
    }
}

/// Keeps the recorded vault id when it names `actual`, so a respelling never shows as drift.
fn keep_vault_spelling(recorded: &mut String, actual: &KeyVaultId) {
    let same = KeyVaultId::parse(recorded)
        .is_ok_and(|id| id.to_string().eq_ignore_ascii_case(&actual.to_string()));
    if !same {
        *recorded = actual.to_string();
    }
}

fn not_visible(id: &str) -> Diagnostics {
    Diagnostic::error(
        "Key grant not visible",
        format!(
            "Azure accepted grant {id} but did not show it before the create timeout. It may \
             still be replicating: raise timeouts.create, or import it once it shows: terraform \
             import <address> {id}"
        ),
    )
    .into()
}

fn already_granted(vault_id: &KeyVaultId, object_id: &str) -> Diagnostics {
    let id = access_policy_grant_id(vault_id, object_id);
    Diagnostic::error(
        "Key grant already exists",
        format!(
            "The access policy of {object_id} already grants get, wrapKey and unwrapKey. Import \
             it to manage it here (destroy would then remove those three permissions): \
             terraform import <address> {id}"
        ),
    )
    .at_attribute("service_principal_object_id")
    .into()
}

fn vault_wide_warning(vault: &Vault) -> Diagnostic {
    Diagnostic::warning(
        "Access policy covers the whole vault",
        format!(
            "Key vault {} uses access policies, which cannot be limited to one key: the service \
             principal can use every key in the vault, not only key_name.",
            vault.name
        ),
    )
    .at_attribute("key_name")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const VAULT_ID: &str =
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv";
    const PRINCIPAL: &str = "8f5c1f3e-2b1a-4c4e-9a55-0c3b1f2d9e10";
    const ASSIGNMENT: &str = "0b8e7f4c-1d2e-4f3a-9b8c-7d6e5f4a3b2c";

    fn vault(rbac: Option<bool>, policies: Vec<(&str, &[&str])>) -> Vault {
        Vault {
            id: VAULT_ID.to_string(),
            name: "kv".to_string(),
            location: "westeurope".to_string(),
            tenant_id: "tenant-1".to_string(),
            vault_uri: "https://kv.vault.azure.net/".to_string(),
            enable_soft_delete: Some(true),
            enable_purge_protection: Some(true),
            enable_rbac_authorization: rbac,
            access_policies: policies
                .into_iter()
                .map(|(object_id, keys)| AccessPolicy {
                    tenant_id: "tenant-1".to_string(),
                    object_id: object_id.to_string(),
                    application_id: None,
                    permissions: Permissions {
                        keys: keys.iter().map(|key| key.to_string()).collect(),
                        ..Permissions::default()
                    },
                })
                .collect(),
        }
    }

    #[test]
    fn mode_follows_or_must_match_the_vault() {
        let cases = [
            ("auto on rbac", AUTO, Some(true), Ok(GrantMode::Rbac)),
            ("auto on policies", AUTO, Some(false), Ok(GrantMode::AccessPolicy)),
            ("auto when unset", AUTO, None, Ok(GrantMode::AccessPolicy)),
            ("rbac on rbac", RBAC, Some(true), Ok(GrantMode::Rbac)),
            ("policy on policies", ACCESS_POLICY, None, Ok(GrantMode::AccessPolicy)),
            ("rbac on policies", RBAC, Some(false), Err("uses access policies")),
            ("policy on rbac", ACCESS_POLICY, Some(true), Err("uses Azure RBAC")),
        ];
        for (name, asked, rbac, expected) in cases {
            match (choose_mode(asked, &vault(rbac, Vec::new())), expected) {
                (Ok(mode), Ok(expected)) => assert_eq!(mode, expected, "{name}"),
                (Err(diagnostic), Err(text)) => {
                    assert!(diagnostic.detail.contains(text), "{name}: {}", diagnostic.detail);
                    assert_eq!(diagnostic.attribute, Some(AttributePath::root("mode")), "{name}");
                }
                (result, _) => panic!("{name}: unexpected {result:?}"),
            }
        }
    }

    #[test]
    fn missing_permissions_name_what_is_gone() {
        let other = "00000000-0000-0000-0000-000000000001";
        let cases: [(&str, Vault, &[&str]); 6] = [
            ("no entry", vault(None, vec![(other, &["get"])]), &["get", "wrapKey", "unwrapKey"]),
            ("all three", vault(None, vec![(PRINCIPAL, &["get", "wrapKey", "unwrapKey"])]), &[]),
            (
                "case-insensitive",
                vault(None, vec![(PRINCIPAL, &["GET", "wrapkey", "UnwrapKey"])]),
                &[],
            ),
            ("all", vault(None, vec![(PRINCIPAL, &["all"])]), &[]),
            (
                "one removed",
                vault(None, vec![(PRINCIPAL, &["get", "unwrapKey", "list"])]),
                &["wrapKey"],
            ),
            (
                "upper-case object id",
                vault(None, vec![(&PRINCIPAL.to_uppercase(), &["get", "wrapKey"])]),
                &["unwrapKey"],
            ),
        ];
        for (name, vault, expected) in cases {
            assert_eq!(missing_permissions(&vault, PRINCIPAL), expected, "{name}");
        }
    }

    #[test]
    fn grant_ids_of_both_kinds() {
        let vault = KeyVaultId::parse(VAULT_ID).unwrap();
        let infix = "/providers/Microsoft.Authorization/roleAssignments/";
        let key_scope = format!("{VAULT_ID}/keys/tde");
        let cases = [
            (
                "role on key",
                format!("{key_scope}{infix}{ASSIGNMENT}"),
                Ok(GrantId::RoleAssignment {
                    id: RoleAssignmentId { scope: key_scope.clone(), name: ASSIGNMENT.into() },
                    vault: vault.clone(),
                    key_name: Some("tde".into()),
                }),
            ),
            (
                "role on vault, lowercase segments",
                format!("{}{}{ASSIGNMENT}", VAULT_ID.to_lowercase(), infix.to_lowercase()),
                Ok(GrantId::RoleAssignment {
                    id: RoleAssignmentId {
                        scope: VAULT_ID.to_lowercase(),
                        name: ASSIGNMENT.into(),
                    },
                    vault: KeyVaultId::parse(&VAULT_ID.to_lowercase()).unwrap(),
                    key_name: None,
                }),
            ),
            (
                "access policy",
                format!("{VAULT_ID}/accessPolicies/{PRINCIPAL}/"),
                Ok(GrantId::AccessPolicy { vault: vault.clone(), object_id: PRINCIPAL.into() }),
            ),
            ("policy without uuid", format!("{VAULT_ID}/accessPolicies/sp"), Err("not a UUID")),
            (
                "role on a subscription",
                format!("/subscriptions/s1{infix}{ASSIGNMENT}"),
                Err("neither a key vault nor a key"),
            ),
            ("vault id alone", VAULT_ID.to_string(), Err("roleAssignments")),
        ];
        for (name, input, expected) in cases {
            match (parse_grant_id(&input), expected) {
                (Ok(id), Ok(expected)) => assert_eq!(id, expected, "{name}"),
                (Err(problem), Err(text)) => assert!(problem.contains(text), "{name}: {problem}"),
                (result, _) => panic!("{name}: unexpected {result:?}"),
            }
        }
    }

    fn state(pairs: &[(&str, &str)]) -> Value {
        let mut attributes = BTreeMap::from([
            ("service_principal_object_id".to_string(), Value::String(PRINCIPAL.into())),
            ("key_vault_id".to_string(), Value::String(VAULT_ID.into())),
            ("key_name".to_string(), Value::Null),
            ("mode".to_string(), Value::String(AUTO.into())),
            ("effective_mode".to_string(), Value::String(RBAC.into())),
        ]);
        for (name, value) in pairs {
            attributes.insert(name.to_string(), Value::String(value.to_string()));
        }
        Value::Object(attributes)
    }

    #[test]
    fn only_real_changes_replace_the_grant() {
        let upper_vault = VAULT_ID.to_uppercase();
        let upper_principal = PRINCIPAL.to_uppercase();
        let cases: [(&str, Value, Value, &[&str]); 8] = [
            ("nothing", state(&[]), state(&[]), &[]),
            ("vault respelt", state(&[]), state(&[("key_vault_id", &upper_vault)]), &[]),
            (
                "principal respelt",
                state(&[]),
                state(&[("service_principal_object_id", &upper_principal)]),
                &[],
            ),
            ("auto made explicit", state(&[]), state(&[("mode", RBAC)]), &[]),
            ("mode flipped", state(&[]), state(&[("mode", ACCESS_POLICY)]), &["mode"]),
            ("key named in rbac", state(&[]), state(&[("key_name", "tde")]), &["key_name"]),
            (
                "key named in a policy",
                state(&[("effective_mode", ACCESS_POLICY)]),
                state(&[("key_name", "tde"), ("effective_mode", ACCESS_POLICY)]),
                &[],
            ),
            (
                "other vault",
                state(&[]),
                state(&[("key_vault_id", &VAULT_ID.replace("/kv", "/kv2"))]),
                &["key_vault_id"],
            ),
        ];
        for (name, prior, planned, expected) in cases {
            let needed = replacement_needed(&prior, &planned);
            let expected: Vec<AttributePath> =
                expected.iter().map(|name| AttributePath::root(name)).collect();
            assert_eq!(needed, expected, "{name}");
        }
    }

    #[tokio::test]
    async fn polling_waits_for_the_object_and_gives_up_before_the_deadline() {
        let cases = [
            ("found at once", 0, Duration::from_secs(10), true),
            ("found on the third read", 2, Duration::from_secs(10), true),
            ("deadline too near to wait", 2, Duration::from_millis(100), false),
        ];
        for (name, misses, timeout, expected) in cases {
            let call = CallContext::with_timeout(timeout);
            let reads = std::cell::Cell::new(0);
            let probe = || {
                reads.set(reads.get() + 1);
                let found = (reads.get() > misses).then_some("grant");
                async move { Ok::<_, AzureError>(found) }
            };
            let found = poll_until_found(&call, probe).await.unwrap();
            assert_eq!(found.is_some(), expected, "{name}");
        }
    }

    #[test]
    fn scopes_and_policy_ids() {
        let vault = KeyVaultId::parse(&format!("{VAULT_ID}/")).unwrap();
        assert_eq!(grant_scope(&vault, Some("tde")), format!("{VAULT_ID}/keys/tde"));
        assert_eq!(grant_scope(&vault, None), VAULT_ID);
        assert_eq!(
            access_policy_grant_id(&vault, PRINCIPAL),
            format!("{VAULT_ID}/accessPolicies/{PRINCIPAL}")
        );
    }
}
