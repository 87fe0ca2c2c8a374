//! Shared harness for the simulator's integration tests: a seeded simulator, a reqwest client
//! that reaches it through the proxy like the provider does, and admin helpers.

#![allow(dead_code, reason = "each test binary uses a different subset of the harness")]

use azure_sim::{RunningSimulator, Seed, SimulatorOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const ISV_TENANT: &str = "11111111-0000-4000-8000-000000000001";
pub const ISV_CLIENT: &str = "11111111-0000-4000-8000-0000000000c1";
pub const ISV_OBJECT: &str = "11111111-0000-4000-8000-0000000000d1";
pub const ISV_SECRET: &str = "isv-deployer-secret-not-real";
pub const ISV_SUBSCRIPTION: &str = "11111111-0000-4000-8000-0000000000a1";
pub const CUSTOMER_TENANT: &str = "22222222-0000-4000-8000-000000000001";
pub const CUSTOMER_CLIENT: &str = "22222222-0000-4000-8000-0000000000c1";
pub const CUSTOMER_OBJECT: &str = "22222222-0000-4000-8000-0000000000d1";
pub const CUSTOMER_SECRET: &str = "customer-deployer-secret-not-real";
pub const CUSTOMER_SUBSCRIPTION: &str = "22222222-0000-4000-8000-0000000000a1";

pub const ARM_SCOPE: &str = "https://management.azure.com/.default";
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
pub const VAULT_SCOPE: &str = "https://vault.azure.net/.default";

/// A running simulator plus clients.
pub struct Harness {
    pub simulator: RunningSimulator,
    /// Goes through the proxy and trusts the simulator's CA.
    pub client: reqwest::Client,
    /// Talks to the admin API directly.
    pub admin: reqwest::Client,
}

/// A decoded response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// `error.code` in ARM, Graph and Key Vault error bodies.
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

impl Harness {
    pub async fn start() -> Self {
        let seed = Seed::from_json(include_str!("../../seeds/two-tenants.json")).expect("seed");
        let simulator = azure_sim::start(SimulatorOptions { seed, proxy_port: 0, admin_port: 0 })
            .await
            .expect("start simulator");
        let client = reqwest::Client::builder()
            .proxy(reqwest::Proxy::https(simulator.proxy_url()).expect("proxy"))
            .add_root_certificate(
                reqwest::Certificate::from_pem(simulator.ca_pem().as_bytes()).expect("ca"),
            )
            .build()
            .expect("client");
        let admin = reqwest::Client::builder().no_proxy().build().expect("admin client");
        Self { simulator, client, admin }
    }

    /// Requests a token with a client secret and returns the raw reply.
    pub async fn token_reply(
        &self,
        tenant: &str,
        client: &str,
        secret: &str,
        scope: &str,
    ) -> Reply {
        let url = format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token");
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("client_secret", secret),
            ("scope", scope),
        ];
        let response = self.client.post(url).form(&form).send().await.expect("token request");
        decode(response).await
    }

    /// A token that must succeed.
    pub async fn token(&self, tenant: &str, client: &str, secret: &str, scope: &str) -> String {
        let reply = self.token_reply(tenant, client, secret, scope).await;
        assert_eq!(reply.status, StatusCode::OK, "token: {:?}", reply.body);
        reply.body["access_token"].as_str().expect("access_token").to_string()
    }

    pub async fn isv_token(&self, scope: &str) -> String {
        self.token(ISV_TENANT, ISV_CLIENT, ISV_SECRET, scope).await
    }

    pub async fn customer_token(&self, scope: &str) -> String {
        self.token(CUSTOMER_TENANT, CUSTOMER_CLIENT, CUSTOMER_SECRET, scope).await
    }

    /// Sends a request with a bearer token and optional JSON body.
    pub async fn call(&self, method: Method, url: &str, token: &str, body: Option<Value>) -> Reply {
        let mut request = self.client.request(method, url).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        decode(request.send().await.expect("request")).await
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> Reply {
        let url = format!("{}{path}", self.simulator.admin_url());
        decode(self.admin.post(url).json(&body).send().await.expect("admin")).await
    }

    pub async fn admin_get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.simulator.admin_url());
        decode(self.admin.get(url).send().await.expect("admin")).await.body
    }

    pub async fn admin_delete(&self, path: &str) {
        let url = format!("{}{path}", self.simulator.admin_url());
        self.admin.delete(url).send().await.expect("admin");
    }

    /// An external OIDC token from the admin endpoint.
    pub async fn oidc_token(&self, issuer: &str, subject: &str, audience: &str) -> String {
        let body = json!({"issuer": issuer, "subject": subject, "audience": audience});
        let reply = self.admin_post("/admin/oidc-token", body).await;
        reply.body["token"].as_str().expect("oidc token").to_string()
    }
}

pub async fn decode(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Reply { status, headers, body }
}

/// ARM URL helper.
pub fn arm(path: &str, api_version: &str) -> String {
    format!("https://management.azure.com{path}?api-version={api_version}")
}

/// Graph URL helper.
pub fn graph(path: &str) -> String {
    format!("https://graph.microsoft.com/v1.0{path}")
}
