//! The plain-HTTP admin API: state snapshot, run-time seeding, request log, faults, operation
//! pacing, replication delay and OIDC tokens for federated sign-in.
//!
//! Tests and the demo drive the simulator through these endpoints. The snapshot shows ids,
//! settings and grants but never a client secret or token; the request log keeps paths without
//! query secrets.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Shared;
use crate::faults::FaultRule;
use crate::http::unix_now;
use crate::seed::Seed;
use crate::state::{ReplicatedKind, World};
use crate::vault::key_url;

/// One proxied request, as kept in the log.
#[derive(Clone, Debug, Serialize)]
pub struct RequestRecord {
    /// When it arrived (RFC 3339).
    pub time: String,
    /// Host tunnelled to.
    pub host: String,
    /// Method.
    pub method: String,
    /// Path with secret-looking query values redacted.
    pub path: String,
    /// Response status (0 when the connection was dropped).
    pub status: u16,
    /// Request id from the response headers.
    pub request_id: Option<String>,
    /// Milliseconds spent, including injected latency.
    pub duration_ms: u64,
    /// Present for token requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenRecord>,
}

/// The tenant and scope of a token request.
#[derive(Clone, Debug, Serialize)]
pub struct TokenRecord {
    /// Tenant segment of the token URL.
    pub tenant: String,
    /// Requested scope.
    pub scope: String,
}

/// The admin router.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/admin/state", get(state))
        .route("/admin/seed", post(seed))
        .route("/admin/requests", get(requests).delete(clear_requests))
        .route("/admin/faults", get(faults).post(add_fault).delete(clear_faults))
        .route("/admin/lro", post(lro))
        .route("/admin/replication", post(replication))
        .route("/admin/oidc-token", post(oidc_token))
        .with_state(shared)
}

fn bad_request(message: impl std::fmt::Display) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message.to_string()}))).into_response()
}

async fn state(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(snapshot(&shared.world()))
}

async fn seed(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let parsed = match Seed::from_json(&body) {
        Ok(seed) => seed,
        Err(error) => return bad_request(error),
    };
    match parsed.apply(&mut shared.world()) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => bad_request(error),
    }
}

async fn requests(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let log = shared.requests.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    Json(json!({ "requests": *log }))
}

async fn clear_requests(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.requests.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    StatusCode::NO_CONTENT
}

async fn faults(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let faults = shared.faults.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    Json(json!({ "faults": faults.rules() }))
}

async fn add_fault(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let rule: FaultRule = match serde_json::from_str(&body) {
        Ok(rule) => rule,
        Err(error) => return bad_request(format_args!("parsing fault: {error}")),
    };
    shared.faults.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).add(rule.clone());
    (StatusCode::CREATED, Json(rule)).into_response()
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.faults.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct LroSettings {
    polls_before_done: u32,
}

async fn lro(State(shared): State<Arc<Shared>>, body: String) -> Response {
    match serde_json::from_str::<LroSettings>(&body) {
        Ok(settings) => {
            shared.world().settings.polls_before_done = settings.polls_before_done;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(error) => bad_request(format_args!("parsing lro settings: {error}")),
    }
}

#[derive(Deserialize)]
struct ReplicationSettings {
    kind: ReplicatedKind,
    delay_ms: u64,
}

async fn replication(State(shared): State<Arc<Shared>>, body: String) -> Response {
    match serde_json::from_str::<ReplicationSettings>(&body) {
        Ok(settings) => {
            let delay = Duration::from_millis(settings.delay_ms);
            shared.world().settings.replication.insert(settings.kind, delay);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(error) => bad_request(format_args!("parsing replication settings: {error}")),
    }
}

#[derive(Deserialize)]
struct OidcTokenRequest {
    issuer: String,
    subject: String,
    #[serde(default = "token_exchange")]
    audience: String,
    #[serde(default)]
    lifetime_seconds: Option<i64>,
}

fn token_exchange() -> String {
    "api://AzureADTokenExchange".to_string()
}

async fn oidc_token(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let request: OidcTokenRequest = match serde_json::from_str(&body) {
        Ok(request) => request,
        Err(error) => return bad_request(format_args!("parsing oidc token request: {error}")),
    };
    let now = unix_now();
    let claims = json!({
        "iss": request.issuer,
        "sub": request.subject,
        "aud": request.audience,
        "iat": now,
        "nbf": now,
        "exp": now + request.lifetime_seconds.unwrap_or(3600),
        "jti": Uuid::new_v4().to_string(),
    });
    Json(json!({ "token": shared.oidc_tokens.sign(&claims) })).into_response()
}

/// The whole world as JSON, grouped by kind and, for directory objects, by tenant.
pub fn snapshot(world: &World) -> Value {
    let tenants: Vec<Value> =
        world.tenants.values().map(|tenant| tenant_json(world, tenant.id)).collect();
    let subscriptions: Vec<Value> = world
        .subscriptions
        .values()
        .map(|subscription| {
            let groups: Vec<&crate::state::ResourceGroup> = world
                .resource_groups
                .values()
                .filter(|group| group.subscription_id == subscription.id)
                .collect();
            json!({
                "id": subscription.id,
                "tenant_id": subscription.tenant_id,
                "resource_groups": groups,
            })
        })
        .collect();
    let servers: Vec<Value> =
        world.servers.values().map(|server| server_json(world, server)).collect();
    let vaults: Vec<Value> = world.vaults.values().map(vault_json).collect();
    json!({
        "tenants": tenants,
        "subscriptions": subscriptions,
        "identities": world.identities.values().collect::<Vec<_>>(),
        "servers": servers,
        "vaults": vaults,
        "role_assignments": world.role_assignments.values().collect::<Vec<_>>(),
        "settings": {
            "polls_before_done": world.settings.polls_before_done,
            "replication_ms": replication_json(world),
        },
    })
}

fn replication_json(world: &World) -> Value {
    let delays: serde_json::Map<String, Value> = world
        .settings
        .replication
        .iter()
        .map(|(kind, delay)| {
            let name = serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_string));
            (name.unwrap_or_default(), json!(delay.as_millis() as u64))
        })
        .collect();
    Value::Object(delays)
}

fn tenant_json(world: &World, tenant_id: Uuid) -> Value {
    let applications: Vec<Value> = world
        .applications
        .values()
        .filter(|app| app.tenant_id == tenant_id)
        .map(|app| {
            let mut value = json!(app);
            value["federated_credentials"] = json!(world.credentials_of(app.object_id));
            value
        })
        .collect();
    let principals: Vec<_> =
        world.service_principals.values().filter(|sp| sp.tenant_id == tenant_id).collect();
    let tenant = &world.tenants[&tenant_id];
    json!({
        "id": tenant.id,
        "display_name": tenant.display_name,
        "applications": applications,
        "service_principals": principals,
    })
}

fn server_json(world: &World, server: &crate::state::SqlServer) -> Value {
    let protector_key = server.protector_key();
    let kid = protector_key.map(|key| key.uri.clone());
    let vault_key_state = protector_key.and_then(|key| key_state(world, &key.uri));
    json!({
        "id": server.id,
        "name": server.name,
        "location": server.location,
        "identity": {
            "type": server.identity.type_name(),
            "user_assigned_identities": server.identity.user_assigned,
            "system_principal_id": server.identity.system_principal_id,
        },
        "primary_user_assigned_identity_id": server.primary_user_assigned_identity_id,
        "federated_client_id": server.federated_client_id,
        "keys": server.keys.values().collect::<Vec<_>>(),
        "protector": {
            "server_key_name": server.protector_key_name.as_deref().unwrap_or("ServiceManaged"),
            "server_key_type": if kid.is_some() { "AzureKeyVault" } else { "ServiceManaged" },
            "kid": kid,
            "auto_rotation_enabled": server.protector_auto_rotation,
            "key": vault_key_state,
        },
        "key_accessible": server.key_accessible,
        "key_problem": server.key_problem,
        "last_validated": server.last_validated.map(crate::http::format_rfc3339),
    })
}

/// The enabled flag and expiry of the vault key a kid names, if it exists.
fn key_state(world: &World, kid: &str) -> Option<Value> {
    let parsed = crate::vault::KeyIdentifier::parse(kid)?;
    let vault = world.vault(&parsed.vault)?;
    let key = vault.keys.get(&parsed.name.to_ascii_lowercase())?;
    let version = key.version(&parsed.version)?;
    Some(json!({
        "enabled": version.enabled,
        "exp": version.expires,
        "deleted": key.deleted.is_some(),
    }))
}

fn vault_json(vault: &crate::state::Vault) -> Value {
    let keys: Vec<Value> = vault
        .keys
        .values()
        .map(|key| {
            let versions: Vec<Value> = key
                .versions
                .iter()
                .map(|version| {
                    json!({
                        "version": version.version,
                        "kid": key_url(vault, &key.name, &version.version),
                        "kty": version.kty,
                        "key_size": version.key_size,
                        "enabled": version.enabled,
                        "exp": version.expires,
                        "nbf": version.not_before,
                        "key_ops": version.key_ops,
                    })
                })
                .collect();
            json!({"name": key.name, "deleted": key.deleted, "versions": versions})
        })
        .collect();
    json!({
        "id": vault.id,
        "name": vault.name,
        "tenant_id": vault.tenant_id,
        "vault_uri": vault.vault_uri(),
        "enable_soft_delete": vault.enable_soft_delete,
        "enable_purge_protection": vault.enable_purge_protection,
        "enable_rbac_authorization": vault.enable_rbac_authorization,
        "access_policies": vault.access_policies,
        "keys": keys,
    })
}
