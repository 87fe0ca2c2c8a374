//! Our own Azure client: credentials, the HTTP pipeline, typed ids and one module per API.
//!
//! This layer knows Azure and nothing of Terraform: it takes typed ids and plain structs and
//! returns [`error::AzureError`]s that name the operation, resource, status, code and request
//! id. Resources call the API modules (`azure::sql::...`); only this layer speaks HTTP.

pub mod authorization;
pub mod client;
pub mod cloud;
pub mod credentials;
pub mod error;
pub mod graph;
pub mod http;
pub mod ids;
pub mod key_vault;
pub mod lro;
pub mod managed_identity;
pub mod retry;
pub mod secret;
pub mod sql;

pub use client::{ApiRequest, ApiResponse, Audience, AzureClient, CallContext};
pub use cloud::{CloudEndpoints, CloudEnvironment};
pub use credentials::{AuthMethod, CredentialError, CredentialOptions};
pub use error::AzureError;
pub use secret::Secret;

#[cfg(test)]
mod testing;
