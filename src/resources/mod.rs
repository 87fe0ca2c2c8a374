//! The provider's managed resources, one file each, named after the resource type without the
//! `azurecmk_` prefix. Shared helpers: `common` (Azure errors as diagnostics, deadlines) and
//! `validators` (Azure's naming and id rules, checked at plan time).

pub mod common;
pub mod validators;

use std::sync::Arc;

use crate::framework::Resource;
use crate::provider::Clients;

/// Every resource this provider offers.
pub fn all() -> Vec<Arc<dyn Resource<Clients>>> {
    Vec::new()
}
