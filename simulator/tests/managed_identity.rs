//! Managed identities and ARM basics through the proxy: api-version rules, tenant checks,
//! resource groups, and the service principal that follows an identity.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const MSI_VERSION: &str = "2024-11-30";

fn identity_path(name: &str) -> String {
    format!(
        "/subscriptions/{ISV_SUBSCRIPTION}/resourceGroups/rg-isv/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
}

#[tokio::test]
async fn identity_lifecycle_registers_its_principal() {
    let harness = Harness::start().await;
    let arm_token = harness.isv_token(ARM_SCOPE).await;
    let graph_token = harness.isv_token(GRAPH_SCOPE).await;
    let url = arm(&identity_path("uami-sql"), MSI_VERSION);

    let created = harness
        .call(
            Method::PUT,
            &url,
            &arm_token,
            Some(json!({"location": "westeurope", "tags": {"a": "b"}})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert!(created.header("x-ms-request-id").is_some());
    assert_eq!(created.body["type"], "Microsoft.ManagedIdentity/userAssignedIdentities");
    assert_eq!(created.body["properties"]["tenantId"], ISV_TENANT);
    let principal_id = created.body["properties"]["principalId"].as_str().unwrap().to_string();
    let client_id = created.body["properties"]["clientId"].as_str().unwrap().to_string();

    let principal = harness
        .call(Method::GET, &graph(&format!("/directoryObjects/{principal_id}")), &graph_token, None)
        .await;
    assert_eq!(principal.status, StatusCode::OK);
    assert_eq!(principal.body["servicePrincipalType"], "ManagedIdentity");
    assert_eq!(principal.body["appId"], client_id.as_str());

    let updated = harness
        .call(
            Method::PUT,
            &url,
            &arm_token,
            Some(json!({"location": "westeurope", "tags": {"c": "d"}})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    let patched =
        harness.call(Method::PATCH, &url, &arm_token, Some(json!({"tags": {"e": "f"}}))).await;
    assert_eq!(patched.body["tags"], json!({"e": "f"}));
    let read = harness.call(Method::GET, &url, &arm_token, None).await;
    assert_eq!(read.body["properties"]["principalId"], principal_id.as_str());

    let deleted = harness.call(Method::DELETE, &url, &arm_token, None).await;
    assert_eq!(deleted.status, StatusCode::OK);
    let again = harness.call(Method::DELETE, &url, &arm_token, None).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    let gone = harness.call(Method::GET, &url, &arm_token, None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.error_code(), "ResourceNotFound");
    let principal_gone = harness
        .call(Method::GET, &graph(&format!("/directoryObjects/{principal_id}")), &graph_token, None)
        .await;
    assert_eq!(principal_gone.status, StatusCode::NOT_FOUND);
    harness.simulator.shutdown().await;
}

#[tokio::test]
async fn arm_request_errors() {
    let harness = Harness::start().await;
    let isv = harness.isv_token(ARM_SCOPE).await;
    let customer = harness.customer_token(ARM_SCOPE).await;
    let path = identity_path("uami-x");
    let other_group = format!(
        "/subscriptions/{ISV_SUBSCRIPTION}/resourceGroups/rg-missing/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x"
    );
    let cases = [
        (
            "no api version",
            format!("https://management.azure.com{path}"),
            isv.clone(),
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
        ),
        (
            "old api version",
            arm(&path, "2023-01-31"),
            isv.clone(),
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
        ),
        (
            "other tenant",
            arm(&path, MSI_VERSION),
            customer.clone(),
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationTokenTenant",
        ),
        (
            "bad token",
            arm(&path, MSI_VERSION),
            "not-a-token".to_string(),
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
        ),
        (
            "missing group",
            arm(&other_group, MSI_VERSION),
            isv.clone(),
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
        ),
        (
            "missing identity",
            arm(&path, MSI_VERSION),
            isv.clone(),
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
        ),
    ];
    for (name, url, token, status, code) in cases {
        let reply = harness.call(Method::GET, &url, &token, None).await;
        assert_eq!(reply.status, status, "{name}: {:?}", reply.body);
        assert_eq!(reply.error_code(), code, "{name}");
        assert!(reply.header("x-ms-request-id").is_some(), "{name}");
    }

    let group = harness
        .call(
            Method::GET,
            &arm(&format!("/subscriptions/{ISV_SUBSCRIPTION}/resourcegroups/rg-isv"), "2021-04-01"),
            &isv,
            None,
        )
        .await;
    assert_eq!(group.status, StatusCode::OK);
    assert_eq!(group.body["location"], "westeurope");
    harness.simulator.shutdown().await;
}
