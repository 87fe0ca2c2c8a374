//! Key Vault through the proxy: the data plane's challenge, permission errors, key lifecycle and
//! wrap/unwrap; vault access policies and role assignments on the ARM side.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const KV: &str = "2025-05-01";
const VAULT: &str = "https://contoso-cmk-kv.vault.azure.net";
const RBAC_VAULT: &str = "https://contoso-cmk-rbac.vault.azure.net";

fn vault_path(vault: &str) -> String {
    format!(
        "/subscriptions/{CUSTOMER_SUBSCRIPTION}/resourceGroups/rg-customer/providers/Microsoft.KeyVault/vaults/{vault}"
    )
}

/// An ISV multi-tenant app installed in the customer tenant, signed in there by federation.
async fn federated_customer_principal(harness: &Harness) -> (String, String) {
    let isv_graph = harness.isv_token(GRAPH_SCOPE).await;
    let customer_graph = harness.customer_token(GRAPH_SCOPE).await;
    let app = harness
        .call(
            Method::POST,
            &graph("/applications"),
            &isv_graph,
            Some(json!({"displayName": "federated", "signInAudience": "AzureADMultipleOrgs"})),
        )
        .await;
    let app_id = app.body["appId"].as_str().unwrap().to_string();
    let credential = json!({"name": "ci-workload", "issuer": "https://issuer.example", "subject": "workload",
        "audiences": ["api://AzureADTokenExchange"]});
    harness
        .call(
            Method::POST,
            &graph(&format!(
                "/applications/{}/federatedIdentityCredentials",
                app.body["id"].as_str().unwrap()
            )),
            &isv_graph,
            Some(credential),
        )
        .await;
    let sp = harness
        .call(
            Method::POST,
            &graph("/servicePrincipals"),
            &customer_graph,
            Some(json!({"appId": app_id})),
        )
        .await;
    let sp_id = sp.body["id"].as_str().unwrap().to_string();

    let assertion = harness
        .oidc_token("https://issuer.example", "workload", "api://AzureADTokenExchange")
        .await;
    let url = format!("https://login.microsoftonline.com/{CUSTOMER_TENANT}/oauth2/v2.0/token");
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", app_id.as_str()),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", assertion.as_str()),
        ("scope", VAULT_SCOPE),
    ];
    let reply = decode(harness.client.post(url).form(&form).send().await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    (reply.body["access_token"].as_str().unwrap().to_string(), sp_id)
}

#[tokio::test]
async fn data_plane_challenges_foreign_and_missing_tokens() {
    let harness = Harness::start().await;
    let isv_vault = harness.isv_token(VAULT_SCOPE).await;
    let url = format!("{VAULT}/keys?api-version=7.5");
    let cases = [("no token", None), ("other tenant", Some(isv_vault))];
    for (name, token) in cases {
        let mut request = harness.client.get(&url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let reply = decode(request.send().await.unwrap()).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}");
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert_eq!(
            challenge,
            format!(
                "Bearer authorization=\"https://login.windows.net/{CUSTOMER_TENANT}\", resource=\"https://vault.azure.net\""
            ),
            "{name}"
        );
        assert_eq!(reply.error_code(), "Unauthorized", "{name}");
    }
    let missing = harness.client.get(format!("{VAULT}/keys")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST, "api-version is required");
    harness.simulator.shutdown().await;
}

#[tokio::test]
async fn key_lifecycle_and_wrapping() {
    let harness = Harness::start().await;
    let token = harness.customer_token(VAULT_SCOPE).await;
    let created = harness
        .call(
            Method::POST,
            &format!("{VAULT}/keys/tde/create?api-version=7.5"),
            &token,
            Some(json!({"kty": "RSA", "key_size": 3072})),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    let kid = created.body["key"]["kid"].as_str().unwrap().to_string();
    let version = kid.rsplit('/').next().unwrap();
    assert_eq!(version.len(), 32);
    assert!(version.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(created.body["key"]["e"], "AQAB");
    assert_eq!(created.body["key"]["n"].as_str().unwrap().len(), 512, "3072 bits base64url");
    assert_eq!(created.body["attributes"]["recoveryLevel"], "Recoverable");

    let second = harness
        .call(
            Method::POST,
            &format!("{VAULT}/keys/tde/create?api-version=7.5"),
            &token,
            Some(json!({"kty": "RSA"})),
        )
        .await;
    let latest =
        harness.call(Method::GET, &format!("{VAULT}/keys/tde?api-version=7.5"), &token, None).await;
    assert_eq!(latest.body["key"]["kid"], second.body["key"]["kid"]);
    let versions = harness
        .call(Method::GET, &format!("{VAULT}/keys/tde/versions?api-version=7.5"), &token, None)
        .await;
    assert_eq!(versions.body["value"].as_array().map(Vec::len), Some(2));

    let wrapped = harness
        .call(
            Method::POST,
            &format!("{kid}/wrapkey?api-version=7.5"),
            &token,
            Some(json!({"alg": "RSA-OAEP", "value": "c2VjcmV0LWtleQ"})),
        )
        .await;
    assert_eq!(wrapped.status, StatusCode::OK, "{:?}", wrapped.body);
    assert_ne!(wrapped.body["value"], "c2VjcmV0LWtleQ");
    let unwrapped = harness
        .call(
            Method::POST,
            &format!("{kid}/unwrapkey?api-version=7.5"),
            &token,
            Some(json!({"alg": "RSA-OAEP", "value": wrapped.body["value"]})),
        )
        .await;
    assert_eq!(unwrapped.body["value"], "c2VjcmV0LWtleQ");

    let updated = harness
        .call(
            Method::PATCH,
            &format!("{kid}?api-version=7.5"),
            &token,
            Some(json!({"attributes": {"enabled": false, "exp": 4102444800_i64}})),
        )
        .await;
    assert_eq!(updated.body["attributes"]["enabled"], false);
    assert_eq!(updated.body["attributes"]["exp"], 4102444800_i64);
    let refused = harness
        .call(
            Method::POST,
            &format!("{kid}/wrapkey?api-version=7.5"),
            &token,
            Some(json!({"alg": "RSA-OAEP", "value": "AAAA"})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let deleted = harness
        .call(Method::DELETE, &format!("{VAULT}/keys/tde?api-version=7.5"), &token, None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert!(deleted.body["recoveryId"].as_str().unwrap().ends_with("/deletedkeys/tde"));
    assert_eq!(deleted.body["attributes"]["recoveryLevel"], "Recoverable");
    let gone =
        harness.call(Method::GET, &format!("{VAULT}/keys/tde?api-version=7.5"), &token, None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.error_code(), "KeyNotFound");
    let reuse = harness
        .call(
            Method::POST,
            &format!("{VAULT}/keys/tde/create?api-version=7.5"),
            &token,
            Some(json!({"kty": "RSA"})),
        )
        .await;
    assert_eq!(reuse.status, StatusCode::CONFLICT);
    let purge = harness
        .call(Method::DELETE, &format!("{VAULT}/deletedkeys/tde?api-version=7.5"), &token, None)
        .await;
    assert_eq!(purge.status, StatusCode::FORBIDDEN, "purge protection");

    let no_purge = "https://contoso-nopurge-kv.vault.azure.net";
    harness
        .call(
            Method::POST,
            &format!("{no_purge}/keys/k/create?api-version=7.5"),
            &token,
            Some(json!({"kty": "RSA"})),
        )
        .await;
    let deleted = harness
        .call(Method::DELETE, &format!("{no_purge}/keys/k?api-version=7.5"), &token, None)
        .await;
    assert_eq!(deleted.body["attributes"]["recoveryLevel"], "Recoverable+Purgeable");
    harness.simulator.shutdown().await;
}

#[tokio::test]
async fn permissions_follow_access_policies_and_roles() {
    let harness = Harness::start().await;
    let owner = harness.customer_token(VAULT_SCOPE).await;
    let customer_arm = harness.customer_token(ARM_SCOPE).await;
    harness
        .call(
            Method::POST,
            &format!("{VAULT}/keys/tde/create?api-version=7.5"),
            &owner,
            Some(json!({"kty": "RSA"})),
        )
        .await;
    harness
        .call(
            Method::POST,
            &format!("{RBAC_VAULT}/keys/tde/create?api-version=7.5"),
            &owner,
            Some(json!({"kty": "RSA"})),
        )
        .await;
    let (token, sp_id) = federated_customer_principal(&harness).await;

    let policy_denied =
        harness.call(Method::GET, &format!("{VAULT}/keys/tde?api-version=7.5"), &token, None).await;
    assert_eq!(policy_denied.status, StatusCode::FORBIDDEN);
    assert_eq!(policy_denied.body["error"]["innererror"]["code"], "AccessDenied");
    let rbac_denied = harness
        .call(Method::GET, &format!("{RBAC_VAULT}/keys/tde?api-version=7.5"), &token, None)
        .await;
    assert_eq!(rbac_denied.body["error"]["innererror"]["code"], "ForbiddenByRbac");

    let policy = |keys: &[&str]| json!({"properties": {"accessPolicies": [{"tenantId": CUSTOMER_TENANT, "objectId": sp_id, "permissions": {"keys": keys}}]}});
    let add = arm(&format!("{}/accessPolicies/add", vault_path("contoso-cmk-kv")), KV);
    harness.call(Method::PUT, &add, &customer_arm, Some(policy(&["get"]))).await;
    harness.call(Method::PUT, &add, &customer_arm, Some(policy(&["wrapKey", "unwrapKey"]))).await;
    let vault = harness
        .call(Method::GET, &arm(&vault_path("contoso-cmk-kv"), KV), &customer_arm, None)
        .await;
    let entry = vault.body["properties"]["accessPolicies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["objectId"] == sp_id.as_str())
        .cloned()
        .expect("merged entry");
    assert_eq!(entry["permissions"]["keys"], json!(["get", "wrapKey", "unwrapKey"]));
    let allowed =
        harness.call(Method::GET, &format!("{VAULT}/keys/tde?api-version=7.5"), &token, None).await;
    assert_eq!(allowed.status, StatusCode::OK);

    let remove = arm(&format!("{}/accessPolicies/remove", vault_path("contoso-cmk-kv")), KV);
    harness
        .call(Method::PUT, &remove, &customer_arm, Some(policy(&["get", "wrapKey", "unwrapKey"])))
        .await;
    let vault = harness
        .call(Method::GET, &arm(&vault_path("contoso-cmk-kv"), KV), &customer_arm, None)
        .await;
    assert!(
        vault.body["properties"]["accessPolicies"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["objectId"] != sp_id.as_str())
    );

    let role = format!(
        "/subscriptions/{CUSTOMER_SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/e147488a-f6f5-4113-8e2d-b22465e65bf6"
    );
    let assignment = format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/0b2c8b1e-0000-4000-8000-000000000001",
        vault_path("contoso-cmk-rbac")
    );
    let body = json!({"properties": {"roleDefinitionId": role, "principalId": sp_id}});
    let created = harness
        .call(Method::PUT, &arm(&assignment, "2022-04-01"), &customer_arm, Some(body.clone()))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let rbac_allowed = harness
        .call(Method::GET, &format!("{RBAC_VAULT}/keys/tde?api-version=7.5"), &token, None)
        .await;
    assert_eq!(rbac_allowed.status, StatusCode::OK);
    let create_denied = harness
        .call(
            Method::POST,
            &format!("{RBAC_VAULT}/keys/other/create?api-version=7.5"),
            &token,
            Some(json!({"kty": "RSA"})),
        )
        .await;
    assert_eq!(create_denied.status, StatusCode::FORBIDDEN, "encryption user cannot create keys");

    let duplicate = format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/0b2c8b1e-0000-4000-8000-000000000002",
        vault_path("contoso-cmk-rbac")
    );
    let conflict =
        harness.call(Method::PUT, &arm(&duplicate, "2022-04-01"), &customer_arm, Some(body)).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(conflict.error_code(), "RoleAssignmentExists");
    let listed = harness
        .call(
            Method::GET,
            &format!(
                "{}&$filter=principalId eq '{sp_id}'",
                arm(
                    &format!(
                        "{}/providers/Microsoft.Authorization/roleAssignments",
                        vault_path("contoso-cmk-rbac")
                    ),
                    "2022-04-01"
                )
            ),
            &customer_arm,
            None,
        )
        .await;
    assert_eq!(listed.body["value"].as_array().map(Vec::len), Some(1));
    let deleted =
        harness.call(Method::DELETE, &arm(&assignment, "2022-04-01"), &customer_arm, None).await;
    assert_eq!(deleted.status, StatusCode::OK);
    let absent =
        harness.call(Method::DELETE, &arm(&assignment, "2022-04-01"), &customer_arm, None).await;
    assert_eq!(absent.status, StatusCode::NO_CONTENT);
    harness.simulator.shutdown().await;
}

#[tokio::test]
async fn role_assignment_needs_a_known_principal() {
    let harness = Harness::start().await;
    let token = harness.customer_token(ARM_SCOPE).await;
    let role = format!(
        "/subscriptions/{CUSTOMER_SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/e147488a-f6f5-4113-8e2d-b22465e65bf6"
    );
    let path = format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/1c2c8b1e-0000-4000-8000-000000000001",
        vault_path("contoso-cmk-rbac")
    );
    let reply = harness.call(Method::PUT, &arm(&path, "2022-04-01"), &token,
        Some(json!({"properties": {"roleDefinitionId": role, "principalId": "99999999-0000-4000-8000-000000000001"}}))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "PrincipalNotFound");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("does not exist in the directory {CUSTOMER_TENANT}"))
    );
    harness.simulator.shutdown().await;
}
