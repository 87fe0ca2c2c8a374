//! The provider's data sources, one file each, named after the type without the prefix.

use std::sync::Arc;

use crate::framework::DataSource;
use crate::provider::Clients;

/// Every data source this provider offers.
pub fn all() -> Vec<Arc<dyn DataSource<Clients>>> {
    Vec::new()
}
