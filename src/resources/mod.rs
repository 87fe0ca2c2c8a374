//! The provider's managed resources, one file each, named after the resource type without the
//! `azurecmk_` prefix. Shared helpers: `common` (Azure errors as diagnostics, deadlines), `chain`
//! (which cross-tenant step an Azure SQL refusal points at) and `validators` (Azure's naming and
//! id rules, checked at plan time).

pub mod application_installation;
pub mod chain;
pub mod common;
pub mod cross_tenant_key_grant;
pub mod federated_app_credential;
pub mod key_vault_key;
pub mod multi_tenant_application;
pub mod replication;
pub mod sql_tde_cross_tenant_protector;
pub mod user_assigned_identity;
pub mod validators;

use std::sync::Arc;

use crate::framework::Resource;
use crate::provider::Clients;

/// Every resource this provider offers.
pub fn all() -> Vec<Arc<dyn Resource<Clients>>> {
    vec![
        Arc::new(user_assigned_identity::UserAssignedIdentity::new()),
        Arc::new(multi_tenant_application::MultiTenantApplication::new()),
        Arc::new(federated_app_credential::FederatedAppCredential::new()),
        Arc::new(application_installation::ApplicationInstallation::new()),
        Arc::new(key_vault_key::KeyVaultKey::new()),
        Arc::new(cross_tenant_key_grant::CrossTenantKeyGrant::new()),
        Arc::new(sql_tde_cross_tenant_protector::SqlTdeCrossTenantProtector::new()),
    ]
}
