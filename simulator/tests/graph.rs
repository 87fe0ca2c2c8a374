//! Microsoft Graph through the proxy: application, credential and service principal lifecycles,
//! validation errors, tenant isolation and replication delay.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn application_lifecycle() {
    let harness = Harness::start().await;
    let token = harness.isv_token(GRAPH_SCOPE).await;

    let created = harness
        .call(
            Method::POST,
            &graph("/applications"),
            &token,
            Some(json!({"displayName": "cmk-app", "signInAudience": "AzureADMultipleOrgs"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert!(created.header("request-id").is_some());
    let object_id = created.body["id"].as_str().unwrap().to_string();
    let app_id = created.body["appId"].as_str().unwrap().to_string();
    assert_eq!(created.body["signInAudience"], "AzureADMultipleOrgs");

    let by_app_id = harness
        .call(Method::GET, &graph(&format!("/applications(appId='{app_id}')")), &token, None)
        .await;
    assert_eq!(by_app_id.body["id"], object_id.as_str());

    let patched = harness
        .call(
            Method::PATCH,
            &graph(&format!("/applications/{object_id}")),
            &token,
            Some(json!({"displayName": "renamed"})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::NO_CONTENT);
    let read = harness
        .call(Method::GET, &graph(&format!("/applications/{object_id}")), &token, None)
        .await;
    assert_eq!(read.body["displayName"], "renamed");

    let object = harness
        .call(Method::GET, &graph(&format!("/directoryObjects/{object_id}")), &token, None)
        .await;
    assert_eq!(object.body["@odata.type"], "#microsoft.graph.application");

    let deleted = harness
        .call(Method::DELETE, &graph(&format!("/applications/{object_id}")), &token, None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = harness
        .call(Method::GET, &graph(&format!("/applications/{object_id}")), &token, None)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.error_code(), "Request_ResourceNotFound");
    assert!(gone.body["error"]["innerError"]["request-id"].is_string());
    harness.simulator.shutdown().await;
}

#[tokio::test]
async fn federated_credential_rules() {
    let harness = Harness::start().await;
    let token = harness.isv_token(GRAPH_SCOPE).await;
    let app = harness
        .call(
            Method::POST,
            &graph("/applications"),
            &token,
            Some(json!({"displayName": "fic-app"})),
        )
        .await;
    let object_id = app.body["id"].as_str().unwrap().to_string();
    let url = graph(&format!("/applications/{object_id}/federatedIdentityCredentials"));
    let credential = |name: &str, subject: &str| {
        json!({"name": name, "issuer": "https://login.microsoftonline.com/t/v2.0", "subject": subject,
               "audiences": ["api://AzureADTokenExchange"]})
    };

    let created = harness.call(Method::POST, &url, &token, Some(credential("uami-1", "s1"))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let credential_id = created.body["id"].as_str().unwrap().to_string();

    let cases = [
        ("name too short", credential("ab", "s2"), StatusCode::BAD_REQUEST, "is invalid"),
        ("name starts with dash", credential("-abc", "s2"), StatusCode::BAD_REQUEST, "is invalid"),
        (
            "same issuer and subject",
            credential("other", "s1"),
            StatusCode::BAD_REQUEST,
            "combination already exists",
        ),
        (
            "two audiences",
            json!({"name": "two-aud", "issuer": "i", "subject": "s3", "audiences": ["a", "b"]}),
            StatusCode::BAD_REQUEST,
            "exactly one",
        ),
        ("duplicate name", credential("uami-1", "s4"), StatusCode::CONFLICT, "already exists"),
    ];
    for (name, body, status, message) in cases {
        let reply = harness.call(Method::POST, &url, &token, Some(body)).await;
        assert_eq!(reply.status, status, "{name}: {:?}", reply.body);
        let text = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{name}: {text}");
    }

    for index in 1..20 {
        let reply = harness
            .call(
                Method::POST,
                &url,
                &token,
                Some(credential(&format!("fill-{index}"), &format!("x{index}"))),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "fill {index}");
    }
    let over =
        harness.call(Method::POST, &url, &token, Some(credential("one-too-many", "y"))).await;
    assert_eq!(over.status, StatusCode::BAD_REQUEST);

    let by_name = harness.call(Method::GET, &format!("{url}/uami-1"), &token, None).await;
    assert_eq!(by_name.body["id"], credential_id.as_str());
    let patch = harness
        .call(
            Method::PATCH,
            &format!("{url}/{credential_id}"),
            &token,
            Some(json!({"subject": "s9"})),
        )
        .await;
    assert_eq!(patch.status, StatusCode::NO_CONTENT);
    let read = harness.call(Method::GET, &format!("{url}/{credential_id}"), &token, None).await;
    assert_eq!(read.body["subject"], "s9");
    let deleted =
        harness.call(Method::DELETE, &format!("{url}(name='uami-1')"), &token, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    harness.simulator.shutdown().await;
}

#[tokio::test]
async fn service_principal_rules_and_tenant_isolation() {
    let harness = Harness::start().await;
    let isv = harness.isv_token(GRAPH_SCOPE).await;
    let customer = harness.customer_token(GRAPH_SCOPE).await;
    let single = harness
        .call(Method::POST, &graph("/applications"), &isv, Some(json!({"displayName": "single"})))
        .await;
    let multi = harness
        .call(
            Method::POST,
            &graph("/applications"),
            &isv,
            Some(json!({"displayName": "multi", "signInAudience": "AzureADMultipleOrgs"})),
        )
        .await;
    let single_app_id = single.body["appId"].as_str().unwrap().to_string();
    let multi_app_id = multi.body["appId"].as_str().unwrap().to_string();

    // The customer tenant cannot see the ISV's application.
    let hidden = harness
        .call(
            Method::GET,
            &graph(&format!("/applications/{}", multi.body["id"].as_str().unwrap())),
            &customer,
            None,
        )
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);

    let refused = harness
        .call(
            Method::POST,
            &graph("/servicePrincipals"),
            &customer,
            Some(json!({"appId": single_app_id})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not reference a valid application object")
    );

    let installed = harness
        .call(
            Method::POST,
            &graph("/servicePrincipals"),
            &customer,
            Some(json!({"appId": multi_app_id})),
        )
        .await;
    assert_eq!(installed.status, StatusCode::CREATED, "{:?}", installed.body);
    assert_eq!(installed.body["appOwnerOrganizationId"], ISV_TENANT);
    let again = harness
        .call(
            Method::POST,
            &graph("/servicePrincipals"),
            &customer,
            Some(json!({"appId": multi_app_id})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.error_code(), "Request_MultipleObjectsWithSameKeyValue");

    let filtered = harness
        .call(
            Method::GET,
            &graph(&format!("/servicePrincipals?$filter=appId eq '{multi_app_id}'")),
            &customer,
            None,
        )
        .await;
    assert_eq!(filtered.body["value"].as_array().map(Vec::len), Some(1));
    let by_app = harness
        .call(
            Method::GET,
            &graph(&format!("/servicePrincipals(appId='{multi_app_id}')")),
            &customer,
            None,
        )
        .await;
    assert_eq!(by_app.body["id"], installed.body["id"]);
    let isv_view = harness
        .call(
            Method::GET,
            &graph(&format!("/servicePrincipals(appId='{multi_app_id}')")),
            &isv,
            None,
        )
        .await;
    assert_eq!(isv_view.status, StatusCode::NOT_FOUND);

    let id = installed.body["id"].as_str().unwrap();
    let deleted = harness
        .call(Method::DELETE, &graph(&format!("/servicePrincipals/{id}")), &customer, None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    harness.simulator.shutdown().await;
}

#[tokio::test]
async fn replication_delay_hides_new_principals() {
    let harness = Harness::start().await;
    harness
        .admin_post("/admin/replication", json!({"kind": "service_principal", "delay_ms": 300}))
        .await;
    let isv = harness.isv_token(GRAPH_SCOPE).await;
    let customer = harness.customer_token(GRAPH_SCOPE).await;
    let multi = harness
        .call(
            Method::POST,
            &graph("/applications"),
            &isv,
            Some(json!({"displayName": "multi", "signInAudience": "AzureADMultipleOrgs"})),
        )
        .await;
    let app_id = multi.body["appId"].as_str().unwrap();
    let installed = harness
        .call(Method::POST, &graph("/servicePrincipals"), &customer, Some(json!({"appId": app_id})))
        .await;
    let url = graph(&format!("/servicePrincipals/{}", installed.body["id"].as_str().unwrap()));

    let early = harness.call(Method::GET, &url, &customer, None).await;
    assert_eq!(early.status, StatusCode::NOT_FOUND);
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    let later = harness.call(Method::GET, &url, &customer, None).await;
    assert_eq!(later.status, StatusCode::OK);
    harness.simulator.shutdown().await;
}

#[tokio::test]
async fn graph_refuses_foreign_audience() {
    let harness = Harness::start().await;
    let arm_token = harness.isv_token(ARM_SCOPE).await;
    let reply = harness.call(Method::GET, &graph("/applications"), &arm_token, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error_code(), "InvalidAuthenticationToken");
    harness.simulator.shutdown().await;
}
