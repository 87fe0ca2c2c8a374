//! Token endpoint behaviour through the proxy: issue, AADSTS errors, federated assertions,
//! request log and proxy refusals.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn token_is_issued_with_entra_shape() {
    let harness = Harness::start().await;
    let reply = harness.token_reply(ISV_TENANT, ISV_CLIENT, ISV_SECRET, ARM_SCOPE).await;

    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.body["expires_in"], json!(3599));
    assert_eq!(reply.body["ext_expires_in"], json!(3599));
    let token = reply.body["access_token"].as_str().expect("token");
    let claims = claims_of(token);
    assert_eq!(claims["aud"], "https://management.azure.com");
    assert_eq!(claims["tid"], ISV_TENANT);
    assert_eq!(claims["oid"], ISV_OBJECT);
    assert_eq!(claims["appid"], ISV_CLIENT);
    assert_eq!(claims["iss"], format!("https://sts.windows.net/{ISV_TENANT}/"));
    harness.simulator.shutdown().await;
}

#[tokio::test]
async fn token_errors_carry_aadsts_codes() {
    let harness = Harness::start().await;
    let unknown = "33333333-0000-4000-8000-000000000001";
    let cases = [
        (
            "unknown tenant",
            unknown,
            ISV_CLIENT,
            ISV_SECRET,
            ARM_SCOPE,
            400,
            90002,
            "invalid_request",
        ),
        (
            "app in other tenant",
            CUSTOMER_TENANT,
            ISV_CLIENT,
            ISV_SECRET,
            ARM_SCOPE,
            400,
            700016,
            "unauthorized_client",
        ),
        (
            "unknown app",
            ISV_TENANT,
            unknown,
            ISV_SECRET,
            ARM_SCOPE,
            400,
            700016,
            "unauthorized_client",
        ),
        ("bad secret", ISV_TENANT, ISV_CLIENT, "wrong", ARM_SCOPE, 401, 7000215, "invalid_client"),
        (
            "scope without default",
            ISV_TENANT,
            ISV_CLIENT,
            ISV_SECRET,
            "https://graph.microsoft.com/User.Read",
            400,
            70011,
            "invalid_scope",
        ),
    ];
    for (name, tenant, client, secret, scope, status, code, error) in cases {
        let reply = harness.token_reply(tenant, client, secret, scope).await;
        assert_eq!(reply.status.as_u16(), status, "{name}: {:?}", reply.body);
        assert_eq!(reply.body["error"], error, "{name}");
        assert_eq!(reply.body["error_codes"], json!([code]), "{name}");
        let description = reply.body["error_description"].as_str().unwrap_or_default();
        assert!(description.starts_with(&format!("AADSTS{code}: ")), "{name}: {description}");
        assert!(description.contains("\r\nTrace ID: "), "{name}");
        assert!(description.contains("\r\nCorrelation ID: "), "{name}");
        for field in ["timestamp", "trace_id", "correlation_id"] {
            assert!(reply.body[field].is_string(), "{name}: {field}");
        }
    }
    harness.simulator.shutdown().await;
}

#[tokio::test]
async fn federated_assertion_must_match_a_credential() {
    let harness = Harness::start().await;
    let github = "https://token.actions.githubusercontent.com";
    let exchange = "api://AzureADTokenExchange";
    let cases = [
        ("matching", "repo:contoso/isv:ref:refs/heads/main", exchange, None),
        ("wrong subject", "repo:contoso/isv:ref:refs/heads/dev", exchange, Some(70021)),
        ("wrong audience", "repo:contoso/isv:ref:refs/heads/main", "api://other", Some(70021)),
    ];
    for (name, subject, audience, expected_code) in cases {
        let assertion = harness.oidc_token(github, subject, audience).await;
        let url = format!("https://login.microsoftonline.com/{ISV_TENANT}/oauth2/v2.0/token");
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", ISV_CLIENT),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion.as_str()),
            ("scope", GRAPH_SCOPE),
        ];
        let reply = decode(harness.client.post(url).form(&form).send().await.expect("send")).await;
        match expected_code {
            None => assert_eq!(reply.status, StatusCode::OK, "{name}: {:?}", reply.body),
            Some(code) => assert_eq!(reply.body["error_codes"], json!([code]), "{name}"),
        }
    }
    harness.simulator.shutdown().await;
}

#[tokio::test]
async fn token_requests_are_logged_with_tenant_and_scope() {
    let harness = Harness::start().await;
    harness.isv_token(ARM_SCOPE).await;
    harness.customer_token(VAULT_SCOPE).await;

    let log = harness.admin_get("/admin/requests").await;
    let tokens: Vec<(&str, &str)> = log["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter_map(|record| record.get("token"))
        .map(|token| (token["tenant"].as_str().unwrap(), token["scope"].as_str().unwrap()))
        .collect();
    assert_eq!(tokens, vec![(ISV_TENANT, ARM_SCOPE), (CUSTOMER_TENANT, VAULT_SCOPE)]);
    let text = log.to_string();
    assert!(!text.contains(ISV_SECRET) && !text.contains(CUSTOMER_SECRET), "secret in log");

    harness.admin_delete("/admin/requests").await;
    let cleared = harness.admin_get("/admin/requests").await;
    assert_eq!(cleared["requests"], json!([]));
    harness.simulator.shutdown().await;
}

#[tokio::test]
async fn proxy_refuses_hosts_it_does_not_serve() {
    let harness = Harness::start().await;
    let error = harness.client.get("https://example.com/").send().await.expect_err("refused");
    assert!(
        error.is_connect()
            || error.to_string().contains("403")
            || format!("{error:?}").contains("403"),
        "{error:?}"
    );
    harness.simulator.shutdown().await;
}

#[tokio::test]
async fn admin_state_lists_seeded_objects_without_secrets() {
    let harness = Harness::start().await;
    let state = harness.simulator.state();
    let over_http = harness.admin_get("/admin/state").await;
    assert_eq!(state["tenants"].as_array().map(Vec::len), Some(2));
    assert_eq!(state["vaults"].as_array().map(Vec::len), Some(3));
    assert_eq!(state["servers"][0]["name"], "isv-sql-01");
    assert_eq!(over_http["tenants"], state["tenants"]);
    assert!(!state.to_string().contains(ISV_SECRET));
    harness.simulator.shutdown().await;
}

fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("b64");
    serde_json::from_slice(&bytes).expect("claims")
}

#[tokio::test]
async fn admin_seed_adds_a_tenant_at_run_time() {
    let harness = Harness::start().await;
    let tenant = "33333333-0000-4000-8000-000000000001";
    let client = "33333333-0000-4000-8000-0000000000c1";
    let seed = json!({"tenants": [{"id": tenant, "display_name": "Third", "deployers": [{
        "display_name": "third-deployer", "client_id": client,
        "object_id": "33333333-0000-4000-8000-0000000000d1", "client_secret": "third-secret"}]}]});
    let added = harness.admin_post("/admin/seed", seed.clone()).await;
    assert_eq!(added.status, StatusCode::NO_CONTENT);
    harness.token(tenant, client, "third-secret", GRAPH_SCOPE).await;

    let duplicate = harness.admin_post("/admin/seed", seed).await;
    assert_eq!(duplicate.status, StatusCode::BAD_REQUEST);
    assert!(duplicate.body["error"].as_str().unwrap().contains("already exists"));
    harness.simulator.shutdown().await;
}
