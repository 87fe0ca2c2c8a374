//! The whole cross-tenant setup, `examples/scenarios/two-tenants` as users write it, through the
//! real Terraform CLI against the simulator: it ends with the ISV's server protected by the
//! customer's key; each broken link of the chain fails naming the missing step; and a run at
//! TRACE level leaks neither the client secrets nor any token.

mod support;

use azure_sim::RunningSimulator;
use serde_json::{Value, json};
use support::azure::AzureSession;
use support::terraform::{self, SeedIds, TerraformWorkspace};

const PROTECTOR: &str = "azurecmk_sql_tde_cross_tenant_protector.sql";
const SERVER: &str = "isv-sql-01";

/// The two-tenants example, unchanged, with the seed's ids and deployer secrets as variables.
fn example_workspace(simulator: &RunningSimulator, ids: &SeedIds) -> TerraformWorkspace {
    let example = terraform::workspace_root().join("examples/scenarios/two-tenants");
    let read = |name: &str| {
        std::fs::read_to_string(example.join(name))
            .unwrap_or_else(|error| panic!("reading the example's {name}: {error}"))
    };
    let mut workspace = TerraformWorkspace::new(&read("main.tf"), simulator);
    workspace.write_file("variables.tf", &read("variables.tf"));
    workspace.write_file("outputs.tf", &read("outputs.tf"));
    for (role, tenant) in [("isv", &ids.isv), ("customer", &ids.customer)] {
        workspace.env(format!("TF_VAR_{role}_tenant_id"), &tenant.tenant_id);
        workspace.env(format!("TF_VAR_{role}_subscription_id"), &tenant.subscription_id);
        workspace.env(format!("TF_VAR_{role}_client_id"), &tenant.client_id);
        workspace.env(format!("TF_VAR_{role}_client_secret"), &tenant.client_secret);
    }
    workspace
}

fn server(simulator: &RunningSimulator) -> Value {
    let state = simulator.state();
    let servers = state["servers"].as_array().cloned().unwrap_or_default();
    servers.into_iter().find(|server| server["name"] == SERVER).expect("the seeded server")
}

/// Everything the configuration creates, counted in the simulator.
fn created_objects(simulator: &RunningSimulator) -> usize {
    let state = simulator.state();
    let count = |value: &Value| value.as_array().expect("an array in the admin state").len();
    let seeded_applications = 2;
    let tenants = state["tenants"].as_array().expect("tenants in the admin state").clone();
    let applications: usize = tenants.iter().map(|tenant| count(&tenant["applications"])).sum();
    count(&state["identities"]) + applications - seeded_applications
}

#[test]
fn two_tenants_example_protects_the_server_with_the_customer_key() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let workspace = example_workspace(&simulator, &ids);

    workspace.init();
    workspace.apply();
    let outputs = workspace.output_json();
    let key_id = outputs["key_id"]["value"].as_str().expect("key_id output").to_string();

    let protected = server(&simulator);
    let protector = &protected["protector"];
    assert_eq!(protector["server_key_type"], "AzureKeyVault", "server: {protected:#}");
    assert_eq!(protector["kid"].as_str().map(str::to_lowercase), Some(key_id.to_lowercase()));
    assert_eq!(
        protected["federated_client_id"], outputs["federated_client_id"]["value"],
        "server: {protected:#}"
    );
    workspace.assert_no_changes();

    // Importing the protector alone, by its server's id, reproduces its state.
    let recorded = workspace.resource_values(PROTECTOR);
    let imported = example_workspace(&simulator, &ids);
    imported.init();
    imported.import(PROTECTOR, &ids.sql_server_id(SERVER));
    assert_eq!(imported.resource_values(PROTECTOR), recorded);

    // Switched back to a service-managed key behind Terraform's back: the plan sets it again.
    let body = json!({"properties": {"serverKeyType": "ServiceManaged", "serverKeyName": "ServiceManaged"}});
    let path = format!("{}/encryptionProtector/current", ids.sql_server_id(SERVER));
    let (status, _) =
        AzureSession::new(&simulator, &ids.isv).arm("PUT", &path, "2025-01-01", Some(body));
    assert!(status == 200 || status == 202, "reverting the protector: {status}");
    wait_for_protector(&simulator, "ServiceManaged");
    let plan = workspace.assert_changes();
    assert!(plan.stdout.contains("key_id"), "the plan should set key_id again\n{plan}");
    workspace.apply();
    workspace.assert_no_changes();

    workspace.destroy();
    let reverted = server(&simulator);
    assert_eq!(reverted["protector"]["server_key_type"], "ServiceManaged", "{reverted:#}");
    // Nothing on the server points at the identity and application the destroy deleted.
    assert!(reverted["primary_user_assigned_identity_id"].is_null(), "{reverted:#}");
    assert!(reverted["federated_client_id"].is_null(), "{reverted:#}");
    let identity = reverted["identity"].to_string().to_lowercase();
    assert!(!identity.contains("uami-sql-cmk"), "{reverted:#}");
    let keys = reverted["keys"].as_array().expect("server keys");
    assert!(keys.iter().all(|key| key["name"] == "ServiceManaged"), "{reverted:#}");
    assert_eq!(created_objects(&simulator), 0, "destroy left objects behind");
    terraform::stop_simulator(simulator);
}

/// Waits for a long-running protector change made behind Terraform's back to finish.
fn wait_for_protector(simulator: &RunningSimulator, key_type: &str) {
    for _ in 0..50 {
        if server(simulator)["protector"]["server_key_type"] == key_type {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the protector never became {key_type}: {:#}", server(simulator));
}

/// Applies the example, breaks one link behind Terraform's back, then recreates the protector
/// without refreshing (so Terraform cannot repair the link first): Azure SQL's refusal must come
/// back naming the resource whose step is missing.
fn assert_broken_link_is_named(
    break_link: impl FnOnce(&RunningSimulator, &SeedIds, &Value),
    step: &str,
) {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let workspace = example_workspace(&simulator, &ids);
    workspace.init();
    workspace.apply();
    let state = workspace.show_json();

    break_link(&simulator, &ids, &state);

    let replace = format!("-replace={PROTECTOR}");
    let failed =
        workspace.run(&["apply", "-auto-approve", "-no-color", "-refresh=false", &replace]);
    assert!(!failed.success(), "apply should fail once the link is broken\n{failed}");
    let expected = format!("Cross-tenant key chain incomplete: check {step}");
    assert!(failed.stderr.contains(&expected), "expected {expected:?}\n{failed}");

    // The server already carries the identity, so the protector stays in state (tainted) and
    // a destroy takes everything off the server again.
    let listed = workspace.run(&["state", "list"]).assert_success();
    assert!(listed.stdout.contains(PROTECTOR), "the protector left state\n{listed}");
    workspace.destroy();
    let reverted = server(&simulator);
    assert_eq!(reverted["protector"]["server_key_type"], "ServiceManaged", "{reverted:#}");
    assert!(reverted["federated_client_id"].is_null(), "{reverted:#}");
    terraform::stop_simulator(simulator);
}

fn attribute(state: &Value, address: &str, name: &str) -> String {
    let resources = state["values"]["root_module"]["resources"].as_array().expect("resources");
    let resource = resources.iter().find(|r| r["address"] == address).expect(address);
    resource["values"][name].as_str().expect(name).to_string()
}

#[test]
fn missing_federated_credential_is_named() {
    assert_broken_link_is_named(
        |simulator, ids, state| {
            let id = attribute(state, "azurecmk_federated_app_credential.sql", "id");
            let (status, _) = AzureSession::new(simulator, &ids.isv).graph(
                "DELETE",
                &format!("/applications/{id}"),
                None,
            );
            assert_eq!(status, 204);
        },
        "azurecmk_federated_app_credential",
    );
}

#[test]
fn missing_service_principal_is_named() {
    assert_broken_link_is_named(
        |simulator, ids, state| {
            let id = attribute(state, "azurecmk_application_installation.cmk", "object_id");
            let azure = AzureSession::new(simulator, &ids.customer);
            let (status, _) = azure.graph("DELETE", &format!("/servicePrincipals/{id}"), None);
            assert_eq!(status, 204);
        },
        "azurecmk_application_installation",
    );
}

#[test]
fn missing_grant_is_named() {
    assert_broken_link_is_named(
        |simulator, ids, state| {
            let principal = attribute(state, "azurecmk_application_installation.cmk", "object_id");
            let vault = ids.key_vault_id("contoso-cmk-kv");
            let body = json!({"properties": {"accessPolicies": [{
                "tenantId": ids.customer.tenant_id,
                "objectId": principal,
                "permissions": {"keys": ["get", "wrapKey", "unwrapKey"]},
            }]}});
            let path = format!("{vault}/accessPolicies/remove");
            let azure = AzureSession::new(simulator, &ids.customer);
            let (status, body) = azure.arm("PUT", &path, "2025-05-01", Some(body));
            assert_eq!(status, 200, "{body}");
        },
        "azurecmk_cross_tenant_key_grant",
    );
}

#[test]
fn disabled_key_is_named() {
    assert_broken_link_is_named(
        |simulator, ids, state| {
            let key_id = attribute(state, "azurecmk_key_vault_key.tde", "id");
            let url = format!("{key_id}?api-version=7.5");
            let body = json!({"attributes": {"enabled": false}});
            let azure = AzureSession::new(simulator, &ids.customer);
            let (status, body) =
                azure.call("PATCH", &url, "https://vault.azure.net/.default", Some(body));
            assert_eq!(status, 200, "{body}");
        },
        "azurecmk_key_vault_key",
    );
}

#[test]
fn vault_without_purge_protection_is_refused() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let mut workspace = example_workspace(&simulator, &ids);
    workspace.env("TF_VAR_key_vault_name", "contoso-nopurge-kv");
    workspace.init();
    let failed = workspace.assert_apply_fails_with("purge protection");
    assert!(
        failed.stderr.contains("key_vault_id"),
        "the diagnostic should name key_vault_id\n{failed}"
    );
    assert_eq!(server(&simulator)["protector"]["server_key_type"], "ServiceManaged");
    workspace.destroy();
    terraform::stop_simulator(simulator);
}

#[test]
fn trace_logs_leak_no_secret_and_no_token() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let mut workspace = example_workspace(&simulator, &ids);
    workspace.env("TF_LOG", "TRACE");

    workspace.init();
    let outputs = [workspace.apply(), workspace.destroy()];
    let secrets = [ids.isv.client_secret.as_str(), ids.customer.client_secret.as_str()];
    for output in &outputs {
        let text = output.combined();
        let provider_lines =
            text.lines().filter(|line| line.contains("provider.terraform-provider-azurecmk"));
        assert!(provider_lines.count() > 10, "too few provider log lines in {}", output.command);
        for secret in secrets {
            assert!(!text.contains(secret), "a client secret leaked into {}", output.command);
        }
        // Every access token and assertion the simulator issues is a JWT, and a JWT's header
        // always starts with this base64 of `{"`.
        assert!(!text.contains("eyJ"), "a token leaked into {}", output.command);
    }
    let token_requests = simulator_token_requests(&simulator);
    assert!(token_requests > 0, "the scenario should have requested tokens");
    terraform::stop_simulator(simulator);
}

fn simulator_token_requests(simulator: &RunningSimulator) -> usize {
    let admin = format!("{}/admin/requests", simulator.admin_url());
    let body: Value = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async { reqwest::get(admin).await.expect("admin").json().await.expect("json") });
    let requests = body["requests"].as_array().cloned().unwrap_or_default();
    requests.iter().filter(|r| r["host"].as_str().is_some_and(|h| h.starts_with("login."))).count()
}
