//! The provider's data sources, one file each, named after the type without the prefix.

pub mod key_vault_key;

use std::sync::Arc;

use crate::framework::DataSource;
use crate::provider::Clients;

/// Every data source this provider offers.
pub fn all() -> Vec<Arc<dyn DataSource<Clients>>> {
    vec![Arc::new(key_vault_key::KeyVaultKeyData::new())]
}
