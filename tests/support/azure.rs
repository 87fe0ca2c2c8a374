//! Changes made "behind Terraform's back": real requests to the simulated Azure, through its
//! proxy and CA, signed in as a seeded deployer, exactly as another tool or a person would.

use azure_sim::RunningSimulator;
use serde_json::Value;

use super::terraform::TenantIds;

/// A signed-in client for one seeded tenant.
pub struct AzureSession {
    http: reqwest::Client,
    tenant: TenantIds,
}

impl AzureSession {
    /// A client that reaches the simulator's hosts through its proxy, trusting its CA.
    pub fn new(simulator: &RunningSimulator, tenant: &TenantIds) -> AzureSession {
        let proxy = reqwest::Proxy::https(simulator.proxy_url()).expect("proxy url");
        let ca = reqwest::Certificate::from_pem(simulator.ca_pem().as_bytes()).expect("CA pem");
        let http = reqwest::Client::builder()
            .proxy(proxy)
            .add_root_certificate(ca)
            .build()
            .expect("building the test client");
        AzureSession { http, tenant: tenant.clone() }
    }

    /// Sends `method url` with an optional JSON body and a token for `scope`; returns the status
    /// and the JSON body (null when empty).
    pub fn call(&self, method: &str, url: &str, scope: &str, body: Option<Value>) -> (u16, Value) {
        run(async {
            let token = self.token(scope).await;
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let mut request = self.http.request(method, url).bearer_auth(token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.expect("sending the request");
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        })
    }

    /// An ARM request: `path` is an id such as `/subscriptions/...`.
    pub fn arm(
        &self,
        method: &str,
        path: &str,
        api_version: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("https://management.azure.com{path}?api-version={api_version}");
        self.call(method, &url, "https://management.azure.com/.default", body)
    }

    /// A Microsoft Graph v1.0 request.
    pub fn graph(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("https://graph.microsoft.com/v1.0{path}");
        self.call(method, &url, "https://graph.microsoft.com/.default", body)
    }

    async fn token(&self, scope: &str) -> String {
        let url = format!(
            "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
            self.tenant.tenant_id
        );
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.tenant.client_id.as_str()),
            ("client_secret", self.tenant.client_secret.as_str()),
            ("scope", scope),
        ];
        let response = self.http.post(url).form(&form).send().await.expect("token request");
        let body: Value = response.json().await.expect("token response");
        body["access_token"].as_str().expect("an access token").to_string()
    }
}

fn run<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building a runtime")
        .block_on(future)
}
