//! `azurecmk_multi_tenant_application` through the real Terraform CLI against the simulator:
//! create as a multi-tenant app, no-op plan, import, drift (renamed and deleted outside
//! Terraform), display name updated in place, replication delay, destroy.

mod support;

use serde_json::{Value, json};
use support::azure::AzureSession;
use support::terraform::{self, REQUIRED_PROVIDERS, SeedIds, TerraformWorkspace};

const ADDRESS: &str = "azurecmk_multi_tenant_application.sql";

fn config(ids: &SeedIds, display_name: &str) -> String {
    format!(
        "{REQUIRED_PROVIDERS}\n{}\n\
         resource \"azurecmk_multi_tenant_application\" \"sql\" {{\n\
         \x20 display_name = {}\n\
         }}\n",
        ids.isv.provider_block(None),
        terraform::hcl_string(display_name),
    )
}

/// The applications of `tenant_id` whose display name starts with `prefix` (which leaves out
/// the seeded deployers).
fn applications(
    simulator: &azure_sim::RunningSimulator,
    tenant_id: &str,
    prefix: &str,
) -> Vec<Value> {
    let state = simulator.state();
    let tenant = state["tenants"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|tenant| tenant["id"] == tenant_id)
        .cloned()
        .unwrap_or_else(|| panic!("no tenant {tenant_id} in the simulator state"));
    tenant["applications"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|app| app["display_name"].as_str().is_some_and(|name| name.starts_with(prefix)))
        .cloned()
        .collect()
}

#[test]
fn application_lifecycle_import_and_drift() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let workspace = TerraformWorkspace::new(&config(&ids, "isv-sql-cmk"), &simulator);

    workspace.init();
    workspace.apply();
    let created = workspace.resource_values(ADDRESS);
    let object_id = created["object_id"].as_str().expect("an object id").to_string();
    assert_eq!(created["id"], object_id.as_str());
    assert!(
        created["client_id"].as_str().is_some_and(|id| id.len() == 36 && id != object_id),
        "client_id: {created}"
    );
    assert_eq!(created["tenant_id"], ids.isv.tenant_id.as_str());
    assert_eq!(created["sign_in_audience"], "AzureADMultipleOrgs");
    assert_eq!(created["display_name"], "isv-sql-cmk");

    // Azure holds exactly that application, multi-tenant, in the ISV's tenant.
    let in_azure = applications(&simulator, &ids.isv.tenant_id, "isv-sql-cmk");
    assert_eq!(in_azure.len(), 1, "{in_azure:#?}");
    assert_eq!(in_azure[0]["object_id"], object_id.as_str());
    assert_eq!(in_azure[0]["app_id"], created["client_id"]);
    assert_eq!(in_azure[0]["sign_in_audience"], "AzureADMultipleOrgs");
    assert!(applications(&simulator, &ids.customer.tenant_id, "isv-sql-cmk").is_empty());
    workspace.assert_no_changes();

    // Import into a fresh state reproduces what create recorded.
    let imported = TerraformWorkspace::new(&config(&ids, "isv-sql-cmk"), &simulator);
    imported.init();
    imported.import(ADDRESS, &object_id);
    assert_eq!(imported.resource_values(ADDRESS), created);
    imported.assert_no_changes();

    // Renamed outside Terraform: the next plan renames it back in place.
    let azure = AzureSession::new(&simulator, &ids.isv);
    let path = format!("/applications/{object_id}");
    let (status, _) = azure.graph("PATCH", &path, Some(json!({"displayName": "isv-sql-drifted"})));
    assert_eq!(status, 204);
    let plan = workspace.assert_changes();
    assert!(plan.stdout.contains("isv-sql-drifted"), "the plan should show the drift\n{plan}");
    assert!(plan.stdout.contains("1 to change"), "{plan}");
    workspace.apply();
    workspace.assert_no_changes();
    let (_, application) = azure.graph("GET", &path, None);
    assert_eq!(application["displayName"], "isv-sql-cmk");

    // Made single-tenant outside Terraform: no customer could install it any more, so the next
    // plan sets it back to multi-tenant in place.
    let body = json!({"signInAudience": "AzureADMyOrg"});
    let (status, _) = azure.graph("PATCH", &path, Some(body));
    assert_eq!(status, 204);
    let plan = workspace.assert_changes();
    assert!(plan.stdout.contains("AzureADMyOrg"), "the plan should show the drift\n{plan}");
    workspace.apply();
    workspace.assert_no_changes();
    let (_, application) = azure.graph("GET", &path, None);
    assert_eq!(application["signInAudience"], "AzureADMultipleOrgs");

    // The display name updates in place, keeping the application and its client id.
    workspace.write_main(&config(&ids, "isv-sql-cmk-renamed"));
    let plan = workspace.assert_changes();
    assert!(plan.stdout.contains("updated in-place"), "{plan}");
    let update = workspace.apply();
    assert!(update.stdout.contains("0 added, 1 changed, 0 destroyed"), "{update}");
    let renamed = workspace.resource_values(ADDRESS);
    assert_eq!(renamed["display_name"], "isv-sql-cmk-renamed");
    for attribute in ["id", "client_id", "sign_in_audience"] {
        assert_eq!(renamed[attribute], created[attribute], "{attribute}");
    }
    let (_, application) = azure.graph("GET", &path, None);
    assert_eq!(application["displayName"], "isv-sql-cmk-renamed");
    workspace.assert_no_changes();

    // Deleted outside Terraform: refresh warns and the plan creates it again.
    let (status, _) = azure.graph("DELETE", &path, None);
    assert_eq!(status, 204);
    let plan = workspace.assert_changes();
    assert!(plan.stdout.contains("will be created"), "{plan}");
    assert!(plan.combined().contains("Application deleted outside Terraform"), "{plan}");
    workspace.apply();
    let recreated = workspace.resource_values(ADDRESS);
    assert_ne!(recreated["id"], created["id"]);
    assert_eq!(applications(&simulator, &ids.isv.tenant_id, "isv-sql-cmk").len(), 1);
    workspace.assert_no_changes();

    workspace.destroy();
    assert!(
        applications(&simulator, &ids.isv.tenant_id, "isv-sql-cmk").is_empty(),
        "destroy left applications behind"
    );
    terraform::stop_simulator(simulator);
}

#[test]
fn import_rejects_what_is_not_an_object_id() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let workspace = TerraformWorkspace::new(&config(&ids, "isv-sql-cmk"), &simulator);
    workspace.init();

    let failed = workspace.try_import(ADDRESS, "not-a-uuid");
    assert!(!failed.success(), "{failed}");
    assert!(failed.stderr.contains("Invalid import id"), "{failed}");

    // A well-formed id that names nothing: import finds no object to manage.
    let missing = workspace.try_import(ADDRESS, "0f0f0f0f-0000-4000-8000-000000000000");
    assert!(!missing.success(), "{missing}");
    assert!(missing.stderr.contains("Cannot import non-existent remote object"), "{missing}");
    terraform::stop_simulator(simulator);
}

#[test]
fn create_waits_until_the_application_reads_back() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    delay_replication(&simulator, "application", 2000);
    let workspace = TerraformWorkspace::new(&config(&ids, "isv-sql-cmk"), &simulator);
    workspace.init();

    // Without the wait, the refresh right after would find no application and plan another.
    workspace.apply();
    workspace.assert_no_changes();
    assert_eq!(applications(&simulator, &ids.isv.tenant_id, "isv-sql-cmk").len(), 1);

    workspace.destroy();
    assert!(applications(&simulator, &ids.isv.tenant_id, "isv-sql-cmk").is_empty());
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
