//! `azurecmk_application_installation` through the real Terraform CLI against the simulator, with
//! the application in the ISV's tenant and its service principal in the customer's, each through
//! its own aliased provider block: install, no-op plan, import, deleted outside Terraform,
//! destroy; adopting a service principal the customer already has, or refusing to; an
//! application still replicating.

mod support;

use serde_json::{Value, json};
use support::azure::AzureSession;
use support::terraform::{self, REQUIRED_PROVIDERS, SeedIds, TerraformWorkspace};

const ADDRESS: &str = "azurecmk_application_installation.sql";
const APPLICATION_ADDRESS: &str = "azurecmk_multi_tenant_application.sql";
const DISPLAY_NAME: &str = "isv-sql-cmk";

/// Both provider blocks, the application in the ISV tenant and its installation in the
/// customer's; `adopt_existing` is an HCL expression (`null` leaves the default).
fn config(ids: &SeedIds, adopt_existing: &str) -> String {
    format!(
        "{REQUIRED_PROVIDERS}\n{}\n{}\n\
         resource \"azurecmk_multi_tenant_application\" \"sql\" {{\n\
         \x20 provider     = azurecmk.isv\n\
         \x20 display_name = \"{DISPLAY_NAME}\"\n\
         }}\n\n\
         resource \"azurecmk_application_installation\" \"sql\" {{\n\
         \x20 provider       = azurecmk.customer\n\
         \x20 client_id      = azurecmk_multi_tenant_application.sql.client_id\n\
         \x20 adopt_existing = {adopt_existing}\n\
         }}\n",
        ids.isv.provider_block(Some("isv")),
        ids.customer.provider_block(Some("customer")),
    )
}

/// Only the installation, of an application made outside this configuration.
fn installation_only(ids: &SeedIds, client_id: &str, adopt_existing: &str) -> String {
    format!(
        "{REQUIRED_PROVIDERS}\n{}\n\
         resource \"azurecmk_application_installation\" \"sql\" {{\n\
         \x20 provider       = azurecmk.customer\n\
         \x20 client_id      = \"{client_id}\"\n\
         \x20 adopt_existing = {adopt_existing}\n\
         }}\n",
        ids.customer.provider_block(Some("customer")),
    )
}

/// The service principals of application `client_id` in `tenant_id`, as the simulator holds them.
fn principals_of(
    simulator: &azure_sim::RunningSimulator,
    tenant_id: &str,
    client_id: &str,
) -> Vec<Value> {
    let state = simulator.state();
    state["tenants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|tenant| tenant["id"] == tenant_id)
        .flat_map(|tenant| tenant["service_principals"].as_array().cloned().unwrap_or_default())
        .filter(|principal| principal["app_id"] == client_id)
        .collect()
}

/// The ISV deployer creates a multi-tenant application outside Terraform; returns its client id.
fn application_made_outside(simulator: &azure_sim::RunningSimulator, ids: &SeedIds) -> String {
    let isv = AzureSession::new(simulator, &ids.isv);
    let body = json!({"displayName": DISPLAY_NAME, "signInAudience": "AzureADMultipleOrgs"});
    let (status, application) = isv.graph("POST", "/applications", Some(body));
    assert_eq!(status, 201, "{application}");
    application["appId"].as_str().expect("an appId").to_string()
}

#[test]
fn installation_lifecycle_import_and_drift() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let workspace = TerraformWorkspace::new(&config(&ids, "null"), &simulator);

    workspace.init();
    workspace.apply();
    let application = workspace.resource_values(APPLICATION_ADDRESS);
    let client_id = application["client_id"].as_str().expect("a client id").to_string();
    let created = workspace.resource_values(ADDRESS);
    let object_id = created["object_id"].as_str().expect("an object id").to_string();
    assert_eq!(created["id"], object_id.as_str());
    assert_eq!(created["client_id"], client_id.as_str());
    assert_eq!(created["application_tenant_id"], ids.isv.tenant_id.as_str());
    assert_eq!(created["created_by_provider"], true);
    assert_eq!(created["adopt_existing"], true);

    // The service principal lives in the customer's tenant, and only there.
    let installed = principals_of(&simulator, &ids.customer.tenant_id, &client_id);
    assert_eq!(installed.len(), 1, "{installed:#?}");
    assert_eq!(installed[0]["object_id"], object_id.as_str());
    assert_eq!(installed[0]["app_owner_tenant_id"], ids.isv.tenant_id.as_str());
    assert!(principals_of(&simulator, &ids.isv.tenant_id, &client_id).is_empty());
    workspace.assert_no_changes();

    // Import by the service principal's object id reproduces the state, except that an imported
    // installation is never counted as this resource's own, so destroy would leave it.
    let imported = TerraformWorkspace::new(&config(&ids, "null"), &simulator);
    imported.init();
    imported.import(APPLICATION_ADDRESS, application["object_id"].as_str().unwrap());
    imported.import(ADDRESS, &object_id);
    let mut expected = created.clone();
    expected["created_by_provider"] = json!(false);
    assert_eq!(imported.resource_values(ADDRESS), expected);
    imported.assert_no_changes();

    // Uninstalled outside Terraform: refresh warns and the plan installs it again.
    let customer = AzureSession::new(&simulator, &ids.customer);
    let (status, _) = customer.graph("DELETE", &format!("/servicePrincipals/{object_id}"), None);
    assert_eq!(status, 204);
    let plan = workspace.assert_changes();
    assert!(plan.stdout.contains("will be created"), "{plan}");
    assert!(
        plan.combined().contains("Application installation deleted outside Terraform"),
        "{plan}"
    );
    workspace.apply();
    let reinstalled = workspace.resource_values(ADDRESS);
    assert_ne!(reinstalled["object_id"], created["object_id"]);
    assert_eq!(reinstalled["created_by_provider"], true);
    assert_eq!(principals_of(&simulator, &ids.customer.tenant_id, &client_id).len(), 1);
    workspace.assert_no_changes();

    // Uninstalled and installed again by someone else: the plan installs it, and the apply adopts
    // the new one without claiming it.
    let reinstalled_id = reinstalled["object_id"].as_str().unwrap();
    let path = format!("/servicePrincipals/{reinstalled_id}");
    let (status, _) = customer.graph("DELETE", &path, None);
    assert_eq!(status, 204);
    let body = json!({"appId": client_id});
    let (status, someone_elses) = customer.graph("POST", "/servicePrincipals", Some(body));
    assert_eq!(status, 201, "{someone_elses}");
    workspace.assert_changes();
    workspace.apply();
    let adopted = workspace.resource_values(ADDRESS);
    assert_eq!(adopted["object_id"], someone_elses["id"]);
    assert_eq!(adopted["created_by_provider"], false);
    workspace.assert_no_changes();

    // Destroy leaves the adopted principal; once it is gone, nothing of this test remains.
    workspace.destroy();
    let left = principals_of(&simulator, &ids.customer.tenant_id, &client_id);
    assert_eq!(left.len(), 1, "the adopted service principal must survive destroy");
    let path = format!("/servicePrincipals/{}", someone_elses["id"].as_str().unwrap());
    let (status, _) = customer.graph("DELETE", &path, None);
    assert_eq!(status, 204);
    assert!(principals_of(&simulator, &ids.customer.tenant_id, &client_id).is_empty());
    let state = simulator.state();
    let applications: Vec<&Value> = state["tenants"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|tenant| tenant["applications"].as_array().into_iter().flatten())
        .filter(|app| app["display_name"] == DISPLAY_NAME)
        .collect();
    assert!(applications.is_empty(), "destroy left applications behind: {applications:#?}");
    terraform::stop_simulator(simulator);
}

#[test]
fn destroy_deletes_only_what_it_installed() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let client_id = application_made_outside(&simulator, &ids);
    let workspace =
        TerraformWorkspace::new(&installation_only(&ids, &client_id, "null"), &simulator);
    workspace.init();
    workspace.apply();
    assert_eq!(workspace.resource_values(ADDRESS)["created_by_provider"], true);

    workspace.destroy();
    assert!(principals_of(&simulator, &ids.customer.tenant_id, &client_id).is_empty());
    terraform::stop_simulator(simulator);
}

#[test]
fn existing_installation_is_adopted_or_refused() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let client_id = application_made_outside(&simulator, &ids);
    let customer = AzureSession::new(&simulator, &ids.customer);
    let body = json!({"appId": client_id});
    let (status, existing) = customer.graph("POST", "/servicePrincipals", Some(body));
    assert_eq!(status, 201, "{existing}");
    let existing_id = existing["id"].as_str().expect("an object id").to_string();

    // adopt_existing = false refuses, naming the principal and how to import it.
    let workspace =
        TerraformWorkspace::new(&installation_only(&ids, &client_id, "false"), &simulator);
    workspace.init();
    let failed = workspace.assert_apply_fails_with("Application already installed");
    // Terraform wraps diagnostic details at 78 columns.
    let detail = failed.combined().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(detail.contains(&format!("service principal {existing_id}")), "{failed}");
    assert!(detail.contains(&format!("terraform import <address> {existing_id}")), "{failed}");
    assert!(detail.contains("adopt_existing"), "{failed}");
    assert_eq!(principals_of(&simulator, &ids.customer.tenant_id, &client_id).len(), 1);

    // The default adopts it without claiming it.
    workspace.write_main(&installation_only(&ids, &client_id, "null"));
    workspace.apply();
    let adopted = workspace.resource_values(ADDRESS);
    assert_eq!(adopted["object_id"], existing_id.as_str());
    assert_eq!(adopted["created_by_provider"], false);
    assert_eq!(adopted["adopt_existing"], true);
    assert_eq!(adopted["application_tenant_id"], ids.isv.tenant_id.as_str());
    workspace.assert_no_changes();

    // The import the refusal suggested gives the same state.
    let imported =
        TerraformWorkspace::new(&installation_only(&ids, &client_id, "null"), &simulator);
    imported.init();
    imported.import(ADDRESS, &existing_id);
    assert_eq!(imported.resource_values(ADDRESS), adopted);
    imported.assert_no_changes();

    // Destroy forgets it and leaves it in place.
    workspace.destroy();
    let left = principals_of(&simulator, &ids.customer.tenant_id, &client_id);
    assert_eq!(left.len(), 1, "destroy deleted a service principal it did not create");
    assert_eq!(left[0]["object_id"], existing_id.as_str());
    terraform::stop_simulator(simulator);
}

#[test]
fn installation_waits_for_a_replicating_application() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    for kind in ["application", "service_principal"] {
        delay_replication(&simulator, kind, 2000);
    }
    let workspace = TerraformWorkspace::new(&config(&ids, "null"), &simulator);
    workspace.init();

    // The customer's tenant refuses an application it cannot see yet ("does not reference a
    // valid application object"); the installation retries, then waits until it reads back.
    workspace.apply();
    workspace.assert_no_changes();
    let installed = workspace.resource_values(ADDRESS);
    assert_eq!(installed["created_by_provider"], true);
    let client_id = installed["client_id"].as_str().unwrap().to_string();
    assert_eq!(principals_of(&simulator, &ids.customer.tenant_id, &client_id).len(), 1);

    workspace.destroy();
    assert!(principals_of(&simulator, &ids.customer.tenant_id, &client_id).is_empty());
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
