//! The `azurecmk` provider block: its schema, the `ARM_*` environment fallbacks, and turning one
//! block into the Azure client every resource of that block uses.
//!
//! Each aliased provider block is configured in its own provider process, so one block's tenant
//! and credentials can never leak into another's. Configuration makes no network call: tokens are
//! requested on first use, so `validate` and `plan` without changes stay fast.

mod config;

use std::sync::Arc;

use async_trait::async_trait;

use crate::azure::AzureClient;
use crate::framework::{DataSource, Diagnostics, Provider, Resource, Schema, Value};

pub use config::{ProviderConfig, provider_schema};

/// The provider.
pub struct AzureCmkProvider {
    schema: Schema,
}

/// What resources of one provider block use.
pub struct Clients {
    /// Authenticated to the block's tenant.
    pub azure: AzureClient,
    /// The block's subscription, for resources that do not name one.
    pub subscription_id: Option<String>,
}

impl AzureCmkProvider {
    /// The provider with its schema.
    pub fn new() -> AzureCmkProvider {
        AzureCmkProvider { schema: provider_schema() }
    }
}

impl Default for AzureCmkProvider {
    fn default() -> Self {
        AzureCmkProvider::new()
    }
}

#[async_trait]
impl Provider for AzureCmkProvider {
    type Configured = Clients;

    fn type_name(&self) -> &'static str {
        "azurecmk"
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        config::validate(config)
    }

    async fn configure(&self, config: &Value) -> Result<Clients, Diagnostics> {
        let resolved = ProviderConfig::resolve(config, |name| std::env::var(name).ok())?;
        let azure = AzureClient::from_credential_options(&resolved.credentials)
            .map_err(|error| config::credential_diagnostic(&resolved, &error))?;
        Ok(Clients { azure, subscription_id: resolved.subscription_id })
    }

    fn resources(&self) -> Vec<Arc<dyn Resource<Clients>>> {
        crate::resources::all()
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource<Clients>>> {
        crate::data_sources::all()
    }
}
