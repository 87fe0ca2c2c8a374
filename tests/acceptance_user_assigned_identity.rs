//! `azurecmk_user_assigned_identity` through the real Terraform CLI against the simulator: create,
//! no-op plan, import, drift (tags changed and identity deleted outside Terraform), destroy.

mod support;

use serde_json::{Value, json};
use support::azure::AzureSession;
use support::terraform::{self, REQUIRED_PROVIDERS, SeedIds, TerraformWorkspace};

const ADDRESS: &str = "azurecmk_user_assigned_identity.sql";
const API_VERSION: &str = "2024-11-30";

fn config(ids: &SeedIds, tags: &str) -> String {
    format!(
        "{REQUIRED_PROVIDERS}\n{}\n\
         resource \"azurecmk_user_assigned_identity\" \"sql\" {{\n\
         \x20 name                = \"uami-sql-cmk\"\n\
         \x20 resource_group_name = \"{}\"\n\
         \x20 location            = \"westeurope\"\n\
         \x20 tags                = {tags}\n\
         }}\n",
        ids.isv.provider_block(None),
        ids.isv.resource_group,
    )
}

fn identities(simulator: &azure_sim::RunningSimulator) -> Vec<Value> {
    simulator.state()["identities"].as_array().cloned().unwrap_or_default()
}

#[test]
fn identity_lifecycle_import_and_drift() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let workspace = TerraformWorkspace::new(&config(&ids, r#"{ env = "test" }"#), &simulator);

    workspace.init();
    workspace.apply();
    let created = workspace.resource_values(ADDRESS);
    let id = created["id"].as_str().expect("an id").to_string();
    assert!(id.ends_with("/userAssignedIdentities/uami-sql-cmk"), "{id}");
    assert_eq!(created["subscription_id"], ids.isv.subscription_id.as_str());
    assert_eq!(created["tenant_id"], ids.isv.tenant_id.as_str());
    for attribute in ["principal_id", "client_id"] {
        assert!(
            created[attribute].as_str().is_some_and(|v| v.len() == 36),
            "{attribute}: {created}"
        );
    }
    assert_eq!(identities(&simulator).len(), 1);
    workspace.assert_no_changes();

    // Import into a fresh state reproduces what create recorded.
    let imported = TerraformWorkspace::new(&config(&ids, r#"{ env = "test" }"#), &simulator);
    imported.init();
    imported.import(ADDRESS, &id);
    assert_eq!(imported.resource_values(ADDRESS), created);
    imported.assert_no_changes();

    // Tags changed outside Terraform show in the next plan, and apply puts them back.
    let azure = AzureSession::new(&simulator, &ids.isv);
    let (status, _) =
        azure.arm("PATCH", &id, API_VERSION, Some(json!({"tags": {"env": "drifted"}})));
    assert_eq!(status, 200);
    let plan = workspace.assert_changes();
    assert!(plan.stdout.contains("drifted"), "the plan should show the drifted tag\n{plan}");
    workspace.apply();
    workspace.assert_no_changes();

    // Tags update in place.
    workspace.write_main(&config(&ids, r#"{ env = "prod" }"#));
    let update = workspace.apply();
    assert!(update.stdout.contains("0 added, 1 changed, 0 destroyed"), "{update}");

    // Deleted outside Terraform: refresh warns and the plan creates it again.
    let (status, _) = azure.arm("DELETE", &id, API_VERSION, None);
    assert_eq!(status, 200);
    let plan = workspace.assert_changes();
    assert!(plan.stdout.contains("will be created"), "{plan}");
    workspace.apply();
    assert_eq!(identities(&simulator).len(), 1);

    workspace.destroy();
    assert!(identities(&simulator).is_empty(), "destroy left identities behind");
    terraform::stop_simulator(simulator);
}

#[test]
fn renaming_forces_replacement_and_bad_names_fail_at_plan() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let workspace = TerraformWorkspace::new(&config(&ids, "{}"), &simulator);
    workspace.init();
    workspace.apply();

    workspace.write_main(&config(&ids, "{}").replace("uami-sql-cmk", "uami-renamed"));
    let plan = workspace.assert_changes();
    assert!(plan.stdout.contains("forces replacement"), "{plan}");

    workspace.write_main(&config(&ids, "{}").replace("uami-sql-cmk", "-bad name"));
    let failed = workspace.run(&["plan", "-no-color"]);
    assert!(!failed.success(), "{failed}");
    assert!(
        failed.stderr.contains("Invalid name")
            && failed.stderr.contains("not a valid identity name"),
        "{failed}"
    );

    workspace.write_main(&config(&ids, "{}"));
    workspace.destroy();
    terraform::stop_simulator(simulator);
}
