//! `azurecmk_cross_tenant_key_grant` through the real Terraform CLI against the simulator: the ISV
//! application (ISV tenant) is installed in the customer's tenant, and its service principal gets
//! the key. RBAC mode on `contoso-cmk-rbac`, access-policy mode on `contoso-cmk-kv`, each with a
//! no-op plan, import, drift behind Terraform's back and a destroy that leaves the vault's
//! permissions as they were; plus the refusals of a mode the vault does not use and of an
//! application client id given as the service principal.

mod support;

use azure_sim::RunningSimulator;
use serde_json::{Value, json};
use support::azure::AzureSession;
use support::terraform::{self, REQUIRED_PROVIDERS, SeedIds, TerraformWorkspace};

const GRANT: &str = "azurecmk_cross_tenant_key_grant.sql";
const RBAC_VAULT: &str = "contoso-cmk-rbac";
const POLICY_VAULT: &str = "contoso-cmk-kv";
const CRYPTO_SERVICE_ENCRYPTION_USER: &str = "e147488a-f6f5-4113-8e2d-b22465e65bf6";
const KEY_VAULT_API: &str = "2025-05-01";
const AUTHORIZATION_API: &str = "2022-04-01";

/// Both provider blocks (the customer's is the default), the ISV's application and its
/// installation in the customer's tenant, then `resources`.
fn config(ids: &SeedIds, resources: &str) -> String {
    format!(
        "{REQUIRED_PROVIDERS}\n{}\n{}\n\
         resource \"azurecmk_multi_tenant_application\" \"cmk\" {{\n\
         \x20 provider     = azurecmk.isv\n\
         \x20 display_name = \"grant-test-app\"\n\
         }}\n\n\
         resource \"azurecmk_application_installation\" \"cmk\" {{\n\
         \x20 client_id = azurecmk_multi_tenant_application.cmk.client_id\n\
         }}\n\n{resources}",
        ids.isv.provider_block(Some("isv")),
        ids.customer.provider_block(None),
    )
}

/// A grant of the installed application on `vault`, with extra argument lines.
fn grant(ids: &SeedIds, vault: &str, extra: &str) -> String {
    format!(
        "resource \"azurecmk_cross_tenant_key_grant\" \"sql\" {{\n\
         \x20 service_principal_object_id = azurecmk_application_installation.cmk.object_id\n\
         \x20 key_vault_id                = {}\n{extra}}}\n",
        terraform::hcl_string(&ids.key_vault_id(vault)),
    )
}

/// Only the customer's provider block and a grant with literal arguments, for import.
fn import_config(ids: &SeedIds, vault: &str, object_id: &str, extra: &str) -> String {
    format!(
        "{REQUIRED_PROVIDERS}\n{}\n\
         resource \"azurecmk_cross_tenant_key_grant\" \"sql\" {{\n\
         \x20 service_principal_object_id = {}\n\
         \x20 key_vault_id                = {}\n{extra}}}\n",
        ids.customer.provider_block(None),
        terraform::hcl_string(object_id),
        terraform::hcl_string(&ids.key_vault_id(vault)),
    )
}

fn role_assignments(simulator: &RunningSimulator) -> Vec<Value> {
    simulator.state()["role_assignments"].as_array().cloned().unwrap_or_default()
}

fn vault(simulator: &RunningSimulator, name: &str) -> Value {
    let state = simulator.state();
    let vaults = state["vaults"].as_array().cloned().unwrap_or_default();
    vaults
        .into_iter()
        .find(|vault| vault["name"] == name)
        .unwrap_or_else(|| panic!("no vault {name} in the simulator"))
}

/// The access policy entry of `object_id` in vault `name`, if it has one.
fn access_policy(simulator: &RunningSimulator, name: &str, object_id: &str) -> Option<Value> {
    let policies = vault(simulator, name)["access_policies"].as_array().cloned();
    policies.unwrap_or_default().into_iter().find(|policy| policy["object_id"] == object_id)
}

fn key_permissions(policy: &Value) -> Vec<String> {
    let keys = policy["keys"].as_array().cloned().unwrap_or_default();
    keys.iter().filter_map(Value::as_str).map(str::to_string).collect()
}

/// Everything that says who may use which key: role assignments and every vault's policies.
fn permissions_snapshot(simulator: &RunningSimulator) -> Value {
    let mut ids: Vec<String> = role_assignments(simulator)
        .iter()
        .filter_map(|assignment| assignment["id"].as_str().map(str::to_lowercase))
        .collect();
    ids.sort();
    let policies: Vec<Value> = [RBAC_VAULT, POLICY_VAULT, "contoso-nopurge-kv"]
        .iter()
        .map(|name| vault(simulator, name)["access_policies"].clone())
        .collect();
    json!({"role_assignments": ids, "access_policies": policies})
}

/// Terraform wraps diagnostic text; compare with single spaces.
fn flattened(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn rbac_grant_on_one_key_lifecycle_import_and_drift() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let before = permissions_snapshot(&simulator);
    let resources = format!(
        "resource \"azurecmk_key_vault_key\" \"tde\" {{\n\
         \x20 key_vault_id = {}\n\
         \x20 name         = \"tde-key\"\n\
         \x20 key_type     = \"RSA\"\n\
         \x20 key_size     = 3072\n\
         }}\n\n{}",
        terraform::hcl_string(&ids.key_vault_id(RBAC_VAULT)),
        grant(
            &ids,
            RBAC_VAULT,
            "  key_name                    = azurecmk_key_vault_key.tde.name\n"
        ),
    );
    let workspace = TerraformWorkspace::new(&config(&ids, &resources), &simulator);

    workspace.init();
    workspace.apply();
    let created = workspace.resource_values(GRANT);
    let object_id = created["service_principal_object_id"].as_str().expect("an object id");
    let key_scope = format!("{}/keys/tde-key", ids.key_vault_id(RBAC_VAULT));
    let id = created["id"].as_str().expect("an id").to_string();
    assert!(
        id.starts_with(&format!("{key_scope}/providers/Microsoft.Authorization/roleAssignments/")),
        "{created}"
    );
    assert_eq!(created["role_assignment_id"], id.as_str());
    assert_eq!(created["effective_mode"], "rbac");
    assert_eq!(created["mode"], "auto");
    assert!(created["access_policy_key_permissions"].is_null(), "{created}");

    // Azure holds one assignment of the encryption role, to the service principal, on the key.
    let assignment = role_assignments(&simulator)
        .into_iter()
        .find(|assignment| assignment["id"].as_str().is_some_and(|a| a.eq_ignore_ascii_case(&id)))
        .unwrap_or_else(|| panic!("no role assignment {id} in the simulator"));
    assert_eq!(assignment["principal_id"], object_id);
    assert_eq!(assignment["principal_type"], "ServicePrincipal");
    assert_eq!(assignment["scope"], key_scope.as_str());
    let role = assignment["role_definition_id"].as_str().unwrap_or_default();
    assert!(role.ends_with(CRYPTO_SERVICE_ENCRYPTION_USER), "{assignment}");
    workspace.assert_no_changes();

    // Import by the role assignment id into a fresh state reproduces create's.
    let extra = "  key_name                    = \"tde-key\"\n";
    let imported =
        TerraformWorkspace::new(&import_config(&ids, RBAC_VAULT, object_id, extra), &simulator);
    imported.init();
    imported.import(GRANT, &id);
    assert_eq!(imported.resource_values(GRANT), created);
    imported.assert_no_changes();

    // The role assignment deleted behind Terraform's back: the plan grants the role again.
    let azure = AzureSession::new(&simulator, &ids.customer);
    let (status, _) = azure.arm("DELETE", &id, AUTHORIZATION_API, None);
    assert_eq!(status, 200);
    let plan = workspace.assert_changes();
    assert!(plan.stdout.contains("will be created"), "{plan}");
    assert!(plan.combined().contains("Key grant deleted outside Terraform"), "{plan}");
    workspace.apply();
    let regranted = workspace.resource_values(GRANT);
    assert_ne!(regranted["id"], created["id"]);
    workspace.assert_no_changes();

    // Destroy revokes the role: the vault's permissions are as they were before.
    workspace.destroy();
    assert_eq!(permissions_snapshot(&simulator), before);
    terraform::stop_simulator(simulator);
}

#[test]
fn access_policy_grant_lifecycle_import_drift_and_only_its_own_permissions_revoked() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let before = permissions_snapshot(&simulator);
    let workspace =
        TerraformWorkspace::new(&config(&ids, &grant(&ids, POLICY_VAULT, "")), &simulator);

    workspace.init();
    workspace.apply();
    let created = workspace.resource_values(GRANT);
    let object_id = created["service_principal_object_id"].as_str().expect("an object id");
    let id = format!("{}/accessPolicies/{object_id}", ids.key_vault_id(POLICY_VAULT));
    assert_eq!(created["id"], id.as_str());
    assert_eq!(created["effective_mode"], "access_policy");
    assert!(created["role_assignment_id"].is_null(), "{created}");
    assert_eq!(created["access_policy_key_permissions"], json!(["get", "wrapKey", "unwrapKey"]));

    // The vault holds exactly get, wrapKey and unwrapKey for the principal, in its own tenant.
    let policy = access_policy(&simulator, POLICY_VAULT, object_id).expect("an access policy");
    assert_eq!(key_permissions(&policy), ["get", "wrapKey", "unwrapKey"]);
    assert_eq!(policy["tenant_id"], ids.customer.tenant_id.as_str());
    assert_eq!(
        role_assignments(&simulator).len(),
        before["role_assignments"].as_array().unwrap().len()
    );
    workspace.assert_no_changes();

    // Import by the access-policy id into a fresh state reproduces create's.
    let imported =
        TerraformWorkspace::new(&import_config(&ids, POLICY_VAULT, object_id, ""), &simulator);
    imported.init();
    imported.import(GRANT, &id);
    assert_eq!(imported.resource_values(GRANT), created);
    imported.assert_no_changes();

    // wrapKey removed behind Terraform's back: the plan names it and grants again.
    let azure = AzureSession::new(&simulator, &ids.customer);
    let change = |operation: &str, keys: &[&str]| {
        let path = format!("{}/accessPolicies/{operation}", ids.key_vault_id(POLICY_VAULT));
        let entry = json!({"tenantId": ids.customer.tenant_id, "objectId": object_id,
                           "permissions": {"keys": keys}});
        let body = json!({"properties": {"accessPolicies": [entry]}});
        let (status, reply) = azure.arm("PUT", &path, KEY_VAULT_API, Some(body));
        assert!(status == 200 || status == 201, "{operation}: {status} {reply}");
    };
    change("remove", &["wrapKey"]);
    let plan = workspace.assert_changes();
    assert!(plan.stdout.contains("will be created"), "{plan}");
    let warning = flattened(&plan.combined());
    assert!(warning.contains("Key grant changed outside Terraform"), "{plan}");
    assert!(warning.contains("no longer grants wrapKey;"), "the warning names wrapKey\n{plan}");
    workspace.apply();
    let policy = access_policy(&simulator, POLICY_VAULT, object_id).expect("an access policy");
    assert_eq!(key_permissions(&policy), ["get", "unwrapKey", "wrapKey"]);
    workspace.assert_no_changes();

    // Someone else adds list: destroy removes the three it wrote and keeps list.
    change("add", &["list"]);
    workspace.assert_no_changes();
    workspace.destroy();
    let policy = access_policy(&simulator, POLICY_VAULT, object_id).expect("the foreign grant");
    assert_eq!(key_permissions(&policy), ["list"]);

    // Without that foreign permission, the vault's permissions are as they were before.
    change("remove", &["list"]);
    assert_eq!(permissions_snapshot(&simulator), before);
    terraform::stop_simulator(simulator);
}

#[test]
fn grants_the_vault_cannot_honour_or_to_the_wrong_kind_of_id_are_refused() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let before = permissions_snapshot(&simulator);
    let resources = format!(
        "{}\n\
         resource \"azurecmk_cross_tenant_key_grant\" \"policy_on_rbac\" {{\n\
         \x20 service_principal_object_id = azurecmk_application_installation.cmk.object_id\n\
         \x20 key_vault_id                = {}\n\
         \x20 mode                        = \"access_policy\"\n\
         }}\n\n\
         resource \"azurecmk_cross_tenant_key_grant\" \"client_id\" {{\n\
         \x20 service_principal_object_id = azurecmk_multi_tenant_application.cmk.client_id\n\
         \x20 key_vault_id                = {}\n\
         \x20 depends_on                  = [azurecmk_application_installation.cmk]\n\
         }}\n",
        grant(&ids, POLICY_VAULT, "  mode                        = \"rbac\"\n"),
        terraform::hcl_string(&ids.key_vault_id(RBAC_VAULT)),
        terraform::hcl_string(&ids.key_vault_id(POLICY_VAULT)),
    );
    let workspace = TerraformWorkspace::new(&config(&ids, &resources), &simulator);
    workspace.init();

    let failed = workspace.try_apply();
    assert!(!failed.success(), "{failed}");
    let output = flattened(&failed.combined());
    for expected in [
        "Key vault contoso-cmk-kv uses access policies, so it ignores role assignments",
        "Key vault contoso-cmk-rbac uses Azure RBAC, so it ignores access policies",
        "is the client id of application grant-test-app, not an object id",
    ] {
        assert!(output.contains(expected), "missing {expected:?}\n{failed}");
    }
    let state = workspace.show_json();
    let recorded = state["values"]["root_module"]["resources"].as_array().cloned();
    let grants = recorded
        .unwrap_or_default()
        .into_iter()
        .filter(|resource| resource["type"] == "azurecmk_cross_tenant_key_grant");
    assert_eq!(grants.count(), 0, "no refused grant may be recorded\n{state:#}");
    assert_eq!(permissions_snapshot(&simulator), before, "nothing may be granted");

    workspace.destroy();
    terraform::stop_simulator(simulator);
}
