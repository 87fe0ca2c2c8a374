//! The cross-tenant customer-managed key flow end to end through the proxy, and each broken
//! link of the chain failing the long-running operation with Azure SQL's error code.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SQL: &str = "2025-01-01";
const KV: &str = "2025-05-01";
const SERVER: &str = "/subscriptions/11111111-0000-4000-8000-0000000000a1/resourceGroups/rg-isv/providers/Microsoft.Sql/servers/isv-sql-01";

/// Which links of the chain to build.
#[derive(Clone, Copy)]
struct Links {
    vault: &'static str,
    multi_tenant: bool,
    credential: bool,
    service_principal: bool,
    grant: bool,
    key_enabled: bool,
    key_size: u32,
}

const ALL_LINKS: Links = Links {
    vault: "contoso-cmk-kv",
    multi_tenant: true,
    credential: true,
    service_principal: true,
    grant: true,
    key_enabled: true,
    key_size: 2048,
};

/// What the setup produced.
struct Built {
    kid: String,
    key_name: String,
    app_id: String,
    isv_arm: String,
    customer_vault: String,
}

fn vault_path(vault: &str) -> String {
    format!(
        "/subscriptions/{CUSTOMER_SUBSCRIPTION}/resourceGroups/rg-customer/providers/Microsoft.KeyVault/vaults/{vault}"
    )
}

/// Polls an accepted operation's status URL to the end; returns the last status body.
async fn wait(harness: &Harness, accepted: &Reply, token: &str) -> Value {
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{:?}", accepted.body);
    assert_eq!(accepted.header("retry-after"), Some("0"));
    let status_url =
        accepted.header("azure-asyncoperation").expect("azure-asyncoperation").to_string();
    for _ in 0..10 {
        let status = harness.call(Method::GET, &status_url, token, None).await;
        assert_eq!(status.status, StatusCode::OK);
        if status.body["status"] != "InProgress" {
            return status.body;
        }
    }
    panic!("operation never finished");
}

async fn build(harness: &Harness, links: Links) -> Built {
    let isv_arm = harness.isv_token(ARM_SCOPE).await;
    let isv_graph = harness.isv_token(GRAPH_SCOPE).await;
    let customer_arm = harness.customer_token(ARM_SCOPE).await;
    let customer_graph = harness.customer_token(GRAPH_SCOPE).await;
    let customer_vault = harness.customer_token(VAULT_SCOPE).await;

    let uami_path = format!(
        "/subscriptions/{ISV_SUBSCRIPTION}/resourceGroups/rg-isv/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uami-tde"
    );
    let uami = harness
        .call(
            Method::PUT,
            &arm(&uami_path, "2024-11-30"),
            &isv_arm,
            Some(json!({"location": "westeurope"})),
        )
        .await;
    let uami_id = uami.body["id"].as_str().unwrap().to_string();
    let principal_id = uami.body["properties"]["principalId"].as_str().unwrap().to_string();

    let audience = if links.multi_tenant { "AzureADMultipleOrgs" } else { "AzureADMyOrg" };
    let app = harness
        .call(
            Method::POST,
            &graph("/applications"),
            &isv_graph,
            Some(json!({"displayName": "tde-app", "signInAudience": audience})),
        )
        .await;
    let app_id = app.body["appId"].as_str().unwrap().to_string();
    let app_object = app.body["id"].as_str().unwrap().to_string();
    if links.credential {
        let credential = json!({"name": "uami-tde", "issuer": format!("https://login.microsoftonline.com/{ISV_TENANT}/v2.0"),
            "subject": principal_id, "audiences": ["api://AzureADTokenExchange"]});
        let created = harness
            .call(
                Method::POST,
                &graph(&format!("/applications/{app_object}/federatedIdentityCredentials")),
                &isv_graph,
                Some(credential),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    }
    let mut sp_object = String::new();
    if links.service_principal && links.multi_tenant {
        let sp = harness
            .call(
                Method::POST,
                &graph("/servicePrincipals"),
                &customer_graph,
                Some(json!({"appId": app_id})),
            )
            .await;
        assert_eq!(sp.status, StatusCode::CREATED, "{:?}", sp.body);
        sp_object = sp.body["id"].as_str().unwrap().to_string();
    }

    let vault_url = format!("https://{}.vault.azure.net", links.vault);
    let key = harness
        .call(
            Method::POST,
            &format!("{vault_url}/keys/tde/create?api-version=7.5"),
            &customer_vault,
            Some(json!({"kty": "RSA", "key_size": links.key_size})),
        )
        .await;
    assert_eq!(key.status, StatusCode::OK, "{:?}", key.body);
    let kid = key.body["key"]["kid"].as_str().unwrap().to_string();
    if !links.key_enabled {
        let disabled = harness
            .call(
                Method::PATCH,
                &format!("{kid}?api-version=7.5"),
                &customer_vault,
                Some(json!({"attributes": {"enabled": false}})),
            )
            .await;
        assert_eq!(disabled.status, StatusCode::OK, "{:?}", disabled.body);
    }

    if links.grant && !sp_object.is_empty() {
        if links.vault == "contoso-cmk-rbac" {
            let role = format!(
                "/subscriptions/{CUSTOMER_SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/e147488a-f6f5-4113-8e2d-b22465e65bf6"
            );
            let path = format!(
                "{}/keys/tde/providers/Microsoft.Authorization/roleAssignments/6f0c2b37-0000-4000-8000-000000000001",
                vault_path(links.vault)
            );
            let assigned = harness.call(Method::PUT, &arm(&path, "2022-04-01"), &customer_arm,
                Some(json!({"properties": {"roleDefinitionId": role, "principalId": sp_object, "principalType": "ServicePrincipal"}}))).await;
            assert_eq!(assigned.status, StatusCode::CREATED, "{:?}", assigned.body);
        } else {
            let policy = json!({"properties": {"accessPolicies": [{"tenantId": CUSTOMER_TENANT, "objectId": sp_object,
                "permissions": {"keys": ["get", "wrapKey", "unwrapKey"]}}]}});
            let added = harness
                .call(
                    Method::PUT,
                    &arm(&format!("{}/accessPolicies/add", vault_path(links.vault)), KV),
                    &customer_arm,
                    Some(policy),
                )
                .await;
            assert_eq!(added.status, StatusCode::OK, "{:?}", added.body);
        }
    }

    let patch = json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {uami_id.clone(): {}}},
        "properties": {"primaryUserAssignedIdentityId": uami_id, "federatedClientId": app_id}});
    let accepted = harness.call(Method::PATCH, &arm(SERVER, SQL), &isv_arm, Some(patch)).await;
    let status = wait(harness, &accepted, &isv_arm).await;
    assert_eq!(status["status"], "Succeeded", "{status:?}");

    let version = kid.rsplit('/').next().unwrap();
    let key_name = format!("{}_tde_{version}", links.vault);
    Built { kid, key_name, app_id, isv_arm, customer_vault }
}

/// Registers the key and makes it the protector; returns the first failed status, if any.
async fn protect(harness: &Harness, built: &Built) -> Option<Value> {
    let key_url = arm(&format!("{SERVER}/keys/{}", built.key_name), SQL);
    let accepted = harness
        .call(
            Method::PUT,
            &key_url,
            &built.isv_arm,
            Some(json!({"properties": {"serverKeyType": "AzureKeyVault", "uri": built.kid}})),
        )
        .await;
    let status = wait(harness, &accepted, &built.isv_arm).await;
    if status["status"] != "Succeeded" {
        return Some(status);
    }
    let protector_url = arm(&format!("{SERVER}/encryptionProtector/current"), SQL);
    let accepted = harness.call(Method::PUT, &protector_url, &built.isv_arm,
        Some(json!({"properties": {"serverKeyType": "AzureKeyVault", "serverKeyName": built.key_name}}))).await;
    let status = wait(harness, &accepted, &built.isv_arm).await;
    (status["status"] != "Succeeded").then_some(status)
}

#[tokio::test]
async fn full_chain_protects_the_server() {
    let harness = Harness::start().await;
    let built = build(&harness, ALL_LINKS).await;
    assert_eq!(protect(&harness, &built).await, None);

    let protector = harness
        .call(
            Method::GET,
            &arm(&format!("{SERVER}/encryptionProtector/current"), SQL),
            &built.isv_arm,
            None,
        )
        .await;
    assert_eq!(protector.body["kind"], "azurekeyvault");
    assert_eq!(protector.body["properties"]["uri"], built.kid.as_str());
    let server = harness.call(Method::GET, &arm(SERVER, SQL), &built.isv_arm, None).await;
    assert_eq!(server.body["properties"]["federatedClientId"], built.app_id.as_str());
    assert_eq!(server.body["properties"]["keyId"], built.kid.as_str());
    assert_eq!(server.body["identity"]["type"], "UserAssigned");
    let keys =
        harness.call(Method::GET, &arm(&format!("{SERVER}/keys"), SQL), &built.isv_arm, None).await;
    let names: Vec<&str> = keys.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["ServiceManaged", built.key_name.as_str()]);

    let state = harness.simulator.state();
    assert_eq!(state["servers"][0]["protector"]["kid"], built.kid.as_str());
    assert_eq!(state["servers"][0]["key_accessible"], true);
    assert!(state["servers"][0]["last_validated"].is_string());

    // The protector key cannot be deleted while in use.
    let delete = harness
        .call(
            Method::DELETE,
            &arm(&format!("{SERVER}/keys/{}", built.key_name), SQL),
            &built.isv_arm,
            None,
        )
        .await;
    assert_eq!(delete.status, StatusCode::CONFLICT);
    assert_eq!(delete.error_code(), "AzureKeyVaultKeyInUse");

    // Disabling the key keeps the server serving but flags it.
    let disabled = harness
        .call(
            Method::PATCH,
            &format!("{}?api-version=7.5", built.kid),
            &built.customer_vault,
            Some(json!({"attributes": {"enabled": false}})),
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK);
    let protector = harness
        .call(
            Method::GET,
            &arm(&format!("{SERVER}/encryptionProtector/current"), SQL),
            &built.isv_arm,
            None,
        )
        .await;
    assert_eq!(protector.status, StatusCode::OK);
    let state = harness.simulator.state();
    assert_eq!(state["servers"][0]["key_accessible"], false);

    // Back to service-managed.
    let accepted = harness.call(Method::PUT, &arm(&format!("{SERVER}/encryptionProtector/current"), SQL), &built.isv_arm,
        Some(json!({"properties": {"serverKeyType": "ServiceManaged", "serverKeyName": "ServiceManaged"}}))).await;
    assert_eq!(wait(&harness, &accepted, &built.isv_arm).await["status"], "Succeeded");
    harness.simulator.shutdown().await;
}

#[tokio::test]
async fn rbac_vault_chain_protects_the_server() {
    let harness = Harness::start().await;
    let built = build(&harness, Links { vault: "contoso-cmk-rbac", ..ALL_LINKS }).await;
    assert_eq!(protect(&harness, &built).await, None);
    harness.simulator.shutdown().await;
}

#[tokio::test]
async fn each_missing_link_fails_with_its_code() {
    let cases = [
        (
            "no federated credential",
            Links { credential: false, ..ALL_LINKS },
            "AdalGenericError",
            "AADSTS70021",
        ),
        (
            "single-tenant app",
            Links { multi_tenant: false, ..ALL_LINKS },
            "AdalGenericError",
            "AADSTS700016",
        ),
        (
            "no service principal",
            Links { service_principal: false, ..ALL_LINKS },
            "AdalServicePrincipalNotFound",
            "AADSTS700016",
        ),
        (
            "no grant",
            Links { grant: false, ..ALL_LINKS },
            "AzureKeyVaultMissingPermissions",
            "wrapKey",
        ),
        (
            "no rbac grant",
            Links { grant: false, vault: "contoso-cmk-rbac", ..ALL_LINKS },
            "AzureKeyVaultMissingPermissions",
            "Crypto Service Encryption User",
        ),
        (
            "disabled key",
            Links { key_enabled: false, ..ALL_LINKS },
            "AzureKeyVaultKeyDisabled",
            "disabled",
        ),
        (
            "4096-bit key",
            Links { key_size: 4096, ..ALL_LINKS },
            "AzureKeyVaultRsaKeyNotSupported",
            "2048 or 3072",
        ),
        (
            "no purge protection",
            Links { vault: "contoso-nopurge-kv", ..ALL_LINKS },
            "SecurityInvalidAzureKeyVaultRecoveryLevel",
            "purge protection",
        ),
    ];
    for (name, links, code, fragment) in cases {
        let harness = Harness::start().await;
        let built = build(&harness, links).await;
        let failure =
            protect(&harness, &built).await.unwrap_or_else(|| panic!("{name}: chain passed"));
        assert_eq!(failure["status"], "Failed", "{name}");
        assert_eq!(failure["error"]["code"], code, "{name}: {failure:?}");
        let message = failure["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(fragment), "{name}: {message}");
        harness.simulator.shutdown().await;
    }
}

#[tokio::test]
async fn server_patch_validation_and_lro_pacing() {
    let harness = Harness::start().await;
    let token = harness.isv_token(ARM_SCOPE).await;
    let missing_uami = format!(
        "/subscriptions/{ISV_SUBSCRIPTION}/resourceGroups/rg-isv/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nope"
    );
    let cases = [
        (
            "unknown identity",
            json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {missing_uami.clone(): {}}}}),
            "InvalidParameterValue",
        ),
        (
            "user assigned without ids",
            json!({"identity": {"type": "UserAssigned"}}),
            "MissingIdentityId",
        ),
        (
            "primary not attached",
            json!({"properties": {"primaryUserAssignedIdentityId": missing_uami}}),
            "InvalidPrimaryIdentityId",
        ),
        (
            "key without identity",
            json!({"properties": {"keyId": "https://contoso-cmk-kv.vault.azure.net/keys/k/0123abcd"}}),
            "InvalidIdentityTypeForKeyId",
        ),
        ("bad identity type", json!({"identity": {"type": "Everything"}}), "InvalidParameterValue"),
    ];
    for (name, body, code) in cases {
        let reply = harness.call(Method::PATCH, &arm(SERVER, SQL), &token, Some(body)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name}: {:?}", reply.body);
        assert_eq!(reply.error_code(), code, "{name}");
    }

    harness.admin_post("/admin/lro", json!({"polls_before_done": 2})).await;
    let accepted = harness
        .call(Method::PATCH, &arm(SERVER, SQL), &token, Some(json!({"tags": {"env": "test"}})))
        .await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    assert_eq!(accepted.body["operation"], "UpsertLogicalServer");
    assert!(accepted.body["startTime"].is_string());
    let status_url = accepted.header("azure-asyncoperation").unwrap().to_string();
    let location = accepted.header("location").unwrap().to_string();
    assert!(status_url.contains("/resourceGroups/rg-isv/providers/Microsoft.Sql/locations/westeurope/serverAzureAsyncOperation/"), "{status_url}");
    assert!(location.contains("/serverOperationResults/"), "{location}");

    let first = harness.call(Method::GET, &location, &token, None).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let second = harness.call(Method::GET, &status_url, &token, None).await;
    assert_eq!(second.body["status"], "InProgress");
    let third = harness.call(Method::GET, &status_url, &token, None).await;
    assert_eq!(third.body["status"], "Succeeded");
    let done = harness.call(Method::GET, &location, &token, None).await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(done.body["tags"], json!({"env": "test"}));
    harness.simulator.shutdown().await;
}

#[tokio::test]
async fn server_create_and_delete_run_as_operations() {
    let harness = Harness::start().await;
    let token = harness.isv_token(ARM_SCOPE).await;
    let path = format!(
        "/subscriptions/{ISV_SUBSCRIPTION}/resourceGroups/rg-isv/providers/Microsoft.Sql/servers/isv-sql-02"
    );
    let body = json!({"location": "westeurope", "properties": {"administratorLogin": "admin", "administratorLoginPassword": "p@ss-not-real"}});
    let accepted = harness.call(Method::PUT, &arm(&path, SQL), &token, Some(body.clone())).await;
    assert_eq!(wait(&harness, &accepted, &token).await["status"], "Succeeded");
    let server = harness.call(Method::GET, &arm(&path, SQL), &token, None).await;
    assert_eq!(
        server.body["properties"]["fullyQualifiedDomainName"],
        "isv-sql-02.database.windows.net"
    );
    assert_eq!(server.body["identity"]["type"], "None");

    let accepted = harness.call(Method::DELETE, &arm(&path, SQL), &token, None).await;
    assert_eq!(wait(&harness, &accepted, &token).await["status"], "Succeeded");
    let gone = harness.call(Method::GET, &arm(&path, SQL), &token, None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    harness.simulator.shutdown().await;
}
