//! `azurecmk_key_vault_key` (resource and data source) through the real Terraform CLI against the
//! simulator, in the customer's tenant: create, no-op plan, import, expiry updated in place,
//! drift (expiry moved, key rotated, key deleted outside Terraform), soft delete on destroy, the
//! refusal of a vault without purge protection, and the data source by vault id and by URI.

mod support;

use azure_sim::RunningSimulator;
use serde_json::{Value, json};
use support::azure::AzureSession;
use support::terraform::{self, REQUIRED_PROVIDERS, SeedIds, TerraformWorkspace};

const ADDRESS: &str = "azurecmk_key_vault_key.tde";
const VAULT: &str = "contoso-cmk-kv";
const DATA_PLANE_SCOPE: &str = "https://vault.azure.net/.default";

/// 2031-01-01T00:00:00Z and 2032-06-30T12:00:00Z in Unix seconds.
const EXPIRY_2031: i64 = 1_924_992_000;
const EXPIRY_2032: i64 = 1_972_209_600;

fn config(ids: &SeedIds, vault: &str, name: &str, expiration_date: &str) -> String {
    format!(
        "{REQUIRED_PROVIDERS}\n{}\n\
         resource \"azurecmk_key_vault_key\" \"tde\" {{\n\
         \x20 key_vault_id    = {}\n\
         \x20 name            = {}\n\
         \x20 key_type        = \"RSA\"\n\
         \x20 key_size        = 2048\n\
         \x20 expiration_date = {}\n\
         }}\n",
        ids.customer.provider_block(None),
        terraform::hcl_string(&ids.key_vault_id(vault)),
        terraform::hcl_string(name),
        terraform::hcl_string(expiration_date),
    )
}

/// The keys the simulator holds in `vault`, soft-deleted ones included.
fn vault_keys(simulator: &RunningSimulator, name: &str) -> Vec<Value> {
    let state = simulator.state();
    let vaults = state["vaults"].as_array().cloned().unwrap_or_default();
    let vault = vaults.into_iter().find(|candidate| candidate["name"] == name);
    let vault = vault.unwrap_or_else(|| panic!("no vault {name} in the simulator"));
    vault["keys"].as_array().cloned().unwrap_or_default()
}

/// The keys of `vault` that are not soft-deleted.
fn live_keys(simulator: &RunningSimulator, vault: &str) -> Vec<Value> {
    vault_keys(simulator, vault).into_iter().filter(|key| key["deleted"].is_null()).collect()
}

/// A data plane URL of the test vault.
fn key_url(path: &str) -> String {
    format!("https://{VAULT}.vault.azure.net{path}?api-version=7.5")
}

#[test]
fn key_lifecycle_import_update_drift_and_soft_delete() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let workspace = TerraformWorkspace::new(
        &config(&ids, VAULT, "tde-key", "2031-01-01T00:00:00Z"),
        &simulator,
    );

    workspace.init();
    workspace.apply();
    let created = workspace.resource_values(ADDRESS);
    let version = created["version"].as_str().expect("a version").to_string();
    let versionless = format!("https://{VAULT}.vault.azure.net/keys/tde-key");
    assert_eq!(version.len(), 32, "{created}");
    assert_eq!(created["id"], format!("{versionless}/{version}").as_str());
    assert_eq!(created["versionless_id"], versionless.as_str());
    assert_eq!(created["vault_uri"], format!("https://{VAULT}.vault.azure.net/").as_str());

    // The vault holds exactly that key: RSA 2048 for wrapping, with the expiry asked for.
    let keys = live_keys(&simulator, VAULT);
    assert_eq!(keys.len(), 1, "{keys:#?}");
    let held = &keys[0]["versions"][0];
    assert_eq!(held["version"], version.as_str(), "{held}");
    assert_eq!(
        (&held["kty"], &held["key_size"], &held["exp"]),
        (&json!("RSA"), &json!(2048), &json!(EXPIRY_2031))
    );
    let operations = held["key_ops"].as_array().cloned().unwrap_or_default();
    for operation in ["wrapKey", "unwrapKey"] {
        assert!(operations.contains(&json!(operation)), "key_ops: {operations:?}");
    }
    workspace.assert_no_changes();

    // Import into a fresh state (the id spelled with a trailing slash) reproduces create's.
    let imported = TerraformWorkspace::new(
        &config(&ids, VAULT, "tde-key", "2031-01-01T00:00:00Z"),
        &simulator,
    );
    imported.init();
    imported.import(ADDRESS, &format!("{}/keys/tde-key/", ids.key_vault_id(VAULT)));
    assert_eq!(imported.resource_values(ADDRESS), created);
    imported.assert_no_changes();

    // So does importing by the key's own id, its identifier URL.
    let by_id = TerraformWorkspace::new(
        &config(&ids, VAULT, "tde-key", "2031-01-01T00:00:00Z"),
        &simulator,
    );
    by_id.init();
    by_id.import(ADDRESS, created["id"].as_str().expect("an id"));
    assert_eq!(by_id.resource_values(ADDRESS), created);
    by_id.assert_no_changes();

    // The expiry changes in place, on the same key version.
    workspace.write_main(&config(&ids, VAULT, "tde-key", "2032-06-30T12:00:00Z"));
    let plan = workspace.assert_changes();
    assert!(plan.stdout.contains("updated in-place"), "{plan}");
    workspace.apply();
    let updated = workspace.resource_values(ADDRESS);
    assert_eq!(updated["id"], created["id"]);
    assert_eq!(live_keys(&simulator, VAULT)[0]["versions"][0]["exp"], EXPIRY_2032);
    workspace.assert_no_changes();

    // Expiry moved in the vault behind Terraform's back: the plan moves it back.
    let azure = AzureSession::new(&simulator, &ids.customer);
    let moved = json!({"attributes": {"exp": EXPIRY_2031}});
    let (status, _) = azure.call("PATCH", &key_url("/keys/tde-key"), DATA_PLANE_SCOPE, Some(moved));
    assert_eq!(status, 200);
    let plan = workspace.assert_changes();
    assert!(plan.stdout.contains("2031-01-01T00:00:00Z"), "the plan should show the drift\n{plan}");
    assert!(plan.stdout.contains("1 to change"), "{plan}");
    workspace.apply();
    assert_eq!(live_keys(&simulator, VAULT)[0]["versions"][0]["exp"], EXPIRY_2032);
    workspace.assert_no_changes();

    // Rotated in the vault: the refresh reports the new version as the key's id.
    let rotation = json!({"kty": "RSA", "key_size": 2048, "key_ops": ["wrapKey", "unwrapKey"],
                          "attributes": {"exp": EXPIRY_2032}});
    let (status, bundle) =
        azure.call("POST", &key_url("/keys/tde-key/create"), DATA_PLANE_SCOPE, Some(rotation));
    assert_eq!(status, 200, "{bundle}");
    let rotated_id = bundle["key"]["kid"].as_str().expect("a kid").to_string();
    // A rotation changes no argument, so only a refresh-only plan lists it.
    let refresh = workspace.run(&["plan", "-refresh-only", "-no-color"]).assert_success();
    assert!(refresh.stdout.contains(&rotated_id), "the plan should show the rotation\n{refresh}");
    workspace.run(&["apply", "-refresh-only", "-auto-approve", "-no-color"]).assert_success();
    let refreshed = workspace.resource_values(ADDRESS);
    assert_eq!(refreshed["id"], rotated_id.as_str());
    assert_ne!(refreshed["version"], created["version"]);
    workspace.assert_no_changes();

    // Destroy soft-deletes: the key is recoverable, nothing live is left in the vault.
    workspace.destroy();
    assert!(live_keys(&simulator, VAULT).is_empty(), "{:#?}", live_keys(&simulator, VAULT));
    let deleted = vault_keys(&simulator, VAULT);
    assert_eq!(deleted.len(), 1, "{deleted:#?}");
    assert!(!deleted[0]["deleted"].is_null(), "the key should be soft-deleted: {deleted:#?}");

    // Applying again: the soft-deleted key still holds its name, and the error says what to do.
    let failed = workspace.assert_apply_fails_with("deleted but recoverable");
    // Terraform wraps long details; compare with line breaks folded to spaces.
    let detail = failed.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(detail.contains("recover it (`az keyvault key recover`)"), "{failed}");
    assert!(detail.contains("otherwise choose another name"), "{failed}");
    terraform::stop_simulator(simulator);
}

#[test]
fn key_deleted_outside_terraform_is_planned_again() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let workspace = TerraformWorkspace::new(
        &config(&ids, VAULT, "tde-gone", "2031-01-01T00:00:00Z"),
        &simulator,
    );
    workspace.init();
    workspace.apply();

    let azure = AzureSession::new(&simulator, &ids.customer);
    let (status, _) = azure.call("DELETE", &key_url("/keys/tde-gone"), DATA_PLANE_SCOPE, None);
    assert_eq!(status, 200);
    let plan = workspace.assert_changes();
    assert!(plan.stdout.contains("will be created"), "{plan}");
    assert!(plan.combined().contains("Key deleted outside Terraform"), "{plan}");

    // Nothing is left to destroy, and nothing live is left in the vault.
    workspace.destroy();
    assert!(live_keys(&simulator, VAULT).is_empty());
    terraform::stop_simulator(simulator);
}

#[test]
fn a_vault_without_purge_protection_is_refused() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let hcl = config(&ids, "contoso-nopurge-kv", "tde-key", "2031-01-01T00:00:00Z");
    let workspace = TerraformWorkspace::new(&hcl, &simulator);
    workspace.init();

    let failed = workspace.assert_apply_fails_with("does not have purge protection enabled");
    // Terraform wraps diagnostic text; compare with single spaces.
    let output = failed.combined().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(output.contains("Azure SQL refuses keys"), "{failed}");
    assert!(output.contains("key_vault_id"), "the error should point at key_vault_id\n{failed}");
    assert!(vault_keys(&simulator, "contoso-nopurge-kv").is_empty(), "no key may be created");
    assert!(workspace.show_json()["values"].is_null(), "nothing may be recorded in state");
    terraform::stop_simulator(simulator);
}

#[test]
fn data_source_reads_the_key_by_vault_id_and_by_uri() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let hcl = format!(
        "{}\n\
         data \"azurecmk_key_vault_key\" \"by_id\" {{\n\
         \x20 key_vault_id = azurecmk_key_vault_key.tde.key_vault_id\n\
         \x20 name         = azurecmk_key_vault_key.tde.name\n\
         }}\n\
         data \"azurecmk_key_vault_key\" \"by_uri\" {{\n\
         \x20 vault_uri = \"https://CONTOSO-CMK-KV.vault.azure.net\"\n\
         \x20 name      = azurecmk_key_vault_key.tde.name\n\
         \x20 version   = azurecmk_key_vault_key.tde.version\n\
         }}\n\
         output \"by_id\" {{\n  value = data.azurecmk_key_vault_key.by_id\n}}\n\
         output \"by_uri\" {{\n  value = data.azurecmk_key_vault_key.by_uri\n}}\n",
        config(&ids, VAULT, "tde-read", "2031-01-01T00:00:00Z")
    );
    let workspace = TerraformWorkspace::new(&hcl, &simulator);
    workspace.init();
    workspace.apply();

    let key = workspace.resource_values(ADDRESS);
    let outputs = workspace.output_json();
    let by_id = &outputs["by_id"]["value"];
    let by_uri = &outputs["by_uri"]["value"];
    for read in [by_id, by_uri] {
        for attribute in ["id", "versionless_id", "version"] {
            assert_eq!(read[attribute], key[attribute], "{attribute}: {read}");
        }
        assert_eq!(read["key_type"], "RSA", "{read}");
        assert_eq!(read["key_size"], 2048, "{read}");
        assert_eq!(read["enabled"], true, "{read}");
        assert_eq!(read["expiration_date"], "2031-01-01T00:00:00Z", "{read}");
    }
    assert_eq!(by_id["vault_uri"], key["vault_uri"]);
    assert_eq!(by_uri["vault_uri"], "https://CONTOSO-CMK-KV.vault.azure.net", "kept as written");
    workspace.assert_no_changes();

    // A key that does not exist fails at the name.
    let missing = format!(
        "{REQUIRED_PROVIDERS}\n{}\n\
         data \"azurecmk_key_vault_key\" \"missing\" {{\n\
         \x20 vault_uri = \"https://{VAULT}.vault.azure.net/\"\n\
         \x20 name      = \"no-such-key\"\n\
         }}\n",
        ids.customer.provider_block(None),
    );
    let lookup = TerraformWorkspace::new(&missing, &simulator);
    lookup.init();
    lookup.assert_apply_fails_with("Key not found");

    workspace.destroy();
    assert!(live_keys(&simulator, VAULT).is_empty());
    terraform::stop_simulator(simulator);
}
