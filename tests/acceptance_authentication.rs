//! Authentication through the real Terraform CLI: each aliased provider block signs in on its own,
//! one with an OIDC token given as a value, the other with a token file, as CI systems and HCP
//! Terraform hand them over; and a wrong secret fails naming Entra's code, never the secret.

mod support;

use serde_json::{Value, json};
use support::terraform::{self, REQUIRED_PROVIDERS, TenantIds, TerraformWorkspace, hcl_string};

/// The issuer and subject the seed trusts on each deployer's application.
const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// A token from the simulator's stand-in for a CI system's OIDC issuer.
fn oidc_token(simulator: &azure_sim::RunningSimulator, subject: &str) -> String {
    let request = json!({
        "issuer": GITHUB_ISSUER,
        "subject": subject,
        "audience": TOKEN_EXCHANGE_AUDIENCE,
    });
    let url = format!("{}/admin/oidc-token", simulator.admin_url());
    let body: Value = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let response = reqwest::Client::new().post(url).json(&request).send().await;
            response.expect("admin").json().await.expect("json")
        });
    body["token"].as_str().expect("a token").to_string()
}

fn oidc_block(alias: &str, tenant: &TenantIds, credential: &str) -> String {
    format!(
        "provider \"azurecmk\" {{\n  alias = \"{alias}\"\n  tenant_id = {}\n  \
         subscription_id = {}\n  client_id = {}\n  use_oidc = true\n  {credential}\n}}\n",
        hcl_string(&tenant.tenant_id),
        hcl_string(&tenant.subscription_id),
        hcl_string(&tenant.client_id),
    )
}

#[test]
fn each_aliased_block_signs_in_with_its_own_oidc_token() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let isv_token = oidc_token(&simulator, "repo:contoso/isv:ref:refs/heads/main");
    let customer_token = oidc_token(&simulator, "repo:fabrikam/keys:ref:refs/heads/main");

    let isv = oidc_block("isv", &ids.isv, &format!("oidc_token = {}", hcl_string(&isv_token)));
    let customer = oidc_block("customer", &ids.customer, "oidc_token_file_path = \"../token\"");
    let config = format!(
        "{REQUIRED_PROVIDERS}\n{isv}\n{customer}\n\
         resource \"azurecmk_user_assigned_identity\" \"isv\" {{\n  provider = azurecmk.isv\n  \
         name = \"uami-oidc\"\n  resource_group_name = \"{}\"\n  location = \"westeurope\"\n}}\n\
         resource \"azurecmk_key_vault_key\" \"customer\" {{\n  provider = azurecmk.customer\n  \
         key_vault_id = \"{}\"\n  name = \"oidc-key\"\n  key_type = \"RSA\"\n  \
         key_size = 2048\n}}\n",
        ids.isv.resource_group,
        ids.key_vault_id("contoso-cmk-kv"),
    );
    let workspace = TerraformWorkspace::new(&config, &simulator);
    // Terraform starts the provider in its own working directory, so the relative path resolves.
    std::fs::write(workspace.path().join("../token"), format!("{customer_token}\n"))
        .expect("writing the token file");

    workspace.init();
    workspace.apply();
    workspace.assert_no_changes();
    let identities = simulator.state()["identities"].as_array().expect("identities").len();
    assert_eq!(identities, 1, "the ISV block should have created its identity");
    let key = workspace.resource_values("azurecmk_key_vault_key.customer");
    assert!(key["id"].as_str().is_some_and(|id| id.contains("/keys/oidc-key/")), "{key}");

    // Each block got tokens from its own tenant, by exchanging its own assertion.
    let tenants = token_tenants(&simulator);
    assert!(tenants.contains(&ids.isv.tenant_id), "{tenants:?}");
    assert!(tenants.contains(&ids.customer.tenant_id), "{tenants:?}");

    workspace.destroy();
    terraform::stop_simulator(simulator);
}

#[test]
fn a_wrong_secret_names_entra_and_never_the_secret() {
    let simulator = terraform::start_simulator();
    let ids = terraform::seed_ids();
    let mut isv = ids.isv.clone();
    isv.client_secret = "wrong-secret-value-for-this-test".to_string();
    let config = format!(
        "{REQUIRED_PROVIDERS}\n{}\n\
         resource \"azurecmk_user_assigned_identity\" \"isv\" {{\n  name = \"uami-x\"\n  \
         resource_group_name = \"{}\"\n  location = \"westeurope\"\n}}\n",
        isv.provider_block(None),
        isv.resource_group,
    );
    let workspace = TerraformWorkspace::new(&config, &simulator);
    workspace.init();
    let failed = workspace.assert_apply_fails_with("AADSTS7000215");
    assert!(!failed.combined().contains(&isv.client_secret), "the secret leaked\n{failed}");
    terraform::stop_simulator(simulator);
}

/// The tenants the simulator issued tokens for.
fn token_tenants(simulator: &azure_sim::RunningSimulator) -> Vec<String> {
    let url = format!("{}/admin/requests", simulator.admin_url());
    let body: Value = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async { reqwest::get(url).await.expect("admin").json().await.expect("json") });
    let requests = body["requests"].as_array().expect("requests").clone();
    requests
        .iter()
        .filter_map(|request| request["token"]["tenant"].as_str().map(str::to_string))
        .collect()
}
