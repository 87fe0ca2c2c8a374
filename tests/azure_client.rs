//! Our Azure client against the simulator, reached the way users reach Azure behind a
//! TLS-inspecting proxy: the proxy's URL and its CA, real Azure host names.
//!
//! Covers what unit tests cannot: a real client-secret token from the (simulated) Entra token
//! endpoint through azure_identity on our shared transport, then ARM calls with it.

use std::collections::BTreeMap;
use std::time::Duration;

use azure_sim::{RunningSimulator, Seed, SimulatorOptions};
use azurecmk::azure::credentials::{CredentialOptions, build_credential};
use azurecmk::azure::http::{HttpClientSettings, PemBundle, ProxySettings, build_http_client};
use azurecmk::azure::ids::UserAssignedIdentityId;
use azurecmk::azure::{AzureClient, AzureError, CallContext, Secret, managed_identity};

const ISV_TENANT: &str = "11111111-0000-4000-8000-000000000001";
const ISV_CLIENT: &str = "11111111-0000-4000-8000-0000000000c1";
const ISV_SECRET: &str = "isv-deployer-secret-not-real";
const ISV_SUBSCRIPTION: &str = "11111111-0000-4000-8000-0000000000a1";

async fn start_simulator() -> RunningSimulator {
    let seed = Seed::from_json(include_str!("../simulator/seeds/two-tenants.json")).unwrap();
    azure_sim::start(SimulatorOptions { seed, proxy_port: 0, admin_port: 0 }).await.unwrap()
}

/// Our HTTP client, configured with the proxy and CA a user would put in `HTTPS_PROXY` and
/// `SSL_CERT_FILE`.
fn http_client(simulator: &RunningSimulator) -> reqwest::Client {
    let settings = HttpClientSettings {
        proxy: Some(ProxySettings { url: simulator.proxy_url(), no_proxy: None }),
        extra_root_bundles: vec![PemBundle {
            origin: "simulator CA".to_owned(),
            pem: simulator.ca_pem().as_bytes().to_vec(),
        }],
    };
    build_http_client(&settings).unwrap()
}

fn client_with_secret(http: reqwest::Client, secret: &str) -> AzureClient {
    let options = CredentialOptions {
        tenant_id: ISV_TENANT.to_owned(),
        client_id: Some(ISV_CLIENT.to_owned()),
        client_secret: Some(Secret::new(secret)),
        ..CredentialOptions::default()
    };
    let (credential, method) = build_credential(&options, &http).unwrap();
    AzureClient::builder(http, credential, method, ISV_TENANT).build()
}

#[tokio::test]
async fn client_secret_token_then_managed_identity_create_and_get() {
    let simulator = start_simulator().await;
    let client = client_with_secret(http_client(&simulator), ISV_SECRET);
    let call = CallContext::with_timeout(Duration::from_secs(60));
    let id = UserAssignedIdentityId::parse(&format!(
        "/subscriptions/{ISV_SUBSCRIPTION}/resourceGroups/rg-isv/providers/\
         Microsoft.ManagedIdentity/userAssignedIdentities/uami-tde"
    ))
    .unwrap();
    let tags = BTreeMap::from([("purpose".to_owned(), "tde".to_owned())]);

    let created = managed_identity::create_or_update(&client, &id, "westeurope", &tags, &call);
    let created = created.await.unwrap();
    let read = managed_identity::get(&client, &id, &call).await.unwrap();

    assert_eq!(created.tenant_id, ISV_TENANT);
    assert!(!created.principal_id.is_empty());
    assert!(!created.client_id.is_empty());
    assert_eq!(created.tags, tags);
    assert_eq!(read, Some(created));
    simulator.shutdown().await;
}

#[tokio::test]
async fn a_wrong_secret_is_an_unauthorized_error_that_never_shows_the_secret() {
    let simulator = start_simulator().await;
    let wrong_secret = "definitely-not-the-secret";
    let client = client_with_secret(http_client(&simulator), wrong_secret);
    let call = CallContext::with_timeout(Duration::from_secs(60));
    let id = UserAssignedIdentityId::parse(&format!(
        "/subscriptions/{ISV_SUBSCRIPTION}/resourceGroups/rg-isv/providers/\
         Microsoft.ManagedIdentity/userAssignedIdentities/uami-none"
    ))
    .unwrap();

    let error = managed_identity::get(&client, &id, &call).await.unwrap_err();

    assert!(matches!(error, AzureError::Credential { .. }), "{error}");
    assert!(error.is_unauthorized(), "{error}");
    assert!(error.code().is_some_and(|code| code.starts_with("AADSTS")), "{error}");
    let message = error.to_string();
    assert!(message.starts_with("reading user-assigned identity /subscriptions/"), "{message}");
    assert!(message.contains(ISV_TENANT), "{message}");
    assert!(message.contains("AADSTS7000215: Invalid client secret provided."), "{message}");
    assert!(message.contains("(trace id "), "{message}");
    assert!(!message.contains("\r\n"), "{message}");
    assert!(!message.contains(wrong_secret), "{message}");
    simulator.shutdown().await;
}
