//! `azurecmk_federated_app_credential` through the real Terraform CLI against the simulator: the
//! issuer, subject and audience derived from the managed identity, no-op plan, import, drift
//! (edited and deleted outside Terraform), description in place, rename by replacement, name
//! validation at plan time, an application and credential still replicating, destroy.

mod support;

use serde_json::{Value, json};
use support::azure::AzureSession;
use support::terraform::{self, REQUIRED_PROVIDERS, SeedIds, TerraformWorkspace};

const ADDRESS: &str = "azurecmk_federated_app_credential.sql";
const IDENTITY_ADDRESS: &str = "azurecmk_user_assigned_identity.sql";
const APPLICATION_ADDRESS: &str = "azurecmk_multi_tenant_application.sql";
const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
const IDENTITY_API_VERSION: &str = "2024-11-30";

/// The identity, the application and the credential between them; `description` is an HCL
/// expression (`null` leaves it unset).
fn config(ids: &SeedIds, name: &str, description: &str) -> String {
    format!(
        "{REQUIRED_PROVIDERS}\n{}\n\
         resource \"azurecmk_user_assigned_identity\" \"sql\" {{\n\
         \x20 name                = \"uami-sql-cmk\"\n\
         \x20 resource_group_name = \"{}\"\n\
         \x20 location            = \"westeurope\"\n\
         }}\n\n\
         resource \"azurecmk_multi_tenant_application\" \"sql\" {{\n\
         \x20 display_name = \"isv-sql-cmk\"\n\
         }}\n\n\
         resource \"azurecmk_federated_app_credential\" \"sql\" {{\n\
         \x20 application_object_id = azurecmk_multi_tenant_application.sql.object_id\n\
         \x20 managed_identity_id   = azurecmk_user_assigned_identity.sql.id\n\
         \x20 name                  = {}\n\
         \x20 description           = {description}\n\
         }}\n",
        ids.isv.provider_block(None),
        ids.isv.resource_group,
        terraform::hcl_string(name),
    )
}

/// The federated credentials on application `object_id` in the ISV tenant, as the simulator holds
/// them.
fn credentials(
    simulator: &azure_sim::RunningSimulator,
    ids: &SeedIds,
    object_id: &str,
) -> Vec<Value> {
    let state = simulator.state();
    let tenant = state["tenants"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|tenant| tenant["id"] == ids.isv.tenant_id.as_str())
        .cloned()
        .expect("the ISV tenant in the simulator state");
    tenant["applications"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|app| app["object_id"] == object_id)
        .flat_map(|app| app["federated_credentials"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[test]
fn credential_lifecycle_import_and_drift() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let workspace =
        TerraformWorkspace::new(&config(&ids, "uami-sql-cmk", r#""first""#), &simulator);

    workspace.init();
    workspace.apply();
    let identity = workspace.resource_values(IDENTITY_ADDRESS);
    let application = workspace.resource_values(APPLICATION_ADDRESS);
    let created = workspace.resource_values(ADDRESS);
    let object_id = application["object_id"].as_str().expect("an application object id");
    let credential_id = created["credential_id"].as_str().expect("a credential id").to_string();
    let id = created["id"].as_str().expect("an id").to_string();
    assert_eq!(id, format!("{object_id}/federatedIdentityCredentials/{credential_id}"));

    // Issuer, subject and audience are what Entra matches a managed identity's token against:
    // the subject is the principal id, never the client id.
    let issuer = format!("https://login.microsoftonline.com/{}/v2.0", ids.isv.tenant_id);
    assert_eq!(created["issuer"], issuer.as_str());
    assert_eq!(created["subject"], identity["principal_id"]);
    assert_ne!(created["subject"], identity["client_id"]);
    assert_eq!(created["audiences"], json!([TOKEN_EXCHANGE_AUDIENCE]));
    assert_eq!(created["managed_identity_id"], identity["id"]);
    assert_eq!(created["description"], "first");
    let in_azure = credentials(&simulator, &ids, object_id);
    assert_eq!(in_azure.len(), 1, "{in_azure:#?}");
    assert_eq!(in_azure[0]["name"], "uami-sql-cmk");
    assert_eq!(in_azure[0]["issuer"], issuer.as_str());
    assert_eq!(in_azure[0]["subject"], identity["principal_id"]);
    assert_eq!(in_azure[0]["audiences"], json!([TOKEN_EXCHANGE_AUDIENCE]));
    workspace.assert_no_changes();

    // Import reproduces the state, the trusted identity included: Graph names it among the
    // alternative names of the identity's service principal.
    let imported = TerraformWorkspace::new(&config(&ids, "uami-sql-cmk", r#""first""#), &simulator);
    imported.init();
    let identity_id = identity["id"].as_str().unwrap();
    imported.import(IDENTITY_ADDRESS, identity_id);
    imported.import(APPLICATION_ADDRESS, object_id);
    imported.import(ADDRESS, &id);
    assert_eq!(imported.resource_values(ADDRESS), created);
    imported.assert_no_changes();
    workspace.assert_no_changes();

    // The description edited outside Terraform shows in the next plan; apply puts it back.
    let azure = AzureSession::new(&simulator, &ids.isv);
    let path = format!("/applications/{id}");
    let (status, _) = azure.graph("PATCH", &path, Some(json!({"description": "drifted"})));
    assert_eq!(status, 204);
    let plan = workspace.assert_changes();
    assert!(plan.stdout.contains(r#"~ description           = "drifted" -> "first""#), "{plan}");
    workspace.apply();
    workspace.assert_no_changes();

    // So does the subject: pointed at the client id (the classic mistake), the credential would
    // trust nobody, and the plan sets it back to the principal id.
    let client_id = identity["client_id"].as_str().unwrap();
    let principal_id = identity["principal_id"].as_str().unwrap();
    let (status, _) = azure.graph("PATCH", &path, Some(json!({"subject": client_id})));
    assert_eq!(status, 204);
    let plan = workspace.assert_changes();
    let expected = format!(r#"~ subject               = "{client_id}" -> "{principal_id}""#);
    assert!(plan.stdout.contains(&expected), "{plan}");
    assert!(plan.stdout.contains("0 to add, 1 to change, 0 to destroy"), "{plan}");
    workspace.apply();
    workspace.assert_no_changes();
    assert_eq!(credentials(&simulator, &ids, object_id)[0]["subject"], principal_id);

    // The identity deleted and recreated under the same ARM id gets a new principal id: the
    // credential still names the old one, and the plan moves it to the new one.
    let (status, _) = azure.arm("DELETE", identity_id, IDENTITY_API_VERSION, None);
    assert_eq!(status, 200);
    let body = json!({"location": "westeurope"});
    let (status, recreated_identity) =
        azure.arm("PUT", identity_id, IDENTITY_API_VERSION, Some(body));
    assert_eq!(status, 201, "{recreated_identity}");
    let new_principal_id = recreated_identity["properties"]["principalId"].as_str().unwrap();
    assert_ne!(new_principal_id, principal_id);
    let plan = workspace.assert_changes();
    let expected = format!(r#"~ subject               = "{principal_id}" -> "{new_principal_id}""#);
    assert!(plan.stdout.contains(&expected), "{plan}");
    workspace.apply();
    workspace.assert_no_changes();
    assert_eq!(credentials(&simulator, &ids, object_id)[0]["subject"], new_principal_id);
    let principal_id = new_principal_id.to_string();
    let principal_id = principal_id.as_str();

    // The description updates in place, and unsetting it clears it in Graph.
    workspace.write_main(&config(&ids, "uami-sql-cmk", r#""second""#));
    let update = workspace.apply();
    assert!(update.stdout.contains("0 added, 1 changed, 0 destroyed"), "{update}");
    assert_eq!(credentials(&simulator, &ids, object_id)[0]["description"], "second");
    workspace.write_main(&config(&ids, "uami-sql-cmk", "null"));
    let update = workspace.apply();
    assert!(update.stdout.contains("0 added, 1 changed, 0 destroyed"), "{update}");
    assert_eq!(credentials(&simulator, &ids, object_id)[0]["description"], Value::Null);
    workspace.assert_no_changes();
    let updated = workspace.resource_values(ADDRESS);
    assert_eq!(updated["credential_id"], created["credential_id"]);

    // Deleted outside Terraform: refresh warns and the plan creates it again.
    let (status, _) = azure.graph("DELETE", &path, None);
    assert_eq!(status, 204);
    let plan = workspace.assert_changes();
    assert!(plan.stdout.contains("will be created"), "{plan}");
    assert!(plan.combined().contains("Federated credential deleted outside Terraform"), "{plan}");
    workspace.apply();
    let recreated = workspace.resource_values(ADDRESS);
    assert_ne!(recreated["credential_id"], created["credential_id"]);
    assert_eq!(recreated["subject"], principal_id);
    assert_eq!(credentials(&simulator, &ids, object_id).len(), 1);
    workspace.assert_no_changes();

    workspace.destroy();
    assert!(credentials(&simulator, &ids, object_id).is_empty(), "destroy left credentials");
    assert_nothing_left(&simulator, &ids);
    terraform::stop_simulator(simulator);
}

#[test]
fn renaming_forces_replacement_and_bad_names_fail_at_plan() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let workspace = TerraformWorkspace::new(&config(&ids, "uami-sql-cmk", "null"), &simulator);
    workspace.init();
    workspace.apply();
    let created = workspace.resource_values(ADDRESS);
    let object_id = created["application_object_id"].as_str().unwrap().to_string();

    // Graph names are immutable: a new name replaces the credential, trusting the same identity.
    workspace.write_main(&config(&ids, "uami-sql-cmk-2", "null"));
    let plan = workspace.assert_changes();
    assert!(plan.stdout.contains("# forces replacement"), "{plan}");
    assert!(plan.stdout.contains("1 to add, 0 to change, 1 to destroy"), "{plan}");
    workspace.apply();
    let renamed = workspace.resource_values(ADDRESS);
    assert_ne!(renamed["credential_id"], created["credential_id"]);
    assert_eq!(renamed["subject"], created["subject"]);
    let in_azure = credentials(&simulator, &ids, &object_id);
    assert_eq!(in_azure.len(), 1, "{in_azure:#?}");
    assert_eq!(in_azure[0]["name"], "uami-sql-cmk-2");
    workspace.assert_no_changes();

    // Names Graph would refuse fail at plan, pointing at `name`, before anything is sent.
    for bad_name in ["uami sql", "ab", "-uami"] {
        workspace.write_main(&config(&ids, bad_name, "null"));
        let failed = workspace.run(&["plan", "-no-color"]);
        assert!(!failed.success(), "{bad_name:?}: {failed}");
        let pointed_at_name = format!("name                  = \"{bad_name}\"");
        assert!(
            failed.stderr.contains("Invalid name")
                && failed.stderr.contains("not a valid federated credential name")
                && failed.stderr.contains(&pointed_at_name),
            "{bad_name:?}: {failed}"
        );
    }
    assert_eq!(credentials(&simulator, &ids, &object_id).len(), 1);

    workspace.write_main(&config(&ids, "uami-sql-cmk-2", "null"));
    workspace.destroy();
    assert_nothing_left(&simulator, &ids);
    terraform::stop_simulator(simulator);
}

/// No identity and no application of these tests remain.
fn assert_nothing_left(simulator: &azure_sim::RunningSimulator, ids: &SeedIds) {
    let state = simulator.state();
    let identities = state["identities"].as_array().cloned().unwrap_or_default();
    assert!(identities.is_empty(), "destroy left identities behind: {identities:#?}");
    let applications: Vec<&Value> = state["tenants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|tenant| tenant["id"] == ids.isv.tenant_id.as_str())
        .flat_map(|tenant| tenant["applications"].as_array().into_iter().flatten())
        .filter(|app| app["display_name"] == "isv-sql-cmk")
        .collect();
    assert!(applications.is_empty(), "destroy left applications behind: {applications:#?}");
}

#[test]
fn credential_waits_for_a_replicating_application() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    for kind in ["application", "federated_credential"] {
        delay_replication(&simulator, kind, 2000);
    }
    let workspace = TerraformWorkspace::new(&config(&ids, "uami-sql-cmk", "null"), &simulator);
    workspace.init();

    // Graph answers 404 for an application created moments ago; the credential waits it out,
    // then waits until it reads back itself, so the next plan finds both.
    workspace.apply();
    workspace.assert_no_changes();
    let object_id = workspace.resource_values(APPLICATION_ADDRESS)["object_id"].clone();
    assert_eq!(credentials(&simulator, &ids, object_id.as_str().unwrap()).len(), 1);

    workspace.destroy();
    assert_nothing_left(&simulator, &ids);
    terraform::stop_simulator(simulator);
}

/// Makes Graph objects of `kind` invisible to reads for `delay_ms` after they are created, as
/// Graph replicas are (the simulator's admin API).
fn delay_replication(simulator: &azure_sim::RunningSimulator, kind: &str, delay_ms: u64) {
    let url = format!("{}/admin/replication", simulator.admin_url());
    let body = json!({"kind": kind, "delay_ms": delay_ms});
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = runtime.block_on(async {
        let response = reqwest::Client::new().post(url).json(&body).send().await;
        response.expect("the simulator's admin API").status()
    });
    assert_eq!(status.as_u16(), 204, "setting the replication delay of {kind}");
}
