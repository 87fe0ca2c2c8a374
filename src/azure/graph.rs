//! Microsoft Graph v1.0: applications, their federated identity credentials, service
//! principals, and directory object lookups.
//!
//! This module owns the Graph requests and their wire shapes. It must never wait for
//! replication (resources decide how long to wait) nor create anything but what it is asked.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::azure::client::{
    ApiRequest, Audience, AzureClient, CallContext, ignore_not_found, optional,
};
use crate::azure::error::AzureError;

/// `signInAudience` of an application any Entra tenant can install.
pub const MULTIPLE_ORGS: &str = "AzureADMultipleOrgs";

/// An application registration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// The object id.
    pub id: String,
    /// The client (application) id.
    pub app_id: String,
    /// The display name.
    #[serde(default)]
    pub display_name: String,
    /// Who may sign in, e.g. `AzureADMultipleOrgs`.
    #[serde(default)]
    pub sign_in_audience: String,
}

/// A federated identity credential on an application.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedCredential {
    /// The credential's id.
    pub id: String,
    /// Its unique, immutable name.
    pub name: String,
    /// The token issuer it trusts.
    pub issuer: String,
    /// The token subject it trusts.
    pub subject: String,
    /// The token audiences it accepts (Entra allows exactly one).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// A free-form description.
    #[serde(default)]
    pub description: Option<String>,
}

/// What a federated identity credential should trust.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedCredentialSpec {
    /// The token issuer.
    pub issuer: String,
    /// The token subject.
    pub subject: String,
    /// The token audiences.
    pub audiences: Vec<String>,
    /// A free-form description; `None` is sent as `null`, which clears it on update.
    pub description: Option<String>,
}

/// A service principal (an application's instance in a tenant).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    /// The object id.
    pub id: String,
    /// The client id of the application it instantiates.
    pub app_id: String,
    /// The tenant that owns the application.
    #[serde(default)]
    pub app_owner_organization_id: Option<String>,
    /// The display name.
    #[serde(default)]
    pub display_name: String,
    /// `Application`, `ManagedIdentity`, `Legacy`, ...
    #[serde(default)]
    pub service_principal_type: Option<String>,
    /// Other names Entra knows it by; a user-assigned managed identity's include its ARM id.
    #[serde(default)]
    pub alternative_names: Vec<String>,
}

/// What a directory object id turned out to be, for "wrong kind of id" diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryObjectKind {
    /// An application registration (its object id).
    Application {
        /// The application's client id.
        app_id: String,
    },
    /// A service principal of an application.
    ServicePrincipal {
        /// `Application`, `Legacy`, ...
        service_principal_type: Option<String>,
        /// The client id of its application.
        app_id: String,
    },
    /// The service principal of a managed identity.
    ManagedIdentity {
        /// The identity's client id.
        app_id: String,
    },
    /// A user, group, device, ...: the `@odata.type` as Graph gave it.
    Other(String),
}

fn request(
    client: &AzureClient,
    method: Method,
    path: &str,
    operation: &str,
    resource: impl Into<String>,
) -> ApiRequest {
    ApiRequest::new(Audience::Graph, method, client.graph_url(path), operation, resource)
}

/// GETs a Graph object; `None` when Graph says it does not exist.
async fn get_optional<T: serde::de::DeserializeOwned>(
    client: &AzureClient,
    path: &str,
    operation: &str,
    resource: &str,
    call: &CallContext,
) -> Result<Option<T>, AzureError> {
    let request = request(client, Method::GET, path, operation, resource);
    let response = optional(client.send(request, call)).await?;
    response.map(|response| response.json()).transpose()
}

/// OData string literal: single quotes are doubled.
fn odata_literal(value: &str) -> String {
    value.replace('\'', "''")
}

/// Creates a multi-tenant application with this display name.
pub async fn create_application(
    client: &AzureClient,
    display_name: &str,
    call: &CallContext,
) -> Result<Application, AzureError> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        display_name: &'a str,
        sign_in_audience: &'a str,
    }
    let body = Body { display_name, sign_in_audience: MULTIPLE_ORGS };
    let request =
        request(client, Method::POST, "/applications", "creating application", display_name);
    client.send(request.with_json(&body)?, call).await?.json()
}

/// Reads an application by object id; `None` when it does not exist.
pub async fn get_application(
    client: &AzureClient,
    object_id: &str,
    call: &CallContext,
) -> Result<Option<Application>, AzureError> {
    let path = format!("/applications/{object_id}");
    get_optional(client, &path, "reading application", object_id, call).await
}

/// Finds an application by client id; `None` when the tenant has none.
pub async fn find_application_by_app_id(
    client: &AzureClient,
    app_id: &str,
    call: &CallContext,
) -> Result<Option<Application>, AzureError> {
    let path = format!("/applications(appId='{}')", odata_literal(app_id));
    get_optional(client, &path, "finding application by client id", app_id, call).await
}

/// Sets an application's display name and makes it multi-tenant again if someone changed that
/// (PATCH, answered 204).
pub async fn update_application(
    client: &AzureClient,
    object_id: &str,
    display_name: &str,
    call: &CallContext,
) -> Result<(), AzureError> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        display_name: &'a str,
        sign_in_audience: &'a str,
    }
    let body = Body { display_name, sign_in_audience: MULTIPLE_ORGS };
    let path = format!("/applications/{object_id}");
    let request = request(client, Method::PATCH, &path, "updating application", object_id);
    client.send(request.with_json(&body)?, call).await?;
    Ok(())
}

/// Deletes an application; one already gone counts as deleted.
pub async fn delete_application(
    client: &AzureClient,
    object_id: &str,
    call: &CallContext,
) -> Result<(), AzureError> {
    let path = format!("/applications/{object_id}");
    let request = request(client, Method::DELETE, &path, "deleting application", object_id);
    ignore_not_found(client.send(request, call)).await
}

fn credential_path(application_object_id: &str, credential_id: Option<&str>) -> String {
    let collection = format!("/applications/{application_object_id}/federatedIdentityCredentials");
    match credential_id {
        Some(credential_id) => format!("{collection}/{credential_id}"),
        None => collection,
    }
}

/// Lists the federated identity credentials of an application.
pub async fn list_federated_credentials(
    client: &AzureClient,
    application_object_id: &str,
    call: &CallContext,
) -> Result<Vec<FederatedCredential>, AzureError> {
    let path = credential_path(application_object_id, None);
    let operation = "listing federated identity credentials";
    let request = request(client, Method::GET, &path, operation, &path);
    client.list_all(request, call).await
}

/// Adds a federated identity credential named `name` to an application.
pub async fn create_federated_credential(
    client: &AzureClient,
    application_object_id: &str,
    name: &str,
    spec: &FederatedCredentialSpec,
    call: &CallContext,
) -> Result<FederatedCredential, AzureError> {
    #[derive(Serialize)]
    struct Body<'a> {
        name: &'a str,
        #[serde(flatten)]
        spec: &'a FederatedCredentialSpec,
    }
    let path = credential_path(application_object_id, None);
    let operation = "creating federated identity credential";
    let request = request(client, Method::POST, &path, operation, format!("{path}/{name}"));
    client.send(request.with_json(&Body { name, spec })?, call).await?.json()
}

/// Reads a federated identity credential; `None` when it does not exist.
pub async fn get_federated_credential(
    client: &AzureClient,
    application_object_id: &str,
    credential_id: &str,
    call: &CallContext,
) -> Result<Option<FederatedCredential>, AzureError> {
    let path = credential_path(application_object_id, Some(credential_id));
    let operation = "reading federated identity credential";
    get_optional(client, &path, operation, &path, call).await
}

/// Changes issuer, subject, audiences and description in place (PATCH, answered 204).
pub async fn update_federated_credential(
    client: &AzureClient,
    application_object_id: &str,
    credential_id: &str,
    spec: &FederatedCredentialSpec,
    call: &CallContext,
) -> Result<(), AzureError> {
    let path = credential_path(application_object_id, Some(credential_id));
    let operation = "updating federated identity credential";
    let request = request(client, Method::PATCH, &path, operation, &path);
    client.send(request.with_json(spec)?, call).await?;
    Ok(())
}

/// Deletes a federated identity credential; one already gone counts as deleted.
pub async fn delete_federated_credential(
    client: &AzureClient,
    application_object_id: &str,
    credential_id: &str,
    call: &CallContext,
) -> Result<(), AzureError> {
    let path = credential_path(application_object_id, Some(credential_id));
    let operation = "deleting federated identity credential";
    let request = request(client, Method::DELETE, &path, operation, &path);
    ignore_not_found(client.send(request, call)).await
}

/// Installs an application in this client's tenant: creates its service principal.
pub async fn create_service_principal(
    client: &AzureClient,
    app_id: &str,
    call: &CallContext,
) -> Result<ServicePrincipal, AzureError> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        app_id: &'a str,
    }
    let operation = "creating service principal for application";
    let request = request(client, Method::POST, "/servicePrincipals", operation, app_id);
    client.send(request.with_json(&Body { app_id })?, call).await?.json()
}

/// Reads a service principal by object id; `None` when it does not exist.
pub async fn get_service_principal(
    client: &AzureClient,
    object_id: &str,
    call: &CallContext,
) -> Result<Option<ServicePrincipal>, AzureError> {
    let path = format!("/servicePrincipals/{object_id}");
    get_optional(client, &path, "reading service principal", object_id, call).await
}

/// Finds the service principal of an application in this tenant; `None` when not installed.
pub async fn find_service_principal_by_app_id(
    client: &AzureClient,
    app_id: &str,
    call: &CallContext,
) -> Result<Option<ServicePrincipal>, AzureError> {
    let path = format!("/servicePrincipals(appId='{}')", odata_literal(app_id));
    let operation = "finding service principal by client id";
    get_optional(client, &path, operation, app_id, call).await
}

/// Deletes a service principal; one already gone counts as deleted.
pub async fn delete_service_principal(
    client: &AzureClient,
    object_id: &str,
    call: &CallContext,
) -> Result<(), AzureError> {
    let path = format!("/servicePrincipals/{object_id}");
    let request = request(client, Method::DELETE, &path, "deleting service principal", object_id);
    ignore_not_found(client.send(request, call)).await
}

/// Says what kind of object an id names; `None` when no object has it.
pub async fn get_directory_object(
    client: &AzureClient,
    object_id: &str,
    call: &CallContext,
) -> Result<Option<DirectoryObjectKind>, AzureError> {
    let path = format!("/directoryObjects/{object_id}");
    let request = request(client, Method::GET, &path, "looking up directory object", object_id);
    let Some(response) = optional(client.send(request, call)).await? else {
        return Ok(None);
    };
    Ok(Some(response.json::<WireDirectoryObject>()?.into()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireDirectoryObject {
    #[serde(rename = "@odata.type", default)]
    odata_type: String,
    #[serde(default)]
    app_id: Option<String>,
    #[serde(default)]
    service_principal_type: Option<String>,
}

impl From<WireDirectoryObject> for DirectoryObjectKind {
    fn from(wire: WireDirectoryObject) -> Self {
        let app_id = wire.app_id.unwrap_or_default();
        match wire.odata_type.as_str() {
            "#microsoft.graph.application" => Self::Application { app_id },
            "#microsoft.graph.servicePrincipal"
                if wire.service_principal_type.as_deref() == Some("ManagedIdentity") =>
            {
                Self::ManagedIdentity { app_id }
            }
            "#microsoft.graph.servicePrincipal" => Self::ServicePrincipal {
                service_principal_type: wire.service_principal_type,
                app_id,
            },
            other => Self::Other(other.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{DirectoryObjectKind, FederatedCredentialSpec, WireDirectoryObject};
    use crate::azure::client::CallContext;
    use crate::azure::testing::{FakeCredential, Reply, ScriptedServer, client_for};

    #[test]
    fn directory_object_kinds() {
        let cases = [
            (
                "application",
                r##"{"@odata.type":"#microsoft.graph.application","appId":"a1"}"##,
                DirectoryObjectKind::Application { app_id: "a1".into() },
            ),
            (
                "application service principal",
                r##"{"@odata.type":"#microsoft.graph.servicePrincipal","appId":"a2","servicePrincipalType":"Application"}"##,
                DirectoryObjectKind::ServicePrincipal {
                    service_principal_type: Some("Application".into()),
                    app_id: "a2".into(),
                },
            ),
            (
                "managed identity",
                r##"{"@odata.type":"#microsoft.graph.servicePrincipal","appId":"a3","servicePrincipalType":"ManagedIdentity"}"##,
                DirectoryObjectKind::ManagedIdentity { app_id: "a3".into() },
            ),
            (
                "user",
                r##"{"@odata.type":"#microsoft.graph.user","id":"u"}"##,
                DirectoryObjectKind::Other("#microsoft.graph.user".into()),
            ),
        ];
        for (name, body, expected) in cases {
            let wire: WireDirectoryObject = serde_json::from_str(body).unwrap();
            assert_eq!(DirectoryObjectKind::from(wire), expected, "{name}");
        }
    }

    #[tokio::test]
    async fn application_and_credential_requests() {
        let server = ScriptedServer::start().await;
        let client = client_for(&server, Arc::new(FakeCredential::default()));
        let call = CallContext::with_timeout(Duration::from_secs(10));
        let not_found = r#"{"error":{"code":"Request_ResourceNotFound","message":"Resource 'x' does not exist",
            "innerError":{"request-id":"graph-req-1"}}}"#;
        server.script([
            Reply::json(201, r#"{"id":"obj-1","appId":"app-1","displayName":"isv","signInAudience":"AzureADMultipleOrgs"}"#),
            Reply::json(404, not_found),
            Reply::json(201, r#"{"id":"fic-1","name":"uami","issuer":"https://login.microsoftonline.com/t/v2.0",
                "subject":"p-1","audiences":["api://AzureADTokenExchange"],"description":null}"#),
            Reply::json(204, ""),
            Reply::json(200, r#"{"value":[{"id":"fic-1","name":"uami","issuer":"i","subject":"s","audiences":["a"]}]}"#),
        ]);

        let app = super::create_application(&client, "isv", &call).await.unwrap();
        assert_eq!((app.id.as_str(), app.app_id.as_str()), ("obj-1", "app-1"));
        let missing = super::find_application_by_app_id(&client, "it's", &call).await.unwrap();
        assert_eq!(missing, None);
        let spec = FederatedCredentialSpec {
            issuer: "https://login.microsoftonline.com/t/v2.0".into(),
            subject: "p-1".into(),
            audiences: vec!["api://AzureADTokenExchange".into()],
            description: None,
        };
        let created = super::create_federated_credential(&client, "obj-1", "uami", &spec, &call);
        let created = created.await.unwrap();
        assert_eq!(created.id, "fic-1");
        super::update_federated_credential(&client, "obj-1", "fic-1", &spec, &call).await.unwrap();
        let listed = super::list_federated_credentials(&client, "obj-1", &call).await.unwrap();
        assert_eq!(listed.len(), 1);

        let requests = server.requests();
        assert_eq!(requests[0].target, "/v1.0/applications");
        assert_eq!(
            requests[0].body,
            r#"{"displayName":"isv","signInAudience":"AzureADMultipleOrgs"}"#
        );
        assert_eq!(requests[1].target, "/v1.0/applications(appId='it''s')");
        assert_eq!(requests[2].target, "/v1.0/applications/obj-1/federatedIdentityCredentials");
        assert_eq!(
            requests[2].body,
            r#"{"name":"uami","issuer":"https://login.microsoftonline.com/t/v2.0","subject":"p-1","audiences":["api://AzureADTokenExchange"],"description":null}"#
        );
        assert_eq!(requests[3].method, "PATCH");
        assert_eq!(
            requests[3].target,
            "/v1.0/applications/obj-1/federatedIdentityCredentials/fic-1"
        );
    }
}
